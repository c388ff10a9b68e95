// Two real Node processes (test/fixtures/relay-instance.ts) on a real 3-master Redis Cluster, with
// ioredis' Cluster and with node-redis' createCluster; the mock provider in this process, reached
// through the real openai SDK in the children.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createParser } from 'eventsource-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { redisClusterAvailable, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';

const available = redisClusterAvailable({ announce: false });
const HOOK = fileURLToPath(new URL('../helpers/ts-resolve.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/relay-instance.ts', import.meta.url));
const GRACE_MS = 400;
const LIVENESS_MS = 600;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokens = (count: number) => Array.from({ length: count }, (_, n) => `w${n} `);

interface Instance {
  readonly url: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

interface SSEEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** Reads an SSE response: token chunks until `count`, or an `error`/`done` event, or the end. */
async function openSSE(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const queue: SSEEvent[] = [];
  const parser = createParser({ onEvent: (event) => queue.push({ id: event.id, event: event.event ?? 'message', data: event.data }) });
  const reader = response.body!.pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>).getReader();
  async function next(): Promise<SSEEvent | undefined> {
    for (let round = 0; round < 100_000 && queue.length === 0; round++) {
      const { done, value } = await reader.read();
      if (done) return undefined;
      parser.feed(value);
    }
    return queue.shift();
  }
  return {
    status: response.status,
    async tokens(count = Infinity): Promise<{ chunks: TokenChunk[]; last: SSEEvent | undefined }> {
      const chunks: TokenChunk[] = [];
      while (chunks.length < count) {
        const event = await next();
        if (event === undefined) return { chunks, last: undefined };
        if (event.event !== 'token') return { chunks, last: event };
        chunks.push(JSON.parse(event.data) as TokenChunk);
      }
      return { chunks, last: undefined };
    },
    close(): void {
      controller.abort();
      reader.cancel().catch(() => undefined);
    },
  };
}

