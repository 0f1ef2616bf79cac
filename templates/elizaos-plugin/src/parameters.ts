import type { HandlerOptions, Memory } from '@elizaos/core';

export type ParameterType = 'string' | 'number' | 'boolean';
export type ParameterValue = string | number | boolean;

/** A parameter an action declares. */
export interface ParameterSpec {
  readonly name: string;
  readonly type: ParameterType;
  readonly required: boolean;
  readonly description: string;
}

export type ParameterResult =
  | { readonly ok: true; readonly values: Record<string, ParameterValue> }
  | {
      readonly ok: false;
      readonly missing: string[];
      readonly invalid: string[];
      readonly problems: string[];
    };

type Source = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Source {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where parameter values are looked for, first match wins:
 * `options.parameters`, then `options` itself, then the message content.
 */
function sources(message: Memory, options?: HandlerOptions): Source[] {
  const found: Source[] = [];
  if (options) {
    const nested = options['parameters'];
    if (isRecord(nested)) {
      found.push(nested);
    }
    found.push(options);
  }
  if (isRecord(message.content)) {
    found.push(message.content);
  }
  return found;
}

function isBlank(raw: unknown): boolean {
  return raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '');
}

/** The value as the declared type, or undefined if it is not one. */
export function coerceParameter(type: ParameterType, raw: unknown): ParameterValue | undefined {
  switch (type) {
    case 'string':
      return typeof raw === 'string' ? raw : undefined;
    case 'number': {
      if (typeof raw === 'number') {
        return Number.isFinite(raw) ? raw : undefined;
      }
      if (typeof raw === 'string' && raw.trim() !== '') {
        const parsed = Number(raw);
        return Number.isFinite(parsed) ? parsed : undefined;
      }
      return undefined;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') {
        return raw;
      }
      if (raw === 'true' || raw === 'false') {
        return raw === 'true';
      }
      return undefined;
    }
  }
}

/** Read and type-check declared parameters; name every missing or invalid one. */
export function readParameters(
  specs: readonly ParameterSpec[],
  message: Memory,
  options?: HandlerOptions,
): ParameterResult {
  const found = sources(message, options);
  const values: Record<string, ParameterValue> = {};
  const missing: string[] = [];
  const invalid: string[] = [];
  const problems: string[] = [];
  for (const spec of specs) {
    const source = found.find((candidate) => !isBlank(candidate[spec.name]));
    if (source === undefined) {
      if (spec.required) {
        missing.push(spec.name);
        problems.push('missing required parameter ' + spec.name + ' (' + spec.type + ')');
      }
      continue;
    }
    const value = coerceParameter(spec.type, source[spec.name]);
    if (value === undefined) {
      invalid.push(spec.name);
      problems.push('parameter ' + spec.name + ' must be a ' + spec.type);
      continue;
    }
    values[spec.name] = value;
  }
  if (problems.length > 0) {
    return { ok: false, missing, invalid, problems };
  }
  return { ok: true, values };
}

/** `name: value` pairs for a message, values as JSON. */
export function describeParameters(values: Readonly<Record<string, ParameterValue>>): string {
  return Object.entries(values)
    .map(([name, value]) => name + ': ' + JSON.stringify(value))
    .join(', ');
}
