// A one-shot sendSSE given the same options object on every request shares one plan, and still
// sees every change to that object (the plan is made again, and checked again).
import { describe, expect, it, vi } from 'vitest';
import { planNodeFor } from '../../src/servers/internal/options.js';
import { PlanCache } from '../../src/servers/internal/plan-cache.js';
import { setWriteCombining } from '../../src/servers/internal/pump.js';

const cacheOf = () => {
  const make = vi.fn((options: Record<string, unknown>) => ({ made: { ...options } }));
  return { make, cache: new PlanCache(make) };
};

describe('PlanCache', () => {
  it('makes the plan once for one object holding the same values', () => {
    const { make, cache } = cacheOf();
    const options = { timeout: { idleMs: 100 }, headers: { 'X-A': 'a' }, list: [1, 2], hook: () => undefined };
    const first = cache.planFor(options, true);
    expect(cache.planFor(options, true)).toBe(first);
    expect(cache.planFor(options, true)).toBe(first);
    expect(make).toHaveBeenCalledTimes(1);
  });

  it.each<[string, (options: Record<string, any>) => void]>([
    ['a value at the top', (options) => (options['writeTimeoutMs'] = 5)],
    ['a nested value', (options) => (options['timeout'].idleMs = 200)],
    ['a key added to a nested object', (options) => (options['timeout'].firstTokenMs = 1)],
    ['a key removed', (options) => delete options['heartbeatMs']],
    ['a key added at the top', (options) => (options['retryMs'] = 10)],
    ['a nested object replaced by an equal one', (options) => (options['timeout'] = { idleMs: 100 })],
    ['an array entry', (options) => (options['list'][1] = 3)],
    ['a function replaced', (options) => (options['hook'] = () => undefined)],
  ])('makes it again after a change: %s', (_case, change) => {
    const { make, cache } = cacheOf();
    const options: Record<string, unknown> = { timeout: { idleMs: 100 }, heartbeatMs: false, list: [1, 2], hook: () => undefined };
    const first = cache.planFor(options, true);
    change(options);
    const second = cache.planFor(options, true);
    expect(make).toHaveBeenCalledTimes(2);
    expect(second).not.toBe(first);
    // The new plan is kept in turn.
    expect(cache.planFor(options, true)).toBe(second);
  });

  it('makes it again when the state outside the options changed', () => {
    const { make, cache } = cacheOf();
    const options = {};
    cache.planFor(options, true);
    cache.planFor(options, false);
    expect(make).toHaveBeenCalledTimes(2);
  });

  it('keeps no plan for options that fail, so every call throws', () => {
    const make = vi.fn((): never => {
      throw new TypeError('bad');
    });
    const cache = new PlanCache(make);
    const options = { timeout: 5 };
    expect(() => cache.planFor(options, true)).toThrow('bad');
    expect(() => cache.planFor(options, true)).toThrow('bad');
    expect(make).toHaveBeenCalledTimes(2);
  });

  it('plans options too large to compare on every call', () => {
    const { make, cache } = cacheOf();
    const options = { monitor: { price: Object.fromEntries(Array.from({ length: 600 }, (_, index) => [`model-${index}`, index])) } };
    cache.planFor(options, true);
    cache.planFor(options, true);
    expect(make).toHaveBeenCalledTimes(2);
  });
});

describe('planNodeFor (the one-shot Node sendSSE functions)', () => {
  it('shares one plan among the calls with one options object, and checks a changed one again', () => {
    const options: Record<string, unknown> = { timeout: { idleMs: 1000 }, headers: { 'X-Id': '1' } };
    const plan = planNodeFor(options);
    expect(planNodeFor(options)).toBe(plan);
    options['headers'] = { 'X-Id': '2' };
    const changed = planNodeFor(options);
    expect(changed).not.toBe(plan);
    expect(changed.http1Headers['X-Id']).toBe('2');
    options['writeTimeoutMs'] = 0;
    expect(() => planNodeFor(options)).toThrow(TypeError);
  });

  it('follows write combining, which the plan reads besides the options', () => {
    const options = {};
    expect(planNodeFor(options).combine).toBe(true);
    setWriteCombining(false);
    try {
      expect(planNodeFor(options).combine).toBe(false);
    } finally {
      setWriteCombining(true);
    }
    expect(planNodeFor(options).combine).toBe(true);
  });
});