describe.skipIf(!available)('relay over a Redis Cluster, two processes', () => {
  let cluster: RedisCluster;
  let provider: MockProvider;
  const running = new Set<Instance>();
  let prefixes = 0;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    provider = await startMockProvider();
  }, 60_000);
  afterEach(async () => {
    await Promise.all([...running].map(kill));
    provider.clear();
  });
  afterAll(async () => {
    await Promise.all([...running].map(kill));
    await provider?.close();
    await cluster?.stop();
  });

  async function kill(instance: Instance): Promise<void> {
    instance.child.kill('SIGKILL');
    await instance.exited;
  }

  for (const client of ['ioredis-cluster', 'node-redis-cluster'] as const) {
    describe(client, () => {
      let prefix = '';
      afterEach(() => {
        prefix = `cmi${++prefixes}:`;
      });
      prefix = `cmi${++prefixes}:`;

      async function startInstance(): Promise<Instance> {
        const child = spawn(process.execPath, ['--import', HOOK, FIXTURE], {
          env: {
            ...process.env,
            REDIS_CLIENT: client,
            REDIS_URL: cluster.rootNodes.map((node) => node.url).join(','),
            PROVIDER_URL: provider.openaiBaseURL,
            PREFIX: prefix,
            GRACE_MS: String(GRACE_MS),
            LIVENESS_MS: String(LIVENESS_MS),
            MAX_PER_KEY: '2',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        let stderr = '';
        child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
        const port = await new Promise<number>((resolve, reject) => {
          let stdout = '';
          const timer = setTimeout(() => reject(new Error(`instance did not start in 15 s: ${stderr}`)), 15_000);
          child.stdout!.on('data', (data: Buffer) => {
            stdout += data.toString();
            const match = /READY (\d+)/.exec(stdout);
            if (match !== null) {
              clearTimeout(timer);
              resolve(Number(match[1]));
            }
          });
          void exited.then(() => {
            clearTimeout(timer);
            reject(new Error(`instance exited at start: ${stderr}`));
          });
        });
        const instance = { url: `http://127.0.0.1:${port}`, child, exited };
        running.add(instance);
        void exited.then(() => running.delete(instance));
        return instance;
      }

      async function post(instance: Instance, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
        const response = await fetch(`${instance.url}${path}`, { method: 'POST', headers });
        return { status: response.status, body: await response.json() };
      }

      async function startChat(instance: Instance, user = 'alice'): Promise<string> {
        const { status, body } = await post(instance, '/chat', { 'x-user': user });
        expect(status).toBe(200);
        return body.id as string;
      }

      it('starts on A, resumes on B with Last-Event-ID: exactly the rest', async () => {
        const text = tokens(60);
        provider.setScript({ tokens: text, delayMs: 8 });
        const [a, b] = await Promise.all([startInstance(), startInstance()]);
        const id = await startChat(a);
        const first = await openSSE(`${a.url}/chat/${id}`);
        const before = await first.tokens(12);
        first.close();
        await sleep(100);
        const second = await openSSE(`${b.url}/chat/${id}`, { 'Last-Event-ID': String(before.chunks.at(-1)!.index) });
        const after = await second.tokens();
        expect(after.last?.event).toBe('done');
        const all = [...before.chunks, ...after.chunks];
        expect(all.map((chunk) => chunk.index)).toEqual(all.map((_, index) => index));
        expect(all.map((chunk) => chunk.token).join('')).toBe(text.join(''));
      });

      it('relay.cancel on B stops A’s producer: the provider sees A’s request closed', async () => {
        provider.setScript({ tokens: tokens(400), delayMs: 10 });
        const [a, b] = await Promise.all([startInstance(), startInstance()]);
        const id = await startChat(a);
        const subscriber = await openSSE(`${a.url}/chat/${id}`);
        await subscriber.tokens(3);
        const cancelledAt = performance.now();
        expect((await post(b, `/chat/${id}/cancel`)).body).toEqual({ cancelled: true });
        const request = await (await provider.request(1)).ended;
        console.info(`cluster (${client}), two processes: A's provider request closed ${(request.endedAt! - cancelledAt).toFixed(1)} ms after B's relay.cancel`);
        expect(request.end).toBe('client-closed');
        expect(request.endedAt! - cancelledAt).toBeLessThan(200);
        expect(JSON.parse((await subscriber.tokens()).last!.data)).toMatchObject({ code: 'aborted' });
      });

      it('kill -9 of A mid-stream: B’s subscriber gets producer-lost within 2 × livenessMs', async () => {
        provider.setScript({ tokens: tokens(400), delayMs: 10 });
        const [a, b] = await Promise.all([startInstance(), startInstance()]);
        const id = await startChat(a);
        const subscriber = await openSSE(`${b.url}/chat/${id}`);
        expect((await subscriber.tokens(5)).chunks).toHaveLength(5);
        await kill(a);
        const killedAt = performance.now();
        const { last } = await subscriber.tokens();
        const detectedMs = performance.now() - killedAt;
        console.info(`cluster (${client}), two processes: producer-lost ${detectedMs.toFixed(0)} ms after SIGKILL (livenessMs ${LIVENESS_MS})`);
        expect(last?.event).toBe('error');
        expect(JSON.parse(last!.data)).toMatchObject({ code: 'producer-lost' });
        expect(detectedMs).toBeLessThan(2 * LIVENESS_MS + 200);
      });

      it('grace across instances: the last subscriber leaves B → A’s provider request closes within graceMs + 100 ms', async () => {
        provider.setScript({ tokens: tokens(400), delayMs: 10 });
        const [a, b] = await Promise.all([startInstance(), startInstance()]);
        const id = await startChat(a);
        const onB = await openSSE(`${b.url}/chat/${id}`);
        await onB.tokens(5);
        onB.close();
        const leftAt = performance.now();
        const request = await (await provider.request(1)).ended;
        const latencyMs = request.endedAt! - leftAt;
        expect(request.end).toBe('client-closed');
        expect(latencyMs).toBeGreaterThanOrEqual(GRACE_MS - 5);
        expect(latencyMs).toBeLessThan(GRACE_MS + 100);
      });

      it('per-user slots hold across instances (maxPerKey 2)', async () => {
        provider.setScript({ tokens: tokens(300), delayMs: 10 });
        const [a, b] = await Promise.all([startInstance(), startInstance()]);
        const first = await startChat(a);
        await startChat(b);
        expect((await post(a, '/chat', { 'x-user': 'alice' })).status).toBe(429);
        expect((await post(b, '/chat', { 'x-user': 'alice' })).status).toBe(429);
        expect((await post(b, '/chat', { 'x-user': 'bob' })).status).toBe(200);
        await post(b, `/chat/${first}/cancel`);
        const deadline = performance.now() + 3_000;
        let status = 0;
        while (status !== 200 && performance.now() < deadline) {
          status = (await post(a, '/chat', { 'x-user': 'alice' })).status;
          if (status !== 200) await sleep(20);
        }
        expect(status).toBe(200);
      });
    });
  }
});
