import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { fromAsyncIterable, tokens, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import {
  closeAllStreams,
  sendOverWebSocket,
  type SendOverWebSocketOptions,
  type TokenSourceInput,
  type WebSocketLike,
  type WebSocketMessage,
  type WebSocketStreamResult,
} from 'tokenrelay/ws';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface TestServer {
  url: string;
  /** The server side of each connection, in order. */
  sockets: WebSocket[];
  close(): Promise<void>;
}

/** A real `ws` server on 127.0.0.1; `onSocket` runs for each connection. */
async function startServer(onSocket: (socket: WebSocket) => void = () => undefined): Promise<TestServer> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const sockets: WebSocket[] = [];
  wss.on('connection', (socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async (): Promise<void> => {
    for (const socket of wss.clients) socket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanups.push(close);
  return { url, sockets, close };
}

async function startProvider(script: MockScript): Promise<{ provider: MockProvider; openai: OpenAI }> {
  const provider = await startMockProvider({ script });
  cleanups.push(() => provider.close());
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
  return { provider, openai };
}

function openaiSource(openai: OpenAI, content = 'Hi'): TokenSourceInput {
  return (signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { signal });
}

/** A `ws` client that records every message it receives, parsed. */
async function connect(url: string): Promise<{ client: WebSocket; messages: WebSocketMessage[]; closed: Promise<number> }> {
  const client = new WebSocket(url);
  const messages: WebSocketMessage[] = [];
  client.on('message', (data) => messages.push(JSON.parse(String(data)) as WebSocketMessage));
  const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  cleanups.push(async () => client.terminate());
  return { client, messages, closed };
}

const tokenTexts = (messages: WebSocketMessage[]): string[] =>
  messages.flatMap((message) => (message.type === 'token' ? [message.chunk.token] : []));

/** The standard WebSocket interface only (no `on`, no send callback), over a real `ws` socket. */
function standardFacade(socket: WebSocket): WebSocketLike {
  return {
    get readyState() {
      return socket.readyState;
    },
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send: (data: string) => socket.send(data),
    close: (code?: number, reason?: string) => socket.close(code, reason),
    addEventListener: (type, listener) => socket.addEventListener(type, listener),
    removeEventListener: (type, listener) => socket.removeEventListener(type, listener),
  };
}

describe('sendOverWebSocket: disconnect reaches the provider', () => {
  const script: MockScript = { tokens: Array.from({ length: 40 }, (_, i) => `t${i} `), delayMs: 20 };

  /** A chat server: each client message `{ prompt }` starts an answer on the same socket. */
  async function chatServer(openai: OpenAI) {
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const finished: StreamMetrics[] = [];
    const server = await startServer((socket) => {
      socket.on('message', (data) => {
        const { prompt } = JSON.parse(String(data)) as { prompt: string };
        results.push(sendOverWebSocket(socket, openaiSource(openai, prompt), { monitor: { onFinish: (m) => void finished.push(m) } }));
      });
    });
    return { server, results, finished };
  }

  for (const how of ['close', 'terminate'] as const) {
    it(`a ws client that ${how}s after 3 tokens closes the provider request within 100 ms`, async () => {
      const { provider, openai } = await startProvider(script);
      const { server, results, finished } = await chatServer(openai);
      const { client, messages } = await connect(server.url);
      client.send(JSON.stringify({ prompt: 'Tell me a story' }));
      await vi.waitFor(() => expect(tokenTexts(messages).length).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 1 });
      const leftAt = performance.now();
      client[how]();

      const record = await (await provider.request(1)).ended;
      expect(record.end).toBe('client-closed');
      expect(record.endedAt! - leftAt).toBeLessThan(100);
      console.info(`ws client ${how}() -> provider request closed in ${(record.endedAt! - leftAt).toFixed(2)} ms`);
      expect(record.body['messages']).toEqual([{ role: 'user', content: 'Tell me a story' }]);
      const result = await results[0]!;
      expect(result.outcome).toBe('aborted');
      expect(finished).toEqual([result.metrics]);
      expect(result.metrics.outputTokens).toBeGreaterThanOrEqual(3);
      expect(result.metrics.chunks).toBe(result.metrics.outputTokens);
      expect(result.metrics.usage).toBeUndefined(); // OpenAI reports usage only with the last chunk
      expect(tokenTexts(messages).length).toBeLessThan(script.tokens!.length);
      expect(messages.some((message) => message.type !== 'token')).toBe(false);
    });
  }

  it('works the same with the Node global WebSocket as the client', async () => {
    const { provider, openai } = await startProvider(script);
    const { server, results } = await chatServer(openai);
    const client = new globalThis.WebSocket(server.url);
    const received: WebSocketMessage[] = [];
    client.addEventListener('message', (event) => received.push(JSON.parse(String(event.data)) as WebSocketMessage));
    await new Promise((resolve) => client.addEventListener('open', resolve, { once: true }));
    client.send(JSON.stringify({ prompt: 'Hi' }));
    await vi.waitFor(() => expect(tokenTexts(received).length).toBeGreaterThanOrEqual(3), { timeout: 5000, interval: 1 });
    const leftAt = performance.now();
    client.close();

    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    expect(record.endedAt! - leftAt).toBeLessThan(100);
    console.info(`global WebSocket close() -> provider request closed in ${(record.endedAt! - leftAt).toFixed(2)} ms`);
    const result = await results[0]!;
    expect(result.outcome).toBe('aborted');
    expect(result.metrics.outputTokens).toBeGreaterThanOrEqual(3);
  });

  it('reports the usage seen so far when the client leaves', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    async function* source(): AsyncGenerator<TokenChunk> {
      yield { token: 'a', index: 0, timestamp: 0, type: 'text', usage: { inputTokens: 7, outputTokens: 1 } };
      yield { token: 'b', index: 1, timestamp: 0, type: 'text', usage: { inputTokens: 7, outputTokens: 2 } };
      await blocked;
    }
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const server = await startServer((socket) => results.push(sendOverWebSocket(socket, source())));
    const { client, messages } = await connect(server.url);
    await vi.waitFor(() => expect(messages).toHaveLength(2));
    client.close();
    const { outcome, metrics } = await results[0]!;
    release();
    expect(outcome).toBe('aborted');
    expect(metrics.usage).toEqual({ inputTokens: 7, outputTokens: 2 });
    expect(metrics.outputTokens).toBe(2);
  });
});

describe('sendOverWebSocket: messages', () => {
  async function run(source: TokenSourceInput, options: SendOverWebSocketOptions = {}) {
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const server = await startServer((socket) => results.push(sendOverWebSocket(socket, source, options)));
    const connection = await connect(server.url);
    await vi.waitFor(() => expect(results).toHaveLength(1));
    return { ...connection, result: await results[0]!, server };
  }

  it('sends each chunk as a token message, then done with the finish reason and usage', async () => {
    const { provider, openai } = await startProvider({ tokens: ['Hel', 'lo', ' 👋'], usage: { inputTokens: 5, outputTokens: 3 } });
    const { messages, result } = await run(openaiSource(openai), { streamId: 'answer-1' });
    await vi.waitFor(() => expect(messages.at(-1)?.type).toBe('done'));
    expect(tokenTexts(messages)).toEqual(['Hel', 'lo', ' 👋']);
    const first = messages[0]!;
    expect(first).toEqual({
      type: 'token',
      streamId: 'answer-1',
      chunk: expect.objectContaining({ token: 'Hel', index: 0, type: 'text', provider: 'openai' }),
    });
    expect(messages.at(-1)).toEqual({
      type: 'done',
      streamId: 'answer-1',
      finishReason: 'stop',
      index: 3,
      usage: expect.objectContaining({ inputTokens: 5, outputTokens: 3 }),
      model: 'gpt-4o-mini',
      provider: 'openai',
    });
    expect(messages.every((message) => message.streamId === 'answer-1')).toBe(true);
    expect(result.outcome).toBe('completed');
    expect(result.metrics.usage).toMatchObject({ inputTokens: 5, outputTokens: 3 });
    expect((await (await provider.request(1)).ended).end).toBe('completed');
  });

  it('sends the text of a final chunk as a token message before done, and keeps the socket open', async () => {
    const source = fromAsyncIterable([
      'a',
      { token: 'b', finishReason: 'length', usage: { inputTokens: 1, outputTokens: 2 } },
    ]);
    const { messages, client, result } = await run(source);
    await vi.waitFor(() => expect(messages).toHaveLength(3));
    expect(messages.map((message) => message.type)).toEqual(['token', 'token', 'done']);
    const second = messages[1] as Extract<WebSocketMessage, { type: 'token' }>;
    expect(second.chunk).not.toHaveProperty('finishReason');
    expect(messages[2]).toEqual({ type: 'done', finishReason: 'length', index: 1, usage: { inputTokens: 1, outputTokens: 2 } });
    expect(result.outcome).toBe('completed');
    expect(client.readyState).toBe(WebSocket.OPEN);
  });

  it('closes the socket with 1000 after the last message with closeOnEnd', async () => {
    const { messages, closed } = await run(tokens(['x', 'y']), { closeOnEnd: true });
    expect(await closed).toBe(1000);
    expect(messages.map((message) => message.type)).toEqual(['token', 'token', 'done']);
  });

  it('ends with an error message when the provider fails mid-stream', async () => {
    const { openai } = await startProvider({ tokens: ['a', 'b', 'c', 'd'], fault: { kind: 'error-event', afterTokens: 2, message: 'secret detail' } });
    const { messages, result } = await run(openaiSource(openai));
    await vi.waitFor(() => expect(messages.at(-1)?.type).toBe('error'));
    expect(tokenTexts(messages)).toEqual(['a', 'b']);
    expect(messages.at(-1)).toMatchObject({ type: 'error', code: 'provider', message: 'The provider failed' });
    expect(JSON.stringify(messages)).not.toContain('secret detail');
    expect(result.outcome).toBe('error');
  });

  it('sends a provider error before the first token with its status and retry delay', async () => {
    const { openai } = await startProvider({
      fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', message: 'Slow down', headers: { 'retry-after': '2' } },
    });
    const { messages, result } = await run(openaiSource(openai), { exposeErrors: true });
    await vi.waitFor(() => expect(messages).toHaveLength(1));
    expect(messages[0]).toMatchObject({ type: 'error', code: 'provider', status: 429, retryable: true, retryAfterMs: 2000 });
    expect((messages[0] as { message: string }).message).toContain('Slow down');
    expect(result.outcome).toBe('error');
  });

  it('ends with a timeout error message and aborts a stalled provider', async () => {
    const { provider, openai } = await startProvider({ tokens: ['a', 'b', 'c'], fault: { kind: 'stall', afterTokens: 1 } });
    const { messages, result } = await run(openaiSource(openai), { timeout: { idleMs: 150 } });
    await vi.waitFor(() => expect(messages.at(-1)?.type).toBe('error'));
    expect(messages.at(-1)).toMatchObject({ type: 'error', code: 'timeout' });
    expect(result.outcome).toBe('timeout');
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
  });

  it('stops one answer through `signal` without closing the socket, then carries the next one', async () => {
    const { provider, openai } = await startProvider({ tokens: Array.from({ length: 40 }, () => 'x'), delayMs: 20 });
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const server = await startServer((socket) => {
      let stop = new AbortController();
      socket.on('message', (data) => {
        if (String(data) === 'stop') return stop.abort();
        stop = new AbortController();
        results.push(sendOverWebSocket(socket, openaiSource(openai), { signal: stop.signal, streamId: String(data) }));
      });
    });
    const { client, messages } = await connect(server.url);
    client.send('one');
    await vi.waitFor(() => expect(tokenTexts(messages).length).toBeGreaterThanOrEqual(2));
    client.send('stop');
    await vi.waitFor(() => expect(messages.at(-1)?.type).toBe('error'));
    expect(messages.at(-1)).toEqual({ type: 'error', streamId: 'one', code: 'aborted', message: 'The stream was aborted' });
    expect((await results[0]!).outcome).toBe('aborted');
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');

    provider.setScript({ tokens: ['second'] });
    client.send('two');
    await vi.waitFor(() => expect(messages.at(-1)).toMatchObject({ type: 'done', streamId: 'two' }));
    expect((await results[1]!).outcome).toBe('completed');
  });

  it('keeps answers that share a socket apart by streamId', async () => {
    const server = await startServer((socket) => {
      void sendOverWebSocket(socket, tokens(['a1', 'a2', 'a3']), { streamId: 'a' });
      void sendOverWebSocket(socket, tokens(['b1', 'b2']), { streamId: 'b' });
    });
    const { messages } = await connect(server.url);
    await vi.waitFor(() => expect(messages.filter((message) => message.type === 'done')).toHaveLength(2));
    const of = (id: string) => tokenTexts(messages.filter((message) => message.streamId === id));
    expect(of('a')).toEqual(['a1', 'a2', 'a3']);
    expect(of('b')).toEqual(['b1', 'b2']);
  });

  it('waits for a connecting socket to open (a client-side sender)', async () => {
    const received: WebSocketMessage[] = [];
    const server = await startServer((socket) => socket.on('message', (data) => received.push(JSON.parse(String(data)))));
    const sender = new WebSocket(server.url);
    cleanups.push(async () => sender.terminate());
    expect(sender.readyState).toBe(WebSocket.CONNECTING);
    const result = await sendOverWebSocket(sender, tokens(['up']));
    expect(result.outcome).toBe('completed');
    await vi.waitFor(() => expect(received.map((message) => message.type)).toEqual(['token', 'done']));
  });

  it('does not start the source on a socket that is already closed', async () => {
    const server = await startServer();
    const { client } = await connect(server.url);
    await vi.waitFor(() => expect(server.sockets).toHaveLength(1));
    const socket = server.sockets[0]!;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    client.close();
    await closed;
    const factory = vi.fn((_signal: AbortSignal) => tokens(['never']));
    const result = await sendOverWebSocket(socket, factory);
    expect(result.outcome).toBe('aborted');
    expect(factory).not.toHaveBeenCalled();
  });

  it('leaves no listener behind after 1,000 answers on one socket', async () => {
    const server = await startServer();
    const { messages } = await connect(server.url);
    await vi.waitFor(() => expect(server.sockets).toHaveLength(1));
    const socket = server.sockets[0]!;
    const before = ['close', 'error', 'open'].map((event) => socket.listenerCount(event));
    const signal = new AbortController().signal;
    for (let i = 0; i < 1000; i++) {
      const result = await sendOverWebSocket(socket, tokens(['x']), { signal });
      expect(result.outcome).toBe('completed');
    }
    expect(['close', 'error', 'open'].map((event) => socket.listenerCount(event))).toEqual(before);
    await vi.waitFor(() => expect(messages).toHaveLength(2000));
  });

  it('adds one listener per event to a socket, however many answers share it (no MaxListeners warning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    cleanups.push(async () => void process.off('warning', onWarning));
    const server = await startServer();
    const { messages } = await connect(server.url);
    await vi.waitFor(() => expect(server.sockets).toHaveLength(1));
    const socket = server.sockets[0]!;
    const before = ['close', 'error'].map((event) => socket.listenerCount(event));
    const gates: Array<() => void> = [];
    async function* held(id: number): AsyncGenerator<TokenChunk> {
      yield { token: `first ${id}`, index: 0, timestamp: 0, type: 'text' };
      await new Promise<void>((resolve) => gates.push(resolve));
      yield { token: `second ${id}`, index: 1, timestamp: 0, type: 'text' };
    }
    const results = Array.from({ length: 25 }, (_, id) => sendOverWebSocket(socket, () => held(id), { streamId: String(id) }));
    await vi.waitFor(() => expect(gates).toHaveLength(25));
    expect(['close', 'error'].map((event) => socket.listenerCount(event))).toEqual(before.map((count) => count + 1));
    for (const open of gates) open();
    for (const result of await Promise.all(results)) expect(result.outcome).toBe('completed');
    expect(['close', 'error'].map((event) => socket.listenerCount(event))).toEqual(before);
    await vi.waitFor(() => expect(messages.filter((message) => message.type === 'done')).toHaveLength(25));
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('ends every answer on a shared socket when the client goes away', async () => {
    const server = await startServer();
    const { client } = await connect(server.url);
    await vi.waitFor(() => expect(server.sockets).toHaveLength(1));
    const socket = server.sockets[0]!;
    const before = ['close', 'error'].map((event) => socket.listenerCount(event));
    const endlessTokens = () =>
      (async function* (): AsyncGenerator<TokenChunk> {
        for (let index = 0; ; index++) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          yield { token: 'x', index, timestamp: 0, type: 'text' };
        }
      })();
    const results = Array.from({ length: 15 }, (_, id) => sendOverWebSocket(socket, endlessTokens, { streamId: String(id) }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.terminate();
    for (const result of await Promise.all(results)) expect(result.outcome).toBe('aborted');
    expect(['close', 'error'].map((event) => socket.listenerCount(event))).toEqual(before);
  });

  it('accepts the ws socket and the standard WebSocket types', () => {
    expectTypeOf<WebSocket>().toExtend<WebSocketLike>();
    expectTypeOf<globalThis.WebSocket>().toExtend<WebSocketLike>();
  });

  it('rejects bad arguments with a TypeError that says what came', () => {
    const socket = { send() {}, close() {}, readyState: 1, on() {}, off() {} } satisfies WebSocketLike;
    expect(() => sendOverWebSocket({} as WebSocketLike, tokens([]))).toThrow(/Expected `socket` to be a WebSocket.*got an object/);
    expect(() => sendOverWebSocket(socket, 'text' as never)).toThrow(/Expected `source`.*got "text"/);
    expect(() => sendOverWebSocket(socket, tokens([]), { maxBufferedAmount: -1 })).toThrow(/`maxBufferedAmount`.*got -1/);
    expect(() => sendOverWebSocket(socket, tokens([]), { closeOnEnd: 'yes' as never })).toThrow(/`closeOnEnd` to be a boolean, got "yes"/);
    expect(() => sendOverWebSocket(socket, tokens([]), { streamId: 7 as never })).toThrow(/`streamId` to be a string, got 7/);
  });
});

describe('sendOverWebSocket: backpressure', () => {
  const TOTAL = 200_000;
  const MAX = 64 * 1024;

  for (const kind of ['ws', 'standard'] as const) {
    it(`pauses a fast source for a client that stops reading, then delivers every token once (${kind} socket)`, async () => {
      let pulled = 0;
      function* counted(): Generator<string> {
        for (let i = 0; i < TOTAL; i++) {
          pulled++;
          yield `t${i}`;
        }
      }
      let sent = 0;
      let maxBuffered = 0;
      const results: Array<Promise<WebSocketStreamResult>> = [];
      const server = await startServer((socket) => {
        const send = socket.send.bind(socket) as (data: string, cb?: (error?: Error) => void) => void;
        socket.send = ((data: string, cb?: (error?: Error) => void) => {
          send(data, cb);
          sent++;
          maxBuffered = Math.max(maxBuffered, socket.bufferedAmount);
        }) as typeof socket.send;
        const target = kind === 'ws' ? socket : standardFacade(socket);
        results.push(sendOverWebSocket(target, fromAsyncIterable(counted()), { maxBufferedAmount: MAX }));
      });
      const client = new WebSocket(server.url);
      cleanups.push(async () => client.terminate());
      const texts: string[] = [];
      let done = false;
      client.on('message', (data) => {
        const message = JSON.parse(String(data)) as WebSocketMessage;
        if (message.type === 'token') texts.push(message.chunk.token);
        else done = message.type === 'done';
      });
      client.on('open', () => client.pause());
      await new Promise((resolve) => client.once('open', resolve));

      let previous = -1;
      const settled = (): void => {
        const now = pulled;
        const unchanged = now === previous;
        previous = now;
        expect(unchanged && server.sockets[0]!.bufferedAmount > MAX).toBe(true);
      };
      await vi.waitFor(settled, { timeout: 10_000, interval: 50 });
      const pulledWhenFull = pulled;
      // A window to show that nothing more is pulled or sent while the client does not read.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(pulled).toBe(pulledWhenFull);
      expect(pulled - sent).toBeLessThanOrEqual(64 + 2); // withBackpressure's read-ahead, no more
      expect(pulled).toBeLessThan(TOTAL / 2);
      expect(maxBuffered).toBeLessThanOrEqual(MAX + 1024);
      console.info(`[${kind}] paused: pulled ${pulled} of ${TOTAL}, sent ${sent}, max bufferedAmount ${maxBuffered}`);

      client.resume();
      const result = await results[0]!;
      expect(result.outcome).toBe('completed');
      await vi.waitFor(() => expect(done).toBe(true), { timeout: 10_000 });
      expect(texts).toHaveLength(TOTAL);
      expect(texts.every((text, i) => text === `t${i}`)).toBe(true);
      expect(maxBuffered).toBeLessThanOrEqual(MAX + 1024);
    });
  }

  it('resumes every answer that shares a paused socket', async () => {
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const count = 20_000;
    const server = await startServer((socket) => {
      for (const id of ['a', 'b']) {
        const source = tokens(Array.from({ length: count }, (_, i) => `${id}${i}`));
        results.push(sendOverWebSocket(socket, source, { streamId: id, maxBufferedAmount: 16 * 1024 }));
      }
    });
    const client = new WebSocket(server.url);
    cleanups.push(async () => client.terminate());
    const texts: Record<string, string[]> = { a: [], b: [] };
    client.on('message', (data) => {
      const message = JSON.parse(String(data)) as WebSocketMessage;
      if (message.type === 'token') texts[message.streamId!]!.push(message.chunk.token);
    });
    client.on('open', () => client.pause());
    await new Promise((resolve) => client.once('open', resolve));
    await vi.waitFor(() => expect(server.sockets[0]?.bufferedAmount).toBeGreaterThan(16 * 1024), { timeout: 10_000 });
    client.resume();
    const outcomes = await Promise.all(results);
    expect(outcomes.map((result) => result.outcome)).toEqual(['completed', 'completed']);
    await vi.waitFor(() => expect(texts['a']!.length + texts['b']!.length).toBe(2 * count), { timeout: 10_000 });
    expect(texts['a']!.every((text, i) => text === `a${i}`)).toBe(true);
    expect(texts['b']!.every((text, i) => text === `b${i}`)).toBe(true);
  });
});

describe('sendOverWebSocket: writeTimeoutMs', () => {
  for (const kind of ['ws', 'standard'] as const) {
    it(`drops a socket whose buffer stays above maxBufferedAmount for writeTimeoutMs, and aborts the source (${kind} socket)`, async () => {
      let closedSource = false;
      async function* endless(): AsyncGenerator<TokenChunk> {
        try {
          for (let index = 0; ; index++) yield { token: 'x'.repeat(16 * 1024), index, timestamp: 0, type: 'text' };
        } finally {
          closedSource = true;
        }
      }
      const results: Array<Promise<WebSocketStreamResult>> = [];
      const server = await startServer((socket) => {
        const target = kind === 'ws' ? socket : standardFacade(socket);
        results.push(sendOverWebSocket(target, endless(), { maxBufferedAmount: 16 * 1024, writeTimeoutMs: 200 }));
      });
      const client = new WebSocket(server.url);
      cleanups.push(async () => client.terminate());
      client.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.once('open', () => client.pause());
      await new Promise((resolve) => client.once('open', resolve));
      const started = performance.now();
      await vi.waitFor(() => expect(results).toHaveLength(1));
      const result = await results[0]!;
      expect(result.outcome).toBe('aborted');
      expect(String(result.metrics.error)).toMatch(/The client read nothing for 200 ms/);
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(closedSource).toBe(true);
      await vi.waitFor(() => expect(server.sockets[0]!.readyState).not.toBe(WebSocket.OPEN), { timeout: 5000 });
      if (kind === 'ws') {
        client.resume();
        await closed;
      }
    });
  }

  it('never fires while the client reads, however slow the source', async () => {
    const server = await startServer();
    const { messages } = await connect(server.url);
    const socket = server.sockets[0]!;
    const slow = (async function* (): AsyncGenerator<string> {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 60));
        yield `t${i}`;
      }
    })();
    const result = await sendOverWebSocket(socket, fromAsyncIterable(slow), { writeTimeoutMs: 50 });
    expect(result.outcome).toBe('completed');
    await vi.waitFor(() => expect(messages.at(-1)?.type).toBe('done'));
  });

  it('checks the option', () => {
    const socket = { readyState: 1, send() {}, close() {}, addEventListener() {}, removeEventListener() {} } satisfies WebSocketLike;
    expect(() => sendOverWebSocket(socket, tokens([]), { writeTimeoutMs: 0 })).toThrow(new TypeError('Expected `writeTimeoutMs` to be a number >= 1, got 0'));
    expect(() => sendOverWebSocket(socket, tokens([]), { writeTimeout: 5 } as never)).toThrow(/writeTimeoutMs/);
  });
});

