import type { StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';
import { planWeb } from './internal/options.js';
import { respondPlanned } from './internal/web-response.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamLogError, StreamLogger, StreamLogRecord, StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

/** Options of {@link toResponse}. */
export interface ToResponseOptions extends StreamResponseOptions {
  /**
   * The incoming request. When its `signal` aborts (the client went away), the source is
   * aborted, so the provider request stops. Cancelling the response body does the same, which
   * covers runtimes whose `request.signal` does not follow the connection. On Cloudflare
   * Workers `request.signal` follows the client only with the `enable_request_signal`
   * compatibility flag; without it nothing tells the Worker, and a warning is logged once.
   * @defaultValue none (only a cancelled body, or `writeTimeoutMs`, stops the source)
   * @example
   * ```ts
   * export async function POST(request: Request) {
   *   return toResponse((signal) => streamOpenAI(openai, params, { signal }), { request });
   * }
   * ```
   */
  request?: Pick<Request, 'signal'> | undefined;
  /**
   * The status of a streamed response: an integer from 200 to 599 that allows a body. Errors
   * before the first chunk get their own status.
   * @defaultValue `200`
   * @example
   * ```ts
   * toResponse(source, { request, status: 201 });
   * ```
   */
  status?: number | undefined;
  /**
   * How long the body may go unread while frames wait for it (the runtime stopped pulling: the
   * client's connection is full) before the client is considered gone: the body is errored, so
   * the runtime drops the connection, and the provider request is aborted (`monitor.onFinish`
   * reports `'aborted'`, its `error` a `StreamAbortedError`). `Infinity` waits forever.
   * @defaultValue `30_000`
   * @example
   * ```ts
   * toResponse(factory, { request, writeTimeoutMs: 10_000 });
   * ```
   */
  writeTimeoutMs?: number | undefined;
}

/**
 * Answers a fetch-runtime request (Next.js route handlers, Deno, Bun, Cloudflare Workers,
 * Hono) with the stream as Server-Sent Events.
 *
 * It is async because it first waits (up to `statusWindowMs`) for the first chunk: a provider
 * error before it becomes a JSON response with a real status (429 with `Retry-After`, 5xx as
 * 502, …) instead of a `200` stream. Otherwise the body is pull-based: the provider is read
 * only as fast as the client takes bytes, plus the `backpressure` read-ahead. The client going
 * away (`request.signal`, or the runtime cancelling the body) aborts the source.
 *
 * The headers are the SSE headers without `Connection` (fetch runtimes manage connections,
 * and HTTP/2 forbids it), plus `headers`.
 *
 * @param source - A factory `(signal) => stream` or `async (signal) => stream` (recommended: the
 *   signal reaches the provider SDK), or a stream.
 * @example
 * ```ts
 * export async function POST(request: Request) {
 *   const { messages } = await request.json();
 *   return toResponse((signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal }), {
 *     request,
 *     timeout: { firstTokenMs: 10_000, idleMs: 30_000 },
 *   });
 * }
 * ```
 */
export async function toResponse(source: TokenSourceInput, options: ToResponseOptions = {}): Promise<Response> {
  const { body, init } = await respondPlanned(source, planWeb(options), options.request);
  return new Response(body, init);
}
