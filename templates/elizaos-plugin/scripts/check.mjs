// One build for checks: a single TypeScript pass over sources and tests that reports
// every type error and emits the declarations, then an esbuild bundle of src/ — the work
// of `tsc --noEmit && tsup` done once. Writes only to dist/.
//   node scripts/check.mjs        (npm run check)
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import ts from 'typescript';

const configPath = ts.findConfigFile('.', ts.sys.fileExists, 'tsconfig.json');
const host = {
  getCanonicalFileName: (name) => name,
  getCurrentDirectory: ts.sys.getCurrentDirectory,
  getNewLine: () => ts.sys.newLine,
};
const parsed = ts.getParsedCommandLineOfConfigFile(
  configPath,
  { noEmit: false, declaration: true, emitDeclarationOnly: true, outDir: 'dist/types', incremental: false },
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => report([d]) },
);
if (parsed === undefined) {
  process.exit(1);
}

function report(diagnostics) {
  if (diagnostics.length > 0) {
    process.stdout.write(ts.formatDiagnostics(diagnostics, host));
  }
}

const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
const diagnostics = [...parsed.errors, ...ts.getPreEmitDiagnostics(program)];
report(diagnostics);
if (diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error)) {
  const count = diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).length;
  console.error(`check: ${count} type error${count === 1 ? '' : 's'}`);
  process.exit(1);
}
// Declarations of the sources only: tests are checked, not shipped.
for (const file of program.getSourceFiles()) {
  if (!file.isDeclarationFile && file.fileName.includes('/src/')) {
    program.emit(file, undefined, undefined, true);
  }
}
// package.json's "types" (dist/index.d.ts, what tsup writes) over the emitted tree.
writeFileSync(
  'dist/index.d.ts',
  "export * from './types/src/index';\nexport { default } from './types/src/index';\n",
);

await build({
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  logLevel: 'warning',
});
console.log('check: types OK, dist/index.js and dist/index.d.ts written');
