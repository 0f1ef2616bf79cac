import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Prepared once per lockfile by plugin-bot (initdb and plugin-sql's migrations done). */
const PREPARED = path.resolve('node_modules/.plugin-bot/pglite-datadir');

export interface TestDatabase {
  /** The PGLITE_DATA_DIR setting for the agent. */
  dataDir: string;
  /** Whether it starts from the prepared directory (else PGlite runs initdb itself). */
  prepared: boolean;
  remove(): void;
}

/**
 * A fresh database for one test run: a private copy of the prepared data directory when
 * there is one, otherwise PGlite in memory, initialised from scratch (a plain npm ci).
 * plugin-sql's migrations run on it either way.
 */
export function testDatabase(): TestDatabase {
  if (!existsSync(path.join(PREPARED, 'PG_VERSION'))) {
    return { dataDir: 'memory://', prepared: false, remove: () => undefined };
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pglite-'));
  cpSync(PREPARED, dataDir, { recursive: true });
  makeWritable(dataDir);
  return {
    dataDir,
    prepared: true,
    remove: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** The prepared directory is read-only (a shared cache); its copy must not be. */
function makeWritable(dir: string): void {
  chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      makeWritable(entryPath);
    } else {
      chmodSync(entryPath, 0o600);
    }
  }
}
