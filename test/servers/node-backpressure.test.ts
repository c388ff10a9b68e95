import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createParser } from 'eventsource-parser';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tokens, type TokenChunk } from 'tokenrelay';
import { closeAllStreams, sendSSE, type SendSSEOptions, type SendSSEResult } from 'tokenrelay/node';

const TOTAL = 200_000;
const TOKEN = 'x'.repeat(64);
const SOCKET_HIGH_WATER_MARK = 16 * 1024;
// What one stream may hold in this process (response buffer + read-ahead + write combining):
// the socket's high-water mark and one last write (<= 16 KiB of combined frames), the 16 KiB
// write-combining limit, 64 chunks of read-ahead (`withBackpressure` default), with slack.
const MEMORY_CAP = 128 * 1024;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Probe {
  /** Chunks the source produced so far. */
  produced: number;
  /** When the source last produced one (`performance.now()`). */
  producedAt: number;
  /** Frames handed to `res.write` / `res.end` so far. */
  written: number;
  /** Largest `res.writableLength + (produced - written) * frame size` seen at any production. */
  maxBytesInProcess: number;
  /** Largest `res.writableLength` seen. */
  maxWritableLength: number;
  sourceFinally: boolean;
  response: ServerResponse;
  result: Promise<SendSSEResult>;
}

/**
 * A fast in-process source of TOTAL tokens, sampling at each chunk how many bytes this stream
 * holds in the process: the response's own buffer, plus every chunk produced but not yet
 * written (read-ahead buffer, SSE encoder, write combining), counted at the largest frame size.
 */
async function startServer(options: SendSSEOptions): Promise<{ url: string; probe: Promise<Probe> }> {
  let resolveProbe!: (probe: Probe) => void;
  const probePromise = new Promise<Probe>((resolve) => (resolveProbe = resolve));
  const server: Server = http.createServer({ highWaterMark: SOCKET_HIGH_WATER_MARK }, (req, res) => {
    const frameBytes = maxFrameBytes();
    const probe = { produced: 0, producedAt: 0, written: 0, maxBytesInProcess: 0, maxWritableLength: 0, sourceFinally: false, response: res } as Probe;
    countWrittenFrames(res, probe);
    function* deltas(): Generator<string> {
      try {
        for (let i = 0; i < TOTAL; i++) {
          probe.produced++;
          probe.producedAt = performance.now();
          const bytes = res.writableLength + (probe.produced - probe.written) * frameBytes;
          if (bytes > probe.maxBytesInProcess) probe.maxBytesInProcess = bytes;
          if (res.writableLength > probe.maxWritableLength) probe.maxWritableLength = res.writableLength;
          yield TOKEN;
        }
      } finally {
        probe.sourceFinally = true;
      }
    }
    probe.result = sendSSE(req, res, tokens(deltas()), options);
    resolveProbe(probe);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probe: probePromise };
}

function maxFrameBytes(): number {
  const chunk: TokenChunk = { token: TOKEN, index: TOTAL, timestamp: 1e9 / 3, type: 'text' };
  return Buffer.byteLength(`id: ${TOTAL}\nevent: token\ndata: ${JSON.stringify(chunk)}\n\n`);
}

function countWrittenFrames(res: ServerResponse, probe: Probe): void {
  const count = (chunk: unknown) => {
    if (typeof chunk === 'string') probe.written += chunk.split('\n\n').length - 1;
  };
  const write = res.write.bind(res) as (chunk: string) => boolean;
  const end = res.end.bind(res) as (chunk?: string) => ServerResponse;
  const patched = res as unknown as { write(chunk: string): boolean; end(chunk?: string): ServerResponse };
  patched.write = (chunk) => {
    count(chunk);
    return write(chunk);
  };
  patched.end = (chunk) => {
    count(chunk);
    return end(chunk);
  };
}

/** A client that reads the response headers, then reads nothing until told to. */
function pausedClient(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.pause();
      resolve(response);
    });
    request.on('error', reject);
    cleanups.push(() => request.destroy());
  });
}

