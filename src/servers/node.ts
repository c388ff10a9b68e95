import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { StreamMetrics } from '../operators/monitored.js';
import { sendPlanned } from './internal/node-response.js';
import { NO_NODE_OPTIONS, planNodeFor } from './internal/options.js';
import type { StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamLogError, StreamLogger, StreamLogRecord, StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

/** A request from `node:http` or from the `node:http2` compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** A response from `node:http` or from the `node:http2` compatibility API. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Options of {@link sendSSE}: the options every server adapter takes (`timeout`, `backpressure`,
 * `monitor`, `headers`, `statusWindowMs`, and the `toSSE` options), plus `writeTimeoutMs`.
 *
 * @example
 * ```ts
 * const options: SendSSEOptions = {
 *   timeout: { firstTokenMs: 15_000, idleMs: 30_000 },
 *   headers: { 'Access-Control-Allow-Origin': 'https://app.example.com' },
 *   writeTimeoutMs: 10_000,
 * };
 * ```
 */
export interface SendSSEOptions extends StreamResponseOptions {
  /**
   * How long the response may stay full (`write()` returned `false` and no `drain` came) before
   * the client is considered gone: the response is destroyed and the provider request aborted.
   * Also bounds how long the last bytes may take once the response is ended. `Infinity` waits
   * forever (the kernel's TCP timeouts then decide).
   * @defaultValue `30_000`
   * @example
   * ```ts
   * await sendSSE(req, res, factory, { writeTimeoutMs: 10_000 });
   * ```
   */
  writeTimeoutMs?: number | undefined;
}

/**
 * How the response ended:
 * - `'completed'`: the stream ran to its last `done` or `error` event and the response ended;
 * - `'http-error'`: the stream failed before its first chunk and was answered with an HTTP error status;
 * - `'client-closed'`: the client went away first (the provider request was aborted);
 * - `'write-timeout'`: the client stopped reading for `writeTimeoutMs` (the provider request was aborted);
 * - `'shutdown'`: {@link closeAllStreams} ended it with a `shutdown` event.
 */
export type SendSSEOutcome = 'completed' | 'http-error' | 'client-closed' | 'write-timeout' | 'shutdown';

/**
 * What {@link sendSSE} resolves with once the response has ended.
 *
 * @example
 * ```ts
 * const { outcome, status, metrics } = await sendSSE(req, res, factory);
 * log.info({ outcome, status, ttftMs: metrics.ttftMs, usage: metrics.usage });
 * ```
 */
export interface SendSSEResult {
  /** How the response ended. */
  outcome: SendSSEOutcome;
  /** The HTTP status sent: `200`, or the error status of an `'http-error'`. */
  status: number;
  /** The stream's metrics, the same report `monitor.onFinish` receives. */
  metrics: StreamMetrics;
}

/**
 * Streams TokenChunks to a `node:http` (or `node:http2` compat) response as Server-Sent Events.
 *
 * Pass a factory `(signal) => stream` and hand its signal to the provider SDK: when the client
 * goes away (the response closes before it finished), the signal aborts and the provider request
 * is cancelled. The stream runs through `withAbort`, `withTimeout`, `withBackpressure` and
 * `monitored`; frames of the same tick go out in one write, and the socket's backpressure is
 * respected. An error before the first chunk (within `statusWindowMs`) is answered with its own
 * HTTP status and a JSON body; later errors become the final `error` event.
 *
 * Resolves when the response has ended, never rejects because the client left; rejects only for
 * bad arguments (`TypeError`).
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * http.createServer(async (req, res) => {
 *   const { metrics } = await sendSSE(req, res, (signal) =>
 *     streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal }));
 *   log.info(metrics);
 * });
 * ```
 */
export function sendSSE(
  req: NodeRequest,
  res: NodeResponse,
  source: TokenSourceInput,
  options: SendSSEOptions = NO_NODE_OPTIONS,
): Promise<SendSSEResult> {
  // Not async: the result is sendPlanned's own promise, not one more wrapped around it.
  let plan;
  try {
    plan = planNodeFor(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return sendPlanned(req, res, source, plan);
}
