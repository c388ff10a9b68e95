// Koa-specific cases of `tokenrelay/koa`; what every adapter must do is in conformance/.
import http, { type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { text as readText } from 'node:stream/consumers';
import Router from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StreamMetrics, TokenChunk } from 'tokenrelay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider } from 'tokenrelay/testing';
import { sendSSE, sse, type SendSSEResult } from 'tokenrelay/koa';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(app: Koa): Promise<string> {
  const server: Server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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

/** A CORS middleware as koa's own cors packages write it: `ctx.set()` before `next()`. */
const corsHeaders: Koa.Middleware = async (ctx, next) => {
  ctx.set('Access-Control-Allow-Origin', 'https://app.example.com');
  ctx.vary('Origin');
  await next();
};

describe('tokenrelay/koa', () => {
  it('runs on Koa 3', () => {
    const { version } = createRequire(import.meta.url)('koa/package.json') as { version: string };
    expect(version.startsWith('3.')).toBe(true);
  });

  it('sends headers set before it, ends the chain, and lets middleware before it see the status sent', async () => {
    const seen: Array<[string, number, boolean]> = [];
    const errors: unknown[] = [];
    const app = new Koa();
    app.on('error', (error) => errors.push(error));
    app.use(async (ctx, next) => {
      await next();
      // After the stream: Koa must not answer again, and the status is the one sent.
      seen.push([ctx.path, ctx.status, ctx.headerSent]);
      ctx.set('X-Too-Late', 'ignored');
    });
    app.use(corsHeaders);
    const router = new Router();
    router.get('/chat/:id', sse((ctx, signal) => (signal.aborted ? answer() : answer('conversation ', ctx.params['id'] ?? ''))));
    router.get(
      '/fails',
      sse(async function* () {
        yield* [];
        throw new Error('boom');
      }),
    );
    router.get('/after', sse(() => answer('x')), () => {
      throw new Error('never reached: sse() does not call next');
    });
    app.use(router.routes());
    const base = await listen(app);

    const ok = await request(`${base}/chat/42`);
    expect(ok.response.statusCode).toBe(200);
    expect(ok.response.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      vary: 'Origin',
      'content-type': 'text/event-stream; charset=utf-8',
    });
    expect(ok.response.headers['x-too-late']).toBeUndefined();
    expect(ok.body).toMatch(/"token":"conversation "[^]*"token":"42"[^]*event: done/);

    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const failed = await request(`${base}/fails`);
    vi.mocked(console.error).mockRestore();
    expect(failed.response.statusCode).toBe(500);
    expect(failed.response.headers['access-control-allow-origin']).toBe('https://app.example.com');

    expect((await request(`${base}/after`)).body).toContain('event: done');
    expect(seen).toEqual([
      ['/chat/42', 200, true],
      ['/fails', 500, true],
      ['/after', 200, true],
    ]);
    expect(errors).toEqual([]);
  });

  it('keeps tokens flowing one by one behind koa-compress: nothing is compressed or buffered', async () => {
    const firstSeen = deferred();
    let lastProduced = false;
    const app = new Koa();
    app.use(compress({ threshold: 0 }));
    const router = new Router();
    router.get('/json', (ctx) => {
      ctx.body = { padding: 'x'.repeat(2048) };
    });
    router.get(
      '/chat',
      sse(async function* () {
        yield chunk('first', 0);
        await firstSeen.promise;
        yield chunk(' second', 1);
        lastProduced = true;
        yield { ...chunk(' last', 2), finishReason: 'stop' as const };
      }),
    );
    app.use(router.routes());
    const base = await listen(app);
    // koa-compress is active on this app: a JSON body is compressed.
    expect((await request(`${base}/json`, { headers: { 'accept-encoding': 'gzip' } })).response.headers['content-encoding']).toBe('gzip');

    const text = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${base}/chat`, { agent: false, headers: { 'accept-encoding': 'gzip, deflate, br' } }, (response) => {
        expect(response.headers['content-encoding']).toBeUndefined();
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

  it('a POST whose body a middleware read: the read is not a disconnect, and a disconnect later aborts the provider', async () => {
    const provider = await startMockProvider({ script: { tokens: Array.from({ length: 300 }, (_, i) => ` t${i}`), delayMs: 10 } });
    cleanups.push(() => provider.close());
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const finished = deferred<StreamMetrics>();
    const app = new Koa<Koa.DefaultState, { messages?: Array<{ role: 'user'; content: string }> }>();
    app.use(async (ctx, next) => {
      ctx.messages = (JSON.parse(await readText(ctx.req)) as { messages: Array<{ role: 'user'; content: string }> }).messages;
      await next();
    });
    app.use(
      sse((ctx, signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages: ctx.messages ?? [] }, { signal }), {
        monitor: { onFinish: finished.resolve },
      }),
    );
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const messages = [{ role: 'user', content: 'from the body' }];
    const req = http.request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    const threeTokens = deferred();
    req.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('error', () => undefined);
      response.on('data', (part: string) => {
        body += part;
        if ((body.match(/event: token/g) ?? []).length >= 3) threeTokens.resolve();
      });
    });
    req.end(JSON.stringify({ messages }));
    await threeTokens.promise;
    const request1 = await provider.request(1);
    expect(request1.body.messages).toEqual(messages);
    const disconnectedAt = performance.now();
    req.destroy();
    const record = await request1.ended;
    expect(record.end).toBe('client-closed');
    expect(record.endedAt! - disconnectedAt).toBeLessThan(1000);
    expect((await finished.promise).outcome).toBe('aborted');
  });

  it('sse() checks its options when called; sendSSE() rejects before touching the response, so Koa answers the error', async () => {
    expect(() => sse(() => answer(), { writeTimeout: 10 } as never)).toThrow(/did you mean `writeTimeoutMs`\?/);
    expect(() => sse('factory' as never)).toThrow(TypeError);
    const app = new Koa();
    app.silent = true;
    let failure: unknown;
    app.use(async (ctx) => {
      try {
        await sendSSE(ctx, answer('x'), { timeout: 5000 } as never);
      } catch (error) {
        failure = error;
        ctx.status = 400;
        ctx.body = { checked: true };
      }
    });
    const { response, body } = await request(await listen(app));
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(body)).toEqual({ checked: true });
    expect(String(failure)).toMatch(/Expected `timeout` to be an object/);
    await expect(sendSSE({} as never, answer())).rejects.toThrow(/Expected `ctx` to be a Koa context/);
  });

  it('sendSSE() resolves with the result once the response has ended', async () => {
    const results: SendSSEResult[] = [];
    const app = new Koa();
    app.use(async (ctx) => {
      results.push(await sendSSE(ctx, answer('Hi')));
    });
    expect((await request(await listen(app))).body).toContain('event: done');
    await vi.waitFor(() => expect(results).toHaveLength(1));
    expect(results[0]).toMatchObject({ outcome: 'completed', status: 200, metrics: { outcome: 'completed' } });
  });
});
