import { Counter, Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { monitored, pipe, withAbort, withTimeout, type Price, type TokenChunk } from 'tokenrelay';
import { normalizeModelName, prometheusMonitor } from 'tokenrelay/prometheus';
import { chunk, consume, key, parseExposition, scripted } from './helpers.js';

const PRICES: Record<string, Price> = {
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  'claude-sonnet-4-5': { inputPerMTok: 3, outputPerMTok: 15 },
};
const pricing = (model: string | undefined) => PRICES[normalizeModelName(model)];

const TTFT = 'tokenrelay_time_to_first_token_seconds';
const DURATION = 'tokenrelay_stream_duration_seconds';
const TPS = 'tokenrelay_output_tokens_per_second';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

async function scrape(registry: Registry): Promise<Map<string, number>> {
  return parseExposition(await registry.metrics());
}

/** Asserts the observation landed in the bucket `le` (cumulative: 0 just below it, 1 from it on). */
function expectBucket(samples: Map<string, number>, name: string, labels: Record<string, string>, le: string, below: string | undefined) {
  if (below !== undefined) expect(samples.get(key(`${name}_bucket`, { ...labels, le: below }))).toBe(0);
  expect(samples.get(key(`${name}_bucket`, { ...labels, le }))).toBe(1);
  expect(samples.get(key(`${name}_bucket`, { ...labels, le: '+Inf' }))).toBe(1);
  expect(samples.get(key(`${name}_count`, labels))).toBe(1);
}

describe('prometheusMonitor', () => {
  it('records one stream of each outcome, driven through the real operators, with exact counts and buckets', async () => {
    const registry = new Registry();
    const monitor = prometheusMonitor({ registry, pricing });
    const observe = (source: AsyncIterable<TokenChunk>) => pipe(source, monitored(monitor));

    const completed = scripted([
      [0, chunk('', { model: 'gpt-4o-2024-08-06', provider: 'openai' })],
      [120, chunk('Hel')],
      [500, chunk('lo')],
      [500, chunk('', { finishReason: 'stop', usage: { inputTokens: 1000, outputTokens: 50, cachedInputTokens: 200, reasoningTokens: 10 } })],
    ]);
    // Anthropic-like: the input count came at the start; aborted by the client at 1 s.
    const aborted = scripted(
      [
        [0, chunk('', { model: 'claude-sonnet-4-5-20250929', provider: 'anthropic', usage: { inputTokens: 500, outputTokens: 1 } })],
        [400, chunk('Hello there')],
        [100, chunk(' general')],
        [100, chunk(' Kenobi')],
      ],
      { stall: true },
    );
    const timedOut = scripted([[0, chunk('', { model: 'gpt-4o-mini', provider: 'openai' })], [50, chunk('Hi')]], { stall: true });
    const failed = scripted([
      [0, chunk('', { model: 'gpt-4o-mini', provider: 'openai' })],
      [300, chunk('Sorry')],
      [300, new Error('provider down')],
    ]);
    const cancelled = scripted([
      [0, chunk('', { model: '<script>alert(1)</script>', provider: 'openai' })],
      [3000, chunk('a')],
      [100, chunk('b')],
      [100, chunk('c')],
    ]);

    const client = new AbortController();
    setTimeout(() => client.abort(), 1000);
    const runs = [
      consume(observe(completed.source)),
      consume(pipe(aborted.source, withAbort(client.signal), monitored(monitor))),
      consume(pipe(timedOut.source, withTimeout({ idleMs: 2000 }), monitored(monitor))),
      consume(observe(failed.source)),
      consume(observe(cancelled.source), 3),
    ];
    await vi.advanceTimersByTimeAsync(10);
    expect((await scrape(registry)).get(key('tokenrelay_streams_in_flight'))).toBe(5);
    await vi.advanceTimersByTimeAsync(5000);
    const results = await Promise.all(runs);
    expect(results.map((result) => result.error === undefined)).toEqual([true, false, false, false, true]);

    const samples = await scrape(registry);
    const a = { provider: 'openai', model: 'gpt-4o', outcome: 'completed' };
    const b = { provider: 'anthropic', model: 'claude-sonnet-4-5', outcome: 'aborted' };
    const c = { provider: 'openai', model: 'gpt-4o-mini', outcome: 'timeout' };
    const d = { provider: 'openai', model: 'gpt-4o-mini', outcome: 'error' };
    const e = { provider: 'openai', model: 'other', outcome: 'cancelled' };

    expect(samples.get(key('tokenrelay_streams_in_flight'))).toBe(0);
    for (const labels of [a, b, c, d, e]) expect(samples.get(key('tokenrelay_streams_total', labels))).toBe(1);
    expect([...samples.keys()].filter((name) => name.startsWith('tokenrelay_streams_total{'))).toHaveLength(5);

    // Time to first token: 120 ms, 400 ms, 50 ms (on the bound: `le` is inclusive), 300 ms, 3 s.
    expectBucket(samples, TTFT, a, '0.2', '0.1');
    expectBucket(samples, TTFT, b, '0.5', '0.3');
    expectBucket(samples, TTFT, c, '0.05', undefined);
    expectBucket(samples, TTFT, d, '0.3', '0.2');
    expectBucket(samples, TTFT, e, '3', '2');
    expect(samples.get(key(`${TTFT}_sum`, a))).toBeCloseTo(0.12, 9);
    // Duration: 1.12 s, 1 s, 2.05 s, 0.6 s, 3.1 s.
    expectBucket(samples, DURATION, a, '2.5', '1');
    expectBucket(samples, DURATION, b, '1', '0.5');
    expectBucket(samples, DURATION, c, '2.5', '1');
    expectBucket(samples, DURATION, d, '1', '0.5');
    expectBucket(samples, DURATION, e, '5', '2.5');
    // Throughput from the first token: 50 tokens in 1 s; 7 (estimated) in 0.6 s; 1 in 2 s; 2 in 0.3 s; 2 in 0.1 s.
    expectBucket(samples, TPS, a, '50', '40');
    expectBucket(samples, TPS, b, '20', '10');
    expectBucket(samples, TPS, c, '1', undefined);
    expectBucket(samples, TPS, d, '10', '5');
    expectBucket(samples, TPS, e, '20', '10');
    expect(samples.get(key(`${TPS}_sum`, b))).toBeCloseTo(7 / 0.6, 9);

    expect(samples.get(key('tokenrelay_input_tokens_total', a))).toBe(1000);
    expect(samples.get(key('tokenrelay_input_tokens_total', b))).toBe(500);
    expect(samples.get(key('tokenrelay_input_tokens_total', c))).toBe(0);
    expect(samples.get(key('tokenrelay_cached_input_tokens_total', a))).toBe(200);
    expect(samples.get(key('tokenrelay_reasoning_tokens_total', a))).toBe(10);
    // Output: reported (50), else estimated from the text: max(chunks, ceil(characters / 4)).
    expect(samples.get(key('tokenrelay_output_tokens_total', { ...a, estimated: 'false' }))).toBe(50);
    expect(samples.get(key('tokenrelay_output_tokens_total', { ...b, estimated: 'true' }))).toBe(7);
    expect(samples.get(key('tokenrelay_output_tokens_total', { ...c, estimated: 'true' }))).toBe(1);
    expect(samples.get(key('tokenrelay_output_tokens_total', { ...d, estimated: 'true' }))).toBe(2);
    expect(samples.get(key('tokenrelay_output_tokens_total', { ...e, estimated: 'true' }))).toBe(2);
    // Cost: (800 × 2.5 + 200 × 1.25 + 50 × 10) / 1e6; (500 × 3 + 7 × 15) / 1e6; 1 × 0.6 / 1e6; 2 × 0.6 / 1e6; no price for 'other'.
    expect(samples.get(key('tokenrelay_cost_usd_total', { ...a, estimated: 'false' }))).toBeCloseTo(0.00275, 12);
    expect(samples.get(key('tokenrelay_cost_usd_total', { ...b, estimated: 'true' }))).toBeCloseTo(0.001605, 12);
    expect(samples.get(key('tokenrelay_cost_usd_total', { ...c, estimated: 'true' }))).toBeCloseTo(6e-7, 15);
    expect(samples.get(key('tokenrelay_cost_usd_total', { ...d, estimated: 'true' }))).toBeCloseTo(1.2e-6, 15);
    expect([...samples.keys()].filter((name) => name.startsWith('tokenrelay_cost_usd_total{'))).toHaveLength(4);

    expect([completed, aborted, timedOut, failed, cancelled].map(({ state }) => state.finallyRan)).toEqual([1, 0, 0, 1, 1]);
  });

  it('counts a stream stopped before its first read as started and ended, so the gauge returns to 0', async () => {
    const registry = new Registry();
    const monitor = prometheusMonitor({ registry });
    const iterator = pipe(scripted([[0, chunk('a')]]).source, monitored(monitor))[Symbol.asyncIterator]();
    await iterator.return?.();
    const samples = await scrape(registry);
    expect(samples.get(key('tokenrelay_streams_in_flight'))).toBe(0);
    expect(samples.get(key('tokenrelay_streams_total', { provider: 'unknown', model: 'unknown', outcome: 'cancelled' }))).toBe(1);
  });

  it('reuses the metrics of a registry instead of registering them twice', async () => {
    const registry = new Registry();
    const first = prometheusMonitor({ registry });
    const second = prometheusMonitor({ registry, pricing });
    const other = prometheusMonitor({ registry, prefix: 'chat_' });
    for (const monitor of [first, second, other]) {
      await consume(pipe(scripted([[0, chunk('a', { model: 'm', provider: 'p' })]]).source, monitored(monitor)));
    }
    const samples = await scrape(registry);
    const labels = { provider: 'p', model: 'm', outcome: 'completed' };
    expect(samples.get(key('tokenrelay_streams_total', labels))).toBe(2);
    expect(samples.get(key('chat_streams_total', labels))).toBe(1);

    registry.clear();
    const afterClear = prometheusMonitor({ registry });
    await consume(pipe(scripted([[0, chunk('a', { model: 'm', provider: 'p' })]]).source, monitored(afterClear)));
    expect((await scrape(registry)).get(key('tokenrelay_streams_total', labels))).toBe(1);

    const taken = new Registry();
    new Counter({ name: 'tokenrelay_streams_total', help: 'someone else', registers: [taken] });
    expect(() => prometheusMonitor({ registry: taken })).toThrow(
      new TypeError('Expected metric `tokenrelay_streams_total` to be free or registered by tokenrelay, got another metric of that name (choose another `prefix`)'),
    );
  });

  it('bounds the model label: normalized, capped at maxValues, or limited to an allow-list', async () => {
    const models = ['gpt-4o-2024-08-06', 'GPT-4o', 'gpt-4.1-mini', 'claude-3-5-sonnet@20240620', 'x'.repeat(65), 'evil"} 1\nfake_metric 9', undefined];
    async function labelsOf(options: Parameters<typeof prometheusMonitor>[0]): Promise<string[]> {
      const registry = new Registry();
      const monitor = prometheusMonitor({ ...options, registry });
      for (const model of models) {
        await consume(pipe(scripted([[0, chunk('a', model === undefined ? {} : { model })]]).source, monitored(monitor)));
      }
      const samples = await scrape(registry);
      return [...samples.keys()]
        .filter((name) => name.startsWith('tokenrelay_streams_total{'))
        .map((name) => `${/model="([^"]*)"/.exec(name)?.[1]}=${samples.get(name)}`)
        .sort();
    }
    expect(await labelsOf({})).toEqual(['claude-3-5-sonnet=1', 'gpt-4.1-mini=1', 'gpt-4o=2', 'other=2', 'unknown=1']);
    expect(await labelsOf({ labels: { model: { maxValues: 2 } } })).toEqual(['gpt-4.1-mini=1', 'gpt-4o=2', 'other=3', 'unknown=1']);
    expect(await labelsOf({ labels: { model: { allow: ['claude-3-5-sonnet'] } } })).toEqual(['claude-3-5-sonnet=1', 'other=5', 'unknown=1']);
    // A custom normalizer's result is still checked.
    expect(await labelsOf({ labels: { model: (model) => model ?? 'none at all' } })).toEqual([
      'claude-3-5-sonnet@20240620=1',
      'gpt-4.1-mini=1',
      'gpt-4o-2024-08-06=1',
      'other=4',
    ]);
  });

  it('normalizes model names', () => {
    expect(
      ['gpt-4o-mini-2024-07-18', 'claude-sonnet-4-5-20250929', 'gpt-4-0613', 'gpt-3.5-turbo-0125', 'anthropic.claude-3-5-sonnet-20241022-v2:0', 'llama-3.1-70b', 'Mistral-Large-Latest', '', 'a b'].map(
        normalizeModelName,
      ),
    ).toEqual(['gpt-4o-mini', 'claude-sonnet-4-5', 'gpt-4', 'gpt-3.5-turbo', 'anthropic.claude-3-5-sonnet-v2:0', 'llama-3.1-70b', 'mistral-large-latest', 'unknown', 'other']);
  });

  it('fails fast on bad options', () => {
    expect(() => prometheusMonitor(null as never)).toThrow(new TypeError('Expected `options` to be an object, got null'));
    expect(() => prometheusMonitor({ registry: {} as never })).toThrow(new TypeError('Expected `registry` to be a prom-client Registry, got an object'));
    expect(() => prometheusMonitor({ registry: new Registry(), prefix: '1x' })).toThrow(
      new TypeError('Expected `prefix` to be a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), got "1x"'),
    );
    expect(() => prometheusMonitor({ registry: new Registry(), pricing: 1 as never })).toThrow(new TypeError('Expected `pricing` to be a function, got 1'));
    expect(() => prometheusMonitor({ registry: new Registry(), labels: { model: { maxValues: 0 } } })).toThrow(
      new TypeError('Expected `labels.model.maxValues` to be an integer >= 1, got 0'),
    );
    expect(() => prometheusMonitor({ registry: new Registry(), labels: { model: { allow: 'gpt' as never } } })).toThrow(
      new TypeError('Expected `labels.model.allow` to be an array of strings, got "gpt"'),
    );
    expect(() => prometheusMonitor({ registry: new Registry(), buckets: { timeToFirstToken: [1, 0.5] } })).toThrow(
      new TypeError('Expected `buckets.timeToFirstToken` to be increasing finite numbers > 0, got an array'),
    );
  });
});
