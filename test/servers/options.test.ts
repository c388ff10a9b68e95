// Options are checked deeply, once, at the call: a wrong shape or an unknown key (with a
// "did you mean" for a near miss) is a TypeError there, even from plain JavaScript.
import { createServer, ServerResponse, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { monitored, toSSE, withBackpressure, withTimeout, type TokenChunk } from 'tokenrelay';
import { sse } from 'tokenrelay/express';
import { sendSSE as sendHonoSSE } from 'tokenrelay/hono';
import { sendSSE } from 'tokenrelay/node';
import { toResponse } from 'tokenrelay/web';
import { sendOverWebSocket } from 'tokenrelay/ws';

async function* answer(): AsyncGenerator<TokenChunk> {
  yield { token: 'Hi', index: 0, timestamp: 0, type: 'text' };
  yield { token: '', index: 1, timestamp: 0, type: 'text', finishReason: 'stop' };
}

/** Bad options, and what the error must say. */
const badOptions: Array<[string, object, RegExp]> = [
  ['a number where an object is expected', { timeout: 5000 }, /Expected `timeout` to be an object, got 5000/],
  ['a near miss in timeout', { timeout: { idleMS: 100 } }, /Unknown option `idleMS` in `timeout`; did you mean `idleMs`\?/],
  ['a wrong type in timeout', { timeout: { idleMs: '100' } }, /Expected `timeout\.idleMs` to be a number >= 0, got "100"/],
  ['a near miss in backpressure', { backpressure: { highWatermark: 8 } }, /Unknown option `highWatermark` in `backpressure`; did you mean `highWaterMark`\?/],
  ['a bad overflow', { backpressure: { overflow: 'drop' } }, /Expected `backpressure\.overflow` to be one of 'wait', 'coalesce', 'error', got "drop"/],
  ['a near miss in monitor', { monitor: { onFinsh: () => undefined } }, /Unknown option `onFinsh` in `monitor`; did you mean `onFinish`\?/],
  ['a hook that is not a function', { monitor: { onFinish: 'log' } }, /Expected `monitor\.onFinish` to be a function/],
  ['a near miss in the price', { monitor: { price: { inputPerMtok: 1, outputPerMTok: 2 } } }, /Unknown option `inputPerMtok` in `price`; did you mean `inputPerMTok`\?/],
  ['a near miss at the top', { heartbeat: 1000 }, /Unknown option `heartbeat` in `options`; did you mean `heartbeatMs`\?/],
  ['a key far from any', { model: 'gpt-4o' }, /Unknown option `model` in `options`; known options: `timeout`, `backpressure`/],
  ['a near miss in events', { events: { tokens: 'delta' } }, /Unknown option `tokens` in `events`; did you mean `token`\?/],
  ['a logger that cannot log', { logger: { log: () => undefined } }, /Expected `logger` to be a function or an object with an info\(\) method/],
];

const request = new Request('http://localhost/chat', { method: 'POST' });

describe.each(badOptions)('%s', (_case, options, message) => {
  it('express sse(): a TypeError when the handler is made', () => {
    expect(() => sse(() => answer(), options as never)).toThrow(TypeError);
    expect(() => sse(() => answer(), options as never)).toThrow(message);
  });

  it('node sendSSE(): rejects with a TypeError before touching the response', async () => {
    const req = { httpVersion: '1.1', httpVersionMajor: 1, method: 'POST', url: '/chat', socket: null } as unknown as IncomingMessage;
    const response = new ServerResponse(req);
    await expect(sendSSE(req, response, answer(), options as never)).rejects.toThrow(message);
    expect(response.headersSent).toBe(false);
  });

  it('web toResponse(): rejects with a TypeError', async () => {
    await expect(toResponse(answer(), { request, ...options } as never)).rejects.toThrow(message);
  });

  it('hono sendSSE(): rejects with a TypeError', async () => {
    const app = new Hono();
    let failure: unknown;
    app.post('/chat', async (c) => {
      try {
        return await sendHonoSSE(c, answer(), options as never);
      } catch (error) {
        failure = error;
        return c.text('checked', 400);
      }
    });
    expect((await app.request('/chat', { method: 'POST' })).status).toBe(400);
    expect(failure).toBeInstanceOf(TypeError);
    expect(String(failure)).toMatch(message);
  });

  it('ws sendOverWebSocket(): a TypeError at the call', () => {
    const socket = { readyState: 1, bufferedAmount: 0, send: () => undefined, close: () => undefined, addEventListener: () => undefined, removeEventListener: () => undefined };
    // The SSE options are not the socket's: there they are unknown keys themselves.
    const sseOnly = 'heartbeat' in options || 'events' in options;
    expect(() => sendOverWebSocket(socket as never, answer(), options as never)).toThrow(sseOnly ? /Unknown option `(heartbeat|events)` in `options`/ : message);
  });
});

describe('adapter-specific keys', () => {
  it('a near miss of writeTimeoutMs is caught by the Node adapters and the web adapter', async () => {
    expect(() => sse(() => answer(), { writeTimeout: 1000 } as never)).toThrow(/Unknown option `writeTimeout` in `options`; did you mean `writeTimeoutMs`\?/);
    await expect(toResponse(answer(), { request, statusWindowMS: 10 } as never)).rejects.toThrow(/did you mean `statusWindowMs`\?/);
  });

  it('writeCombining is no option of the Node adapters (the benchmark turns it off from the inside)', async () => {
    const req = { httpVersion: '1.1', httpVersionMajor: 1, method: 'POST', url: '/chat', socket: null } as unknown as IncomingMessage;
    const response = new ServerResponse(req);
    const call = sendSSE(req, response, answer(), { writeCombining: false } as never);
    await expect(call).rejects.toThrow(TypeError);
    await expect(call).rejects.toThrow(/Unknown option `writeCombining` in `options`/);
    expect(response.headersSent).toBe(false);
    expect(() => sse(() => answer(), { writeCombining: false } as never)).toThrow(/Unknown option `writeCombining`/);
  });

  it('the WebSocket adapter names its own keys', () => {
    const socket = { readyState: 1, bufferedAmount: 0, send: () => undefined, close: () => undefined, addEventListener: () => undefined, removeEventListener: () => undefined };
    expect(() => sendOverWebSocket(socket as never, answer(), { maxBufferedAmmount: 10 } as never)).toThrow(/did you mean `maxBufferedAmount`\?/);
    expect(() => sendOverWebSocket(socket as never, answer(), { headers: {} } as never)).toThrow(/Unknown option `headers`/);
  });
});

describe('operators', () => {
  it.each<[string, () => unknown, RegExp]>([
    ['withTimeout(5000)', () => withTimeout(5000 as never), /Expected `options` to be an object, got 5000/],
    ['withTimeout({ idleMS })', () => withTimeout({ idleMS: 100 } as never), /did you mean `idleMs`\?/],
    ['withTimeout({ idleMs: -1 })', () => withTimeout({ idleMs: -1 }), /Expected `idleMs` to be a number >= 0, got -1/],
    ['withBackpressure({ overflw })', () => withBackpressure({ overflw: 'wait' } as never), /did you mean `overflow`\?/],
    ['monitored({ onfinish })', () => monitored({ onfinish: () => undefined } as never), /did you mean `onFinish`\?/],
    ['monitored({ keepText: 1 })', () => monitored({ keepText: 1 } as never), /Expected `keepText` to be a boolean, got 1/],
    ['toSSE({ retry })', () => toSSE({ retry: 1000 } as never), /did you mean `retryMs`\?/],
    ['toSSE({ events: [] })', () => toSSE({ events: [] } as never), /Expected `events` to be an object, got an array/],
  ])('%s is a TypeError at the call', (_name, call, message) => {
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
  });
});

describe('checked once, when the handler is made', () => {
  it('express sse() builds every request from the options it checked, not from the object it was given', async () => {
    const options: Record<string, unknown> = { timeout: { idleMs: 5_000 }, heartbeatMs: false };
    const app = express();
    app.get('/chat', sse(() => answer(), options));
    // Spoiling the object afterwards changes nothing: the handler holds the checked, resolved plan.
    options['timeout'] = 'spoiled';
    options['heartbeatMs'] = -1;
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/chat`);
      expect(response.status).toBe(200);
      expect(await response.text()).toMatch(/event: done/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a WebSocket answer with good options still streams (keys from every layer are accepted)', async () => {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => {
      void sendOverWebSocket(socket, answer(), {
        timeout: { firstTokenMs: 1000 },
        backpressure: { highWaterMark: 4 },
        monitor: { keepText: true },
        logger: () => undefined,
        streamId: 's',
        closeOnEnd: true,
        exposeErrors: false,
        maxBufferedAmount: 1024,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const types: string[] = [];
    await new Promise<void>((resolve) => {
      client.on('message', (data) => types.push((JSON.parse(String(data)) as { type: string }).type));
      client.on('close', () => resolve());
    });
    expect(types).toEqual(['token', 'done']);
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
