// The warm checker: repeated check rounds (build + test) from one long-lived process.
//
// Started by the bot in the same sandbox as a build or test run (sources read-only, network
// off, limits), at the first run_checks of a job; answers one request per round on a Unix
// socket. A round does what `node scripts/check.mjs` and the pack's vitest command do:
// every type error of sources and tests, declarations of src/ in dist/types plus
// dist/index.d.ts, an esbuild bundle, then every test file with the JSON report. What it
// keeps between rounds: TypeScript's builder program (files that did not change are not
// parsed or checked again; their diagnostics are still reported), esbuild's incremental
// context, one Vitest instance (its Vite server and transforms; changed files are
// invalidated) and the thread its tests run in (a pool of our own, below: Vitest's pools end
// their workers after every run). That thread keeps Node's modules from node_modules
// (@elizaos/core and @elizaos/plugin-sql are imported there once, before any test code) and
// nothing of a round's own: every round evaluates the plugin's sources and tests afresh,
// every test file runs, and what a round left on globalThis, in the plain objects on it
// (plugin-sql's registry of database clients), in process.env, on the builtins' and the
// preloaded packages' exports (their own properties and prototypes), the timers it set, its
// process listeners and process.exitCode are taken back before the next. The final round
// of a job never comes from here: it is the cold commands.
//
//   node warm-checker.mjs SOCKET VITEST_CONFIG REPORT_FILE
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const [socketPath, vitestConfig, reportFile] = process.argv.slice(2);
const root = process.cwd();
// Packages from the plugin's node_modules (this script lives outside the plugin).
const requireHere = createRequire(path.join(root, 'package.json'));
const importFromPlugin = async (name) => import(requireHere.resolve(name));
const ts = (await importFromPlugin('typescript')).default;
const esbuild = await importFromPlugin('esbuild');
const { createVitest } = await import(
  path.join(root, 'node_modules', 'vitest', 'dist', 'node.js')
);

const formatHost = {
  getCanonicalFileName: (name) => name,
  getCurrentDirectory: ts.sys.getCurrentDirectory,
  getNewLine: () => ts.sys.newLine,
};

// ----------------------------------------------------------------------------- types

let builder; // the previous round's builder program
const parsedFiles = new Map(); // fileName -> { text, sourceFile }

function parseConfig(out) {
  const configPath = ts.findConfigFile('.', ts.sys.fileExists, 'tsconfig.json');
  return ts.getParsedCommandLineOfConfigFile(
    configPath,
    {
      noEmit: false,
      declaration: true,
      emitDeclarationOnly: true,
      outDir: 'dist/types',
      incremental: false,
    },
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => out.push(format([d])) },
  );
}

function format(diagnostics) {
  return diagnostics.length > 0 ? ts.formatDiagnostics(diagnostics, formatHost) : '';
}

/** A compiler host that hands back last round's SourceFile when the text is the same. */
function cachingHost(options) {
  const host = ts.createIncrementalCompilerHost(options);
  const read = host.getSourceFile;
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const cached = parsedFiles.get(fileName);
    // node_modules is a read-only mount for the process's life: read it once.
    if (cached && fileName.includes('/node_modules/')) {
      return cached.sourceFile;
    }
    const text = ts.sys.readFile(fileName);
    if (cached && text !== undefined && cached.text === text) {
      return cached.sourceFile;
    }
    const sourceFile = read(fileName, languageVersion, onError, shouldCreate);
    if (sourceFile !== undefined && text !== undefined) {
      parsedFiles.set(fileName, { text, sourceFile });
    }
    return sourceFile;
  };
  return host;
}

