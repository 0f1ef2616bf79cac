// Drives installed plugins through a real @elizaos/core AgentRuntime, as an agent host would.
// Run from a host project that has @elizaos/core, @elizaos/plugin-sql and the plugins installed:
//   node host_check.mjs config.json   (config: {"plugin": {"package", "settings", "requests"},
//                                               "mode": "no-model" | "stub-model"})
// One plugin and mode per process (plugin-sql keeps one PGlite per process, closed by stop()).
// Prints one JSON object with what every component did.
import { readFileSync } from 'node:fs';
import { AgentRuntime, ChannelType, ModelType, createUniqueUuid, loadAndPreparePlugin } from '@elizaos/core';
import sqlPlugin from '@elizaos/plugin-sql';

const TIMEOUT_MS = 60_000;
const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function excerpt(value, size = 160) {
  const text = String(value ?? '').replace(/\s+/g, ' ').trim();
  return text.length > size ? text.slice(0, size) + '…' : text;
}

function errorText(error) {
  return excerpt(error instanceof Error ? `${error.name}: ${error.message}` : String(error), 240);
}

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Wraps a component function so a throw inside it is recorded (and still thrown to the runtime). */
function watch(component, key, thrown) {
  const original = component[key];
  if (typeof original !== 'function') return;
  component[key] = async function (...args) {
    try {
      return await original.apply(this, args);
    } catch (error) {
      thrown.push(errorText(error));
      throw error;
    }
  };
}

async function userMessage(runtime, text) {
  const entityId = createUniqueUuid(runtime, 'host-check:user');
  const roomId = createUniqueUuid(runtime, 'host-check:room');
  const worldId = createUniqueUuid(runtime, 'host-check:world');
  await runtime.ensureConnection({
    entityId, roomId, worldId, userName: 'maintainer', name: 'Maintainer', source: 'host-check',
    type: ChannelType.DM,
  });
  return {
    id: crypto.randomUUID(), entityId, agentId: runtime.agentId, roomId,
    content: { text, source: 'host-check' }, createdAt: Date.now(),
  };
}

