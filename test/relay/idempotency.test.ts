// Idempotent start: relay.start(…, { idempotencyKey }) returns the stream already started for the
// key while it is live or inside its TTL; idempotencyKey(request) reads the IETF header.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectText } from 'tokenrelay';
import {
  createRelay,
  idempotencyKey,
  isStreamLimitError,
  limitStreams,
  memoryStore,
  StreamNotFoundError,
  type Relay,
} from 'tokenrelay/relay';
import { InvalidRequestError } from 'tokenrelay/protocols';
import type { RelayStore } from 'tokenrelay/store';
import { sendSSE } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { redisStore } from 'tokenrelay/redis';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { redisAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { controlledSource, drain, tokenSource } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idempotencyKey(request)', () => {
  const node = (value: string | string[] | undefined) => ({ headers: { 'idempotency-key': value } });
  const web = (value: string) => new Request('http://x/', { headers: { 'Idempotency-Key': value } });

  it('reads the sf-string of the IETF draft, with its escapes, from Node and fetch requests', () => {
    expect(idempotencyKey(node('"8e03978e-40d5-43e8-bc93-6894a57f9324"'))).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(idempotencyKey(web('"8e03978e-40d5"'))).toBe('8e03978e-40d5');
    expect(idempotencyKey(node('"a \\"b\\" \\\\ c"'))).toBe('a "b" \\ c');
    expect(idempotencyKey(node(['"one"']))).toBe('one');
    expect(idempotencyKey(node(`"${'k'.repeat(255)}"`))).toBe('k'.repeat(255));
  });

  it('accepts a bare token (what Stripe-style clients send)', () => {
    expect(idempotencyKey(node('8e03978e-40d5-43e8-bc93-6894a57f9324'))).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(idempotencyKey(web('abc_DEF.123:~'))).toBe('abc_DEF.123:~');
  });

  it('answers undefined without the header', () => {
    expect(idempotencyKey({ headers: {} })).toBeUndefined();
    expect(idempotencyKey(new Request('http://x/'))).toBeUndefined();
  });

  it('rejects malformed values with a 400 InvalidRequestError that does not repeat them', () => {
    const bad = ['', '""', '"unterminated', 'two words', 'a,b', '"a", "b"', '"a";p=1', '"tab\there"', '"é"', 'x\\y', `"${'k'.repeat(256)}"`, '"a\\x"'];
    for (const value of bad) {
      let error: unknown;
      try {
        idempotencyKey(node(value));
      } catch (caught) {
        error = caught;
      }
      expect(error, value).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).status).toBe(400);
      if (value.length > 2) expect((error as Error).message).not.toContain(value);
    }
    expect(() => idempotencyKey(node(['"a"', '"b"']))).toThrow(InvalidRequestError);
    const twice = new Request('http://x/');
    twice.headers.append('Idempotency-Key', '"a"');
    twice.headers.append('Idempotency-Key', '"b"');
    expect(() => idempotencyKey(twice)).toThrow(InvalidRequestError);
    expect(() => idempotencyKey({} as never)).toThrow(TypeError);
  });
});