/** check.mjs's type pass: the same diagnostics, text and declarations; null when it failed. */
function typePass(out) {
  const parsed = parseConfig(out);
  if (parsed === undefined) {
    return false;
  }
  const host = cachingHost(parsed.options);
  builder = ts.createEmitAndSemanticDiagnosticsBuilderProgram(
    parsed.fileNames,
    parsed.options,
    host,
    builder,
  );
  const diagnostics = [...parsed.errors, ...ts.getPreEmitDiagnostics(builder)];
  out.push(format(diagnostics));
  const errors = diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).length;
  if (errors > 0) {
    out.push(`check: ${errors} type error${errors === 1 ? '' : 's'}\n`);
    return false;
  }
  // Declarations of the sources only (tests are checked, not shipped); only the files
  // whose declarations can have changed since the last round are emitted again.
  const writeSources = (fileName, text, bom, onError, sourceFiles) => {
    if (sourceFiles?.every((f) => f.fileName.includes('/src/'))) {
      host.writeFile(fileName, text, bom, onError, sourceFiles);
    }
  };
  while (builder.emitNextAffectedFile(writeSources, undefined, true)) {
    // each call emits one affected file
  }
  writeFileSync(
    'dist/index.d.ts',
    "export * from './types/src/index';\nexport { default } from './types/src/index';\n",
  );
  return true;
}

// ---------------------------------------------------------------------------- bundle

const bundler = await esbuild.context({
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  logLevel: 'silent',
});

async function bundle(out) {
  try {
    const result = await bundler.rebuild();
    const warnings = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    out.push(warnings.join(''));
    return true;
  } catch (error) {
    const messages = await esbuild.formatMessages(error.errors ?? [], { kind: 'error' });
    out.push(messages.join('') || String(error));
    return false;
  }
}

// ----------------------------------------------------------------------------- tests

class Capture extends Writable {
  chunks = [];
  _write(chunk, _encoding, done) {
    this.chunks.push(Buffer.from(chunk));
    done();
  }
  end() {
    // Vitest ends its output streams after a run; this one serves every round.
    return this;
  }
  take() {
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    return text;
  }
}
const testOutput = new Capture();
let vitest;
const seen = new Map(); // plugin file -> mtime and size at the last round

function changedFiles() {
  const now = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (dir === root && ['node_modules', 'dist', '.plugin-bot', '.plugin-bot-config'].includes(entry.name)) {
        continue;
      }
      if (entry.name.startsWith('.plugin-bot-')) {
        continue;
      }
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.isFile()) {
        const st = statSync(full);
        now.set(full, `${st.mtimeMs}:${st.size}:${st.ino}`);
      }
    }
  };
  walk(root);
  const changed = [];
  for (const [file, stamp] of now) {
    if (seen.get(file) !== stamp) changed.push(file);
  }
  for (const file of seen.keys()) {
    if (!now.has(file)) changed.push(file);
  }
  seen.clear();
  for (const [file, stamp] of now) seen.set(file, stamp);
  return changed;
}