/** A stand-in OBJECT_SMALL model: answers each "- name (type" line of the prompt with a value. */
function stubModel(calls) {
  return async (_runtime, params) => {
    const prompt = String(params?.prompt ?? '');
    const values = {};
    for (const [, name, type] of prompt.matchAll(/^- (\w+) \((string|number|boolean)/gm)) {
      values[name] = type === 'number' ? 7 : type === 'boolean' ? false : 'from-model';
    }
    calls.push(Object.keys(values));
    return values;
  };
}

async function runPlugin(entry, mode) {
  const result = { package: entry.package, mode, loaded: false, components: [], errors: [] };
  let plugin;
  try {
    plugin = await loadAndPreparePlugin(entry.package);
  } catch (error) {
    result.errors.push('loadAndPreparePlugin threw: ' + errorText(error));
    return result;
  }
  if (!plugin) {
    result.errors.push('loadAndPreparePlugin returned null');
    return result;
  }
  result.loaded = true;
  result.name = plugin.name;
  const thrown = new Map();
  const track = (kind, name) => {
    const list = [];
    thrown.set(`${kind}:${name}`, list);
    return list;
  };
  for (const a of plugin.actions ?? []) { const t = track('action', a.name); watch(a, 'handler', t); watch(a, 'validate', t); }
  for (const p of plugin.providers ?? []) watch(p, 'get', track('provider', p.name));
  for (const e of plugin.evaluators ?? []) { const t = track('evaluator', e.name); watch(e, 'handler', t); watch(e, 'validate', t); }

  const character = {
    name: 'Host Check Agent',
    bio: ['An agent a maintainer starts to try plugins.'],
    settings: { PGLITE_DATA_DIR: 'memory://', ...entry.settings },
    secrets: { ...entry.settings },
  };
  let runtime;
  try {
    runtime = new AgentRuntime({ character, plugins: [plugin] });
    await runtime.registerPlugin(sqlPlugin);
    await runtime.adapter.init();
    await runtime.runPluginMigrations();
    await withTimeout(runtime.initialize(), 'initialize');
  } catch (error) {
    result.errors.push('runtime start failed: ' + errorText(error));
    result.started = false;
    try { await runtime?.stop(); } catch { /* already reported */ }
    return result;
  }
  result.started = true;
  result.registered = {
    actions: runtime.actions.filter((a) => (plugin.actions ?? []).includes(a)).length,
    providers: runtime.providers.filter((p) => (plugin.providers ?? []).includes(p)).length,
    evaluators: runtime.evaluators.filter((e) => (plugin.evaluators ?? []).includes(e)).length,
  };
  const modelCalls = [];
  if (mode === 'stub-model') {
    runtime.registerModel(ModelType.OBJECT_SMALL, stubModel(modelCalls), 'host-check-stub');
  }

  for (const service of plugin.services ?? []) {
    const row = { kind: 'service', name: service.serviceType ?? service.name, threw: [] };
    try {
      await withTimeout(runtime.getServiceLoadPromise(service.serviceType), 'service load');
      const instance = runtime.getService(service.serviceType);
      row.result = instance ? `started (${instance.constructor.name})` : 'not in the registry';
      row.ok = Boolean(instance);
    } catch (error) {
      row.threw.push(errorText(error));
    }
    result.components.push(row);
  }

  for (const action of plugin.actions ?? []) {
    const texts = [`Please run ${action.name}.`, ...(entry.requests?.[action.name] ?? [])];
    for (const text of texts) {
      const row = { kind: 'action', name: action.name, request: text, threw: [] };
      const before = thrown.get(`action:${action.name}`).length;
      const said = [];
      try {
        const message = await userMessage(runtime, text);
        row.validate = await action.validate(runtime, message);
        const plan = {
          id: crypto.randomUUID(), entityId: runtime.agentId, agentId: runtime.agentId,
          roomId: message.roomId, content: { text: '', actions: [action.name], source: 'host-check' },
          createdAt: Date.now(),
        };
        await withTimeout(
          runtime.processActions(message, [plan], undefined, async (content) => { said.push(content); return []; }),
          'processActions',
        );
      } catch (error) {
        row.threw.push(errorText(error));
      }
      row.threw = [...new Set([...row.threw, ...thrown.get(`action:${action.name}`).slice(before)])];
      row.result = said.length ? said.map((c) => excerpt(c.text)).join(' | ') : 'no callback';
      row.ok = said.length > 0 && row.threw.length === 0;
      result.components.push(row);
    }
  }

  for (const provider of plugin.providers ?? []) {
    const row = { kind: 'provider', name: provider.name, dynamic: provider.dynamic === true, threw: [] };
    try {
      const state = await runtime.composeState(await userMessage(runtime, `What does ${provider.name} say?`), [provider.name]);
      const text = state.data?.providers?.[provider.name]?.text ?? '';
      row.result = text ? excerpt(text) : 'no text';
      row.inState = Boolean(text) && String(state.text).includes(text);
      const plain = await runtime.composeState(await userMessage(runtime, 'hello'));
      row.inEveryPrompt = Boolean(text) && String(plain.text).includes(text);
      row.ok = Boolean(text) && row.inState;
    } catch (error) {
      row.threw.push(errorText(error));
    }
    row.threw = [...new Set([...row.threw, ...thrown.get(`provider:${provider.name}`)])];
    result.components.push(row);
  }

  for (const evaluator of plugin.evaluators ?? []) {
    const row = { kind: 'evaluator', name: evaluator.name, threw: [] };
    const example = evaluator.examples?.[0]?.messages?.[0]?.content?.text;
    const text = entry.requests?.[evaluator.name]?.[0] ?? example ?? `Please run ${evaluator.name}.`;
    row.request = text;
    const said = [];
    try {
      const message = await userMessage(runtime, text);
      const state = await runtime.composeState(message);
      const ran = await withTimeout(
        runtime.evaluate(message, state, true, async (content) => { said.push(content); return []; }),
        'evaluate',
      );
      const didRun = (ran ?? []).some((e) => e.name === evaluator.name);
      row.result = (didRun ? 'ran' : 'not run (validate false)') + (said.length ? ': ' + said.map((c) => excerpt(c.text)).join(' | ') : '');
      row.ok = didRun;
    } catch (error) {
      row.threw.push(errorText(error));
    }
    row.threw = [...new Set([...row.threw, ...thrown.get(`evaluator:${evaluator.name}`)])];
    result.components.push(row);
  }

  if (mode === 'stub-model') result.modelCalls = modelCalls.length;
  try {
    await withTimeout(runtime.stop(), 'stop');
    result.stopped = true;
  } catch (error) {
    result.stopped = false;
    result.errors.push('stop threw: ' + errorText(error));
  }
  try { await runtime.adapter?.close(); } catch (error) { result.errors.push('adapter.close threw: ' + errorText(error)); }
  return result;
}

const result = await runPlugin(config.plugin, config.mode);
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
