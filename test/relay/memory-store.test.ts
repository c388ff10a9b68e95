import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRelay, isStreamLimitError, isStreamNotFoundError, memoryStore } from 'tokenrelay/relay';
import { controlledSource, drain, settle, tokenSource } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const answer = Array.from({ length: 20 }, (_, n) => ` word${n}`);

describe('memoryStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stays within maxBytes under 10,000 finished streams, evicting the oldest', async () => {
    const maxBytes = 8 * 1024 * 1024;
    const store = memoryStore({ maxBytes, maxStreams: 100_000 });
    const relay = createRelay({ store });
    const baseline = heapUsed();
    const ids: string[] = [];
    let peak = 0;
    for (let n = 0; n < 10_000; n++) {
      const { id, done } = await relay.start(tokenSource(answer));
      await done;
      if (n === 0 || n === 9_999) ids.push(id);
      peak = Math.max(peak, store.stats().bytes);
    }
    const grown = heapUsed() - baseline;
    const { streams, bytes } = store.stats();
    console.info(
      `memoryStore, 10,000 finished streams of 21 chunks, maxBytes ${maxBytes}: ` +
        `accounted peak ${peak} B, ${streams} streams kept, heap growth ${grown} B`,
    );
    expect(peak).toBeLessThanOrEqual(maxBytes);
    expect(bytes).toBeLessThanOrEqual(maxBytes);
    expect(grown).toBeLessThan(maxBytes * 1.25);
    expect(streams).toBeLessThan(10_000);
    expect(isStreamNotFoundError((await drain(relay.subscribe(ids[0]!))).error)).toBe(true);
    expect((await drain(relay.subscribe(ids.at(-1)!))).chunks).toHaveLength(21);
  });

  it('estimates its heap use without undercounting it', async () => {
    const store = memoryStore({ maxBytes: 512 * 1024 * 1024, maxStreams: 100_000 });
    const relay = createRelay({ store });
    const baseline = heapUsed();
    for (let n = 0; n < 10_000; n++) await (await relay.start(tokenSource(answer))).done;
    const grown = heapUsed() - baseline;
    const { bytes, streams } = store.stats();
    console.info(`memoryStore, 10,000 streams kept: accounted ${bytes} B, heap growth ${grown} B (${(grown / streams).toFixed(0)} B/stream)`);
    expect(streams).toBe(10_000);
    expect(grown).toBeLessThan(bytes * 1.1);
  });

  it('evicts finished streams first, oldest first, and never a live one', async () => {
    const store = memoryStore({ maxStreams: 3 });
    const relay = createRelay({ store, graceMs: Infinity });
    const live = controlledSource();
    const a = await relay.start(live.factory);
    const b = await relay.start(tokenSource(['b']));
    await b.done;
    const c = await relay.start(tokenSource(['c']));
    await c.done;
    const d = await relay.start(tokenSource(['d']));
    await d.done;
    expect(await store.info(b.id)).toBeUndefined();
    expect(await store.info(c.id)).toBeDefined();
    expect(await store.info(a.id)).toBeDefined();
    await relay.start(tokenSource(['e']));
    expect(await store.info(c.id)).toBeUndefined();
    expect(await store.info(a.id)).toBeDefined();
    await relay.close();
  });

  it('fails a live stream that cannot fit, instead of growing', async () => {
    const store = memoryStore({ maxBytes: 8_000 });
    const relay = createRelay({ store });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    const reading = drain(relay.subscribe(id));
    for (let n = 0; n < 100; n++) source.push('x'.repeat(100));
    const { chunks, error } = await reading;
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.length).toBeLessThan(100);
    expect(isStreamLimitError(error)).toBe(true);
    expect(error).toMatchObject({ limit: 'bytes' });
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('failed');
    expect(store.stats().bytes).toBeLessThanOrEqual(8_000 + 1_000); // plus its completion marker
  });

  it('expires streams by TTL with no timer of its own', async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    const relay = createRelay({ store, ttlMs: 1_000 });
    for (let n = 0; n < 10; n++) await (await relay.start(tokenSource(['x']))).done;
    expect(store.stats().streams).toBe(10);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_001);
    await relay.start(tokenSource(['y'])); // meeting the store drops what expired
    await settle();
    expect(store.stats().streams).toBe(1);
  });

  it('keeps a live stream whose producer beats, however long it is quiet', async () => {
    vi.useFakeTimers();
    const store = memoryStore();
    const relay = createRelay({ store, ttlMs: 1_000, graceMs: Infinity });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    await vi.advanceTimersByTimeAsync(60_000);
    source.push('still here');
    source.finish();
    await done;
    expect((await drain(relay.subscribe(id))).chunks).toHaveLength(2);
  });

  it('validates its options', () => {
    expect(() => memoryStore({ maxStreams: 0 })).toThrow('Expected `maxStreams` to be an integer >= 1, got 0');
    expect(() => memoryStore({ maxBytes: -5 })).toThrow(TypeError);
  });
});
