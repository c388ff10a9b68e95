import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { createRelay, isStoreUnavailableError } from 'tokenrelay/relay';
import { redisStore } from 'tokenrelay/redis';
import { redisAvailable, startRedisServer, startTcpProxy, type RedisServer, type TcpProxy } from '../helpers/redis-server.js';
import { controlledSource, drain, take } from './helpers.js';

// A real redis-server that the tests cut off (a loopback proxy resets and refuses connections:
// data kept) or kill with SIGKILL and restart on the same port (persistence off: data lost).
// Two instances (two relays, each with its own client and store) share it.

const available = redisAvailable({ announce: false });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let prefixes = 0;
const freshPrefix = () => `outage${process.pid}-${++prefixes}:`;

function abortedAt(signal: AbortSignal): Promise<number> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(performance.now()), { once: true }));
}

function expectGapFree(chunks: TokenChunk[], text: string): void {
  expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
  expect(chunks.map((chunk) => chunk.token).join('')).toBe(text);
}

describe.skipIf(!available)('relay over Redis, through a store outage', () => {
  let server: RedisServer;
  let proxy: TcpProxy;
  let admin: Redis;
  const clients: Redis[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  type ClientOptions = { maxRetriesPerRequest?: number; connectionName?: string };
  const connect = (url: string, options: ClientOptions = {}): Redis => {
    const made = new Redis(url, options);
    made.on('error', () => undefined); // connection errors during the outage are expected
    clients.push(made);
    return made;
  };

  /** Two instances on the same Redis (and prefix), each with its own client. */
  function twoInstances(url: string, livenessMs: number, options: ClientOptions = {}) {
    const prefix = freshPrefix();
    const stores = [redisStore(connect(url, options), { prefix }), redisStore(connect(url, options), { prefix })] as const;
    const producer = createRelay({ store: stores[0], livenessMs, graceMs: Infinity });
    const subscriber = createRelay({ store: stores[1], livenessMs });
    return {
      prefix,
      producer,
      subscriber,
      async close() {
        await Promise.all([producer.close(), subscriber.close()]);
        await Promise.all(stores.map((store) => store.close()));
      },
    };
  }

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    admin = connect(server.url, { connectionName: 'admin' });
  });
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((made) => made.quit().catch(() => made.disconnect())));
    await proxy?.close();
    await server?.stop();
  });

  it.each([
    ['default client options (commands wait in the offline queue)', {}],
    ['maxRetriesPerRequest: 0 (commands fail at once)', { maxRetriesPerRequest: 0 }],
  ] as const)(
    'a network blip shorter than livenessMs, %s: the stream survives on both instances, complete, gap-free, stored once',
    async (_, options) => {
      const livenessMs = 3_000;
      const setup = twoInstances(proxy.url, livenessMs, options);
      const source = controlledSource();
      const { id, done } = await setup.producer.start(source.factory);
      const reading = drain(setup.subscriber.subscribe(id));
      const words = Array.from({ length: 40 }, (_, n) => `w${n} `);
      for (const word of words.slice(0, 20)) source.push(word);
      await sleep(100);
      await proxy.cut();
      for (const word of words.slice(20)) source.push(word);
      await sleep(livenessMs / 4);
      await proxy.restore();
      source.finish();
      const { chunks, error } = await reading;
      expect(error).toBeUndefined();
      expectGapFree(chunks, words.join(''));
      expect((await done).outcome).toBe('completed');
      expect(source.state.signal?.aborted).toBe(false);
      // 41 chunks and the end marker, each entry once.
      expect(await admin.xlen(`${setup.prefix}{${id}}:c`)).toBe(42);
      await setup.close();
    },
  );

  it('redis-server killed for longer than livenessMs: the producer aborts its provider request within about livenessMs, the other instance’s subscriber gets StoreUnavailableError; new streams work once Redis is back', async () => {
    const livenessMs = 1_500;
    const setup = twoInstances(server.url, livenessMs);
    const source = controlledSource();
    const { id, done } = await setup.producer.start(source.factory);
    const first = setup.subscriber.subscribe(id);
    source.push('a');
    expect((await take(first, 1)).map((chunk) => chunk.token)).toEqual(['a']);
    const live = drain(setup.subscriber.subscribe(id, { after: 0 }));
    await sleep(50);
    const aborted = abortedAt(source.state.signal!);
    await server.kill();
    const killedAt = performance.now();
    const tokenTimer = setInterval(() => source.push('x'), 50); // the provider keeps sending
    let restartedAt: number;
    try {
      const producerMs = (await aborted) - killedAt;
      const { error } = await live;
      const subscriberMs = performance.now() - killedAt;
      const result = await done;
      const doneMs = performance.now() - killedAt;
      console.info(
        `redis-server killed: producer aborted ${producerMs.toFixed(0)} ms, subscriber (other instance) got ${String((error as Error | undefined)?.name)} ` +
          `${subscriberMs.toFixed(0)} ms, done ${doneMs.toFixed(0)} ms after SIGKILL (livenessMs ${livenessMs})`,
      );
      expect(isStoreUnavailableError(source.state.signal?.reason)).toBe(true);
      expect(producerMs).toBeGreaterThanOrEqual(livenessMs - 50);
      expect(producerMs).toBeLessThan(livenessMs + 500);
      expect(isStoreUnavailableError(error)).toBe(true);
      expect(subscriberMs).toBeLessThan((livenessMs * 4) / 3 + 500);
      expect(result.outcome).toBe('failed');
      expect(isStoreUnavailableError(result.error)).toBe(true);
      expect(doneMs).toBeLessThan(2 * livenessMs + 500);
    } finally {
      clearInterval(tokenTimer);
      await server.restart();
      restartedAt = performance.now();
    }

    // The store is back (empty): a new stream goes through at the clients' next reconnect.
    let attempts = 0;
    for (;;) {
      attempts++;
      const again = controlledSource();
      try {
        const next = await setup.producer.start(again.factory);
        again.push('back');
        again.finish();
        const { chunks, error } = await drain(setup.subscriber.subscribe(next.id));
        expect(error).toBeUndefined();
        expectGapFree(chunks.slice(0, 1), 'back');
        expect((await next.done).outcome).toBe('completed');
        break;
      } catch (error) {
        if (!isStoreUnavailableError(error) || attempts >= 10) throw error;
      }
    }
    console.info(`redis-server back: a new stream completed ${(performance.now() - restartedAt).toFixed(0)} ms after the restart (${attempts} attempt(s))`);
    expect(performance.now() - restartedAt).toBeLessThan(5_000);
    await setup.close();
  });
});
