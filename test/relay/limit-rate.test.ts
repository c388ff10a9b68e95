// limitRate: requests, tokens and cost per sliding window; a budget that runs out mid-stream stops
// the provider request with a BudgetExceededError; the real usage replaces the estimate at the end.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TokenChunk, TokenSourceFactory } from 'tokenrelay';
import {
  BudgetExceededError,
  createRelay,
  isBudgetExceededError,
  isStreamLimitError,
  limitRate,
  limitStreams,
  memoryStore,
  StreamLimitError,
} from 'tokenrelay/relay';
import type { RateStore } from 'tokenrelay/store';
import { redisStore } from 'tokenrelay/redis';
import { toHttpError } from '../../src/servers/internal/http-error.js';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { drain, settle, take } from './helpers.js';

const byUser = (user: string) => user;
const minute = 60_000;

/** `count` chunks of `token`, then a terminal chunk (with `usage` if given); records its signal and whether its finally ran. */
function answer(count: number, token = 'x ', usage?: TokenChunk['usage']) {
  const state = { signal: undefined as AbortSignal | undefined, read: 0, finallyRan: false };
  const factory: TokenSourceFactory = (signal) => {
    state.signal = signal;
    return (async function* () {
      try {
        for (let index = 0; index < count; index++) {
          if (signal.aborted) throw signal.reason;
          state.read++;
          yield { token, index, timestamp: 0, type: 'text' as const };
        }
        yield { token: '', index: count, timestamp: 0, type: 'text' as const, finishReason: 'stop' as const, ...(usage ? { usage } : {}) };
      } finally {
        state.finallyRan = true;
      }
    })();
  };
  return { state, factory };
}

async function usageOf(store: Required<RateStore>, user: string, windowMs = minute) {
  await settle(50);
  return store.chargeRate(user, { tokens: { amount: 0, windowMs }, cost: { amount: 0, windowMs } });
}

