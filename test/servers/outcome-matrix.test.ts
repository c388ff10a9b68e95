// Every server adapter × every option combination × every way a stream can end: `onFinish` (and
// the `logger`) must report exactly one outcome, and the right one (issue 12, item 1: a client
// disconnect was reported as `completed` whenever `timeout` was set with the read-ahead on).
import http, { type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createParser } from 'eventsource-parser';
import express from 'express';
import fc from 'fast-check';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ProviderError, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { sse } from 'tokenrelay/express';
import { sendSSE as sendHonoSSE } from 'tokenrelay/hono';
import { closeAllStreams, sendSSE, type SendSSEOptions, type StreamLogRecord } from 'tokenrelay/node';
import { toResponse } from 'tokenrelay/web';
import { sendOverWebSocket } from 'tokenrelay/ws';
import { liveStreamCount } from '../../src/servers/internal/registry.js';

// ---------------------------------------------------------------- the matrix

type Outcome = StreamMetrics['outcome'];
/** Every option any adapter takes here; an adapter ignores what it does not know. */
type Options = SendSSEOptions;
type Factory = (signal: AbortSignal) => AsyncIterable<TokenChunk>;

/** How the test ends the stream. */
interface ExitPath {
  name: string;
  expected: Outcome;
  /** The provider: what it yields, and how it ends. */
  script: Script;
  /** Added to the options (the tight limit of a timeout path, `writeTimeoutMs`). */
  options?: Options;
  /** The client stops reading at once (write timeout). */
  paused?: boolean;
  /** What the test does once the client has `tokens` token messages. */
  act?: (client: Client) => Promise<void> | void;
}

interface Script {
  /** Chunks before `then`; `undefined`: the drawn count (1 to 4). */
  before?: number;
  then: 'done' | 'hang' | 'throw' | 'endless';
  /** Characters per token. */
  size?: number;
}

const exitPaths: ExitPath[] = [
  { name: 'completed', expected: 'completed', script: { then: 'done' } },
  { name: 'client disconnect', expected: 'aborted', script: { then: 'endless' }, act: (client) => client.disconnect() },
  { name: 'first-token timeout', expected: 'timeout', script: { before: 0, then: 'hang' }, options: { timeout: { firstTokenMs: 40 } } },
  { name: 'idle timeout', expected: 'timeout', script: { then: 'hang' }, options: { timeout: { idleMs: 40 } } },
  { name: 'total timeout', expected: 'timeout', script: { then: 'endless' }, options: { timeout: { totalMs: 120 } } },
  { name: 'provider error', expected: 'error', script: { then: 'throw' } },
  {
    name: 'write timeout',
    expected: 'aborted',
    script: { before: 0, then: 'endless', size: 64 * 1024 },
    options: { writeTimeoutMs: 100 },
    paused: true,
  },
  { name: 'shutdown', expected: 'aborted', script: { then: 'endless' }, act: () => closeAllStreams({ retryMs: 100 }) },
];

/** Limits that never expire here: `timeout` set, as in the README, without deciding anything. */
const LOOSE = { firstTokenMs: 10_000, idleMs: 10_000, totalMs: 60_000 };
const timeouts = [
  ['timeout unset', undefined],
  ['timeout set', LOOSE],
] as const;
const backpressures = [
  ['backpressure default', undefined],
  ['backpressure false', false],
  ['backpressure custom', { highWaterMark: 2, maxBufferedBytes: 4096, overflow: 'coalesce' }],
] as const;
const observers = ['monitor', 'logger', 'monitor + logger'] as const;

interface Combination {
  label: string;
  exit: ExitPath;
  timeout: Options['timeout'];
  backpressure: Options['backpressure'];
  observer: (typeof observers)[number];
  /** Tokens the client receives before the test acts (or the provider ends). */
  tokens: number;
  /** The logger as a function, or as a pino-like object. */
  loggerObject: boolean;
}

/**
 * The full product of exit path × `timeout` × `backpressure` (the axes of the bug); the observer
 * rotates so each one meets every exit path, and fast-check draws the rest with a fixed seed.
 */
function combinations(adapter: Adapter): Combination[] {
  const paths = exitPaths.filter((exit) => exit.name !== 'write timeout' || adapter.writeTimeout);
  const cells = paths.flatMap((exit) => timeouts.flatMap((timeout) => backpressures.map((backpressure) => ({ exit, timeout, backpressure }))));
  const drawn = fc.sample(fc.record({ tokens: fc.integer({ min: 1, max: 4 }), loggerObject: fc.boolean() }), {
    seed: 12,
    numRuns: cells.length,
  });
  return cells.map(({ exit, timeout: [timeoutName, timeout], backpressure: [backpressureName, backpressure] }, i) => {
    const observer = observers[i % observers.length]!;
    const { tokens, loggerObject } = drawn[i]!;
    return {
      label: `${exit.name}: ${timeoutName}, ${backpressureName}, ${observer}, ${tokens} tokens`,
      exit,
      timeout,
      backpressure,
      observer,
      tokens,
      loggerObject,
    };
  });
}

