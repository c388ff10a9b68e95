import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStreamAbortedError, type TokenChunk, type TokenSourceFactory } from 'tokenrelay';
import {
  createRelay,
  isInvalidCursorError,
  isProducerLostError,
  isStreamLimitError,
  isStreamNotFoundError,
  limitStreams,
} from 'tokenrelay/relay';
import { redisStore, type RedisStore, type RedisStoreClient } from 'tokenrelay/redis';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { controlledSource, drain, take, tokenSource } from './helpers.js';
import { describeStoreConformance } from './store-conformance.js';

// The store's structural client type accepts a real ioredis client.
const _typeCheck: (client: Redis) => RedisStoreClient = (client) => client;
void _typeCheck;

const available = redisAvailable({ announce: true });
// The conformance suite's shortest TTL: margins of one TTL must survive a busy machine (the suite's waits are a few TTLs).
const TTL = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let prefixes = 0;
const freshPrefix = () => `t${process.pid}-${++prefixes}:`;

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Connections the server has, from CLIENT LIST. */
async function serverConnections(admin: Redis): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  return list.split('\n').filter((line) => line.trim() !== '').length;
}

/** A provider that pauses `delays[i]` ms before token `i`. */
function pacedSource(tokens: string[], delays: number[]): TokenSourceFactory {
  return async function* (signal) {
    for (const [index, token] of tokens.entries()) {
      const delay = delays[index % Math.max(1, delays.length)] ?? 0;
      if (delay > 0) await sleep(delay);
      if (signal.aborted) throw signal.reason;
      yield { token, index, timestamp: 0, type: 'text' };
    }
    yield { token: '', index: tokens.length, timestamp: 0, type: 'text', finishReason: 'stop' };
  };
}

