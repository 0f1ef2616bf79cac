import { ModelType } from '@elizaos/core';
import { describe, expect, it } from 'vitest';
import {
  askForParameters,
  checkParameters,
  coerceParameter,
  parameterLabel,
  parametersFromText,
  readParameters,
  type ParameterSpec,
} from '../src/parameters';
import { mentionsAny } from '../src/relevance';
import { createMockMemory, createMockRuntime, type ModelHandler } from './test-utils';

const TIP: readonly ParameterSpec[] = [
  { name: 'amount', type: 'number', required: true, description: 'How much to tip.' },
  { name: 'recipient', type: 'string', required: true, description: 'Who gets the tip.' },
];
const FORECAST: readonly ParameterSpec[] = [
  { name: 'city', type: 'string', required: true, description: 'The city.' },
  { name: 'days', type: 'number', required: false, description: 'How many days.' },
];

describe('parameters from the message text', () => {
  it('reads numbers in order and the words after the last cue word', () => {
    expect(parametersFromText(TIP, 'send a tip of 5 to alice')).toEqual({
      amount: 5,
      recipient: 'alice',
    });
    expect(parametersFromText(FORECAST, "what's the forecast for New York?")).toEqual({
      city: 'New York',
    });
  });

  it('reads `label value`, `label: value` and `label is value`', () => {
    expect(parametersFromText(FORECAST, 'forecast: city Oslo, days 3')).toEqual({
      city: 'Oslo',
      days: 3,
    });
    expect(parametersFromText(TIP, 'recipient: bob, amount is 2.5')).toEqual({
      amount: 2.5,
      recipient: 'bob',
    });
    expect(parametersFromText(FORECAST, 'weather with city "San Francisco"')).toEqual({
      city: 'San Francisco',
    });
  });

  it('reads a parameter named like a word of the request before it', () => {
    const BAN: readonly ParameterSpec[] = [
      { name: 'user', type: 'string', required: true, description: 'The user.' },
      { name: 'reason', type: 'string', required: true, description: 'The reason.' },
    ];
    expect(parametersFromText(BAN, 'Ban user: user alice, reason demo')).toEqual({
      user: 'alice',
      reason: 'demo',
    });
  });

  it('reads a text value up to the next parameter, a number or the end', () => {
    const REMINDER: readonly ParameterSpec[] = [
      { name: 'message', type: 'string', required: true, description: 'The message.' },
      { name: 'minutes', type: 'number', required: true, description: 'The minutes.' },
    ];
    expect(
      parametersFromText(REMINDER, 'set a reminder with the message call mom in 10 minutes'),
    ).toEqual({ message: 'call mom', minutes: 10 });
    expect(parametersFromText(REMINDER, 'remind me: message buy some milk minutes 15')).toEqual({
      message: 'buy some milk',
      minutes: 15,
    });
    expect(parametersFromText(FORECAST, 'forecast: city New York, days 3')).toEqual({
      city: 'New York',
      days: 3,
    });
  });

  it('reads nothing from a text that states nothing', () => {
    expect(parametersFromText(TIP, 'send a tip')).toEqual({});
  });

  it('labels camelCase names the way people write them', () => {
    expect(parameterLabel('recipientAddress')).toBe('recipient address');
  });
});

describe('readParameters', () => {
  it('prefers options.parameters, then the model, then the text', async () => {
    const model: ModelHandler = async () => ({ amount: 9, recipient: 'carol' });
    const runtime = createMockRuntime({}, new Map(), new Map([[ModelType.OBJECT_SMALL, model]]));
    const message = createMockMemory({ text: 'send a tip of 5 to alice' });

    const given = await readParameters(runtime, TIP, message, { parameters: { amount: 1 } });
    expect(given).toEqual({ ok: true, values: { amount: 1, recipient: 'carol' } });

    const fromModel = await readParameters(runtime, TIP, message);
    expect(fromModel).toEqual({ ok: true, values: { amount: 9, recipient: 'carol' } });
  });

  it('asks the OBJECT_SMALL model with a prompt that names every parameter', async () => {
    const prompts: string[] = [];
    const model: ModelHandler = async (_runtime, params) => {
      prompts.push(String(params['prompt']));
      return {};
    };
    const runtime = createMockRuntime({}, new Map(), new Map([[ModelType.OBJECT_SMALL, model]]));

    const result = await readParameters(runtime, TIP, createMockMemory({ text: 'a tip of 3 to dan' }));

    expect(result).toEqual({ ok: true, values: { amount: 3, recipient: 'dan' } });
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain('- amount (number, required)');
    expect(prompts[0]).toContain('- recipient (string, required)');
  });

  it('falls back to the text when the model fails', async () => {
    const model: ModelHandler = async () => {
      throw new Error('model down');
    };
    const runtime = createMockRuntime({}, new Map(), new Map([[ModelType.OBJECT_SMALL, model]]));
    const result = await readParameters(runtime, TIP, createMockMemory({ text: 'tip 4 to erin' }));
    expect(result).toEqual({ ok: true, values: { amount: 4, recipient: 'erin' } });
  });

  it('names missing and invalid parameters and asks for them', async () => {
    const result = checkParameters(TIP, [{ amount: 'lots' }]);
    expect(result.ok).toBe(false);
    if (result.ok) {
      return;
    }
    expect(result.missing).toEqual(['recipient']);
    expect(result.invalid).toEqual(['amount']);
    const question = askForParameters('SEND_TIP', TIP, result);
    expect(question).toMatch(/^What amount and recipient should I use\?/);
    expect(question).toContain('amount must be a number');
  });

  it('coerces the declared types', () => {
    expect(coerceParameter('number', '42')).toBe(42);
    expect(coerceParameter('number', 'x')).toBeUndefined();
    expect(coerceParameter('boolean', 'yes')).toBe(true);
    expect(coerceParameter('string', '  ')).toBeUndefined();
  });
});

describe('relevance', () => {
  it('matches keywords as word prefixes only', () => {
    expect(mentionsAny('I was tipping Bob', ['tip'])).toBe(true);
    expect(mentionsAny('multiple choices', ['tip'])).toBe(false);
    expect(mentionsAny(undefined, ['tip'])).toBe(false);
  });
});
