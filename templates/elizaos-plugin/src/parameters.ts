import { ModelType, type HandlerOptions, type IAgentRuntime, type Memory } from '@elizaos/core';

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
      readonly values: Record<string, ParameterValue>;
      readonly missing: string[];
      readonly invalid: string[];
      readonly problems: string[];
    };

type Source = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Source {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBlank(raw: unknown): boolean {
  return raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '');
}

/** `recipientAddress` -> `recipient address`: how a person writes a parameter's name. */
export function parameterLabel(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .toLowerCase();
}

/** The value as the declared type, or undefined if it is not one. */
export function coerceParameter(type: ParameterType, raw: unknown): ParameterValue | undefined {
  switch (type) {
    case 'string':
      return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : undefined;
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
      const word = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
      if (['true', 'yes', 'on'].includes(word)) {
        return true;
      }
      if (['false', 'no', 'off'].includes(word)) {
        return false;
      }
      return undefined;
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const VALUE_PATTERN: Record<ParameterType, string> = {
  number: '(-?\\d+(?:\\.\\d+)?)',
  boolean: '(true|false|yes|no|on|off)',
  // Unquoted, the words up to a punctuation mark; `phraseValue` cuts them at the next
  // parameter, number or end of the phrase.
  string: '(?:"([^"]+)"|\'([^\']+)\'|([^\\s,;.!?][^,;.!?]*))',
};
// Words after which the rest of a sentence names the one thing asked about ("for Paris").
// The greedy `^.*` makes it the last cue word of the text.
const CUE_WORDS = /^.*\b(?:for|in|to|at|about|on|from|with|called|named|of)\s+([^,;!?]+?)\s*[.!?]?\s*$/i;
const NUMBER = /-?\d+(?:\.\d+)?/g;

/**
 * Parameters written in the message text, for an agent without an object model:
 * `label: value`, `label = value`, `label is value` or `label value` for any parameter;
 * the numbers of the text, in order, for number parameters not named; and, when exactly
 * one string parameter is left, a quoted text or the words after the last cue word
 * ("weather for New York" -> "New York").
 */
export function parametersFromText(
  specs: readonly ParameterSpec[],
  text: string,
): Record<string, ParameterValue> {
  const values: Record<string, ParameterValue> = {};
  const labels = specs.map((spec) => parameterLabel(spec.name).split(' '));
  let rest = text;
  for (const spec of specs) {
    const label = escapeRegExp(parameterLabel(spec.name)).replace(/ /g, '[\\s_-]*');
    // The value is read in a lookahead, so that a label written as another's value does
    // not hide the real mention: in "Ban user: user alice" both "user: user alice" and
    // "user alice" are candidates.
    const pattern = new RegExp(
      '\\b' + label + '\\s*(?:[:=]|\\bis\\b|\\bof\\b|\\bas\\b)?\\s*(?=' +
        VALUE_PATTERN[spec.type] + ')',
      'gi',
    );
    const found: { start: number; end: number; value: ParameterValue }[] = [];
    for (const m of rest.matchAll(pattern)) {
      const groups = m.slice(1);
      const at = groups.findIndex((group) => group !== undefined);
      if (at < 0) {
        continue;
      }
      const written = groups[at] as string;
      const phrase = spec.type === 'string' && at === 2 ? phraseValue(written, labels) : undefined;
      const raw = spec.type === 'string' && at === 2 ? phrase?.value : written;
      const value = coerceParameter(spec.type, raw);
      if (value !== undefined) {
        // A quoted value also takes its two quotes.
        const length = phrase?.length ?? written.length + (spec.type === 'string' ? 2 : 0);
        found.push({ start: m.index, end: m.index + m[0].length + length, value });
      }
    }
    // The last mention wins: "weather for city: city Paris" names the city once, at the end.
    const last = found.at(-1);
    if (last) {
      values[spec.name] = last.value;
      rest = rest.slice(0, last.start) + ' ' + rest.slice(last.end);
    }
  }
  const numbers = rest.match(NUMBER) ?? [];
  for (const spec of specs) {
    if (spec.type === 'number' && values[spec.name] === undefined && numbers.length > 0) {
      values[spec.name] = Number(numbers.shift());
    }
  }
  const strings = specs.filter((spec) => spec.type === 'string' && values[spec.name] === undefined);
  const only = strings.length === 1 ? strings[0] : undefined;
  if (only !== undefined) {
    const quoted = /"([^"]+)"|'([^']+)'/.exec(rest);
    const cue = CUE_WORDS.exec(rest.replace(NUMBER, ' ').replace(/\s+/g, ' '));
    const raw = quoted ? (quoted[1] ?? quoted[2]) : cue?.[1]?.replace(/^(?:the|a|an)\s+/i, '');
    const value = coerceParameter('string', raw);
    if (value !== undefined) {
      values[only.name] = value;
    }
  }
  return values;
}

// Words a phrase does not end with: "call mom in 10 minutes" -> "call mom".
const TRAILING = /^(?:for|in|to|at|about|on|from|with|of|and|or|by|after|the|a|an)$/i;

