import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { sendSSE, type SendSSEOptions, type SendSSEResult, type StreamLogRecord } from 'tokenrelay/node';
import { sendOverWebSocket, type WebSocketLike } from 'tokenrelay/ws';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  vi.restoreAllMocks();
});

const price = { inputPerMTok: 1, outputPerMTok: 2 };
const state = { finallyRan: 0 };

/** `count` tokens, then the final usage; or, with `stallAfter`, waits for the abort after that many. */
async function* answer(signal: AbortSignal, count: number, stallAfter = Infinity): AsyncGenerator<TokenChunk> {
  try {
    for (let index = 0; index < count; index++) {
      if (index === stallAfter) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      yield { token: `token${index} `, index, timestamp: 0, type: 'text', model: 'gpt-4o-mini', provider: 'openai' };
    }
    yield { token: '', index: count, timestamp: 0, type: 'text', finishReason: 'stop', usage: { inputTokens: 30, outputTokens: count } };
  } finally {
    state.finallyRan++;
  }
}

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => Promise<SendSSEResult>) {
  const results: Array<Promise<SendSSEResult>> = [];
  const server = http.createServer((req, res) => void results.push(handle(req, res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, results };
}

/** Reads the response until `enough` says so (then drops the connection) or it ends; resolves with the body. */
function read(url: string, enough: (body: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => {
        body += text;
        if (enough(body)) {
          request.destroy();
          resolve(body);
        }
      });
      response.on('end', () => resolve(body));
      response.on('error', () => resolve(body));
    });
    request.on('error', reject);
  });
}

const count = (text: string, what: string) => text.split(what).length - 1;

describe('the logger option', () => {
  it('gets one structured record per stream, at its end, never one per token', async () => {
    const records: StreamLogRecord[] = [];
    const options: SendSSEOptions = { logger: (record) => void records.push(record), monitor: { price } };
    const { url, results } = await serve((req, res) => sendSSE(req, res, (signal) => answer(signal, 50), options));
    const body = await read(url);
    expect(count(body, 'event: token')).toBe(50);
    const { metrics } = await results[0]!;
    expect(records).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o-mini',
        outcome: 'completed',
        ttftMs: metrics.ttftMs,
        durationMs: metrics.durationMs,
        inputTokens: 30,
        outputTokens: 50,
        estimated: false,
        cost: (30 * 1 + 50 * 2) / 1e6,
      },
    ]);
    expect(records[0]!.ttftMs).toBeTypeOf('number');
  });

  it('accepts a pino/console-like object, and logs an aborted stream with an estimated cost', async () => {
    class Logger {
      readonly lines: object[] = [];
      info(record: object): void {
        this.lines.push(record);
      }
    }
    const logger = new Logger();
    state.finallyRan = 0;
    const { url, results } = await serve((req, res) => sendSSE(req, res, (signal) => answer(signal, 50, 3), { logger, monitor: { price } }));
    await read(url, (body) => count(body, 'event: token') >= 3);
    const { outcome } = await results[0]!;
    expect(outcome).toBe('client-closed');
    // 3 chunks of `tokenN ` (21 characters): ceil(21 / 4) = 6 tokens estimated, no input count.
    expect(logger.lines).toEqual([
      expect.objectContaining({ outcome: 'aborted', inputTokens: undefined, outputTokens: 6, estimated: true, cost: (6 * 2) / 1e6 }),
    ]);
    await vi.waitFor(() => expect(state.finallyRan).toBe(1));
  });

  it('never lets a throwing logger break the stream or the monitor, and reports it', async () => {
    const failure = new Error('log sink down');
    const onHookError = vi.fn();
    const onFinish = vi.fn();
    const logger = () => {
      throw failure;
    };
    const { url, results } = await serve((req, res) => sendSSE(req, res, (signal) => answer(signal, 5), { logger, monitor: { onFinish, onHookError } }));
    expect(count(await read(url), 'event: done')).toBe(1);
    expect((await results[0]!).outcome).toBe('completed');
    expect(onFinish).toHaveBeenCalledOnce();
    expect(onHookError).toHaveBeenCalledExactlyOnceWith(failure, 'onFinish');

    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const quiet = await serve((req, res) => sendSSE(req, res, (signal) => answer(signal, 1), { logger }));
    await read(quiet.url);
    await quiet.results[0];
    expect(logged).toHaveBeenCalledExactlyOnceWith('tokenrelay: the logger threw', failure);
  });

  it('puts the WebSocket streamId in the record as its id', async () => {
    const socket = { send() {}, close() {}, readyState: 1, on() {}, off() {} } satisfies WebSocketLike;
    const records: StreamLogRecord[] = [];
    await sendOverWebSocket(socket, (signal) => answer(signal, 2), { streamId: 'chat-7', logger: (record) => void records.push(record) });
    expect(records).toEqual([expect.objectContaining({ id: 'chat-7', outcome: 'completed', outputTokens: 2 })]);
  });

  it('fails fast on a logger that is neither a function nor has info()', async () => {
    const req = Object.assign(Object.create(http.IncomingMessage.prototype), { httpVersion: '1.1' }) as IncomingMessage;
    const res = { writeHead() {}, headersSent: false } as unknown as ServerResponse;
    await expect(sendSSE(req, res, (signal) => answer(signal, 1), { logger: { log() {} } as never })).rejects.toThrow(
      new TypeError('Expected `logger` to be a function or an object with an info() method, got an object'),
    );
  });
});
