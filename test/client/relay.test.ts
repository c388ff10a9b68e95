// The client against the protocol the server side speaks: a relay behind `sendSSE`, the stream id
// in `X-Stream-Id`, resumption at `GET /chat/:id` with `Last-Event-ID`, `closeAllStreams`.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { createRelay, isStreamNotFoundError, resumeCursor } from 'tokenrelay/relay';
import { streamTokens, type RetryInfo } from 'tokenrelay/client';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const WORDS = Array.from({ length: 30 }, (_, i) => `w${i} `);

/** A model that writes one word every few ms until aborted. */
async function* model(signal: AbortSignal): AsyncGenerator<TokenChunk, void, undefined> {
  for (const [index, token] of WORDS.entries()) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 3);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
    const last = index === WORDS.length - 1;
    yield { token, index, timestamp: performance.now(), type: 'text', ...(last ? { finishReason: 'stop' as const } : {}) };
  }
}

async function startChatServer() {
  const relay = createRelay({ graceMs: 5_000 });
  const open = new Set<ServerResponse>();
  const seen: Array<{ method: string; url: string; lastEventId: string | undefined }> = [];
  const server = createServer(async (req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    const lastEventId = req.headers['last-event-id'];
    seen.push({ method: req.method ?? '', url: req.url ?? '', lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined });
    const resume = /^\/chat\/([^/]+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && req.url === '/chat') {
      const { id } = await relay.start((signal) => model(signal));
      await sendSSE(req, res, (signal) => relay.subscribe(id, { signal }), { headers: { 'X-Stream-Id': id } });
    } else if (req.method === 'GET' && resume !== null) {
      const id = decodeURIComponent(resume[1] as string);
      await sendSSE(req, res, (signal) => relay.subscribe(id, { after: resumeCursor(req), signal }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await relay.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, cut: () => open.forEach((res) => res.socket?.destroy()) };
}

describe('the client with a relay', () => {
  it('resumes a cut stream at GET /chat/:id and gets every word exactly once', async () => {
    const { url, seen, cut } = await startChatServer();
    const retries: RetryInfo[] = [];
    const stream = streamTokens(`${url}/chat`, { body: { prompt: 'hi' }, resume: `${url}/chat/{id}`, reconnect: { random: () => 0, onRetry: (info) => retries.push(info) } });
    let text = '';
    for await (const chunk of stream) {
      text += chunk.token;
      if (chunk.index === 5 && retries.length === 0) cut();
    }
    expect(text).toBe(WORDS.join(''));
    expect(retries).toMatchObject([{ reason: 'network' }]);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/chat', lastEventId: undefined });
    expect(seen[1]).toMatchObject({ method: 'GET', url: `/chat/${encodeURIComponent(stream.streamId ?? '')}` });
    expect(Number(seen[1]?.lastEventId)).toBeGreaterThanOrEqual(5);
  });

  it("a shutdown event reconnects after its retryMs and resumes (closeAllStreams)", async () => {
    const { url } = await startChatServer();
    const retries: RetryInfo[] = [];
    const stream = streamTokens(`${url}/chat`, { body: { prompt: 'hi' }, resume: `${url}/chat/{id}`, reconnect: { random: () => 0, onRetry: (info) => retries.push(info) } });
    let text = '';
    for await (const chunk of stream) {
      text += chunk.token;
      if (chunk.index === 5 && retries.length === 0) void closeAllStreams({ retryMs: 40, reason: 'deploy' });
    }
    expect(text).toBe(WORDS.join(''));
    expect(retries).toMatchObject([{ reason: 'shutdown', delayMs: 40, attempt: 1 }]);
  });

  it('an expired or unknown stream id is a StreamNotFoundError, not a retry', async () => {
    const { url, seen } = await startChatServer();
    await expect(streamTokens(`${url}/chat/nope`).text()).rejects.toSatisfy(isStreamNotFoundError);
    expect(seen).toHaveLength(1);
  });
});
