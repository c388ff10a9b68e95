// Fastify-specific cases of `tokenrelay/fastify`; what every adapter must do is in conformance/.
import http, { type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StreamMetrics, TokenChunk } from 'tokenrelay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider } from 'tokenrelay/testing';
import { closeAllStreams, sendSSE, sse, type SendSSEResult } from 'tokenrelay/fastify';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    app.server.closeAllConnections();
    await app.close();
  });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const chunk = (token: string, index: number): TokenChunk => ({ token, index, timestamp: 0, type: 'text' });

async function* answer(...parts: string[]): AsyncGenerator<TokenChunk> {
  for (const [index, part] of parts.entries()) yield chunk(part, index);
  yield { ...chunk('', parts.length), finishReason: 'stop' };
}

function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** A GET (or POST) whose body is read as text, with the response head. */
function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ response: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false });
    req.on('error', reject);
    req.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => (body += text));
      response.on('end', () => resolve({ response, body }));
    });
    req.end(init.body);
  });
}

describe('tokenrelay/fastify', () => {
  it('runs on Fastify 5', () => {
    const { version } = createRequire(import.meta.url)('fastify/package.json') as { version: string };
    expect(version.startsWith('5.')).toBe(true);
  });

  it('sends the CORS headers @fastify/cors set on the reply, on the stream and on an early error', async () => {
    const app = Fastify();
    await app.register(cors, { origin: 'https://app.example.com', exposedHeaders: ['X-Request-Id'] });
    app.addHook('onRequest', async (_request, reply) => {
      reply.header('X-Request-Id', 'req-7');
    });
    app.get('/chat', sse(() => answer('Hel', 'lo')));
    app.get(
      '/fails',
      sse(async function* () {
        yield* [];
        throw new Error('boom');
      }),
    );
    const base = await listen(app);
    const origin = { origin: 'https://app.example.com' };

    const ok = await request(`${base}/chat`, { headers: origin });
    expect(ok.response.statusCode).toBe(200);
    expect(ok.response.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-expose-headers': 'X-Request-Id',
      'x-request-id': 'req-7',
      'content-type': 'text/event-stream; charset=utf-8',
    });
    expect(ok.body).toContain('event: done');

    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const failed = await request(`${base}/fails`, { headers: origin });
    vi.mocked(console.error).mockRestore();
    expect(failed.response.statusCode).toBe(500);
    expect(failed.response.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(failed.response.headers['content-type']).toMatch(/^application\/json/);

    // The preflight is still @fastify/cors's own.
    const preflight = await request(`${base}/chat`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'GET' },
    });
    expect(preflight.response.statusCode).toBe(204);
    expect(preflight.response.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('keeps tokens flowing one by one next to @fastify/compress: nothing is compressed or buffered', async () => {
    const firstSeen = deferred();
    let lastProduced = false;
    const app = Fastify();
    await app.register(compress, { global: true, threshold: 0 });
    app.get('/json', async () => ({ padding: 'x'.repeat(2048) }));
    app.get(
      '/chat',
      sse(async function* () {
        yield chunk('first', 0);
        await firstSeen.promise;
        yield chunk(' second', 1);
        lastProduced = true;
        yield { ...chunk(' last', 2), finishReason: 'stop' as const };
      }),
    );
    const base = await listen(app);
    // @fastify/compress is active on this app: a JSON route is compressed.
    expect((await request(`${base}/json`, { headers: { 'accept-encoding': 'gzip' } })).response.headers['content-encoding']).toBe('gzip');

    const text = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${base}/chat`, { agent: false, headers: { 'accept-encoding': 'gzip, deflate, br' } }, (response) => {
        expect(response.headers['content-encoding']).toBeUndefined();
        expect(response.headers['cache-control']).toBe('no-cache, no-transform');
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => {
          body += part;
          if (body.includes('first') && !body.includes('second')) {
            expect(lastProduced).toBe(false);
            firstSeen.resolve();
          }
        });
        response.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
    expect(text).toMatch(/first[^]*second[^]*last[^]*event: done/);
  });

  it('a typed POST route: the parsed body reaches the factory, and reading it is not a disconnect', async () => {
    const provider = await startMockProvider({ script: { tokens: ['a', 'b', 'c'], delayMs: 5 } });
    cleanups.push(() => provider.close());
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const finished = deferred<StreamMetrics>();
    const app = Fastify();
    app.post<{ Body: { messages: Array<{ role: 'user'; content: string }> } }>(
      '/chat',
      sse((request, signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages: request.body.messages }, { signal }), {
        monitor: { onFinish: finished.resolve },
      }),
    );
    const base = await listen(app);
    const messages = [{ role: 'user', content: 'from the body' }];
    const { response, body } = await request(`${base}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages }),
    });
    expect(response.statusCode).toBe(200);
    expect(body).toContain('event: done');
    expect((await provider.request(1)).body.messages).toEqual(messages);
    expect((await finished.promise).outcome).toBe('completed');
  });

  it('sse() checks its options when called; sendSSE() rejects before hijacking, so Fastify answers the error', async () => {
    expect(() => sse(() => answer(), { writeTimeout: 10 } as never)).toThrow(/did you mean `writeTimeoutMs`\?/);
    expect(() => sse('factory' as never)).toThrow(TypeError);
    const failures: unknown[] = [];
    const app = Fastify();
    app.get('/chat', async (request, reply) => {
      try {
        return await sendSSE(request, reply, answer('x'), { timeout: 5000 } as never);
      } catch (error) {
        failures.push(error);
        return reply.code(400).send({ checked: true });
      }
    });
    const { response, body } = await request(`${await listen(app)}/chat`);
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(body)).toEqual({ checked: true });
    expect(String(failures[0])).toMatch(/Expected `timeout` to be an object/);
  });

  it('sendSSE() refuses a reply already sent, and anything that is not a Fastify request', async () => {
    const failures: unknown[] = [];
    const app = Fastify();
    app.get('/chat', (request, reply) => {
      reply.send('done');
      sendSSE(request, reply, answer('x')).catch((error: unknown) => failures.push(error));
    });
    await request(`${await listen(app)}/chat`);
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(String(failures[0])).toMatch(/Expected `reply` to be a reply not sent yet/);
    await expect(sendSSE({} as never, {} as never, answer())).rejects.toThrow(/Expected `request` to be a Fastify request/);
  });

  it('sendSSE() resolves with the result once the response ended; closeAllStreams({ server }) lets app.close() finish', async () => {
    const results: SendSSEResult[] = [];
    const started = deferred();
    const app = Fastify();
    app.get('/chat', async (request, reply) => {
      results.push(
        await sendSSE(request, reply, async function* (signal) {
          yield chunk('Hi', 0);
          started.resolve();
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        }),
      );
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const response = request(`${base}/chat`);
    await started.promise;
    const closing = app.close();
    await closeAllStreams({ server: app.server, retryMs: 50 });
    await closing;
    const { body } = await response;
    expect(body).toMatch(/retry: 50\nevent: shutdown/);
    expect(results.map((result) => result.outcome)).toEqual(['shutdown']);
  });
});
