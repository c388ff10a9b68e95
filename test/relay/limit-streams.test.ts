import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TokenSourceFactory } from 'tokenrelay';
import {
  createRelay,
  isStreamLimitError,
  limitStreams,
  memoryStore,
  StreamLimitError,
} from 'tokenrelay/relay';
import { abortListeners, controlledSource, drain, settle, take, tokenSource } from './helpers.js';

interface FakeRequest {
  user: string;
}

const byUser = (req: FakeRequest) => req.user;
const alice: FakeRequest = { user: 'alice' };
const bob: FakeRequest = { user: 'bob' };

describe('limitStreams', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('enforces maxPerKey per key, across limiters sharing a store, and frees on release', async () => {
    const store = memoryStore();
    const here = limitStreams({ store, maxPerKey: 2, key: byUser, ttlMs: 30_000 });
    const there = limitStreams({ store, maxPerKey: 2, key: byUser, ttlMs: 30_000 });
    const first = await here.acquire(alice);
    const second = await there.acquire(alice);
    const error = await here.acquire(alice).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StreamLimitError);
    expect(error).toMatchObject({ code: 'limit', limit: 'per-key' });
    expect((error as StreamLimitError).retryAfterMs).toBeGreaterThan(0);
    expect((error as StreamLimitError).retryAfterMs).toBeLessThanOrEqual(30_000);
    const other = await here.acquire(bob);
    await first.release();
    await first.release();
    expect(first.released).toBe(true);
    const third = await here.acquire(alice);
    await Promise.all([second.release(), third.release(), other.release()]);
    expect(store.stats().slots).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps an acquired slot refreshed past its TTL until released', async () => {
    const store = memoryStore();
    const limiter = limitStreams({ store, maxPerKey: 1, key: byUser, ttlMs: 3_000 });
    const slot = await limiter.acquire(alice);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(isStreamLimitError(await limiter.acquire(alice).catch((caught: unknown) => caught))).toBe(true);
    await slot.release();
    expect(vi.getTimerCount()).toBe(0);
    await (await limiter.acquire(alice)).release();
  });

  it('frees the slot of a dead holder by TTL', async () => {
    const store = memoryStore();
    const limiter = limitStreams({ store, maxPerKey: 1, key: byUser, ttlMs: 3_000 });
    await limiter.wrap(alice, tokenSource(['never started'])); // its factory is never called
    expect(isStreamLimitError(await limiter.acquire(alice).catch((caught: unknown) => caught))).toBe(true);
    await vi.advanceTimersByTimeAsync(3_000);
    const slot = await limiter.acquire(alice);
    await slot.release();
    expect(vi.getTimerCount()).toBe(0);
  });

  describe('wrap() with a relay: the slot lives as long as the stream, and not longer', () => {
    async function run(outcome: 'completed' | 'failed' | 'abandoned' | 'cancelled' | 'throws') {
      const relay = createRelay({ graceMs: 1_000 });
      const limiter = limitStreams({ store: relay.store, maxPerKey: 1, key: byUser });
      const source = controlledSource();
      const factory: TokenSourceFactory =
        outcome === 'throws'
          ? () => {
              throw new Error('bad params');
            }
          : source.factory;
      const { id, done } = await relay.start(await limiter.wrap(alice, factory));
      const reading = take(relay.subscribe(id), 1).catch(() => []);
      source.push('a');
      await reading;
      await settle();
      if (outcome !== 'throws') {
        expect(isStreamLimitError(await limiter.acquire(alice).catch((caught: unknown) => caught))).toBe(true);
      }
      if (outcome === 'completed') source.finish();
      if (outcome === 'failed') source.fail(new Error('provider down'));
      if (outcome === 'abandoned') await vi.advanceTimersByTimeAsync(1_000);
      if (outcome === 'cancelled') await relay.cancel(id);
      expect((await done).outcome).toBe(outcome === 'throws' ? 'failed' : outcome);
      await settle();
      const again = await limiter.acquire(alice);
      await again.release();
      await relay.close();
      expect(vi.getTimerCount()).toBe(0);
    }

    for (const outcome of ['completed', 'failed', 'abandoned', 'cancelled', 'throws'] as const) {
      it(`releases it when the stream ${outcome === 'throws' ? 'factory throws' : `is ${outcome}`}`, () => run(outcome));
    }

    it('releases it when the signal aborts, even while the source is stuck, and removes its listener', async () => {
      const limiter = limitStreams({ maxPerKey: 1, key: byUser });
      const controller = new AbortController();
      const factory = await limiter.wrap(alice, () => ({
        [Symbol.asyncIterator]: () => ({ next: () => new Promise<never>(() => undefined) }),
      }));
      const iterator = factory(controller.signal)[Symbol.asyncIterator]();
      void iterator.next();
      expect(abortListeners(controller.signal)).toBe(1);
      controller.abort();
      await settle();
      await (await limiter.acquire(alice)).release();
      await iterator.return?.();
      expect(abortListeners(controller.signal)).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('releases it when the consumer stops before reading', async () => {
      const limiter = limitStreams({ maxPerKey: 1, key: byUser });
      const factory = await limiter.wrap(alice, tokenSource(['a']));
      const stream = factory(new AbortController().signal);
      await stream[Symbol.asyncIterator]().return?.();
      await settle();
      await (await limiter.acquire(alice)).release();
    });

    it('a returned factory runs once', async () => {
      const limiter = limitStreams({ maxPerKey: 2, key: byUser });
      const factory = await limiter.wrap(alice, tokenSource(['a']));
      await drain(factory(new AbortController().signal));
      expect(() => factory(new AbortController().signal)).toThrow(TypeError);
    });
  });

  it('validates its options and keys', async () => {
    expect(() => limitStreams({ maxPerKey: 0, key: byUser })).toThrow('Expected `maxPerKey` to be an integer >= 1, got 0');
    expect(() => limitStreams({ maxPerKey: 1, key: 'user' as never })).toThrow(TypeError);
    expect(() => limitStreams(undefined as never)).toThrow(TypeError);
    const limiter = limitStreams({ maxPerKey: 1, key: (req: { user?: string }) => req.user as string });
    await expect(limiter.acquire({})).rejects.toThrow('Expected `key` to return a string');
    await expect(limiter.wrap({ user: 'a' }, 'no' as never)).rejects.toThrow(TypeError);
  });
});
