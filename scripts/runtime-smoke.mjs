// Runs under Bun and Deno (scripts/check-package.mjs copies it next to the unpacked tarball):
// serves a stream with the runtime's own server and `tokenrelay/web`, reads it with
// `tokenrelay/client`, checks that a client that leaves stops the source, and that a client that
// sends its request and then never reads is dropped after `writeTimeoutMs` (outcome reported,
// source closed).
import { tokens } from 'tokenrelay';
import { streamTokens } from 'tokenrelay/client';
import { toResponse } from 'tokenrelay/web';

const runtime = globalThis.Bun !== undefined ? `Bun ${globalThis.Bun.version}` : `Deno ${globalThis.Deno.version.deno}`;
const fail = (message) => {
  throw new Error(`${runtime}: ${message}`);
};

let stopped;
const sourceStopped = new Promise((resolve) => (stopped = resolve));

/** A source that never ends by itself: only a disconnect can stop it. */
async function* endless() {
  try {
    for (let index = 0; ; index++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      yield { token: `t${index} `, index, timestamp: performance.now(), type: 'text' };
    }
  } finally {
    stopped(performance.now());
  }
}

let frozenStopped;
const frozenSourceStopped = new Promise((resolve) => (frozenStopped = resolve));
let frozenFinish;
const frozenFinished = new Promise((resolve) => (frozenFinish = resolve));
const big = 'x'.repeat(64 * 1024);

/** Large tokens, as fast as they are read: enough to fill the loopback socket buffers (bounded, ~64 MB). */
async function* flood() {
  try {
    for (let index = 0; index < 1000; index++) yield { token: big, index, timestamp: performance.now(), type: 'text' };
  } finally {
    frozenStopped(performance.now());
  }
}

function handler(request) {
  const { pathname } = new URL(request.url);
  if (pathname === '/endless') return toResponse(() => endless(), { request });
  if (pathname === '/flood') {
    return toResponse(async () => flood(), {
      request,
      writeTimeoutMs: 300,
      heartbeatMs: false,
      monitor: { onFinish: frozenFinish },
    });
  }
  return toResponse(() => tokens(['Hello', ', ', 'world']), { request });
}

const server = await serve(handler);
try {
  const base = `http://127.0.0.1:${server.port}`;

  // A whole answer, read with the client.
  const stream = streamTokens(`${base}/answer`);
  let text = '';
  let finishReason;
  for await (const chunk of stream) {
    text += chunk.token;
    if (chunk.finishReason !== undefined) finishReason = chunk.finishReason;
  }
  if (text !== 'Hello, world') fail(`the client read ${JSON.stringify(text)}`);
  if (finishReason !== 'stop') fail(`the answer ended with ${JSON.stringify(finishReason)}`);

  // A client that leaves after three tokens: the server's source must stop.
  const controller = new AbortController();
  let received = 0;
  let leftAt = 0;
  try {
    for await (const chunk of streamTokens(`${base}/endless`, { signal: controller.signal })) {
      if (chunk.token !== '' && ++received === 3) {
        leftAt = performance.now();
        controller.abort();
      }
    }
  } catch (error) {
    if (error?.name !== 'AbortError' && error?.code !== 'aborted') throw error;
  }
  const stopAt = await Promise.race([sourceStopped, new Promise((resolve) => setTimeout(() => resolve(undefined), 2000))]);
  if (stopAt === undefined) fail('the source was still running 2 s after its client left');
  console.log(`  ok: ${runtime}: toResponse + streamTokens over loopback; a client that left stopped the source in ${(stopAt - leftAt).toFixed(1)} ms`);

  // A client that sends its request and never reads: dropped after writeTimeoutMs (300 ms).
  const frozen = await frozenClient(server.port, '/flood');
  try {
    const timeout = (ms) => new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
    const metrics = await Promise.race([frozenFinished, timeout(10_000)]);
    if (metrics === undefined) fail('a client that never reads was still held 10 s later (writeTimeoutMs: 300)');
    if (metrics.outcome !== 'aborted' || !/read nothing for 300 ms/.test(String(metrics.error))) {
      fail(`the frozen client's stream ended as ${metrics.outcome} (${String(metrics.error)})`);
    }
    const closedAt = await Promise.race([frozenSourceStopped, timeout(2000)]);
    if (closedAt === undefined) fail("the frozen client's source was not closed");
    console.log(`  ok: ${runtime}: a client that never reads was dropped by writeTimeoutMs, its source closed`);
  } finally {
    frozen.close();
  }
} finally {
  await server.stop();
}

/** A raw TCP client that sends the request and then never reads. */
async function frozenClient(port, path) {
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  if (globalThis.Bun !== undefined) {
    // Bun's node:net socket: paused, it reads nothing, so the kernel's buffers fill.
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(request);
    socket.pause();
    return { close: () => socket.destroy() };
  }
  const connection = await globalThis.Deno.connect({ hostname: '127.0.0.1', port });
  await connection.write(new TextEncoder().encode(request));
  // Never read: the kernel's buffers fill and the server's writes stop.
  return { close: () => connection.close() };
}

/** The runtime's own HTTP server on a free loopback port. */
async function serve(fetch) {
  if (globalThis.Bun !== undefined) {
    const bunServer = globalThis.Bun.serve({ hostname: '127.0.0.1', port: 0, fetch });
    return { port: bunServer.port, stop: () => bunServer.stop(true) };
  }
  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  const denoServer = globalThis.Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: listening }, fetch);
  const { port } = await ready;
  return { port, stop: () => denoServer.shutdown() };
}
