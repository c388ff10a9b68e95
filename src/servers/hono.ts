import type { Context, Env, Input } from 'hono';
import type { BlankInput } from 'hono/types';
import type { StatusCode } from 'hono/utils/http-status';
import type { TokenChunk } from '../core/types.js';
import { assertFunction, describeValue } from '../core/validate.js';
import type { TokenSourceInput } from './internal/response-stream.js';
import { bindFactory } from './internal/route-source.js';
import { HONO_KEYS, planWeb, type WebPlan } from './internal/options.js';
import { respondPlanned } from './internal/web-response.js';
import type { ToResponseOptions } from './web.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamLogError, StreamLogger, StreamLogRecord, StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

/**
 * Options of {@link sse} and {@link sendSSE}: those of `toResponse`, without `request` (it is
 * `c.req.raw`), `writeTimeoutMs` and `protocol` included.
 *
 * @example
 * ```ts
 * const options: SendSSEOptions = { timeout: { idleMs: 30_000 }, heartbeatMs: 10_000, writeTimeoutMs: 10_000 };
 * ```
 */
export type SendSSEOptions = Omit<ToResponseOptions, 'request'>;

/**
 * Starts the stream of one request from its Hono context. Hand `signal` to the provider SDK: it
 * aborts when the client goes away. May return a promise of the stream (e.g. after `c.req.json()`).
 *
 * @example
 * ```ts
 * const factory: HonoSourceFactory = async (c, signal) => {
 *   const { messages } = await c.req.json();
 *   return streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal });
 * };
 * ```
 */
export type HonoSourceFactory<E extends Env = any, P extends string = any, I extends Input = BlankInput> = (
  c: Context<E, P, I>,
  signal: AbortSignal,
) => AsyncIterable<TokenChunk> | PromiseLike<AsyncIterable<TokenChunk>>;

/**
 * A Hono handler that answers with what `factory` returns as Server-Sent Events, with everything
 * {@link sendSSE} does: the client going away (`c.req.raw.signal`, or the runtime cancelling the
 * body) aborts the provider request, the body is pulled as the client reads, `writeTimeoutMs`
 * drops a client that stopped reading, and an error before the first chunk is answered with its
 * own status. Works wherever Hono runs: `@hono/node-server`, Bun, Deno, Cloudflare Workers.
 *
 * The factory is called once per request; if it throws (or its promise rejects), the client gets
 * the same answer as an early provider error (JSON, status 500), and the error goes to `logger`,
 * `monitor.onError` or the console. Options are checked when `sse()` is called.
 *
 * @example
 * ```ts
 * app.post('/chat', sse(async (c, signal) => {
 *   const { messages } = await c.req.json();
 *   return streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal });
 * }, { timeout: { idleMs: 30_000 } }));
 * ```
 */
export function sse<E extends Env = any, P extends string = any, I extends Input = BlankInput>(
  factory: HonoSourceFactory<E, P, I>,
  options: SendSSEOptions = {},
): (c: Context<E, P, I>) => Promise<Response> {
  assertFunction('factory', factory);
  const plan = planWeb(options, HONO_KEYS);
  return (c) => respond(c, bindFactory(factory, c), plan);
}

/**
 * Answers a Hono request with the stream as Server-Sent Events, from inside a handler you already
 * have: {@link sse} without the route. Return what it resolves with from the handler.
 *
 * Like `toResponse` from `tokenrelay/web`, it waits (up to `statusWindowMs`) for the first
 * chunk, so a provider error before it is answered with its own status and a JSON body.
 * Headers set earlier with `c.header()` are kept; the SSE headers win over them.
 *
 * @param source - A factory `(signal) => stream` or `async (signal) => stream` (recommended: the
 *   signal reaches the provider SDK), or a stream.
 * @example
 * ```ts
 * app.post('/chat', async (c) => {
 *   const { messages } = await c.req.json();
 *   return sendSSE(c, (signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal }));
 * });
 * ```
 */
export async function sendSSE(c: Context, source: TokenSourceInput, options: SendSSEOptions = {}): Promise<Response> {
  assertContext(c);
  return respond(c, source, planWeb(options, HONO_KEYS));
}

async function respond(c: Context, source: TokenSourceInput, plan: WebPlan): Promise<Response> {
  const { body, init } = await respondPlanned(source, plan, c.req.raw);
  // newResponse merges what `c.header()` set before: one Response, made by Hono.
  return c.newResponse(body, { status: init.status as StatusCode, headers: init.headers });
}

function assertContext(c: Context): void {
  if (c === null || typeof c !== 'object' || typeof c.newResponse !== 'function' || c.req?.raw === undefined) {
    throw new TypeError(`Expected \`c\` to be a Hono Context, got ${describeValue(c)}`);
  }
}
