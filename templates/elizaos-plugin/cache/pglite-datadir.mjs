// Run once per lockfile by the bot, in the finished dependency tree with the network off:
// a PGlite data directory after initdb and @elizaos/plugin-sql's own migrations, which the
// plugin's integration test copies instead of running both again (see
// __tests__/pglite-datadir.ts). The directory lands inside node_modules, which is made
// read-only afterwards and shared by every job with this lockfile.
import { chmodSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AgentRuntime } from '@elizaos/core';
import sqlPlugin from '@elizaos/plugin-sql';

const target = path.resolve('node_modules/.plugin-bot/pglite-datadir');
const building = target + '.building';
rmSync(building, { recursive: true, force: true });
const runtime = new AgentRuntime({
  character: { name: 'Snapshot', bio: ['Prepares a database.'], settings: { PGLITE_DATA_DIR: building } },
});
await runtime.registerPlugin(sqlPlugin);
await runtime.adapter.init();
await runtime.runPluginMigrations();
await runtime.adapter.close();
rmSync(path.join(building, 'postmaster.pid'), { force: true });
readableByAll(building); // postgres makes its files 0600; every job's test copies them
renameSync(building, target);
console.log('pglite data directory written to ' + path.relative('.', target));

function readableByAll(dir) {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      readableByAll(entryPath);
    } else {
      chmodSync(entryPath, 0o644);
    }
  }
}
