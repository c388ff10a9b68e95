import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createParser } from 'eventsource-parser';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

// Two real Node processes (test/fixtures/relay-instance.ts), one real redis-server, the mock
// provider in this process reached through the real openai SDK in the children.

const available = redisAvailable({ announce: false });
const HOOK = fileURLToPath(new URL('../helpers/ts-resolve.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/relay-instance.ts', import.meta.url));
const GRACE_MS = 400;
const LIVENESS_MS = 600;
const SLOT_TTL_MS = 900;
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

/** One SSE response read by hand: `next()` gives its events in order; `close()` is the client going away. */
class SSEClient {
  readonly status: number;
  readonly headers: Headers;
  readonly #controller: AbortController;
  readonly #events: AsyncGenerator<SSEEvent>;

  private constructor(response: Response, controller: AbortController) {
    this.status = response.status;
    this.headers = response.headers;
    this.#controller = controller;
    this.#events = readEvents(response.body!);
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SSEClient> {
    const controller = new AbortController();
    const response = await fetch(url, { headers, signal: controller.signal });
    return new SSEClient(response, controller);
  }

  async next(): Promise<SSEEvent | undefined> {
    const result = await this.#events.next();
    return result.done === true ? undefined : result.value;
  }

  /** Token chunks until `count` of them arrived, or an `error`/`done` event, or the end. */
  async tokens(count = Infinity): Promise<{ chunks: TokenChunk[]; last: SSEEvent | undefined }> {
    const chunks: TokenChunk[] = [];
    for (let n = 0; n < 100_000 && chunks.length < count; n++) {
      const event = await this.next();
      if (event === undefined) return { chunks, last: undefined };
      if (event.event === 'token') chunks.push(JSON.parse(event.data) as TokenChunk);
      else return { chunks, last: event };
    }
    return { chunks, last: undefined };
  }

  close(): void {
    this.#controller.abort();
    this.#events.return(undefined).catch(() => undefined);
  }
}

async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SSEEvent> {
  const queue: SSEEvent[] = [];
  const parser = createParser({ onEvent: (event) => queue.push({ id: event.id, event: event.event ?? 'message', data: event.data }) });
  const reader = body.pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>).getReader();
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
    while (queue.length > 0) yield queue.shift()!;
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

describe.skipIf(!available)('relay over Redis, two processes', () => {
  let redis: RedisServer;
  let provider: MockProvider;
  let admin: Redis;
  const running = new Set<Instance>();
  let prefixes = 0;
  let prefix = '';

  async function startInstance(env: Record<string, string> = {}): Promise<Instance> {
    const child = spawn(process.execPath, ['--import', HOOK, FIXTURE], {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        PROVIDER_URL: provider.openaiBaseURL,
        PREFIX: prefix,
        GRACE_MS: String(GRACE_MS),
        LIVENESS_MS: String(LIVENESS_MS),
        MAX_PER_KEY: '2',
        SLOT_TTL_MS: String(SLOT_TTL_MS),
        ...env,
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

  async function kill(instance: Instance): Promise<void> {
    instance.child.kill('SIGKILL');
    await instance.exited;
  }

  async function post(instance: Instance, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const response = await fetch(`${instance.url}${path}`, { method: 'POST', headers });
    return { status: response.status, body: await response.json(), headers: response.headers };
  }

  async function startChat(instance: Instance, user = 'alice'): Promise<string> {
    const { status, body } = await post(instance, '/chat', { 'x-user': user });
    expect(status).toBe(200);
    return body.id as string;
  }

  /** Live slots of a user, by the server's clock. */
  async function slotsOf(user: string): Promise<number> {
    const [seconds, micros] = (await admin.call('TIME')) as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return Number(await admin.call('ZCOUNT', `${prefix}slot:{${user}}`, `(${now}`, '+inf'));
  }

  async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await condition())) {
      if (performance.now() > deadline) throw new Error('condition not met in time');
      await sleep(10);
    }
  }

  async function serverConnections(): Promise<string[]> {
    const list = (await admin.call('CLIENT', 'LIST')) as string;
    return list.split('\n').filter((line) => line.trim() !== '');
  }

  beforeAll(async () => {
    redis = await startRedisServer();
    provider = await startMockProvider();
    admin = new Redis(redis.url, { connectionName: 'admin' });
    admin.on('error', () => undefined); // one test kills redis-server
  });
  afterEach(async () => {
    await Promise.all([...running].map(kill));
    provider.clear();
    prefix = `mi${++prefixes}:`;
  });
  afterAll(async () => {
    await Promise.all([...running].map(kill));
    await admin?.quit();
    await provider?.close();
    await redis?.stop();
  });
  prefix = `mi${++prefixes}:`;

  it('starts on A, resumes on B with Last-Event-ID: exactly the rest, nothing lost or repeated', async () => {
    const text = tokens(80);
    provider.setScript({ tokens: text, delayMs: 8 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const first = await SSEClient.open(`${a.url}/chat/${id}`);
    expect(first.status).toBe(200);
    const before = await first.tokens(15);
    first.close();
    const last = before.chunks.at(-1)!.index;
    await sleep(100); // tokens keep coming while nobody listens
    const second = await SSEClient.open(`${b.url}/chat/${id}`, { 'Last-Event-ID': String(last) });
    const after = await second.tokens();
    expect(after.last?.event).toBe('done');
    const all = [...before.chunks, ...after.chunks];
    expect(all.map((chunk) => chunk.index)).toEqual(all.map((_, index) => index));
    expect(all.map((chunk) => chunk.token).join('')).toBe(text.join(''));
    expect(Number(after.last?.id)).toBe(all.length);
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });

  it('kill -9 of A mid-stream: B’s subscriber gets an `error` event (producer-lost) within 2 × livenessMs', async () => {
    provider.setScript({ tokens: tokens(400), delayMs: 10 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const subscriber = await SSEClient.open(`${b.url}/chat/${id}`);
    expect((await subscriber.tokens(5)).chunks).toHaveLength(5);
    await kill(a);
    const killedAt = performance.now();
    const { last } = await subscriber.tokens();
    const detectedMs = performance.now() - killedAt;
    console.info(`producer lost across processes: B's subscriber got the error ${detectedMs.toFixed(0)} ms after SIGKILL (livenessMs ${LIVENESS_MS})`);
    expect(last?.event).toBe('error');
    expect(JSON.parse(last!.data)).toMatchObject({ code: 'producer-lost' });
    expect(detectedMs).toBeLessThan(2 * LIVENESS_MS + 200);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    // A reconnect now fails the same way, at once.
    const again = await SSEClient.open(`${b.url}/chat/${id}`, { 'Last-Event-ID': '0' });
    const replay = await again.tokens();
    expect(JSON.parse(replay.last!.data)).toMatchObject({ code: 'producer-lost' });
  });

  it('relay.cancel on B stops A’s producer: the provider sees A’s request closed', async () => {
    provider.setScript({ tokens: tokens(400), delayMs: 10 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const subscriber = await SSEClient.open(`${a.url}/chat/${id}`);
    await subscriber.tokens(3);
    const cancelledAt = performance.now();
    expect((await post(b, `/chat/${id}/cancel`)).body).toEqual({ cancelled: true });
    const request = await (await provider.request(1)).ended;
    const latencyMs = request.endedAt! - cancelledAt;
    console.info(`cancel across processes: A's provider request closed ${latencyMs.toFixed(1)} ms after B's relay.cancel was sent`);
    expect(request.end).toBe('client-closed');
    expect(latencyMs).toBeLessThan(200);
    const { last } = await subscriber.tokens();
    expect(JSON.parse(last!.data)).toMatchObject({ code: 'aborted' });
    expect((await post(b, `/chat/${id}/cancel`)).body).toEqual({ cancelled: false });
  });

  it('grace across instances: everyone disconnects → A’s provider request closes within graceMs + 100 ms', async () => {
    provider.setScript({ tokens: tokens(400), delayMs: 10 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const onA = await SSEClient.open(`${a.url}/chat/${id}`);
    const onB = await SSEClient.open(`${b.url}/chat/${id}`);
    await Promise.all([onA.tokens(5), onB.tokens(5)]);
    onA.close();
    await sleep(GRACE_MS / 2); // B alone keeps it alive
    expect((await provider.request(1)).end).toBeUndefined();
    onB.close();
    const leftAt = performance.now();
    const request = await (await provider.request(1)).ended;
    const latencyMs = request.endedAt! - leftAt;
    console.info(`grace across processes: provider request closed ${latencyMs.toFixed(1)} ms after the last disconnect (graceMs ${GRACE_MS})`);
    expect(request.end).toBe('client-closed');
    expect(latencyMs).toBeGreaterThanOrEqual(GRACE_MS - 5);
    expect(latencyMs).toBeLessThan(GRACE_MS + 100);
  });

  it('grace when the subscriber’s instance dies: its presence expires, within graceMs + livenessMs × 4/3', async () => {
    provider.setScript({ tokens: tokens(600), delayMs: 10 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const onB = await SSEClient.open(`${b.url}/chat/${id}`);
    await onB.tokens(3);
    await kill(b);
    const diedAt = performance.now();
    const request = await (await provider.request(1)).ended;
    const latencyMs = request.endedAt! - diedAt;
    console.info(`grace after a subscriber's instance died: provider request closed ${latencyMs.toFixed(0)} ms after kill -9 (graceMs ${GRACE_MS}, livenessMs ${LIVENESS_MS})`);
    expect(request.end).toBe('client-closed');
    expect(latencyMs).toBeLessThan(GRACE_MS + (LIVENESS_MS * 4) / 3 + 250);
  });

  it('limitStreams over Redis: maxPerKey holds across instances, slots are released on every outcome and expire by TTL', async () => {
    provider.setScript({ tokens: tokens(300), delayMs: 10 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const first = await startChat(a);
    await startChat(b);
    expect(await slotsOf('alice')).toBe(2);
    const refused = await post(a, '/chat', { 'x-user': 'alice' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('limit');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await post(b, '/chat', { 'x-user': 'alice' })).status).toBe(429);
    expect((await post(b, '/chat', { 'x-user': 'bob' })).status).toBe(200);

    // cancelled (from the other instance)
    await post(b, `/chat/${first}/cancel`);
    await waitFor(async () => (await slotsOf('alice')) === 1);
    // abandoned (nobody subscribes for graceMs)
    await waitFor(async () => (await slotsOf('alice')) === 0, GRACE_MS + 2_000);
    // completed
    provider.setScript({ tokens: tokens(5), delayMs: 1 });
    const done = await startChat(b);
    expect((await (await SSEClient.open(`${a.url}/chat/${done}`)).tokens()).last?.event).toBe('done');
    await waitFor(async () => (await slotsOf('alice')) === 0);
    // failed (the provider answers 500)
    provider.setScript({ fault: { kind: 'http-error', status: 500 } });
    const failed = await startChat(a);
    const failure = await SSEClient.open(`${b.url}/chat/${failed}`);
    expect(failure.status === 502 || (await failure.tokens()).last?.event === 'error').toBe(true);
    await waitFor(async () => (await slotsOf('alice')) === 0);

    // expired by TTL: A dies holding two slots; B gets them back SLOT_TTL_MS later
    provider.setScript({ tokens: tokens(300), delayMs: 10 });
    await startChat(a);
    await startChat(a);
    expect((await post(b, '/chat', { 'x-user': 'alice' })).status).toBe(429);
    await kill(a);
    const diedAt = performance.now();
    await waitFor(async () => (await post(b, '/chat', { 'x-user': 'alice' })).status === 200, SLOT_TTL_MS + 2_000);
    const freedMs = performance.now() - diedAt;
    console.info(`limitStreams: slots of a killed instance came back ${freedMs.toFixed(0)} ms after kill -9 (slot ttlMs ${SLOT_TTL_MS})`);
    expect(freedMs).toBeLessThan(SLOT_TTL_MS + 300);
  });

  it('bad input over HTTP: tampered, negative, huge, non-numeric cursors → 400; unknown or malformed ids → 404', async () => {
    provider.setScript({ tokens: tokens(5), delayMs: 1 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const id = await startChat(a);
    const longer = await startChat(a);
    expect((await (await SSEClient.open(`${b.url}/chat/${id}`)).tokens()).last?.event).toBe('done');
    await (await SSEClient.open(`${b.url}/chat/${longer}`)).tokens();
    for (const cursor of ['abc', '-1', '1e3', '05', '+3', '0x10', '3.0', '99999999999999999999', '9007199254740993', '6', '1000']) {
      const response = await fetch(`${b.url}/chat/${id}`, { headers: { 'Last-Event-ID': cursor } });
      expect(response.status, cursor).toBe(400);
      expect(((await response.json()) as any).error.code).toBe('invalid-cursor');
    }
    const byQuery = await fetch(`${b.url}/chat/${id}?lastEventId=-5`);
    expect(byQuery.status).toBe(400);
    await byQuery.body?.cancel();
    for (const bad of ['unknown-id', encodeURIComponent('../../etc/passwd'), 'x'.repeat(300), encodeURIComponent('{tag}'), `${id}x`]) {
      const response = await fetch(`${b.url}/chat/${bad}`);
      expect(response.status, bad).toBe(404);
      expect(((await response.json()) as any).error.code).toBe('not-found');
    }
    // Expired: the store's keys are gone (as after ttlMs).
    for (const suffix of ['m', 'c', 'h', 'p', 'x']) await admin.del(`${prefix}{${id}}:${suffix}`);
    const expired = await fetch(`${b.url}/chat/${id}`, { headers: { 'Last-Event-ID': '2' } });
    expect(expired.status).toBe(404);
    await expired.body?.cancel();
  });

  it('leaves no connection behind: after shutdown, CLIENT LIST shows only the test’s own connection', async () => {
    provider.setScript({ tokens: tokens(50), delayMs: 5 });
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const baseline = (await serverConnections()).length;
    const ids = [await startChat(a, 'carol'), await startChat(a, 'carol')];
    const readers = await Promise.all(ids.map((id) => SSEClient.open(`${b.url}/chat/${id}`)));
    await Promise.all(readers.map((reader) => reader.tokens(3)));
    const infos = await Promise.all([a, b].map(async (instance) => (await fetch(`${instance.url}/info`)).json() as Promise<{ connections: number }>));
    const during = (await serverConnections()).length;
    console.info(
      `connections: A (producer) holds its client + ${infos[0]!.connections}, B (subscribers) its client + ${infos[1]!.connections}; server total ${during} (baseline ${baseline})`,
    );
    expect(during).toBe(baseline + infos[0]!.connections + infos[1]!.connections);
    for (const reader of readers) reader.close();
    const closed = await Promise.all([a, b].map((instance) => post(instance, '/shutdown')));
    for (const { body } of closed) expect(body.connections).toBe(0);
    await Promise.all([a.exited, b.exited]);
    await waitFor(async () => (await serverConnections()).length === 1);
    expect((await serverConnections())[0]).toContain('name=admin');
  });
  it('redis-server killed mid-stream: A’s provider request closes within about livenessMs, B’s subscriber gets an `error` event (store-unavailable), a reconnect a 503; new streams work once Redis is back', async () => {
    provider.setScript({ tokens: tokens(600), delayMs: 10 });
    // A status window longer than livenessMs, so a request that fails during the outage fails before its first byte.
    const env = { STATUS_WINDOW_MS: String(LIVENESS_MS * 3) };
    const [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    const id = await startChat(a);
    const subscriber = await SSEClient.open(`${b.url}/chat/${id}`);
    expect((await subscriber.tokens(5)).chunks).toHaveLength(5);
    await redis.kill();
    const killedAt = performance.now();
    try {
      const reconnect = fetch(`${b.url}/chat/${id}`, { headers: { 'Last-Event-ID': '2' } });
      const [request, { last }, answer] = await Promise.all([(await provider.request(1)).ended, subscriber.tokens(), reconnect]);
      const answeredMs = performance.now() - killedAt;
      const providerMs = request.endedAt! - killedAt;
      console.info(
        `redis-server killed (two processes): A's provider request closed ${providerMs.toFixed(0)} ms after SIGKILL, ` +
          `B's subscriber and reconnect answered by ${answeredMs.toFixed(0)} ms (livenessMs ${LIVENESS_MS})`,
      );
      expect(request.end).toBe('client-closed');
      expect(providerMs).toBeLessThan(LIVENESS_MS + 500);
      expect(last?.event).toBe('error');
      expect(JSON.parse(last!.data)).toMatchObject({ code: 'store-unavailable' });
      expect(answer.status).toBe(503);
      expect(((await answer.json()) as any).error.code).toBe('store-unavailable');
      expect(answeredMs).toBeLessThan((LIVENESS_MS * 4) / 3 + 1_000);
    } finally {
      await redis.restart();
    }
    const restartedAt = performance.now();
    provider.setScript({ tokens: tokens(20), delayMs: 2 });
    let next: { status: number; body: any } = { status: 0, body: undefined };
    await waitFor(async () => (next = await post(a, '/chat', { 'x-user': 'dave' })).status === 200, 10_000);
    const stream = await (await SSEClient.open(`${b.url}/chat/${next.body.id as string}`)).tokens();
    expect(stream.last?.event).toBe('done');
    expect(stream.chunks.map((chunk) => chunk.token).join('')).toBe(tokens(20).join(''));
    console.info(`redis-server back: a new chat started on A and read on B ${(performance.now() - restartedAt).toFixed(0)} ms after the restart`);
  });
});
