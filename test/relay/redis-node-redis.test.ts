// redisStore with node-redis (`redis`: createClient) on a real single redis-server: the store's
// conformance suite over RESP2 and RESP3, two instances, and connections: the store closes only
// the duplicates it opened. The cluster side (createCluster) is in redis-cluster.test.ts.
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay } from 'tokenrelay/relay';
import { redisStore, type NodeRedisStoreClient } from 'tokenrelay/redis';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { controlledSource, drain, take } from './helpers.js';
import { describeStoreConformance } from './store-conformance.js';

// The store's structural client type accepts a real node-redis client.
const _typeCheck: (client: RedisClientType) => NodeRedisStoreClient = (client) => client;
void _typeCheck;

const available = redisAvailable({ announce: false });
const TTL = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let prefixes = 0;
const freshPrefix = () => `nr${process.pid}-${++prefixes}:`;

describe.skipIf(!available)('redisStore with node-redis', () => {
  let server: RedisServer;
  const clients: Array<{ close(): Promise<unknown>; destroy(): void }> = [];
  async function connect(options: { RESP?: 2 | 3; name?: string } = {}) {
    const client = createClient({ url: server.url, ...options });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  }
  let client: Awaited<ReturnType<typeof connect>>;
  let resp3: Awaited<ReturnType<typeof connect>>;

  beforeAll(async () => {
    server = await startRedisServer();
    client = await connect();
    resp3 = await connect({ RESP: 3 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((made) => made.close().catch(() => made.destroy())));
    await server?.stop();
  });

  describeStoreConformance('redisStore, node-redis client (RESP2)', () => redisStore(client, { prefix: freshPrefix() }), { ttlMs: TTL });
  describeStoreConformance(
    'redisStore, node-redis client (RESP3), 2 blocking connections',
    () => redisStore(resp3, { prefix: freshPrefix(), blockingConnections: 2 }),
    { ttlMs: TTL },
  );

  it('two instances on node-redis: resume on B, cancel from B stops A', async () => {
    const prefix = freshPrefix();
    const stores = [redisStore(await connect(), { prefix }), redisStore(await connect(), { prefix })] as const;
    const a = createRelay({ store: stores[0], graceMs: Infinity });
    const b = createRelay({ store: stores[1] });
    const source = controlledSource();
    const { id, done } = await a.start(source.factory);
    for (let n = 0; n < 5; n++) source.push(`t${n}`);
    const first = await take(a.subscribe(id), 3);
    const rest = drain(b.subscribe(id, { after: first.at(-1)!.index }));
    await sleep(30);
    source.push('t5');
    await sleep(30);
    expect(await b.cancel(id)).toBe(true);
    expect((await done).outcome).toBe('cancelled');
    expect([...first, ...(await rest).chunks].map((chunk) => chunk.token).join('')).toBe('t0t1t2t3t4t5');
    await Promise.all([a.close(), b.close()]);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('closes every connection it opened, and only those: CLIENT LIST after close(), the user’s client still open', async () => {
    const user = await connect({ name: 'user' });
    const admin = await connect({ name: 'admin' });
    const count = async () => String(await admin.sendCommand(['CLIENT', 'LIST'])).split('\n').filter((line) => line.trim() !== '').length;
    const before = await count();
    const store = redisStore(user, { prefix: freshPrefix(), blockingConnections: 2 });
    const relay = createRelay({ store, graceMs: Infinity });
    const sources = Array.from({ length: 10 }, () => controlledSource());
    const streams = await Promise.all(sources.map((source) => relay.start(source.factory)));
    const readings = streams.map(({ id }) => drain(relay.subscribe(id)));
    for (const source of sources) source.push('x');
    await sleep(50);
    expect((await count()) - before).toBe(store.connections());
    expect(store.connections()).toBeLessThanOrEqual(3);
    for (const source of sources) source.finish();
    await Promise.all(readings);
    await relay.close();
    await store.close();
    expect(store.connections()).toBe(0);
    const deadline = performance.now() + 3_000;
    while ((await count()) !== before && performance.now() < deadline) await sleep(10);
    expect(await count()).toBe(before);
    expect(user.isOpen).toBe(true);
    expect(await user.sendCommand(['PING'])).toBe('PONG');
  });
});