describe('closeAllStreams over WebSockets', () => {
  it('sends shutdown, aborts every provider and closes 50 sockets promptly', async () => {
    const STREAMS = 50;
    const { provider, openai } = await startProvider({ tokens: Array.from({ length: 200 }, () => 'x'), delayMs: 20 });
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const server = await startServer((socket) => results.push(sendOverWebSocket(socket, openaiSource(openai), { streamId: 's' })));
    const clients = await Promise.all(Array.from({ length: STREAMS }, () => connect(server.url)));
    await vi.waitFor(() => expect(clients.every(({ messages }) => messages.length > 0)).toBe(true), { timeout: 10_000 });

    const started = performance.now();
    await closeAllStreams({ retryMs: 2000, reason: 'deploy' });
    const closeMs = performance.now() - started;
    const codes = await Promise.all(clients.map(({ closed }) => closed));
    await server.close();
    const totalMs = performance.now() - started;
    console.info(`closeAllStreams: ${STREAMS} streams closed in ${closeMs.toFixed(1)} ms, server closed after ${totalMs.toFixed(1)} ms`);

    expect(closeMs).toBeLessThan(1000); // the handshake-timeout fallback was not needed
    expect(codes).toEqual(Array.from({ length: STREAMS }, () => 1012));
    for (const { messages } of clients) {
      expect(messages.at(-1)).toEqual({ type: 'shutdown', streamId: 's', retryMs: 2000, message: 'deploy' });
      expect(messages.filter((message) => message.type !== 'token')).toHaveLength(1);
    }
    const outcomes = await Promise.all(results);
    expect(outcomes.every((result) => result.outcome === 'aborted')).toBe(true);
    const ends = await Promise.all(provider.requests.map((request) => request.ended));
    expect(ends).toHaveLength(STREAMS);
    expect(ends.every((record) => record.end === 'client-closed')).toBe(true);
  });

  it('drops a client that does not answer the closing handshake', async () => {
    const results: Array<Promise<WebSocketStreamResult>> = [];
    const server = await startServer((socket) => results.push(sendOverWebSocket(socket, (async function* () {
      yield* tokens(Array.from({ length: 100_000 }, (_, i) => `token ${i}`));
    })())));
    const client = new WebSocket(server.url);
    cleanups.push(async () => client.terminate());
    client.on('open', () => client.pause());
    const closed = new Promise((resolve) => client.once('close', resolve));
    await vi.waitFor(() => expect(server.sockets[0]?.bufferedAmount).toBeGreaterThan(64 * 1024), { timeout: 10_000 });

    const started = performance.now();
    await closeAllStreams();
    expect(performance.now() - started).toBeLessThan(3000);
    expect(server.sockets[0]!.readyState).toBe(WebSocket.CLOSED);
    expect((await results[0]!).outcome).toBe('aborted');
    client.resume();
    await closed;
  });
});
