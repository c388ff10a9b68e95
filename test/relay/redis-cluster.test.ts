// redisStore on a real 3-master Redis Cluster (redis-server --cluster-enabled yes, joined with
// redis-cli --cluster create), with ioredis' Cluster and node-redis' createCluster: the store's
// conformance suite, two instances (two relays, each with its own client and store), and what a
// stream costs in Redis commands, keys and bytes, measured with INFO commandstats and MEMORY USAGE.
import { Cluster, Redis } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStreamAbortedError, type TokenChunk } from 'tokenrelay';
import { createRelay, isProducerLostError, isStreamLimitError, limitStreams } from 'tokenrelay/relay';
import { redisStore, type RedisStore, type RedisStoreInput } from 'tokenrelay/redis';
import { redisClusterAvailable, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { controlledSource, drain, take, tokenSource } from './helpers.js';
import { describeStoreConformance } from './store-conformance.js';

const available = redisClusterAvailable({ announce: true });
const TTL = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let prefixes = 0;
const freshPrefix = () => `cl${process.pid}-${++prefixes}:`;

type Kind = 'ioredis Cluster' | 'node-redis cluster';

describe.skipIf(!available)('redisStore on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const closers: Array<() => Promise<unknown>> = [];

  async function connect(kind: Kind): Promise<RedisStoreInput> {
    if (kind === 'ioredis Cluster') {
      const client = new Cluster(cluster.nodes.map((node) => ({ ...node })));
      client.on('error', () => undefined);
      closers.push(() => client.quit().catch(() => client.disconnect()));
      return client;
    }
    const client = createCluster({ rootNodes: cluster.rootNodes.map((node) => ({ ...node })) });
    client.on('error', () => undefined);
    await client.connect();
    closers.push(() => client.close().catch(() => client.destroy()));
    return client;
  }

  /** INFO commandstats of every master, summed: calls per command. */
  async function commandStats(): Promise<Map<string, number>> {
    const calls = new Map<string, number>();
    for (const port of cluster.ports) {
      for (const [, name, count] of (await cluster.cli(port, 'INFO', 'commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
        calls.set(name!, (calls.get(name!) ?? 0) + Number(count));
      }
    }
    return calls;
  }

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(closers.map((close) => close()));
    await cluster?.stop();
  });

  for (const kind of ['ioredis Cluster', 'node-redis cluster'] as const) {
    describe(kind, () => {
      let client: RedisStoreInput;
      beforeAll(async () => {
        client = await connect(kind);
      });

      describeStoreConformance(`redisStore, ${kind}`, () => redisStore(client, { prefix: freshPrefix() }), { ttlMs: TTL });

      /** Two instances: a store and a relay each, on clients of their own, sharing a prefix. */
      async function twoInstances(options: { graceMs?: number; livenessMs?: number } = {}) {
        const prefix = freshPrefix();
        const stores = [redisStore(await connect(kind), { prefix }), redisStore(await connect(kind), { prefix })] as const;
        const a = createRelay({ store: stores[0], graceMs: options.graceMs ?? Infinity, livenessMs: options.livenessMs ?? 3_000 });
        const b = createRelay({ store: stores[1], livenessMs: options.livenessMs ?? 3_000 });
        return {
          prefix,
          stores,
          a,
          b,
          async close() {
            await Promise.all([a.close(), b.close()]);
            await Promise.all(stores.map((store) => store.close()));
          },
        };
      }

      it('keeps every key of a stream in one slot, and each stream on the node its slot names', async () => {
        const { prefix, a, close } = await twoInstances();
        const ids: string[] = [];
        for (let n = 0; n < 6; n++) {
          const { id, done } = await a.start(tokenSource(['x', 'y']), { key: `chat-${n}` });
          await done;
          ids.push(id);
        }
        for (const id of ids) {
          const slots = new Set<string>();
          for (const suffix of ['m', 'c', 'h', 'p', 'x', 'e', 'f']) {
            slots.add((await cluster.cli(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', `${prefix}{${id}}:${suffix}`)).trim());
          }
          expect(slots.size).toBe(1);
        }
        // Streams spread over the masters: random ids hash to every node.
        const owners = new Set<number>();
        for (const id of ids) {
          for (const port of cluster.ports) {
            if ((await cluster.cli(port, 'EXISTS', `${prefix}{${id}}:c`)).trim() === '1') owners.add(port);
          }
        }
        expect(owners.size).toBeGreaterThan(1);
        await close();
      });

      it('starts on A, resumes on B: exactly the rest, nothing lost or repeated', async () => {
        const { a, b, close } = await twoInstances();
        const source = controlledSource();
        const { id, done } = await a.start(source.factory);
        const text: string[] = [];
        for (let n = 0; n < 10; n++) source.push((text[n] = `t${n} `));
        const first = await take(a.subscribe(id), 4);
        const rest = drain(b.subscribe(id, { after: first.at(-1)!.index }));
        for (let n = 10; n < 40; n++) {
          source.push((text[n] = `t${n} `));
          if (n % 5 === 0) await sleep(2);
        }
        source.finish();
        const { chunks, error } = await rest;
        expect(error).toBeUndefined();
        const all: TokenChunk[] = [...first, ...chunks];
        expect(all.map((chunk) => chunk.index)).toEqual(all.map((_, index) => index));
        expect(all.map((chunk) => chunk.token).join('')).toBe(text.join(''));
        expect((await done).outcome).toBe('completed');
        await close();
      });

      it('a cancel from B stops A’s producer at once', async () => {
        const { a, b, close } = await twoInstances();
        const source = controlledSource();
        const { id, done } = await a.start(source.factory);
        source.push('a');
        const reading = drain(b.subscribe(id));
        await sleep(50);
        const cancelledAt = performance.now();
        expect(await b.cancel(id)).toBe(true);
        expect((await done).outcome).toBe('cancelled');
        const latencyMs = performance.now() - cancelledAt;
        expect(source.state.signal?.aborted).toBe(true);
        expect(latencyMs).toBeLessThan(200);
        expect(isStreamAbortedError((await reading).error)).toBe(true);
        expect(await b.cancel(id)).toBe(false);
        console.info(`cluster (${kind}): cancel from B aborted A's producer ${latencyMs.toFixed(1)} ms after relay.cancel`);
        await close();
      });

      it('a subscriber on B gets ProducerLostError when A’s producer stops beating, within 2 × livenessMs', async () => {
        const livenessMs = 300;
        const { stores, a, b, close } = await twoInstances({ livenessMs });
        const source = controlledSource();
        const { id } = await a.start(source.factory);
        source.push('a');
        expect((await take(b.subscribe(id), 1)).map((chunk) => chunk.token)).toEqual(['a']);
        stores[0].heartbeat = () => new Promise(() => undefined);
        const stopped = performance.now();
        const { error } = await drain(b.subscribe(id, { after: 0 }));
        expect(isProducerLostError(error)).toBe(true);
        expect(performance.now() - stopped).toBeLessThan(2 * livenessMs + 200);
        source.finish();
        await close();
      });

      it('grace across instances: B’s subscriber leaves → A’s producer is aborted about graceMs later', async () => {
        const graceMs = 300;
        const { a, b, close } = await twoInstances({ graceMs });
        const source = controlledSource();
        const { id, done } = await a.start(source.factory);
        source.push('a');
        const controller = new AbortController();
        const reading = drain(b.subscribe(id, { signal: controller.signal }));
        await sleep(graceMs + 100); // B alone keeps it alive
        expect(source.state.signal?.aborted).not.toBe(true);
        controller.abort();
        const leftAt = performance.now();
        await reading;
        expect((await done).outcome).toBe('abandoned');
        const latencyMs = performance.now() - leftAt;
        expect(latencyMs).toBeGreaterThanOrEqual(graceMs - 20);
        expect(latencyMs).toBeLessThan(graceMs + 200);
        console.info(`cluster (${kind}): grace ended A's producer ${latencyMs.toFixed(0)} ms after B's subscriber left (graceMs ${graceMs})`);
        await close();
      });

      it('limitStreams: per-user slots hold across instances, and a user’s slot key is tagged by the user', async () => {
        const { prefix, stores, a, b, close } = await twoInstances();
        const limiters = stores.map((store) => limitStreams({ store, maxPerKey: 2, key: (user: string) => user }));
        const sources = [controlledSource(), controlledSource(), controlledSource()];
        const first = await a.start(await limiters[0]!.wrap('alice', sources[0]!.factory));
        await b.start(await limiters[1]!.wrap('alice', sources[1]!.factory));
        const refused = await limiters[1]!.wrap('alice', sources[2]!.factory).catch((error: unknown) => error);
        expect(isStreamLimitError(refused)).toBe(true);
        await b.start(await limiters[1]!.wrap('bob', controlledSource().factory)).then(({ id }) => b.cancel(id));
        await a.cancel(first.id);
        await first.done;
        await b.start(await limiters[1]!.wrap('alice', sources[2]!.factory));
        const slotKey = `${prefix}slot:{alice}`;
        const node = cluster.ports[0]!;
        expect((await cluster.cli(node, 'CLUSTER', 'KEYSLOT', slotKey)).trim()).toBe((await cluster.cli(node, 'CLUSTER', 'KEYSLOT', 'alice')).trim());
        for (const source of sources) source.finish();
        await close();
      });

      it('closes what it opened, and only that: the user’s cluster client keeps working', async () => {
        const user = await connect(kind);
        const store: RedisStore = redisStore(user, { prefix: freshPrefix() });
        const relay = createRelay({ store, graceMs: Infinity });
        const sources = Array.from({ length: 10 }, () => controlledSource());
        const streams = await Promise.all(sources.map((source) => relay.start(source.factory)));
        const readings = streams.map(({ id }) => drain(relay.subscribe(id)));
        for (const source of sources) source.push('x');
        await sleep(50);
        expect(store.connections()).toBe(1); // one subscriber client of the store's own, for watch and follow
        for (const source of sources) source.finish();
        for (const reading of await Promise.all(readings)) expect(reading.chunks.map((chunk) => chunk.token).join('')).toBe('x');
        await relay.close();
        await store.close();
        expect(store.connections()).toBe(0);
        const ping = 'call' in user ? await user.call('PING') : await (user as { sendCommand(k: undefined, r: boolean, a: string[]): Promise<unknown> }).sendCommand(undefined, true, ['PING']);
        expect(ping).toBe('PONG');
      });

      it('costs, measured with INFO commandstats and MEMORY USAGE: commands per chunk and per stream, keys and bytes', async () => {
        const { prefix, a, b, close } = await twoInstances();
        const N = 100;
        const tokens = Array.from({ length: N - 1 }, (_, n) => `w${n} `);
        const warm = await a.start(tokenSource(['warm']));
        await drain(b.subscribe(warm.id));
        for (const port of cluster.ports) await cluster.cli(port, 'CONFIG', 'RESETSTAT');
        const source = controlledSource();
        const { id, done } = await a.start(source.factory);
        const reading = drain(b.subscribe(id));
        await sleep(50);
        for (const token of tokens) {
          source.push(token);
          await sleep(1);
        }
        source.finish();
        const { chunks } = await reading;
        await done;
        const stats = await commandStats();
        const keys = ['m', 'c', 'h', 'p', 'x'].map((suffix) => `${prefix}{${id}}:${suffix}`);
        let bytes = 0;
        let present = 0;
        for (const key of keys) {
          for (const port of cluster.ports) {
            const usage = (await cluster.cli(port, 'MEMORY', 'USAGE', key)).trim();
            if (/^\d+$/.test(usage)) {
              bytes += Number(usage);
              present++;
            }
          }
        }
        const total = [...stats.values()].reduce((sum, count) => sum + count, 0) - (stats.get('info') ?? 0) - (stats.get('config') ?? 0);
        const summary = [...stats].filter(([name]) => name !== 'info' && name !== 'config').map(([name, count]) => `${name} ${count}`).join(', ');
        console.info(
          `cluster (${kind}) costs: one stream of ${chunks.length} chunks (producer on A, one live subscriber on B): ${total} commands (${summary}); ` +
            `${(stats.get('evalsha') ?? 0) / chunks.length} EVALSHA per chunk; after the end ${present} keys, ${bytes} bytes (MEMORY USAGE)`,
        );
        expect(chunks.length).toBe(N);
        expect(stats.get('xread') ?? 0).toBe(0);
        // One script per chunk (append, with its SPUBLISH), plus a bounded number per stream.
        expect(stats.get('evalsha') ?? 0).toBeLessThan(N + 20);
        await close();
      });
    });
  }

  it('a single node for comparison (ioredis), commands per chunk and bytes, measured the same way', async () => {
    const server: RedisServer = await startRedisServer();
    const clients = [new Redis(server.url), new Redis(server.url)];
    const admin = new Redis(server.url);
    try {
      const prefix = freshPrefix();
      const stores = clients.map((client) => redisStore(client, { prefix }));
      const a = createRelay({ store: stores[0]!, graceMs: Infinity });
      const b = createRelay({ store: stores[1]! });
      const N = 100;
      const warm = await a.start(tokenSource(['warm']));
      await drain(b.subscribe(warm.id));
      await admin.call('CONFIG', 'RESETSTAT');
      const source = controlledSource();
      const { id, done } = await a.start(source.factory);
      const reading = drain(b.subscribe(id));
      await sleep(50);
      for (let n = 0; n < N - 1; n++) {
        source.push(`w${n} `);
        await sleep(1);
      }
      source.finish();
      const { chunks } = await reading;
      await done;
      const info = (await admin.call('INFO', 'commandstats')) as string;
      const stats = new Map([...info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map(([, name, count]) => [name!, Number(count)]));
      let bytes = 0;
      for (const suffix of ['m', 'c', 'h', 'p', 'x']) bytes += Number((await admin.call('MEMORY', 'USAGE', `${prefix}{${id}}:${suffix}`)) ?? 0);
      const summary = [...stats].filter(([name]) => name !== 'info' && name !== 'config').map(([name, count]) => `${name} ${count}`).join(', ');
      console.info(`single node (ioredis) costs: one stream of ${chunks.length} chunks, one live subscriber on B: ${summary}; ${bytes} bytes after the end (MEMORY USAGE)`);
      expect(chunks.length).toBe(N);
      await Promise.all([a.close(), b.close()]);
      await Promise.all(stores.map((store) => store.close()));
    } finally {
      await Promise.all([...clients, admin].map((client) => client.quit().catch(() => undefined)));
      await server.stop();
    }
  });
});