describe('relay.start with an idempotencyKey (memory store)', () => {
  it('three concurrent starts with one key: one factory call, one stream, the same complete answer', async () => {
    const relay = createRelay();
    const source = controlledSource();
    const starts = await Promise.all([1, 2, 3].map(() => relay.start(source.factory, { idempotencyKey: 'k1' })));
    expect(source.state.calls).toBe(1);
    expect(new Set(starts.map((stream) => stream.id)).size).toBe(1);
    expect(starts.map((stream) => stream.created).sort()).toEqual([false, false, true]);
    const answers = starts.map((stream) => collectText(relay.subscribe(stream.id)));
    for (const token of ['one ', 'two ', 'three']) source.push(token);
    source.finish();
    expect(await Promise.all(answers)).toEqual(['one two three', 'one two three', 'one two three']);
    const results = await Promise.all(starts.map((stream) => stream.done));
    expect(results.every((result) => result.outcome === 'completed')).toBe(true);
    await relay.close();
  });

  it('joins a stream that ended, inside its TTL; the same key after the TTL starts a new stream', async () => {
    const relay = createRelay({ ttlMs: 150 });
    let calls = 0;
    const factory = () => {
      calls++;
      return tokenSource(['a', 'b'])(new AbortController().signal);
    };
    const first = await relay.start(factory, { idempotencyKey: 'again' });
    expect((await drain(relay.subscribe(first.id))).chunks).toHaveLength(3);
    await first.done;
    const retry = await relay.start(factory, { idempotencyKey: 'again' });
    expect(retry).toMatchObject({ id: first.id, created: false });
    expect(calls).toBe(1);
    await sleep(200);
    const later = await relay.start(factory, { idempotencyKey: 'again' });
    expect(later.created).toBe(true);
    expect(later.id).not.toBe(first.id);
    expect(calls).toBe(2);
    await relay.close();
  });

  it('scopes the key by metadata and authorize: one user never joins another user’s stream', async () => {
    const relay = createRelay({ authorize: (stream, user) => stream.metadata.userId === user });
    const source = controlledSource();
    const alice = await relay.start(source.factory, { idempotencyKey: 'same', metadata: { userId: 'alice' }, context: 'alice' });
    const bob = await relay.start(controlledSource().factory, { idempotencyKey: 'same', metadata: { userId: 'bob' }, context: 'bob' });
    expect(bob.created).toBe(true);
    expect(bob.id).not.toBe(alice.id);
    const again = await relay.start(source.factory, { idempotencyKey: 'same', metadata: { userId: 'alice' }, context: 'alice' });
    expect(again).toMatchObject({ id: alice.id, created: false });
    // Bob claiming Alice's metadata still is not Alice.
    await expect(
      relay.start(controlledSource().factory, { idempotencyKey: 'same', metadata: { userId: 'alice' }, context: 'bob' }),
    ).rejects.toBeInstanceOf(StreamNotFoundError);
    await relay.close();
  });

  it('starts afresh when the stream the key names lost its producer (its instance died)', async () => {
    const store = memoryStore();
    let beats = 0;
    // Instance A's producer stops beating after its first heartbeat, as if its process died.
    const dying = through(store, { heartbeat: async (id: string, ttl: number) => (beats++ === 0 ? store.heartbeat(id, ttl) : { subscribers: 1, cancelled: false }) });
    const a = createRelay({ store: dying, livenessMs: 60 });
    const b = createRelay({ store, livenessMs: 60 });
    const first = await a.start(controlledSource().factory, { idempotencyKey: 'crash' });
    expect((await b.start(controlledSource().factory, { idempotencyKey: 'crash' })).created).toBe(false);
    await sleep(120);
    const next = await b.start(controlledSource().factory, { idempotencyKey: 'crash' });
    expect(next.created).toBe(true);
    expect(next.id).not.toBe(first.id);
    await a.close();
    await b.close();
    await store.close();
  });

  it('composes with limitStreams: a joined start gives its slot back at once', async () => {
    const relay = createRelay();
    const limiter = limitStreams({ store: relay.store, maxPerKey: 1, key: (user: string) => user });
    const source = controlledSource();
    const first = await relay.start(await limiter.wrap('alice', source.factory), { idempotencyKey: 'dbl' });
    const refused = await limiter.wrap('alice', source.factory).catch((error: unknown) => error);
    expect(isStreamLimitError(refused)).toBe(true);
    source.finish();
    await first.done;
    const second = await relay.start(await limiter.wrap('alice', source.factory), { idempotencyKey: 'dbl' });
    expect(second.created).toBe(false);
    // The joined request's slot went back: a new stream may start.
    await (await limiter.acquire('alice')).release();
    await relay.close();
  });

  it('validates the key and the store', async () => {
    const relay = createRelay();
    await expect(relay.start(tokenSource(['a']), { idempotencyKey: '' })).rejects.toThrow(TypeError);
    await expect(relay.start(tokenSource(['a']), { idempotencyKey: 7 as never })).rejects.toThrow(TypeError);
    const plain = createRelay({ store: through(memoryStore(), { claim: undefined }) });
    await expect(plain.start(tokenSource(['a']), { idempotencyKey: 'k' })).rejects.toThrow('claim()');
    await relay.close();
    await plain.close();
  });
});

