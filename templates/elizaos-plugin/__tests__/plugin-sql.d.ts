// @elizaos/plugin-sql 1.7.2 publishes dist/node/index.d.ts re-exporting ./index.node, a
// file it does not ship; this declares the one export the integration test uses.
declare module '@elizaos/plugin-sql' {
  import type { Plugin } from '@elizaos/core';

  const plugin: Plugin;
  export default plugin;
}
