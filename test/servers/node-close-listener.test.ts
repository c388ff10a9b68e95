// Every sendSSE on a response hears its 'close', also when (against the rules) two share one
// response: the close listener is shared among responses, and a second one gets its own.
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { sendSSE, type SendSSEResult } from 'tokenrelay/node';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** A source that yields one token, then waits for the abort. */
function waitingSource(signal: AbortSignal): AsyncIterable<TokenChunk> {
  return (async function* () {
    yield { token: 'a', index: 0, timestamp: 0, type: 'text' } satisfies TokenChunk;
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  })();
}

it('resolves every sendSSE on a response with client-closed when the client leaves before the first token', async () => {
  const results: Array<Promise<SendSSEResult>> = [];
  let served!: () => void;
  const started = new Promise<void>((resolve) => (served = resolve));
  // No token before the abort: both stay in their status window, neither writes a header.
  const silent = (signal: AbortSignal): AsyncIterable<TokenChunk> =>
    (async function* () {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      yield* [];
    })();
  server = http.createServer((req, res) => {
    results.push(sendSSE(req, res, silent, { statusWindowMs: 60_000 }), sendSSE(req, res, silent, { statusWindowMs: 60_000 }));
    served();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const request = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  request.on('error', () => undefined);
  await started;
  request.destroy();
  const outcomes = (await Promise.all(results)).map((result) => result.outcome);
  expect(outcomes).toEqual(['client-closed', 'client-closed']);
});

it('hears the close of each of many responses served at once', async () => {
  const results: Array<Promise<SendSSEResult>> = [];
  server = http.createServer((req, res) => void results.push(sendSSE(req, res, waitingSource)));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const controllers = Array.from({ length: 5 }, () => new AbortController());
  const readers = await Promise.all(controllers.map(async (controller) => (await fetch(url, { signal: controller.signal })).body!.getReader()));
  await Promise.all(readers.map((reader) => reader.read()));
  for (const controller of controllers) controller.abort();
  const outcomes = (await Promise.all(results)).map((result) => result.outcome);
  expect(outcomes).toEqual(Array(5).fill('client-closed'));
});
