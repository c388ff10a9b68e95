import { describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import type { RelayStore, StoreEvent } from 'tokenrelay/store';

/** Options of {@link describeStoreConformance}. */
export interface ConformanceOptions {
  /**
   * The shortest TTL the store honours accurately, in ms; waits are a few times this.
   * @defaultValue `40`
   */
  ttlMs?: number | undefined;
}

/**
 * Registers the tests every `RelayStore` must pass. Each test uses fresh random ids, so a store
 * backed by a shared server can run them against the same database. Real time, bounded.
 *
 * @example
 * ```ts
 * describeStoreConformance('redisStore', async () => redisStore({ client }));
 * ```
 */
export function describeStoreConformance(
  name: string,
  makeStore: () => RelayStore | Promise<RelayStore>,
  options: ConformanceOptions = {},
): void {
  const ttl = options.ttlMs ?? 40;
  const long = 60_000;
  const meta = { ttlMs: long, metadata: {} };

  async function withStore(test: (store: RelayStore) => Promise<void>): Promise<void> {
    const store = await makeStore();
    try {
      await test(store);
    } finally {
      await store.close();
    }
  }

  describe(`RelayStore conformance: ${name}`, () => {
    it('creates a stream once; a second create with the same id changes nothing', () =>
      withStore(async (store) => {
        const id = freshId();
        expect(await store.create(id, { ttlMs: long, metadata: { user: 'u1' } })).toBe(true);
        await store.append(id, chunk(0, 'a'));
        expect(await store.create(id, { ttlMs: long, metadata: { user: 'u2' } })).toBe(false);
        const info = await store.info(id);
        expect(info?.metadata).toEqual({ user: 'u1' });
        expect(info?.lastIndex).toBe(0);
      }));

    it('answers undefined for an unknown id, from every read method', () =>
      withStore(async (store) => {
        const id = freshId();
        expect(await store.info(id)).toBeUndefined();
        expect(await store.read(id, -1, { limit: 10, waitMs: 0 })).toBeUndefined();
        expect(await store.heartbeat(id, long)).toBeUndefined();
        expect(await store.cancel(id)).toBe(false);
        await store.attach(id, 's', long);
        await store.detach(id, 's');
        store.watch(id, () => undefined)();
      }));

    it('round-trips every chunk field and replays from a cursor, in batches', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        const empty = await store.read(id, -1, { limit: 10, waitMs: 0 });
        expect(empty).toMatchObject({ chunks: [], lastIndex: -1, end: undefined });
        const rich: TokenChunk = {
          token: 'Zürich 東京 🦀\n"quoted"',
          index: 0,
          timestamp: 12.5,
          type: 'tool-call',
          toolCall: { id: 'call_1', name: 'search', index: 0 },
          model: 'm',
          provider: 'p',
        };
        await store.append(id, rich);
        for (let index = 1; index < 10; index++) await store.append(id, chunk(index, `t${index}`));
        const all = await store.read(id, -1, { limit: 100, waitMs: 0 });
        expect(all?.chunks[0]).toEqual(rich);
        expect(all?.chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(all?.lastIndex).toBe(9);
        const batch = await store.read(id, 3, { limit: 4, waitMs: 0 });
        expect(batch?.chunks.map((c) => c.index)).toEqual([4, 5, 6, 7]);
        expect((await store.read(id, 9, { limit: 4, waitMs: 0 }))?.chunks).toEqual([]);
      }));

    it('takes the last index appended again (a retry whose answer was lost) without storing it twice', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        await store.append(id, chunk(0, 'a'));
        await store.append(id, chunk(1, 'b'));
        await store.append(id, chunk(1, 'b'));
        await store.append(id, chunk(2, 'c'));
        const all = await store.read(id, -1, { limit: 10, waitMs: 0 });
        expect(all?.chunks.map((c) => `${c.index}${c.token}`)).toEqual(['0a', '1b', '2c']);
        expect(all?.lastIndex).toBe(2);
      }));

    it('hands out copies: mutating a read chunk does not change the stored one', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        const original = chunk(0, 'keep');
        await store.append(id, original);
        original.token = 'changed by the producer';
        const first = await store.read(id, -1, { limit: 1, waitMs: 0 });
        first!.chunks[0]!.token = 'changed by a reader';
        const second = await store.read(id, -1, { limit: 1, waitMs: 0 });
        expect(second?.chunks[0]?.token).toBe('keep');
      }));

    it('reports the end only once a read reaches the last chunk', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        for (let index = 0; index < 5; index++) await store.append(id, chunk(index, 'x'));
        await store.end(id, { type: 'failed', error: { name: 'ProviderError', code: 'provider', message: 'm', status: 500 } });
        const partial = await store.read(id, -1, { limit: 3, waitMs: 0 });
        expect(partial?.end).toBeUndefined();
        const rest = await store.read(id, 2, { limit: 3, waitMs: 0 });
        expect(rest?.chunks.map((c) => c.index)).toEqual([3, 4]);
        expect(rest?.end).toEqual({ type: 'failed', error: { name: 'ProviderError', code: 'provider', message: 'm', status: 500 } });
        expect((await store.info(id))?.end?.type).toBe('failed');
        expect((await store.info(id))?.alive).toBe(true);
      }));

    it('wakes a waiting read on append and on end; times out with no chunks; ends early on abort', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        const waiting = store.read(id, -1, { limit: 10, waitMs: 5_000 });
        await sleep(ttl / 4);
        const started = performance.now();
        await store.append(id, chunk(0, 'live'));
        const woken = await waiting;
        expect(woken?.chunks.map((c) => c.token)).toEqual(['live']);
        expect(performance.now() - started).toBeLessThan(1_000);

        const timedOut = performance.now();
        const none = await store.read(id, 0, { limit: 10, waitMs: ttl });
        expect(none?.chunks).toEqual([]);
        expect(performance.now() - timedOut).toBeGreaterThanOrEqual(ttl - 5);

        const controller = new AbortController();
        const aborted = store.read(id, 0, { limit: 10, waitMs: 5_000, signal: controller.signal });
        const abortedAt = performance.now();
        controller.abort();
        expect((await aborted)?.chunks).toEqual([]);
        expect(performance.now() - abortedAt).toBeLessThan(1_000);

        const ending = store.read(id, 0, { limit: 10, waitMs: 5_000 });
        await store.end(id, { type: 'completed' });
        expect((await ending)?.end).toEqual({ type: 'completed' });
      }));

    it('keeps a producer alive for the heartbeat TTL only', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        expect(await store.heartbeat(id, ttl)).toEqual({ subscribers: 0, cancelled: false });
        expect((await store.read(id, -1, { limit: 1, waitMs: 0 }))?.alive).toBe(true);
        await sleep(ttl * 2);
        expect((await store.read(id, -1, { limit: 1, waitMs: 0 }))?.alive).toBe(false);
        await store.end(id, { type: 'completed' });
        expect((await store.info(id))?.alive).toBe(true);
      }));

    it('counts attached subscribers, announces changes, and forgets a subscriber whose TTL ran out', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        const events: StoreEvent[] = [];
        const unwatch = store.watch(id, (event) => events.push(event));
        await store.attach(id, 'a', long);
        await store.attach(id, 'b', ttl);
        await store.attach(id, 'a', long); // a refresh is not a new subscriber
        expect((await store.heartbeat(id, long))?.subscribers).toBe(2);
        await store.detach(id, 'a');
        await waitFor(() => events.length >= 3);
        expect(events.filter((event) => event.type === 'presence').at(-1)).toEqual({ type: 'presence', subscribers: 1 });
        await sleep(ttl * 2);
        expect((await store.heartbeat(id, long))?.subscribers).toBe(0);
        unwatch();
        const count = events.length;
        await store.attach(id, 'c', long);
        await sleep(ttl);
        expect(events.length).toBe(count);
      }));

    it('records a cancel, announces it, and refuses to cancel an ended stream', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, meta);
        const events: StoreEvent[] = [];
        const unwatch = store.watch(id, (event) => events.push(event));
        expect(await store.cancel(id)).toBe(true);
        await waitFor(() => events.some((event) => event.type === 'cancel'));
        expect((await store.heartbeat(id, long))?.cancelled).toBe(true);
        unwatch();
        await store.end(id, { type: 'failed', error: { name: 'StreamAbortedError', code: 'aborted', message: 'cancelled' } });
        expect(await store.cancel(id)).toBe(false);
      }));

    it('expires a stream ttlMs after its last write', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, { ttlMs: ttl * 3, metadata: {} });
        await store.append(id, chunk(0, 'a'));
        await sleep(ttl * 2);
        await store.append(id, chunk(1, 'b')); // refreshes the TTL
        await sleep(ttl * 2);
        expect((await store.info(id))?.lastIndex).toBe(1);
        await store.end(id, { type: 'completed' });
        await sleep(ttl * 5);
        expect(await store.info(id)).toBeUndefined();
        expect(await store.read(id, -1, { limit: 1, waitMs: 0 })).toBeUndefined();
      }));

    it('keeps a quiet live stream as long as its producer beats', () =>
      withStore(async (store) => {
        const id = freshId();
        await store.create(id, { ttlMs: ttl, metadata: {} });
        await store.heartbeat(id, ttl * 4);
        await sleep(ttl * 2);
        expect(await store.info(id)).toBeDefined();
        await store.end(id, { type: 'completed' });
        await sleep(ttl * 2);
        expect(await store.info(id)).toBeUndefined();
      }));

    it('grants at most max slots per key, frees them on release (idempotent) and by TTL', () =>
      withStore(async (store) => {
        const key = freshId();
        const other = freshId();
        const first = await store.acquireSlot(key, 2, long);
        const second = await store.acquireSlot(key, 2, ttl);
        expect(first.granted && second.granted).toBe(true);
        const refused = await store.acquireSlot(key, 2, long);
        expect(refused.granted).toBe(false);
        if (!refused.granted) {
          expect(refused.retryAfterMs).toBeGreaterThan(0);
          expect(refused.retryAfterMs).toBeLessThanOrEqual(long);
        }
        expect((await store.acquireSlot(other, 2, long)).granted).toBe(true);
        if (!first.granted) return;
        await store.releaseSlot(key, first.slotId);
        await store.releaseSlot(key, first.slotId);
        expect(await store.refreshSlot(key, first.slotId, long)).toBe(false);
        const third = await store.acquireSlot(key, 2, long);
        expect(third.granted).toBe(true);
        expect((await store.acquireSlot(key, 2, long)).granted).toBe(false);
        await sleep(ttl * 2); // `second` expires
        expect((await store.acquireSlot(key, 2, long)).granted).toBe(true);
      }));

    it('extends a slot on refresh', () =>
      withStore(async (store) => {
        const key = freshId();
        const slot = await store.acquireSlot(key, 1, ttl * 2);
        if (!slot.granted) throw new Error('expected a slot');
        await sleep(ttl);
        expect(await store.refreshSlot(key, slot.slotId, ttl * 4)).toBe(true);
        await sleep(ttl * 2);
        expect((await store.acquireSlot(key, 1, long)).granted).toBe(false);
      }));

    it('points a key at its live stream; a later stream takes it; a refresh does not take it back', () =>
      withStore(async (store) => {
        const { setActive, getActive } = activeMethods(store);
        const key = freshId();
        const [first, second] = [freshId(), freshId()];
        expect(await getActive(key)).toBeUndefined();
        for (const id of [first, second]) {
          await store.create(id, meta);
          await store.heartbeat(id, long);
        }
        await setActive(key, first, { ttlMs: long, refresh: false });
        expect(await getActive(key)).toBe(first);
        await setActive(key, second, { ttlMs: long, refresh: false });
        await setActive(key, first, { ttlMs: long, refresh: true });
        expect(await getActive(key)).toBe(second);
        await setActive(key, second, { ttlMs: long, refresh: true });
        expect(await getActive(key)).toBe(second);
        // Another key is another pointer.
        expect(await getActive(freshId())).toBeUndefined();
      }));

    it('answers no active stream once the stream ended, is gone, or its producer stopped beating', () =>
      withStore(async (store) => {
        const { setActive, getActive } = activeMethods(store);
        const key = freshId();
        const id = freshId();
        await store.create(id, meta);
        await store.heartbeat(id, ttl);
        await setActive(key, id, { ttlMs: long, refresh: false });
        expect(await getActive(key)).toBe(id);
        await sleep(ttl * 2); // the heartbeat expired: a producer that died
        expect(await getActive(key)).toBeUndefined();
        await store.heartbeat(id, long); // it was only late
        expect(await getActive(key)).toBe(id);
        await store.end(id, { type: 'completed' });
        expect(await getActive(key)).toBeUndefined();
        // A pointer is never set to an ended or unknown stream.
        await setActive(key, id, { ttlMs: long, refresh: false });
        await setActive(key, freshId(), { ttlMs: long, refresh: false });
        expect(await getActive(key)).toBeUndefined();
      }));

    it('expires a pointer ttlMs after it was set or refreshed', () =>
      withStore(async (store) => {
        const { setActive, getActive } = activeMethods(store);
        const key = freshId();
        const id = freshId();
        await store.create(id, meta);
        await store.heartbeat(id, long);
        await setActive(key, id, { ttlMs: ttl * 2, refresh: false });
        await sleep(ttl);
        await setActive(key, id, { ttlMs: ttl * 4, refresh: true });
        await sleep(ttl * 2);
        expect(await getActive(key)).toBe(id);
        await sleep(ttl * 4);
        expect(await getActive(key)).toBeUndefined();
        // Expired, it cannot be refreshed back.
        await setActive(key, id, { ttlMs: long, refresh: true });
        expect(await getActive(key)).toBeUndefined();
      }));
  });
}

/** The optional active-stream methods, which both built-in stores have. */
function activeMethods(store: RelayStore): Required<Pick<RelayStore, 'setActive' | 'getActive'>> {
  const { setActive, getActive } = store;
  if (setActive === undefined || getActive === undefined) throw new Error('expected the store to have setActive and getActive');
  return { setActive: setActive.bind(store), getActive: getActive.bind(store) };
}

function freshId(): string {
  return `conformance-${crypto.randomUUID()}`;
}

function chunk(index: number, token: string): TokenChunk {
  return { token, index, timestamp: index, type: 'text' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(2);
  }
}