describe.skipIf(!available)('redisStore', () => {
  let server: RedisServer;
  let client: Redis;
  let admin: Redis;
  const clients: Redis[] = [];
  type ClientOptions = { protocol?: 2 | 3; replyMapping?: 'resp3'; keyPrefix?: string; connectionName?: string };
  const connect = (options: ClientOptions = {}): Redis => {
    const made = new Redis(server.url, options);
    made.on('error', () => undefined); // a failing test's leftovers must not crash the run after the server stopped
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    client = connect();
    admin = connect({ connectionName: 'admin' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((made) => made.quit().catch(() => made.disconnect())));
    await server?.stop();
  });

  describeStoreConformance('redisStore', () => redisStore(client, { prefix: freshPrefix() }), { ttlMs: TTL });
  describeStoreConformance('redisStore, RESP2 client', () => redisStore(connect({ protocol: 2 }), { prefix: freshPrefix() }), {
    ttlMs: TTL,
  });
  describeStoreConformance(
    'redisStore, RESP3 reply mapping, 3 blocking connections',
    () => redisStore(connect({ replyMapping: 'resp3' }), { prefix: freshPrefix(), blockingConnections: 3 }),
    { ttlMs: TTL },
  );
  describeStoreConformance('redisStore, client with a keyPrefix', () => redisStore(connect({ keyPrefix: 'app:' }), { prefix: freshPrefix() }), {
    ttlMs: TTL,
  });

  describe('arguments', () => {
    it('rejects a client that is not an ioredis client, and bad options, with TypeErrors', () => {
      expect(() => redisStore(undefined as never)).toThrow(
        'Expected `client` to be an ioredis client or Cluster, or a node-redis client or cluster, got undefined',
      );
      expect(() => redisStore({ call: () => undefined } as never)).toThrow(TypeError);
      expect(() => redisStore({ sendCommand: () => undefined } as never)).toThrow(TypeError);
      expect(() => redisStore(client, null as never)).toThrow('Expected `options` to be an object, got null');
      expect(() => redisStore(client, { prefix: 'a{b}' })).toThrow(/Expected `prefix` to be a string .* got "a\{b\}"/);
      expect(() => redisStore(client, { prefix: 3 as never })).toThrow(TypeError);
      expect(() => redisStore(client, { maxChunks: 0 })).toThrow('Expected `maxChunks` to be an integer >= 1, got 0');
      expect(() => redisStore(client, { maxChunks: 2 ** 40 })).toThrow('Expected `maxChunks` to be at most 2^31');
      expect(() => redisStore(client, { blockingConnections: 1.5 })).toThrow(TypeError);
      expect(() => redisStore(client, { blockingConnections: 65 })).toThrow('Expected `blockingConnections` to be at most 64, got 65');
    });

    it('rejects an out-of-order append and a bad cursor, and answers a tampered cursor with InvalidCursorError', async () => {
      const store = redisStore(client, { prefix: freshPrefix() });
      await store.create('s', { ttlMs: 60_000, metadata: {} });
      await expect(store.append('s', { token: 'x', index: 1, timestamp: 0, type: 'text' })).rejects.toThrow('Expected `chunk.index` to be 0, got 1');
      await expect(store.read('s', -2, { limit: 1, waitMs: 0 })).rejects.toThrow('Expected `after` to be an integer >= -1, got -2');
      await expect(store.read('s', 1.5, { limit: 1, waitMs: 0 })).rejects.toThrow(TypeError);
      const relay = createRelay({ store });
      const { id } = await relay.start(tokenSource(['a', 'b']));
      await waitFor(async () => (await store.info(id))?.end !== undefined);
      for (const cursor of ['abc', '-1', '1e3', '05', ' 5', '99999999999999999999', '9007199254740993', '3', -1, 1.5, 3]) {
        const { error } = await drain(relay.subscribe(id, { after: cursor }));
        expect(isInvalidCursorError(error), String(cursor)).toBe(true);
      }
      expect((await drain(relay.subscribe(id, { after: '2' }))).chunks).toEqual([]);
      await relay.close();
      await store.close();
    });

    it('answers an unknown, malformed or expired id with StreamNotFoundError', async () => {
      const store = redisStore(client, { prefix: freshPrefix() });
      const relay = createRelay({ store, ttlMs: 100 });
      const other = await relay.start(tokenSource(['x', 'y', 'z', 'w']));
      const { id, done } = await relay.start(tokenSource(['a']));
      await done;
      await other.done;
      expect((await drain(relay.subscribe(id))).chunks.map((chunk) => chunk.token)).toEqual(['a', '']);
      // A cursor that is valid for another (longer) stream is beyond this one.
      expect(isInvalidCursorError((await drain(relay.subscribe(id, { after: 3 }))).error)).toBe(true);
      for (const bad of ['nope', '../etc', 'x'.repeat(300), '{braces}']) {
        expect(isStreamNotFoundError((await drain(relay.subscribe(bad))).error), bad).toBe(true);
      }
      await sleep(250);
      expect(isStreamNotFoundError((await drain(relay.subscribe(id))).error)).toBe(true);
      expect(await relay.cancel(id)).toBe(false);
      await relay.close();
      await store.close();
    });
  });

  describe('limits and keys', () => {
    it('fails the append past maxChunks with StreamLimitError, never trimming what a resume needs', async () => {
      const store = redisStore(client, { prefix: freshPrefix(), maxChunks: 5 });
      const relay = createRelay({ store });
      const tokens = Array.from({ length: 10 }, (_, n) => `t${n}`);
      const { id, done } = await relay.start(tokenSource(tokens));
      const result = await done;
      expect(result.outcome).toBe('failed');
      expect(result.chunks).toBe(5);
      expect(isStreamLimitError(result.error)).toBe(true);
      expect(result.error).toMatchObject({ limit: 'chunks' });
      const replay = await drain(relay.subscribe(id));
      expect(replay.chunks.map((chunk) => chunk.token)).toEqual(tokens.slice(0, 5));
      expect(isStreamLimitError(replay.error)).toBe(true);
      await relay.close();
      await store.close();
    });

    it('puts a TTL on every key it writes (stream, meta, heartbeat, presence, cancel flag, slots, wake-ups)', async () => {
      const prefix = freshPrefix();
      const store = redisStore(client, { prefix });
      const relay = createRelay({ store, graceMs: Infinity });
      const limiter = limitStreams({ store, maxPerKey: 5, key: () => 'user' });
      const sources = [controlledSource(), controlledSource()];
      const streams = [];
      const readings = [];
      for (const source of sources) {
        const stream = await relay.start(await limiter.wrap({}, source.factory));
        streams.push(stream);
        readings.push(drain(relay.subscribe(stream.id)));
        source.push('a');
        await sleep(30); // the second subscriber joins a blocked XREAD: a wake-up
      }
      const scan = async () => {
        const found: string[] = [];
        let cursor = '0';
        for (let round = 0; round < 100; round++) {
          const [next, page] = (await admin.call('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
          found.push(...page);
          cursor = next;
          if (cursor === '0') break;
        }
        return found;
      };
      // A wake-up is written only when a subscriber joins while the follower's XREAD is blocked;
      // on a loaded machine the first XREAD may not have blocked yet, so join again until one is.
      for (let tries = 0; tries < 40 && !(await scan()).some((key) => key.includes(':wake:')); tries++) {
        readings.push(drain(relay.subscribe(streams[1]!.id)));
        await sleep(50);
      }
      await relay.cancel(streams[0]!.id);
      await streams[0]!.done;
      const keys = await scan();
      const kinds = new Set(keys.map((key) => (key.includes(':wake:') ? 'wake' : key.slice(key.lastIndexOf(':') + 1))));
      expect(kinds).toEqual(new Set(['m', 'c', 'h', 'p', 'x', '{user}', 'wake']));
      for (const key of keys) expect(await admin.pttl(key), key).toBeGreaterThan(0);
      sources[1]!.finish();
      await Promise.all(readings);
      await relay.close();
      await store.close();
    });

    it('works with a client whose commands need a script the server forgot (SCRIPT FLUSH)', async () => {
      const store = redisStore(client, { prefix: freshPrefix() });
      const relay = createRelay({ store });
      await drain(relay.subscribe((await relay.start(tokenSource(['a']))).id));
      await admin.call('SCRIPT', 'FLUSH');
      const { id } = await relay.start(tokenSource(['b', 'c']));
      expect((await drain(relay.subscribe(id))).chunks.map((chunk) => chunk.token).join('')).toBe('bc');
      await relay.close();
      await store.close();
    });
  });

  describe('relay over Redis', () => {
    it('resume property: random streams, disconnect points and reconnect delays, across two instances → exact text, gap-free indexes', async () => {
      const graceMs = 100;
      const stores = [redisStore(connect(), { prefix: 'property:' }), redisStore(connect(), { prefix: 'property:' })] as const;
      const relays = stores.map((store) => createRelay({ store, graceMs, livenessMs: 3_000 }));
      let runs = 0;
      let abandoned = 0;
      const started = performance.now();
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.string({ unit: 'grapheme', maxLength: 5 }), { maxLength: 24, size: 'max' }),
          fc.array(fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 4 }, { arbitrary: fc.integer({ min: 20, max: 30 }), weight: 1 }), {
            maxLength: 8,
            size: 'max',
          }),
          fc.array(
            fc.record({
              read: fc.integer({ min: 0, max: 6 }),
              awayMs: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 30 }), weight: 3 }, { arbitrary: fc.integer({ min: 120, max: 150 }), weight: 2 }),
              on: fc.integer({ min: 0, max: 1 }),
            }),
            { maxLength: 6, size: 'max' },
          ),
          fc.integer({ min: 0, max: 1 }),
          async (tokens, delays, visits, producerOn) => {
            runs++;
            const { id, done } = await relays[producerOn]!.start(pacedSource(tokens, delays));
            const received: TokenChunk[] = [];
            let last: number | undefined;
            for (const visit of visits) {
              const chunks = await take(relays[visit.on]!.subscribe(id, { after: last }), visit.read).catch(() => []);
              received.push(...chunks);
              last = chunks.at(-1)?.index ?? last;
              await sleep(visit.awayMs);
            }
            const rest = await drain(relays[1 - producerOn]!.subscribe(id, { after: last }));
            received.push(...rest.chunks);
            const result = await done;

            expect(received.map((chunk) => chunk.index)).toEqual(received.map((_, index) => index));
            expect(received.length).toBe(result.chunks);
            if (result.outcome === 'completed') {
              expect(rest.error).toBeUndefined();
              expect(received.map((chunk) => chunk.token).join('')).toBe(tokens.join(''));
              expect(received.at(-1)?.finishReason).toBe('stop');
            } else {
              abandoned++;
              expect(result.outcome).toBe('abandoned');
              expect(isStreamAbortedError(rest.error)).toBe(true);
              expect(tokens.join('').startsWith(received.map((chunk) => chunk.token).join(''))).toBe(true);
              expect(visits.some((visit) => visit.awayMs >= graceMs)).toBe(true);
            }
          },
        ),
        { seed: 20_240_917, numRuns: 50 },
      );
      console.info(
        `redis resume property: ${runs} runs (${abandoned} abandoned by grace) in ${(performance.now() - started).toFixed(0)} ms, ` +
          `text exact and indexes gap-free in every run`,
      );
      await Promise.all(relays.map((relay) => relay.close()));
      await Promise.all(stores.map((store) => store.close()));
    }, 60_000);

    it('a subscriber on another instance gets ProducerLostError when the producer stops beating, within 2 × livenessMs', async () => {
      const livenessMs = 300;
      const here = redisStore(connect(), { prefix: 'lost:' });
      const there = redisStore(connect(), { prefix: 'lost:' });
      const producer = createRelay({ store: here, livenessMs, graceMs: Infinity });
      const elsewhere = createRelay({ store: there, livenessMs });
      const source = controlledSource();
      const { id } = await producer.start(source.factory);
      source.push('a');
      const subscription = elsewhere.subscribe(id);
      expect((await take(subscription, 1)).map((chunk) => chunk.token)).toEqual(['a']);
      // The producer's instance "dies": its heartbeats stop (hang) and it writes nothing more.
      here.heartbeat = () => new Promise(() => undefined);
      const stopped = performance.now();
      const { error } = await drain(elsewhere.subscribe(id, { after: 0 }));
      const detectedMs = performance.now() - stopped;
      console.info(`producer lost (in process): detected ${detectedMs.toFixed(0)} ms after the heartbeats stopped (livenessMs ${livenessMs})`);
      expect(isProducerLostError(error)).toBe(true);
      expect(detectedMs).toBeLessThan(2 * livenessMs + 150);
      await subscription.return?.();
      source.finish();
      await producer.close();
      await elsewhere.close();
      await Promise.all([here.close(), there.close()]);
    });

    it('a cancel from another instance stops the producer; a store shared by many subscribers keeps its connections bounded', async () => {
      const producerStore = redisStore(connect(), { prefix: 'cancel:' });
      const subscriberStore = redisStore(connect(), { prefix: 'cancel:' });
      const producer = createRelay({ store: producerStore, graceMs: Infinity });
      const elsewhere = createRelay({ store: subscriberStore });
      const sources = Array.from({ length: 100 }, () => controlledSource());
      const streams = await Promise.all(sources.map((source) => producer.start(source.factory)));
      const readings = streams.map(({ id }) => drain(elsewhere.subscribe(id)));
      for (let round = 0; round < 5; round++) {
        for (const source of sources) source.push(`r${round}`);
        await sleep(10);
      }
      const cancelledAt = performance.now();
      expect(await elsewhere.cancel(streams[0]!.id)).toBe(true);
      expect((await streams[0]!.done).outcome).toBe('cancelled');
      const cancelMs = performance.now() - cancelledAt;
      expect(sources[0]!.state.signal?.aborted).toBe(true);
      for (const source of sources.slice(1)) source.finish();
      const results = await Promise.all(readings);
      expect(isStreamAbortedError(results[0]!.error)).toBe(true);
      for (const result of results.slice(1)) {
        expect(result.error).toBeUndefined();
        expect(result.chunks.map((chunk) => chunk.token).join('')).toBe('r0r1r2r3r4');
      }
      console.info(
        `cancel across instances: producer aborted ${cancelMs.toFixed(1)} ms after relay.cancel; ` +
          `100 live subscribers used ${subscriberStore.connections()} connection(s) of the store, the producer side ${producerStore.connections()}`,
      );
      expect(subscriberStore.connections()).toBeLessThanOrEqual(2);
      expect(producerStore.connections()).toBeLessThanOrEqual(1);
      await Promise.all([producer.close(), elsewhere.close()]);
      await Promise.all([producerStore.close(), subscriberStore.close()]);
    });
  });

  describe('following live streams', () => {
    it('many readers of one stream, joining live at different cursors on one blocking connection, each get exactly their rest', async () => {
      const store = redisStore(connect(), { prefix: freshPrefix() });
      const relay = createRelay({ store, graceMs: Infinity });
      const source = controlledSource();
      const { id } = await relay.start(source.factory);
      const text: string[] = [];
      const readings: Array<Promise<{ after: number; chunks: TokenChunk[]; error?: unknown }>> = [];
      for (let n = 0; n < 60; n++) {
        text.push(`t${n} `);
        source.push(`t${n} `);
        if (n % 3 === 0) {
          const written = (await store.info(id))!.lastIndex;
          const after = (n * 7_919) % (written + 1); // spread over what is written, deterministically
          readings.push(drain(relay.subscribe(id, { after })).then((result) => ({ after, ...result })));
        }
        await sleep(n % 7 === 0 ? 5 : 0);
      }
      source.finish();
      for (const { after, chunks, error } of await Promise.all(readings)) {
        expect(error).toBeUndefined();
        expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, n) => after + 1 + n));
        expect(chunks.map((chunk) => chunk.token).join('')).toBe(text.slice(after + 1).join(''));
      }
      expect(store.connections()).toBe(2); // one blocking connection for all 20 readers, one for pub/sub
      await relay.close();
      await store.close();
    });
  });

  describe('connections', () => {
    it('closes every connection it opened, and only those: CLIENT LIST shows the user’s connections after close()', async () => {
      const user = connect({ connectionName: 'user' });
      await user.ping();
      const before = await serverConnections(admin);
      const store: RedisStore = redisStore(user, { prefix: freshPrefix(), blockingConnections: 3 });
      const relay = createRelay({ store, graceMs: Infinity });
      const sources = Array.from({ length: 20 }, () => controlledSource());
      const streams = await Promise.all(sources.map((source) => relay.start(source.factory)));
      const readings = streams.map(({ id }) => drain(relay.subscribe(id)));
      for (const source of sources) source.push('x');
      await sleep(50);
      const during = await serverConnections(admin);
      expect(during - before).toBe(store.connections());
      expect(store.connections()).toBeLessThanOrEqual(4);
      for (const source of sources.slice(1)) source.finish();
      await Promise.all(readings.slice(1));
      // A subscriber still following when the store closes ends at once, with a typed error.
      const closedAt = performance.now();
      await store.close();
      const first = await readings[0]!;
      expect(isStreamAbortedError(first.error)).toBe(true);
      expect((first.error as Error).message).toBe('The relay store was closed');
      expect(performance.now() - closedAt).toBeLessThan(500);
      await relay.close();
      expect(store.connections()).toBe(0);
      await waitFor(async () => (await serverConnections(admin)) === before);
      console.info(`connections: ${during - before} opened by a store with blockingConnections 3 (20 live streams); after close() the server is back to the ${before} open before`);
      expect(user.status).toBe('ready'); // the user's client stays open
      expect(await user.ping()).toBe('PONG');
    });
  });
});