/** `store` with some methods replaced (or removed with `undefined`). */
function through(store: RelayStore, overrides: Record<string, unknown>): RelayStore {
  return new Proxy(store, {
    get(target, name) {
      if (typeof name === 'string' && name in overrides) return overrides[name];
      const value = Reflect.get(target, name) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const available = redisAvailable({ announce: false });

describe.skipIf(!available)('idempotent start over Redis, two instances', () => {
  let redis: RedisServer;
  let provider: MockProvider;
  const instances: Array<{ url: string; relay: Relay; close(): Promise<void> }> = [];

  async function startInstance(prefix: string, ttlMs: number) {
    const client = new Redis(redis.url);
    const store = redisStore(client, { prefix });
    const relay = createRelay({ store, ttlMs, livenessMs: 600 });
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      // POST /chat answers the stream itself: a second POST with the same key reads the first one's stream.
      await sendSSE(req, res, async (signal) => {
        const { id } = await relay.start(
          (providerSignal) =>
            streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { signal: providerSignal }),
          { idempotencyKey: idempotencyKey(req), metadata: { userId: String(req.headers['x-user']) } },
        );
        return relay.subscribe(id, { signal });
      });
    };
    const server: Server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const instance = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      relay,
      async close() {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await relay.close();
        await store.close();
        await client.quit();
      },
    };
    instances.push(instance);
    return instance;
  }

  async function post(url: string, key: string): Promise<{ status: number; text: string; done: boolean }> {
    const response = await fetch(`${url}/chat`, { method: 'POST', headers: { 'Idempotency-Key': `"${key}"`, 'x-user': 'alice' } });
    const body = await response.text();
    const text = [...body.matchAll(/^event: token\ndata: (.*)$/gm)].map((match) => (JSON.parse(match[1]!) as { token: string }).token).join('');
    return { status: response.status, text, done: /^event: done$/m.test(body) };
  }

  beforeAll(async () => {
    redis = await startRedisServer();
    provider = await startMockProvider();
  });
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    await provider?.close();
    await redis?.stop();
  });

  it('3 concurrent POSTs with the same key over 2 instances: 1 provider request, 3 identical complete answers; after the TTL a new stream', async () => {
    const tokens = Array.from({ length: 40 }, (_, n) => `w${n} `);
    provider.setScript({ tokens, delayMs: 5 });
    const a = await startInstance('idem1:', 1_000);
    const b = await startInstance('idem1:', 1_000);
    const key = crypto.randomUUID();
    const answers = await Promise.all([post(a.url, key), post(b.url, key), post(a.url, key)]);
    console.info(`idempotent start: 3 concurrent POSTs over 2 instances → ${provider.requests.length} provider request(s)`);
    expect(provider.requests.length).toBe(1);
    for (const answer of answers) expect(answer).toEqual({ status: 200, text: tokens.join(''), done: true });

    // Inside the TTL (the stream ended): still the same stream, no new request.
    expect((await post(b.url, key)).text).toBe(tokens.join(''));
    expect(provider.requests.length).toBe(1);
    // After the TTL: a new stream.
    await sleep(1_300);
    expect(await post(b.url, key)).toEqual({ status: 200, text: tokens.join(''), done: true });
    expect(provider.requests.length).toBe(2);
  });
});
