// Runs under Bun and Deno (scripts/check-package.mjs copies it next to the unpacked tarball):
// serves a stream with the runtime's own server and `tokenrelay/web`, reads it with
// `tokenrelay/client`, and checks that a client that leaves stops the source.
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

function handler(request) {
  const { pathname } = new URL(request.url);
  if (pathname === '/endless') return toResponse(() => endless(), { request });
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
} finally {
  await server.stop();
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