// ---------------------------------------------------------------- adapters

/** One adapter under test: a real server on 127.0.0.1 that streams with the options of the current case. */
interface Adapter {
  name: string;
  /** Takes `writeTimeoutMs`. */
  writeTimeout: boolean;
  /** Starts the server; every request streams `current.factory` with `current.options`. */
  start(): Promise<{ url: string; close(): Promise<void> }>;
  connect(url: string, paused: boolean): Promise<Client>;
}

interface Client {
  tokens(): number;
  /** Resolves once the client has `count` token messages; rejects if the stream ended first. */
  until(count: number): Promise<void>;
  disconnect(): void;
  /** Resolves when the connection closed or the stream's last message came. */
  ended: Promise<void>;
}

let current: { factory: Factory; options: Options } | undefined;
const route = () => current as { factory: Factory; options: Options };

const adapters: Adapter[] = [
  {
    name: 'node sendSSE',
    writeTimeout: true,
    start: () =>
      listenNode(
        // A rejection (bad options) drops the connection, so the case fails at once rather than hanging.
        http.createServer((req, res) => void sendSSE(req, res, route().factory, route().options).catch(() => res.destroy())),
      ),
    connect: openSSE,
  },
  {
    name: 'express sse()',
    writeTimeout: true,
    start: () => {
      const app = express();
      app.get('/chat', (req, res, next) => sse((_req, signal) => route().factory(signal), route().options)(req, res, next));
      return listenNode(http.createServer(app));
    },
    connect: openSSE,
  },
  {
    name: 'hono sendSSE',
    writeTimeout: true,
    start: () => {
      const app = new Hono();
      app.get('/chat', (c) => sendHonoSSE(c, route().factory, route().options));
      return listenFetch(app.fetch);
    },
    connect: openSSE,
  },
  {
    name: 'web toResponse',
    writeTimeout: true,
    start: () => listenFetch((request) => toResponse(route().factory, { ...route().options, request })),
    connect: openSSE,
  },
  {
    name: 'ws sendOverWebSocket',
    // sendOverWebSocket has no writeTimeoutMs yet (only maxBufferedAmount, which waits forever).
    writeTimeout: false,
    start: async () => {
      const server = http.createServer();
      const wss = new WebSocketServer({ server });
      wss.on('connection', (socket) => {
        socket.on('error', () => undefined);
        sendOverWebSocket(socket, route().factory, route().options).catch(() => socket.terminate());
      });
      const { url, close } = await listenNode(server);
      return {
        url: url.replace('http:', 'ws:'),
        close: async () => {
          for (const socket of wss.clients) socket.terminate();
          await new Promise<void>((resolve) => wss.close(() => resolve()));
          await close();
        },
      };
    },
    connect: openWebSocket,
  },
];

// ---------------------------------------------------------------- the tests

for (const adapter of adapters) {
  describe(`${adapter.name}: exactly one outcome per stream`, () => {
    let server: { url: string; close(): Promise<void> };
    const clients: Client[] = [];
    beforeAll(async () => {
      server = await adapter.start();
    });
    afterAll(() => server.close());
    afterEach(() => {
      for (const client of clients.splice(0)) client.disconnect();
      current = undefined;
    });

    it.each(combinations(adapter).map((combination) => [combination.label, combination] as const))('%s', async (_label, combination) => {
      const { exit, observer } = combination;
      const reports: Array<[string, Outcome]> = [];
      const source = provider({ ...exit.script, before: exit.script.before ?? combination.tokens });
      const onLog = (record: StreamLogRecord) => void reports.push(['logger', record.outcome]);
      const options: Options = {
        timeout: combination.timeout === undefined && exit.options?.timeout === undefined ? undefined : { ...combination.timeout, ...exit.options?.timeout },
        backpressure: combination.backpressure,
        ...(observer === 'logger' ? {} : { monitor: { onFinish: (metrics) => void reports.push(['monitor', metrics.outcome]) } }),
        ...(observer === 'monitor' ? {} : { logger: combination.loggerObject ? { info: onLog } : onLog }),
        ...(exit.options?.writeTimeoutMs === undefined ? {} : { writeTimeoutMs: exit.options.writeTimeoutMs }),
      };
      current = { factory: source.factory, options };

      const client = await adapter.connect(`${server.url}/chat`, exit.paused === true);
      clients.push(client);
      if (exit.act !== undefined) {
        await client.until(combination.tokens);
        await exit.act(client);
      }
      const expected: Array<[string, Outcome]> = [];
      if (observer !== 'monitor') expected.push(['logger', exit.expected]);
      if (observer !== 'logger') expected.push(['monitor', exit.expected]);
      await vi.waitFor(() => expect(reports.length).toBeGreaterThanOrEqual(expected.length), { timeout: 5000, interval: 5 });
      // Then the stream is over everywhere, and nothing reports a second time.
      await vi.waitFor(() => expect(liveStreamCount()).toBe(0), { timeout: 5000, interval: 5 });
      await vi.waitFor(() => expect(source.state).toEqual({ opened: 1, closed: 1 }), { timeout: 5000, interval: 5 });
      if (exit.name === 'completed') await client.ended;
      await turns(5);
      expect(reports.sort(([a], [b]) => a.localeCompare(b))).toEqual(expected);
    });
  });
}

