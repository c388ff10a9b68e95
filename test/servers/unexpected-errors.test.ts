// A programmer error (a factory that throws, returns no stream, or reads a body nobody parsed)
// must be seen where the developer looks: the logger, monitor.onError, or else console.error,
// once, with the route and the stack. The client always gets a generic answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import express from 'express';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ProviderError, type TokenChunk } from 'tokenrelay';
import { sse } from 'tokenrelay/express';
import { sendSSE as sendHonoSSE } from 'tokenrelay/hono';
import { sendSSE, type StreamLogRecord, type TokenSourceInput } from 'tokenrelay/node';
import { toResponse } from 'tokenrelay/web';
import { sendOverWebSocket, type WebSocketMessage } from 'tokenrelay/ws';

const cleanups: Array<() => Promise<void>> = [];
let consoleError: MockInstance<typeof console.error>;
beforeEach(() => {
  consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});
afterEach(async () => {
  consoleError.mockRestore();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const chunk = (token: string, index: number): TokenChunk => ({ token, index, timestamp: 0, type: 'text' });

/** The ways an app's own code fails, each with what the report must name. */
const failures: Record<string, { source: TokenSourceInput; name: string; message: RegExp; midStream?: true }> = {
  'the factory throws': {
    source: () => {
      throw new RangeError('bad conversation id');
    },
    name: 'RangeError',
    message: /bad conversation id/,
  },
  'the factory returns no stream': {
    source: (() => ({ messages: [] })) as unknown as TokenSourceInput,
    name: 'TypeError',
    message: /async iterable/,
  },
  'the source throws mid-stream': {
    source: async function* () {
      yield chunk('Hel', 0);
      throw new TypeError("Cannot read properties of undefined (reading 'content')");
    },
    name: 'TypeError',
    message: /reading 'content'/,
    midStream: true,
  },
};

const providerFailure: TokenSourceInput = async function* () {
  yield* [];
  throw new ProviderError('The provider is overloaded', { status: 529, retryable: true, providerType: 'test' });
};

async function listen(server: Server): Promise<string> {
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

/** A node handler, an Express route and a Hono route, each serving `source` at POST /chat/:id. */
const httpAdapters: Record<string, (source: TokenSourceInput, options?: object) => Promise<string>> = {
  'node sendSSE': (source, options) =>
    listen(
      createServer((req: IncomingMessage, res: ServerResponse) => {
        void sendSSE(req, res, source, options);
      }),
    ),
  'express sse()': async (source, options) => {
    const app = express();
    app.post('/chat/:id', sse((_req, signal) => (typeof source === 'function' ? source(signal) : source), options));
    return listen(createServer(app));
  },
  'hono sendSSE': async (source, options) => {
    const app = new Hono();
    app.post('/chat/:id', (c) => sendHonoSSE(c, source, options));
    const server: ServerType = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  },
  'web toResponse': async (source, options) =>
    listen(
      createServer(async (req, res) => {
        const request = new Request(`http://127.0.0.1${req.url}`, { method: req.method ?? 'POST', body: 'x' });
        const response = await toResponse(source, { ...options, request });
        res.writeHead(response.status, Object.fromEntries(response.headers));
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        for (let part = await reader.read(); part.done !== true; part = await reader.read()) res.write(part.value);
        res.end();
      }),
    ),
};

async function post(base: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${base}/chat/42?secret=1`, { method: 'POST', body: '{}' });
  return { status: response.status, body: await response.text() };
}

/** What console.error was called with, as one string per call (the error's stack included). */
function reports(): string[] {
  return consoleError.mock.calls.map((args) => args.map((arg) => (arg instanceof Error ? `${arg.stack}` : String(arg))).join(' '));
}

describe.each(Object.entries(httpAdapters))('%s', (_adapter, serveWith) => {
  it.each(Object.entries(failures))('%s: console.error once, with the route and the stack; the client sees no detail', async (_case, failure) => {
    const { status, body } = await post(await serveWith(failure.source));
    await vi.waitFor(() => expect(consoleError).toHaveBeenCalledTimes(1));
    const [report] = reports();
    expect(report).toMatch(/^tokenrelay: POST \/chat\/42 failed/);
    expect(report).not.toContain('secret');
    expect(report).toContain(failure.name);
    expect(report).toMatch(failure.message);
    expect(report).toMatch(/\n\s+at /); // the stack
    if (failure.midStream === true) {
      expect(status).toBe(200);
      expect(body).toContain('event: error');
    } else {
      expect(status).toBe(500);
    }
    expect(body).not.toMatch(failure.message);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(consoleError).toHaveBeenCalledTimes(1);
  });

  it('a logger gets the error in its record instead, and nothing goes to the console', async () => {
    const records: StreamLogRecord[] = [];
    await post(await serveWith(failures['the factory throws']!.source, { logger: (record: StreamLogRecord) => records.push(record) }));
    await vi.waitFor(() => expect(records).toHaveLength(1));
    expect(records[0]).toMatchObject({ outcome: 'error', error: { name: 'RangeError', message: 'bad conversation id' } });
    expect(consoleError).not.toHaveBeenCalled();
  });

  it('monitor.onError gets the error instead, once, and nothing goes to the console', async () => {
    const onError = vi.fn();
    await post(await serveWith(failures['the source throws mid-stream']!.source, { monitor: { onError } }));
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    expect(onError.mock.calls[0]?.[0]).toBeInstanceOf(TypeError);
    expect(consoleError).not.toHaveBeenCalled();
  });

  it("a provider's failure is not a bug in the app: it stays off the console, and the logger names its code", async () => {
    expect((await post(await serveWith(providerFailure))).status).toBe(502);
    const records: StreamLogRecord[] = [];
    await post(await serveWith(providerFailure, { logger: (record: StreamLogRecord) => records.push(record) }));
    await vi.waitFor(() => expect(records).toHaveLength(1));
    expect(records[0]?.error).toEqual({ name: 'ProviderError', code: 'provider', message: 'The provider is overloaded' });
    expect(consoleError).not.toHaveBeenCalled();
  });
});

describe('express sse() without express.json()', () => {
  it('reading req.body.messages fails loudly on the console, not in a silent 500', async () => {
    const app = express();
    app.post(
      '/chat/:id',
      sse(async function* (req) {
        const { messages } = req.body as { messages: string[] };
        yield chunk(messages.join(''), 0);
      }),
    );
    const { status, body } = await post(await listen(createServer(app)));
    expect(status).toBe(500);
    expect(body).not.toContain('destructure');
    await vi.waitFor(() => expect(consoleError).toHaveBeenCalledTimes(1));
    expect(reports()[0]).toMatch(/^tokenrelay: POST \/chat\/42 failed[^]*TypeError/);
  });
});

describe('ws sendOverWebSocket', () => {
  async function run(source: TokenSourceInput, options: object = {}): Promise<WebSocketMessage[]> {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => void sendOverWebSocket(socket, source, { streamId: 'answer-7', ...options }));
    const base = await listen(server);
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const client = new WebSocket(base.replace('http', 'ws'));
    const messages: WebSocketMessage[] = [];
    await new Promise<void>((resolve, reject) => {
      client.on('message', (data) => {
        const message = JSON.parse(String(data)) as WebSocketMessage;
        messages.push(message);
        if (message.type !== 'token') resolve();
      });
      client.on('error', reject);
    });
    client.close();
    return messages;
  }

  it.each(Object.entries(failures))('%s: console.error once, naming the stream; the client gets a generic error', async (_case, failure) => {
    const messages = await run(failure.source);
    const last = messages.at(-1);
    expect(last).toMatchObject({ type: 'error', code: 'internal' });
    expect(JSON.stringify(last)).not.toMatch(failure.message);
    await vi.waitFor(() => expect(consoleError).toHaveBeenCalledTimes(1));
    expect(reports()[0]).toMatch(/^tokenrelay: stream answer-7 failed/);
    expect(reports()[0]).toMatch(failure.message);
  });

  it('monitor.onError takes it instead of the console', async () => {
    const onError = vi.fn();
    await run(failures['the factory throws']!.source, { monitor: { onError } });
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    expect(consoleError).not.toHaveBeenCalled();
  });
});
