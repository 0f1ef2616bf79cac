import { describe, expect, it } from 'vitest';
import {
  coerceParameter,
  describeParameters,
  readParameters,
  type ParameterSpec,
} from '../src/parameters';
import { createMockMemory } from './test-utils';

const SPECS: readonly ParameterSpec[] = [
  { name: 'city', type: 'string', required: true, description: 'a city' },
  { name: 'days', type: 'number', required: false, description: 'how many days' },
  { name: 'metric', type: 'boolean', required: false, description: 'metric units' },
];

describe('action parameters', () => {
  it('reads options.parameters before options and the message content', () => {
    const message = createMockMemory({ text: 'hi', city: 'from content' });
    const result = readParameters(SPECS, message, {
      parameters: { city: 'from parameters' },
      city: 'from options',
    });
    expect(result).toEqual({ ok: true, values: { city: 'from parameters' } });
  });

  it('falls back to the message content', () => {
    const result = readParameters(SPECS, createMockMemory({ text: 'hi', city: 'Oslo', days: 3 }));
    expect(result).toEqual({ ok: true, values: { city: 'Oslo', days: 3 } });
  });

  it('names missing required parameters', () => {
    const result = readParameters(SPECS, createMockMemory({ text: 'hi', city: '  ' }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.missing).toEqual(['city']);
      expect(result.problems.join(' ')).toContain('city');
    }
  });

  it('names parameters of the wrong type', () => {
    const result = readParameters(SPECS, createMockMemory({ city: 'Oslo', days: 'many' }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.invalid).toEqual(['days']);
    }
  });

  it('accepts numbers and booleans written as text', () => {
    expect(coerceParameter('number', '2.5')).toBe(2.5);
    expect(coerceParameter('number', Number.NaN)).toBeUndefined();
    expect(coerceParameter('boolean', 'false')).toBe(false);
    expect(coerceParameter('boolean', 'yes')).toBeUndefined();
    expect(coerceParameter('string', 3)).toBeUndefined();
  });

  it('describes values as JSON', () => {
    expect(describeParameters({ city: 'Oslo', days: 3 })).toBe('city: "Oslo", days: 3');
  });
});