/**
 * The words of an unquoted string value, up to the next parameter's label, a number or the
 * end, without a trailing cue word, and how much of `written` they take; undefined when no
 * word is left ("user: user alice" starts with a label, so the value is the later "alice").
 */
function phraseValue(
  written: string,
  labels: readonly (readonly string[])[],
): { value: string; length: number } | undefined {
  const words = [...written.matchAll(/\S+/g)];
  let kept = 0;
  while (kept < words.length) {
    const word = (words[kept] as RegExpMatchArray)[0];
    const startsLabel = labels.some((label) =>
      label.every((part, j) => (words[kept + j]?.[0] ?? '').toLowerCase() === part),
    );
    if (startsLabel || /^-?\d+(?:\.\d+)?$/.test(word)) {
      break;
    }
    kept += 1;
  }
  while (kept > 0 && TRAILING.test((words[kept - 1] as RegExpMatchArray)[0])) {
    kept -= 1;
  }
  if (kept === 0) {
    return undefined;
  }
  const lastWord = words[kept - 1] as RegExpMatchArray;
  const length = (lastWord.index ?? 0) + lastWord[0].length;
  return { value: written.slice(0, length), length };
}

function extractionPrompt(specs: readonly ParameterSpec[], text: string): string {
  const lines = specs.map(
    (spec) =>
      '- ' + spec.name + ' (' + spec.type + (spec.required ? ', required' : ', optional') + '): ' +
      spec.description,
  );
  return [
    'Extract these parameters from the user message. Answer with one JSON object;',
    'leave out any parameter the message does not state. Do not guess.',
    ...lines,
    '',
    'Message: ' + JSON.stringify(text),
  ].join('\n');
}

/** Parameters from the agent's OBJECT_SMALL model, or nothing when none is registered. */
export async function parametersFromModel(
  runtime: IAgentRuntime,
  specs: readonly ParameterSpec[],
  text: string,
): Promise<Source> {
  if (specs.length === 0 || text.trim() === '' || !runtime.getModel(ModelType.OBJECT_SMALL)) {
    return {};
  }
  const properties = Object.fromEntries(
    specs.map((spec) => [spec.name, { type: spec.type, description: spec.description }]),
  );
  try {
    const answer = await runtime.useModel(ModelType.OBJECT_SMALL, {
      prompt: extractionPrompt(specs, text),
      schema: { type: 'object', properties },
    });
    return isRecord(answer) ? answer : {};
  } catch (error) {
    runtime.logger?.warn?.(
      { error: error instanceof Error ? error.message : String(error) },
      'parameter extraction with OBJECT_SMALL failed; reading the message text instead',
    );
    return {};
  }
}

/** Check values against the declared parameters; name every missing or invalid one. */
export function checkParameters(
  specs: readonly ParameterSpec[],
  sources: readonly Source[],
): ParameterResult {
  const values: Record<string, ParameterValue> = {};
  const missing: string[] = [];
  const invalid: string[] = [];
  const problems: string[] = [];
  for (const spec of specs) {
    const source = sources.find((candidate) => !isBlank(candidate[spec.name]));
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
    return { ok: false, values, missing, invalid, problems };
  }
  return { ok: true, values };
}

/**
 * An action's parameters the way a 1.7 agent can provide them. The runtime calls a
 * handler with `options = {actionContext, actionPlan?}` and a message that holds only
 * text, so the values come from, first match wins: `options.parameters` (a caller that
 * passes them itself), the OBJECT_SMALL model when one is registered, then the message
 * text.
 */
export async function readParameters(
  runtime: IAgentRuntime,
  specs: readonly ParameterSpec[],
  message: Memory,
  options?: HandlerOptions,
): Promise<ParameterResult> {
  const text = typeof message.content.text === 'string' ? message.content.text : '';
  const sources: Source[] = [];
  const given = options?.['parameters'];
  if (isRecord(given)) {
    sources.push(given);
  }
  sources.push(await parametersFromModel(runtime, specs, text));
  sources.push(parametersFromText(specs, text));
  return checkParameters(specs, sources);
}

/** The question an action asks when parameters are missing or invalid: it names each one. */
export function askForParameters(
  actionName: string,
  specs: readonly ParameterSpec[],
  result: Extract<ParameterResult, { ok: false }>,
): string {
  const wanted = specs.filter(
    (spec) => result.missing.includes(spec.name) || result.invalid.includes(spec.name),
  );
  const details = wanted.map(
    (spec) =>
      spec.name + ' (' + spec.type + (spec.description ? ': ' + spec.description : '') + ')',
  );
  const labels = wanted.map((spec) => parameterLabel(spec.name));
  return (
    'What ' + labels.join(' and ') + ' should I use? ' + actionName + ' needs ' +
    details.join('; ') + (result.invalid.length > 0 ? ' - ' + result.problems.join('; ') : '') + '.'
  );
}

/** `name: value` pairs for a message, values as JSON. */
export function describeParameters(values: Readonly<Record<string, ParameterValue>>): string {
  return Object.entries(values)
    .map(([name, value]) => name + ': ' + JSON.stringify(value))
    .join(', ');
}