/** Resolves once the source has produced nothing for `quietMs`: the stream is held by backpressure. */
async function waitUntilStalled(probe: Probe, quietMs = 300): Promise<void> {
  await vi.waitFor(
    () => {
      expect(probe.produced).toBeGreaterThan(0);
      expect(performance.now() - probe.producedAt).toBeGreaterThan(quietMs);
    },
    { timeout: 10_000, interval: 50 },
  );
}

describe('sendSSE backpressure toward a client that stops reading', () => {
  it('holds a bounded amount in memory while the client is paused, then delivers every token once, in order', async () => {
    const { url, probe: probePromise } = await startServer({ statusWindowMs: 0 });
    const response = await pausedClient(url);
    const probe = await probePromise;
    await waitUntilStalled(probe);

    const producedWhilePaused = probe.produced;
    console.info(
      `paused client: source produced ${producedWhilePaused} of ${TOTAL} chunks; ` +
        `max in process ${(probe.maxBytesInProcess / 1024).toFixed(1)} KiB ` +
        `(res.writableLength max ${(probe.maxWritableLength / 1024).toFixed(1)} KiB)`,
    );
    expect(producedWhilePaused).toBeLessThan(TOTAL / 4);
    expect(probe.maxBytesInProcess).toBeLessThan(MEMORY_CAP);

    let expected = 0;
    let outOfOrder = 0;
    let lastEvent = '';
    const parser = createParser({
      onEvent: (event) => {
        lastEvent = event.event ?? '';
        if (event.event !== 'token') return;
        const chunk = JSON.parse(event.data) as TokenChunk;
        if (chunk.index !== expected || chunk.token !== TOKEN || event.id !== String(expected)) outOfOrder++;
        expected++;
      },
    });
    response.setEncoding('utf8');
    response.on('data', (text: string) => parser.feed(text));
    response.resume(); // a 'data' listener does not resume a stream paused explicitly
    await new Promise((resolve) => response.once('end', resolve));

    expect(expected).toBe(TOTAL);
    expect(outOfOrder).toBe(0);
    expect(lastEvent).toBe('done');
    expect(probe.maxBytesInProcess).toBeLessThan(MEMORY_CAP);
    const { outcome, metrics } = await probe.result;
    expect(outcome).toBe('completed');
    expect(metrics.outcome).toBe('completed');
    expect(metrics.chunks).toBe(TOTAL + 1);
  });

  it('ends the response and returns the source after writeTimeoutMs when the client never reads again', async () => {
    const { url, probe: probePromise } = await startServer({ statusWindowMs: 0, writeTimeoutMs: 500 });
    await pausedClient(url); // a paused client will not even notice the reset
    const probe = await probePromise;

    const startedAt = performance.now();
    const { outcome, metrics } = await probe.result;
    expect(probe.response.destroyed).toBe(true);
    expect(performance.now() - startedAt).toBeLessThan(5000);
    console.info(`write timeout: source produced ${probe.produced} of ${TOTAL} chunks before the response was dropped`);
    expect(outcome).toBe('write-timeout');
    expect(metrics.outcome).toBe('aborted');
    expect(probe.sourceFinally).toBe(true);
    expect(probe.produced).toBeLessThan(TOTAL / 4);
    expect(probe.maxBytesInProcess).toBeLessThan(MEMORY_CAP);
  });

  it('drops a stream whose client is not reading at once on closeAllStreams', async () => {
    const { url, probe: probePromise } = await startServer({ statusWindowMs: 0 }); // default writeTimeoutMs: 30 s
    await pausedClient(url);
    const probe = await probePromise;
    await waitUntilStalled(probe);

    const startedAt = performance.now();
    await closeAllStreams({ reason: 'deploy' });
    expect(performance.now() - startedAt).toBeLessThan(1000);
    const { outcome, metrics } = await probe.result;
    expect(outcome).toBe('shutdown');
    expect(metrics.outcome).toBe('aborted');
    expect(probe.sourceFinally).toBe(true);
  });
});