describe('limitRate (memory store)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('admits `max` requests per sliding window, exactly, with Retry-After from the oldest request', async () => {
    const store = memoryStore();
    const rate = limitRate({ store, key: byUser, requests: { max: 3, windowMs: 10_000 } });
    await rate.check('alice');
    await vi.advanceTimersByTimeAsync(4_000);
    await rate.check('alice');
    await rate.check('alice');
    const refused = await rate.check('alice').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StreamLimitError);
    expect(refused).toMatchObject({ code: 'limit', limit: 'requests', retryAfterMs: 6_000 });
    await rate.check('bob');
    await vi.advanceTimersByTimeAsync(5_999);
    expect(isStreamLimitError(await rate.check('alice').catch((error: unknown) => error))).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    await rate.check('alice'); // the first request slid out
    expect(isStreamLimitError(await rate.check('alice').catch((error: unknown) => error))).toBe(true);
  });

  it('is answered 429 with Retry-After (and a budget stop too), through the mapping every adapter uses', () => {
    const limited = toHttpError(new StreamLimitError('Too many requests', { limit: 'requests', retryAfterMs: 6_000 }), false);
    expect(limited.status).toBe(429);
    expect(limited.headers['Retry-After']).toBe('6');
    expect(JSON.parse(limited.body)).toMatchObject({ error: { code: 'limit' } });
    const budget = toHttpError(new BudgetExceededError('The token budget is used up', { retryAfterMs: 1_500 }), false);
    expect(budget.status).toBe(429);
    expect(budget.headers['Retry-After']).toBe('2');
    expect(JSON.parse(budget.body)).toMatchObject({ error: { code: 'budget-exceeded' } });
  });

  it('a budget of 500 tokens stops a 2,000-token answer between 500 and 500 + one chunk, and aborts the provider request', async () => {
    const store = memoryStore();
    const rate = limitRate({ store, key: byUser, tokens: { max: 500, windowMs: minute } });
    const source = answer(2_000);
    const factory = await rate.wrap('alice', source.factory);
    const { chunks, error } = await drain(factory(new AbortController().signal));
    const text = chunks.filter((chunk) => chunk.token !== '').length;
    expect(text).toBeGreaterThanOrEqual(500);
    expect(text).toBeLessThanOrEqual(501);
    expect(isBudgetExceededError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'budget-exceeded', limit: 'tokens' });
    expect(source.state.signal?.aborted).toBe(true);
    expect(source.state.signal?.reason).toBe(error);
    expect(source.state.finallyRan).toBe(true);
    expect((await usageOf(store, 'alice')).tokens).toBe(text);
    // The window is used up: the next request is refused before it starts.
    expect(await rate.wrap('alice', answer(1).factory).catch((caught: unknown) => caught)).toMatchObject({ limit: 'tokens' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('replaces the running estimate with the real usage at the end', async () => {
    const store = memoryStore();
    const rate = limitRate({ store, key: byUser, tokens: { max: 10_000, windowMs: minute } });
    const factory = await rate.wrap('alice', answer(40, 'four', { inputTokens: 120, outputTokens: 30 }).factory);
    await drain(factory(new AbortController().signal));
    expect((await usageOf(store, 'alice')).tokens).toBe(150);
  });

  it('charges a stream cut short what it produced', async () => {
    const store = memoryStore();
    const rate = limitRate({ store, key: byUser, tokens: { max: 10_000, windowMs: minute } });
    const source = answer(1_000, 'x ', { inputTokens: 50, outputTokens: 1_000 });
    const factory = await rate.wrap('alice', source.factory);
    expect(await take(factory(new AbortController().signal), 25)).toHaveLength(25);
    expect((await usageOf(store, 'alice')).tokens).toBe(25);
  });

  it('prices tokens with estimateCost and stops at the cost budget', async () => {
    const store = memoryStore();
    const price = { inputPerMTok: 1_000, outputPerMTok: 10_000 }; // 1 cent per output token
    const rate = limitRate({ store, key: byUser, cost: { max: 0.5, windowMs: minute, price } });
    const { chunks, error } = await drain((await rate.wrap('alice', answer(200).factory))(new AbortController().signal));
    expect(error).toMatchObject({ code: 'budget-exceeded', limit: 'cost' });
    expect(chunks.length).toBeGreaterThanOrEqual(50);
    expect(chunks.length).toBeLessThanOrEqual(51);
    expect((await usageOf(store, 'alice')).cost).toBeCloseTo(chunks.length * 0.01, 9);
  });

  it('composes with limitStreams and the relay: the subscriber gets the BudgetExceededError, the slot is released', async () => {
    const relay = createRelay();
    const streams = limitStreams({ store: relay.store, maxPerKey: 1, key: byUser });
    const rate = limitRate({ store: relay.store, key: byUser, requests: { max: 5, windowMs: minute }, tokens: { max: 100, windowMs: minute } });
    const source = answer(500);
    const { id, done } = await relay.start(await streams.wrap('alice', await rate.wrap('alice', source.factory)));
    const { chunks, error } = await drain(relay.subscribe(id));
    expect(chunks.length).toBeGreaterThanOrEqual(100);
    expect(chunks.length).toBeLessThanOrEqual(101);
    expect(isBudgetExceededError(error)).toBe(true);
    expect((await done).outcome).toBe('failed');
    expect(source.state.signal?.aborted).toBe(true);
    await settle(50);
    await (await streams.acquire('alice')).release();
    await relay.close();
  });

  it('validates its options', () => {
    expect(() => limitRate({ key: byUser })).toThrow('at least one of');
    expect(() => limitRate({ key: byUser, requests: { max: 0, windowMs: 1 } })).toThrow('Expected `requests.max` to be an integer >= 1, got 0');
    expect(() => limitRate({ key: byUser, tokens: { max: 10, windowMs: -1 } })).toThrow(TypeError);
    expect(() => limitRate({ key: byUser, cost: { max: 1, windowMs: 1, price: {} as never } })).toThrow(TypeError);
    expect(() => limitRate({ key: 'user' as never, requests: { max: 1, windowMs: 1 } })).toThrow(TypeError);
  });
});

const available = redisAvailable({ announce: false });

describe.skipIf(!available)('limitRate over Redis, two instances on one redis-server', () => {
  let redis: RedisServer;
  const clients: Redis[] = [];
  const stores: Array<ReturnType<typeof redisStore>> = [];

  function instance(prefix: string) {
    const client = new Redis(redis.url);
    clients.push(client);
    const store = redisStore(client, { prefix });
    stores.push(store);
    return { client, store };
  }

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const client of clients) await client.quit().catch(() => undefined);
    await redis?.stop();
  });

  it('100 concurrent requests against 10 per window admit exactly 10; the counters survive an instance restart', async () => {
    const options = { key: byUser, requests: { max: 10, windowMs: minute } };
    const a = instance('rate1:');
    const b = instance('rate1:');
    const limiters = [limitRate({ ...options, store: a.store }), limitRate({ ...options, store: b.store })];
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, n) => limiters[n % 2]!.check('alice').then(() => 'admitted', (error: unknown) => error)),
    );
    const admitted = outcomes.filter((outcome) => outcome === 'admitted').length;
    const refused = outcomes.filter((outcome) => isStreamLimitError(outcome));
    console.info(`limitRate over Redis: 100 concurrent requests over 2 instances, limit 10 per window → ${admitted} admitted, ${refused.length} refused (429)`);
    expect(admitted).toBe(10);
    expect(refused).toHaveLength(90);
    const retryAfter = (refused[0] as StreamLimitError).retryAfterMs!;
    expect(retryAfter).toBeGreaterThan(minute - 5_000);
    expect(retryAfter).toBeLessThanOrEqual(minute);

    // Instance A restarts: a new client, store and limiter find the same window.
    await a.store.close();
    await a.client.quit();
    const restarted = instance('rate1:');
    const again = await limitRate({ ...options, store: restarted.store }).check('alice').catch((error: unknown) => error);
    expect(again).toMatchObject({ code: 'limit', limit: 'requests' });
    await limitRate({ ...options, store: restarted.store }).check('bob');
  });

  it('a budget of 500 output tokens stops a 2,000-token answer between 500 and 500 + one chunk, across instances', async () => {
    const a = instance('rate2:');
    const b = instance('rate2:');
    const relayA = createRelay({ store: a.store });
    const relayB = createRelay({ store: b.store });
    const tokens = { max: 500, windowMs: minute };
    const rateA = limitRate({ store: a.store, key: byUser, tokens });
    const source = answer(2_000);
    const { id } = await relayA.start(await rateA.wrap('alice', source.factory));
    const { chunks, error } = await drain(relayB.subscribe(id));
    const text = chunks.filter((chunk) => chunk.token !== '').length;
    console.info(`limitRate over Redis: a 500-token budget stopped a 2,000-token answer after ${text} tokens (${source.state.read} read from the source)`);
    expect(text).toBeGreaterThanOrEqual(500);
    expect(text).toBeLessThanOrEqual(501);
    expect(error).toMatchObject({ name: 'BudgetExceededError', code: 'budget-exceeded', limit: 'tokens' });
    expect(source.state.signal?.aborted).toBe(true);
    await relayA.close();
    await relayB.close();
    // Charged what it produced, seen from the other instance; the next request there is refused.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const usage = await b.store.chargeRate!('alice', { tokens: { amount: 0, windowMs: minute } });
    expect(usage.tokens).toBe(text);
    const refused = await limitRate({ store: b.store, key: byUser, tokens }).check('alice').catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ limit: 'tokens' });
  });

  it('charges cost as a float and refunds an estimate above the real usage', async () => {
    const { store } = instance('rate3:');
    const price = { inputPerMTok: 0.15, outputPerMTok: 0.6 };
    const rate = limitRate({ store: store, key: byUser, cost: { max: 1, windowMs: minute, price }, tokens: { max: 1e6, windowMs: minute } });
    const factory = await rate.wrap('carol', answer(100, 'abcdefgh', { inputTokens: 1_000, outputTokens: 50 }).factory);
    await drain(factory(new AbortController().signal));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const usage = await store.chargeRate!('carol', { tokens: { amount: 0, windowMs: minute }, cost: { amount: 0, windowMs: minute } });
    expect(usage.tokens).toBe(1_050);
    expect(usage.cost).toBeCloseTo((1_000 * 0.15 + 50 * 0.6) / 1e6, 12);
  });
});
