// The active stream of a key (a chat id): relay.start(…, { key }) records it, relay.active(key)
// finds it from any instance sharing the store until it ends, relay.resume(key) replays it from
// its first chunk (what the resume route of useChat needs).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, memoryStore } from 'tokenrelay/relay';
import type { RelayStore } from 'tokenrelay/store';
import { redisStore } from 'tokenrelay/redis';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { controlledSource, drain } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** The tests every store with setActive/getActive passes, with two relays (two instances) on `makeStores`. */
function describeActiveStreams(name: string, makeStores: () => Promise<[RelayStore, RelayStore, () => Promise<void>]>): void {
  describe(`active streams of a key: ${name}`, () => {
    async function withInstances(test: (a: ReturnType<typeof createRelay>, b: ReturnType<typeof createRelay>) => Promise<void>): Promise<void> {
      const [storeA, storeB, close] = await makeStores();
      const a = createRelay({ store: storeA, livenessMs: 300 });
      const b = createRelay({ store: storeB, livenessMs: 300 });
      try {
        await test(a, b);
      } finally {
        await a.close();
        await b.close();
        await close();
      }
    }

    it('finds the stream started with a key from the other instance, until it ends', () =>
      withInstances(async (a, b) => {
        const chat = `chat-${crypto.randomUUID()}`;
        expect(await b.active(chat)).toBeUndefined();
        expect(await b.resume(chat)).toBeUndefined();
        const source = controlledSource();
        const { id, done } = await a.start(source.factory, { key: chat });
        expect(await b.active(chat)).toBe(id);
        source.push('Hel');
        source.push('lo');
        const resume = await b.resume(chat);
        expect(resume).toBeDefined();
        const controller = new AbortController();
        const replay = resume!(controller.signal)[Symbol.asyncIterator]();
        // From the first chunk, then live.
        expect((await replay.next()).value).toMatchObject({ index: 0, token: 'Hel' });
        expect((await replay.next()).value).toMatchObject({ index: 1, token: 'lo' });
        source.push(' you');
        expect((await replay.next()).value).toMatchObject({ index: 2, token: ' you' });
        source.finish();
        expect((await replay.next()).value).toMatchObject({ index: 3, finishReason: 'stop' });
        expect((await replay.next()).done).toBe(true);
        expect((await done).outcome).toBe('completed');
        await until(async () => (await b.active(chat)) === undefined);
        expect(await a.active(chat)).toBeUndefined();
        expect(await b.resume(chat)).toBeUndefined();
      }));

    it('a later stream of the same key replaces the earlier one; other keys are untouched', () =>
      withInstances(async (a, b) => {
        const chat = `chat-${crypto.randomUUID()}`;
        const other = `chat-${crypto.randomUUID()}`;
        const first = controlledSource();
        const second = controlledSource();
        const third = controlledSource();
        const one = await a.start(first.factory, { key: chat });
        const two = await b.start(second.factory, { key: chat });
        const three = await a.start(third.factory, { key: other });
        expect(await a.active(chat)).toBe(two.id);
        expect(await b.active(other)).toBe(three.id);
        // The earlier stream ending does not clear the later one's pointer.
        first.finish();
        await one.done;
        expect(await a.active(chat)).toBe(two.id);
        second.finish();
        third.finish();
        await Promise.all([two.done, three.done]);
      }));

    it('a cancelled or failed stream is no longer active', () =>
      withInstances(async (a, b) => {
        const chat = `chat-${crypto.randomUUID()}`;
        const source = controlledSource();
        const { id, done } = await a.start(source.factory, { key: chat });
        expect(await b.cancel((await b.active(chat))!)).toBe(true);
        expect((await done).outcome).toBe('cancelled');
        expect(await b.active(chat)).toBeUndefined();
        const failing = controlledSource();
        const again = await b.start(failing.factory, { key: chat });
        expect(again.id).not.toBe(id);
        failing.fail(new Error('boom'));
        expect((await again.done).outcome).toBe('failed');
        expect(await a.active(chat)).toBeUndefined();
      }));
  });
}

describeActiveStreams('memoryStore shared by two relays', async () => {
  const store = memoryStore();
  return [store, store, () => store.close()];
});

const redis = redisAvailable({ announce: false });
describe.skipIf(!redis)('on Redis', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    await server?.stop();
  });
  describeActiveStreams('redisStore, one client per instance', async () => {
    const prefix = `active-${crypto.randomUUID()}:`;
    const made = [new Redis(server.url), new Redis(server.url)];
    clients.push(...made);
    const stores = made.map((client) => redisStore(client, { prefix }));
    return [stores[0]!, stores[1]!, async () => void (await Promise.all(stores.map((store) => store.close())))];
  });
});

describe('relay.start(…, { key }), relay.active and relay.resume', () => {
  it('keeps the pointer of a stream that lives longer than ttlMs (refreshed by the heartbeats)', async () => {
    const relay = createRelay({ ttlMs: 90, livenessMs: 30 });
    try {
      const source = controlledSource();
      const { id, done } = await relay.start(source.factory, { key: 'long-chat' });
      for (let round = 0; round < 6; round++) {
        source.push(`t${round}`);
        await sleep(60);
      }
      expect(await relay.active('long-chat')).toBe(id);
      source.finish();
      await done;
    } finally {
      await relay.close();
    }
  });

  it('checks the key and the store', async () => {
    const relay = createRelay();
    const source = controlledSource();
    await expect(relay.start(source.factory, { key: 'a b' })).rejects.toThrow(TypeError);
    await expect(relay.start(source.factory, { key: 42 as never })).rejects.toThrow(/`key`/);
    await expect(relay.active(42 as never)).rejects.toThrow(TypeError);
    // A key that cannot name a stream has no active stream.
    expect(await relay.active('a b')).toBeUndefined();
    await relay.close();
    const bare = createRelay({ store: bind(memoryStore()) as RelayStore });
    await expect(bare.start(source.factory, { key: 'chat' })).rejects.toThrow(/setActive\(\)/);
    await expect(bare.active('chat')).rejects.toThrow(/getActive\(\)/);
    await bare.close();
  });

  it('hides a stream the caller may not read (authorize)', async () => {
    const relay = createRelay({ authorize: (stream, user) => stream.metadata.user === user });
    try {
      const source = controlledSource();
      const { id } = await relay.start(source.factory, { key: 'c1', metadata: { user: 'ann' } });
      expect(await relay.active('c1', { context: 'ann' })).toBe(id);
      expect(await relay.active('c1', { context: 'bob' })).toBeUndefined();
      expect(await relay.resume('c1', { context: 'bob' })).toBeUndefined();
      source.push('x');
      const resume = await relay.resume('c1', { context: 'ann' });
      const replay = resume!(new AbortController().signal)[Symbol.asyncIterator]();
      expect((await replay.next()).value).toMatchObject({ token: 'x' });
      source.finish();
      const rest = await drain({ [Symbol.asyncIterator]: () => replay });
      expect(rest.chunks).toMatchObject([{ token: '', finishReason: 'stop' }]);
    } finally {
      await relay.close();
    }
  });
});

/** A store's methods without setActive/getActive, bound to it. */
function bind(store: RelayStore): Partial<RelayStore> {
  const methods: Record<string, unknown> = {};
  for (const name of ['create', 'append', 'end', 'read', 'info', 'heartbeat', 'attach', 'detach', 'watch', 'cancel', 'acquireSlot', 'refreshSlot', 'releaseSlot', 'close'] as const) {
    methods[name] = (store[name] as (...args: unknown[]) => unknown).bind(store);
  }
  return methods as Partial<RelayStore>;
}