// ---------------------------------------------------------------- the provider

/**
 * A provider that honours its signal as an SDK does (a pending wait rejects with the reason), and
 * counts its opening and its `finally`, to show the provider request was closed on every path.
 */
function provider(script: Required<Pick<Script, 'before'>> & Script): { factory: Factory; state: { opened: number; closed: number } } {
  const state = { opened: 0, closed: 0 };
  const size = script.size ?? 3;
  async function* stream(signal: AbortSignal): AsyncGenerator<TokenChunk> {
    state.opened++;
    try {
      let index = 0;
      const token = () => ({ token: `${index % 10}`.repeat(size), index: index++, timestamp: 0, type: 'text' as const });
      for (; index < script.before; ) {
        await sleep(script.size === undefined ? 5 : 0, signal);
        yield token();
      }
      switch (script.then) {
        case 'done':
          yield { token: '', index, timestamp: 0, type: 'text', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: index } };
          return;
        case 'throw':
          await sleep(5, signal);
          throw new ProviderError('The provider failed mid-stream', { status: 500 });
        case 'hang':
          await sleep(Infinity, signal);
          return;
        case 'endless':
          for (let more = 0; more < 100_000; more++) {
            await sleep(script.size === undefined ? 5 : 0, signal);
            yield token();
          }
      }
    } finally {
      state.closed++;
    }
  }
  return { factory: stream, state };
}

/** Waits `ms` (forever for `Infinity`), or rejects with the signal's reason when it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = Number.isFinite(ms)
      ? setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, ms)
      : undefined;
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------- servers and clients

async function listenNode(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function listenFetch(fetch: (request: Request) => Response | Promise<Response>): Promise<{ url: string; close(): Promise<void> }> {
  const server: ServerType = serve({ fetch, port: 0, hostname: '127.0.0.1' });
  if (!server.listening) await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}

/** An SSE client on its own connection; `paused` never reads the body (a client that stopped reading). */
function openSSE(url: string, paused: boolean): Promise<Client> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { agent: false, headers: { accept: 'text/event-stream' } });
    let tokens = 0;
    let finished = false;
    const waiters = new Set<() => void>();
    const notify = () => waiters.forEach((check) => check());
    let ended!: () => void;
    const endedPromise = new Promise<void>((done) => (ended = done));
    const end = () => {
      finished = true;
      ended();
      notify();
    };
    request.on('error', (error) => {
      reject(error);
      end();
    });
    request.on('close', end);
    request.on('response', (response: IncomingMessage) => {
      response.on('error', () => undefined);
      response.on('close', end);
      if (!paused) {
        const parser = createParser({
          onEvent: (event) => {
            if (event.event === 'token') tokens++;
            notify();
          },
        });
        response.setEncoding('utf8');
        response.on('data', (text: string) => parser.feed(text));
      }
      resolve({
        tokens: () => tokens,
        until: (count) => waitFor(count, () => tokens, () => finished, waiters),
        disconnect: () => request.destroy(),
        ended: endedPromise,
      });
    });
    request.end();
  });
}

async function openWebSocket(url: string): Promise<Client> {
  const socket = new WebSocket(url.replace(/\/chat$/, ''));
  let tokens = 0;
  let finished = false;
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((check) => check());
  let ended!: () => void;
  const endedPromise = new Promise<void>((done) => (ended = done));
  const end = () => {
    finished = true;
    ended();
    notify();
  };
  socket.on('error', () => undefined);
  socket.on('message', (data) => {
    const type = (JSON.parse(String(data)) as { type: string }).type;
    if (type === 'token') tokens++;
    else end();
    notify();
  });
  socket.on('close', end);
  await once(socket, 'open');
  return {
    tokens: () => tokens,
    until: (count) => waitFor(count, () => tokens, () => finished, waiters),
    disconnect: () => socket.terminate(),
    ended: endedPromise,
  };
}

function waitFor(count: number, tokens: () => number, finished: () => boolean, waiters: Set<() => void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (tokens() >= count) resolve();
      else if (finished()) reject(new Error(`The stream ended after ${tokens()} tokens, before ${count}`));
      else return;
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
}

/** Lets the event loop turn `n` times, to show that nothing more happens. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}
