import type {
  ActionResult,
  Content,
  IAgentRuntime,
  Memory,
  Service,
  State,
  UUID,
} from '@elizaos/core';
import { PLUGIN_SETTINGS, type PluginSetting } from '../src/config';
import plugin from '../src/index';

export const AGENT_ID: UUID = '00000000-0000-4000-8000-000000000001';
export const ENTITY_ID: UUID = '00000000-0000-4000-8000-000000000002';
export const ROOM_ID: UUID = '00000000-0000-4000-8000-000000000003';

export type Settings = Record<string, string | undefined>;

export type ModelHandler = (runtime: IAgentRuntime, params: Record<string, unknown>) => Promise<unknown>;

/**
 * A runtime with just what the plugin uses: agentId, character, getSetting, getService,
 * getModel/useModel (pass `models` to register one) and an in-memory cache.
 * Pass `services` to make started services visible through getService.
 */
export function createMockRuntime(
  settings: Settings = {},
  services: Map<string, Service> = new Map(),
  models: Map<string, ModelHandler> = new Map(),
): IAgentRuntime {
  const cache = new Map<string, unknown>();
  const runtime: Record<string, unknown> = {
    agentId: AGENT_ID,
    character: { name: 'Test Agent', bio: ['An agent used in tests.'] },
    getSetting: (key: string): string | null => settings[key] ?? null,
    getService: <T extends Service>(serviceType: string): T | null =>
      (services.get(serviceType) as T | undefined) ?? null,
    getModel: (modelType: string): ModelHandler | undefined => models.get(modelType),
    useModel: async (modelType: string, params: Record<string, unknown>): Promise<unknown> => {
      const handler = models.get(modelType);
      if (!handler) {
        throw new Error('No handler found for delegate type: ' + modelType);
      }
      return handler(runtime as unknown as IAgentRuntime, params);
    },
    getCache: async <T>(key: string): Promise<T | undefined> => cache.get(key) as T | undefined,
    setCache: async <T>(key: string, value: T): Promise<boolean> => {
      cache.set(key, value);
      return true;
    },
  };
  return runtime as unknown as IAgentRuntime;
}

/** A mock runtime on which every service of the plugin has been started. */
export async function runtimeWithServices(settings: Settings = {}): Promise<IAgentRuntime> {
  const services = new Map<string, Service>();
  const runtime = createMockRuntime(settings, services);
  for (const serviceClass of plugin.services ?? []) {
    services.set(serviceClass.serviceType, await serviceClass.start(runtime));
  }
  return runtime;
}

/** A test value of the setting's type: secrets are strings no output should contain. */
function testValue(setting: PluginSetting): string {
  if (setting.type === 'number') {
    return '1';
  }
  if (setting.type === 'boolean') {
    return 'true';
  }
  return 'test-' + setting.name.toLowerCase();
}

/** A value for every setting the plugin declares. */
export function allSettings(): Settings {
  return Object.fromEntries(PLUGIN_SETTINGS.map((setting) => [setting.name, testValue(setting)]));
}

/** A value for every required setting only. */
export function requiredSettings(): Settings {
  return Object.fromEntries(
    PLUGIN_SETTINGS.filter((setting) => setting.required).map((setting) => [
      setting.name,
      testValue(setting),
    ]),
  );
}

let messageCount = 0;

/** A message from a user to the agent with the given content. */
export function createMockMemory(content: Content = { text: 'hello' }): Memory {
  messageCount += 1;
  const suffix = String(messageCount).padStart(12, '0');
  return {
    id: `00000000-0000-4000-9000-${suffix}`,
    entityId: ENTITY_ID,
    agentId: AGENT_ID,
    roomId: ROOM_ID,
    createdAt: Date.now(),
    content,
  };
}

export function createMockState(): State {
  return { values: {}, data: {}, text: '' };
}

/** The handler's result, failing the test if it returned nothing. */
export function resultOf(value: ActionResult | void | undefined): ActionResult {
  if (value === undefined || value === null) {
    throw new Error('handler returned no ActionResult');
  }
  return value;
}