// The test thread kept between rounds. Vitest's threads pool starts a worker thread for
// every run and ends it after (a new thread imports @elizaos/core, plugin-sql and PGlite
// again). This pool hands every run the same thread; Vitest still sends it a start and a
// stop for each run (the environment is set up and torn down every time).
const vitestWorker = pathToFileURL(path.join(root, 'node_modules', 'vitest', 'dist', 'worker.js'));
const PRELOAD = ['@elizaos/core', '@elizaos/plugin-sql'];
const threadSource = `
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { init, runBaseTests, setupEnvironment } from ${JSON.stringify(vitestWorker.href)};

// Imported once per thread, before any test code, so that they are part of the baseline.
const parent = pathToFileURL(${JSON.stringify(path.join(root, 'package.json'))}).href;
const preloaded = [];
for (const name of ${JSON.stringify(PRELOAD)}) {
  try {
    preloaded.push(await import(import.meta.resolve(name, parent)));
  } catch {
    // not a dependency of this plugin: its tests import what they need
  }
}

// Timers a round sets are recorded (the global functions and node:timers' are wrapped before
// the baseline below) and cleared after it: in a cold run they end with the thread.
import { createRequire as requireFrom } from 'node:module';
const timersModule = requireFrom(parent)('node:timers');
const liveTimers = new Set();
for (const [set, clear] of [['setTimeout', 'clearTimeout'], ['setInterval', 'clearInterval'],
  ['setImmediate', 'clearImmediate']]) {
  const original = globalThis[set];
  const originalClear = globalThis[clear];
  const wrapped = function (...args) {
    const handle = original.apply(this, args);
    liveTimers.add([handle, originalClear]);
    return handle;
  };
  Object.defineProperty(wrapped, 'name', { value: set });
  for (const key of Reflect.ownKeys(original)) {
    if (!Reflect.ownKeys(wrapped).includes(key)) {
      Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(original, key));
    }
  }
  globalThis[set] = wrapped;
  timersModule[set] = wrapped;
}
(await import('node:module')).syncBuiltinESMExports();
const clearTimers = () => {
  for (const entry of liveTimers) entry[1](entry[0]);
  liveTimers.clear();
};

// What a round may change and the next must not see: globals, the own keys of plain
// objects on globalThis (registries such as plugin-sql's client singletons), process.env.
const baseline = new Map();
const plainKeys = new Map();
const isPlain = (value) =>
  value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
for (const key of Reflect.ownKeys(globalThis)) {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, key);
  baseline.set(key, descriptor);
  if ('value' in descriptor && isPlain(descriptor.value)) {
    plainKeys.set(descriptor.value, new Set(Reflect.ownKeys(descriptor.value)));
  }
}
const env = { ...process.env };
const exitCode = process.exitCode;

// What the thread keeps and a round could patch without touching a global: the builtins
// (constructors, their prototypes, the intrinsics behind them) and the exports of the
// packages imported above (their classes' prototypes, their plain objects). Each one's own
// properties, prototype and extensibility are put back after a round like the globals.
const kept = new Map(); // object -> { keys: Map(key -> descriptor), proto, extensible }
const keep = (value) => {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return;
  if (kept.has(value) || plainKeys.has(value) || value === process || value === globalThis) return;
  const keys = new Map();
  for (const key of Reflect.ownKeys(value)) keys.set(key, Object.getOwnPropertyDescriptor(value, key));
  kept.set(value, { keys, proto: Object.getPrototypeOf(value), extensible: Object.isExtensible(value) });
  if (typeof value === 'function' && typeof keys.get('prototype')?.value === 'object') {
    keep(keys.get('prototype').value);
  }
  keep(Object.getPrototypeOf(value));
};
for (const [key, descriptor] of baseline) {
  if ('value' in descriptor && key !== 'console') keep(descriptor.value);
}
const anIterator = (function* () {})();
for (const intrinsic of [
  [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](),
  anIterator, (async function* () {})(), function* () {}, async function () {},
  async function* () {}, /./g[Symbol.matchAll](''),
]) {
  keep(Object.getPrototypeOf(intrinsic));
}
for (const namespace of preloaded) {
  for (const key of Reflect.ownKeys(namespace)) keep(namespace[key]);
}
const same = (a, b) =>
  a !== undefined && b !== undefined && Object.is(a.value, b.value) && a.get === b.get &&
  a.set === b.set && a.writable === b.writable && a.enumerable === b.enumerable &&
  a.configurable === b.configurable;
// Listeners on process before any test: a round's own are taken off after it.
const processListeners = new Map();
for (const event of process.eventNames()) processListeners.set(event, new Set(process.rawListeners(event)));
// Vitest's own, set up once per thread (its console, its globals): kept.
const vitestOwned = (key) => key === 'console' || (typeof key === 'string' && key.startsWith('__vitest'));

/** Put it back; what cannot be (made non-configurable) marks the thread for replacing. */
function restore() {
  const attempt = (change) => {
    try {
      if (change() === false) throw new TypeError('not deleted');
    } catch {
      Atomics.store(workerData.tainted, 0, 1); // the next round gets a new thread
    }
  };
  for (const key of Reflect.ownKeys(globalThis)) {
    if (!baseline.has(key) && !vitestOwned(key)) attempt(() => Reflect.deleteProperty(globalThis, key));
  }
  for (const [key, descriptor] of baseline) {
    if (vitestOwned(key)) continue;
    const now = Object.getOwnPropertyDescriptor(globalThis, key);
    if (now === undefined || now.value !== descriptor.value || now.get !== descriptor.get) {
      attempt(() => Object.defineProperty(globalThis, key, descriptor));
    }
  }
  for (const [object, keys] of plainKeys) {
    for (const key of Reflect.ownKeys(object)) {
      if (!keys.has(key)) attempt(() => Reflect.deleteProperty(object, key));
    }
  }
  for (const [object, { keys, proto, extensible }] of kept) {
    if (Object.isExtensible(object) !== extensible) attempt(() => { throw new TypeError('frozen'); });
    if (Object.getPrototypeOf(object) !== proto) attempt(() => Reflect.setPrototypeOf(object, proto));
    for (const key of Reflect.ownKeys(object)) {
      if (!keys.has(key)) attempt(() => Reflect.deleteProperty(object, key));
    }
    for (const [key, descriptor] of keys) {
      if (!same(Object.getOwnPropertyDescriptor(object, key), descriptor)) {
        attempt(() => Reflect.defineProperty(object, key, descriptor));
      }
    }
  }
  for (const event of process.eventNames()) {
    const before = processListeners.get(event) ?? new Set();
    for (const listener of process.rawListeners(event)) {
      if (!before.has(listener)) process.removeListener(event, listener);
    }
  }
  process.exitCode = exitCode;
  clearTimers();
  attempt(() => {
    for (const key of Object.keys(process.env)) {
      if (!(key in env)) delete process.env[key];
    }
    Object.assign(process.env, env);
  });
}

let runner; // Vitest's module runner in this thread
let rounds = 0;
/**
 * Every module the runner evaluated (the plugin's sources and tests) is fetched and
 * evaluated again: the main thread's transform cache answers for unchanged files, a
 * changed file is transformed again (it was invalidated there).
 */
function forgetModules() {
  if (runner === undefined) return;
  runner.mocker?.reset();
  const modules = runner.evaluatedModules;
  modules.idToModuleMap.forEach((node, id) => {
    if (/\\/vitest\\/dist\\/|vitest-virtual-\\w+\\/dist|@vitest\\/dist/.test(id)) return;
    modules.invalidateModule(node);
    node.importers.clear();
  });
}

let dispatcher;
const others = new Set();
init({
  post: (response) => parentPort.postMessage(response),
  on: (callback) => {
    if (dispatcher === undefined) dispatcher = callback;
    else others.add(callback);
    parentPort.on('message', callback);
  },
  off: (callback) => {
    others.delete(callback);
    parentPort.off('message', callback);
  },
  // After a run's stop: the thread stays, the run's channel goes, the round's state goes.
  teardown: () => {
    for (const callback of others) parentPort.off('message', callback);
    others.clear();
    restore();
  },
  onModuleRunner: (moduleRunner) => {
    runner = moduleRunner;
  },
  runTests: async (state, traces) => {
    if (rounds++ > 0) forgetModules();
    return runBaseTests('run', state, traces);
  },
  collectTests: (state, traces) => runBaseTests('collect', state, traces),
  setup: setupEnvironment,
});
`;

let keptThread; // the thread, while it lives
let tainted; // set by the thread when a round left state it cannot take back
// Vitest does not wait for a run's stop (its teardown, then our restore in the thread);
// the round does, so that the next run's start never meets the last run's teardown.
let runStopped = Promise.resolve();
let markStopped = () => undefined;

class KeptThreadWorker {
  name = 'kept-thread';
  listeners = [];
  constructor(options) {
    this.options = options;
  }
  on(event, callback) {
    this.listeners.push([event, callback]);
    keptThread.on(event, callback);
  }
  off(event, callback) {
    keptThread?.off(event, callback);
  }
  send(message) {
    keptThread.postMessage(message);
  }
  async start() {
    runStopped = new Promise((resolve) => {
      markStopped = resolve;
    });
    if (keptThread === undefined) {
      tainted = new Int32Array(new SharedArrayBuffer(4));
      const thread = new Worker(new URL(`data:text/javascript,${encodeURIComponent(threadSource)}`), {
        env: this.options.env,
        execArgv: this.options.execArgv,
        stdout: true,
        stderr: true,
        workerData: { tainted },
      });
      thread.stdout.pipe(testOutput, { end: false });
      thread.stderr.pipe(testOutput, { end: false });
      thread.on('exit', () => {
        if (keptThread === thread) keptThread = undefined;
      });
      keptThread = thread;
    }
  }
  async stop() {
    // This run's listeners go; the thread serves the next run.
    for (const [event, callback] of this.listeners.splice(0)) keptThread?.off(event, callback);
    markStopped(); // sent after the thread's "stopped": its teardown has run
  }
  deserialize(data) {
    return data;
  }
}
const keptThreadPool = {
  name: 'kept-thread',
  createPoolWorker: (options) => new KeptThreadWorker(options),
};

async function testPass() {
  const changed = changedFiles();
  if (vitest === undefined) {
    vitest = await createVitest(
      'test',
      {
        config: vitestConfig,
        configLoader: 'runner',
        watch: false,
        isolate: false,
        pool: keptThreadPool,
        maxWorkers: 1, // every test file in the one kept thread
        reporters: ['default', 'json'],
        outputFile: { json: reportFile },
      },
      {},
      { stdout: testOutput, stderr: testOutput },
    );
    await vitest.standalone(); // reporters, no run yet
  } else {
    for (const file of changed) vitest.invalidateFile(file);
    vitest.clearSpecificationsCache();
  }
  const specs = await vitest.globTestSpecifications();
  const run = await vitest.runTestSpecifications(specs, true);
  let timer;
  const stopped = await Promise.race([
    runStopped.then(() => true),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), 30_000);
    }),
  ]);
  clearTimeout(timer);
  if (keptThread !== undefined && (!stopped || Atomics.load(tainted, 0) === 1)) {
    const thread = keptThread;
    keptThread = undefined;
    await thread.terminate();
  }
  // run.testModules is every module the Vitest instance knows: a test file deleted (or
  // renamed) since an earlier round is still there, with that round's result. Only this
  // round's files count, and each of them must have run.
  const ids = new Set(specs.map((spec) => spec.moduleId));
  const modules = run.testModules.filter((m) => ids.has(m.moduleId));
  const failed =
    modules.length !== ids.size ||
    modules.some((m) => !m.ok()) ||
    run.unhandledErrors.length > 0 ||
    specs.length === 0;
  return { exitCode: failed ? 1 : 0, output: testOutput.take() };
}

// ----------------------------------------------------------------------------- rounds

async function round() {
  const started = performance.now();
  const out = [];
  mkdirSync('dist', { recursive: true });
  const built = typePass(out) && (await bundle(out));
  if (built) out.push('check: types OK, dist/index.js and dist/index.d.ts written\n');
  const buildS = (performance.now() - started) / 1000;
  const answer = { build: { ok: built, output: out.join(''), wall_s: buildS } };
  if (built) {
    const testStarted = performance.now();
    const test = await testPass();
    answer.test = { ...test, wall_s: (performance.now() - testStarted) / 1000 };
  }
  return answer;
}

let busy = Promise.resolve();
const server = net.createServer((socket) => {
  let pending = '';
  socket.on('data', (data) => {
    pending += data.toString('utf8');
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      const request = JSON.parse(line);
      busy = busy.then(async () => {
        let answer;
        try {
          answer = { id: request.id, ...(await round()) };
        } catch (error) {
          answer = { id: request.id, error: String(error?.stack ?? error) };
        }
        socket.write(JSON.stringify(answer) + '\n');
      });
    }
  });
  socket.on('error', () => undefined);
});
server.listen(socketPath, () => {
  console.log(`warm checker listening on ${path.basename(socketPath)}`);
});
