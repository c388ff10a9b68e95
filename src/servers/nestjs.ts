import type { MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import { describeValue } from '../core/validate.js';
import { ChunkEventPump } from './internal/chunk-events.js';
import { sendPlanned } from './internal/node-response.js';
import { NO_NODE_OPTIONS, planNodeFor, planObservable } from './internal/options.js';
import { openChunkStream, type ChunkStreamOptions, type TokenSourceInput } from './internal/response-stream.js';
import { sendSSE as sendFastifySSE } from './fastify.js';
import type { NodeRequest, NodeResponse, SendSSEOptions, SendSSEResult } from './node.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { ChunkStreamOptions, StreamLogError, StreamLogger, StreamLogRecord, TokenSourceInput } from './internal/response-stream.js';
export type { SendSSEOptions, SendSSEOutcome, SendSSEResult } from './node.js';

/**
 * Options of {@link sseObservable}: the pipeline options every adapter takes, plus `exposeErrors`.
 * Nest frames the events itself, so the options that shape frames and headers (`protocol`,
 * `events`, `heartbeatMs`, `retryMs`, `headers`, `statusWindowMs`, `writeTimeoutMs`) do not apply.
 *
 * @example
 * ```ts
 * const options: SseObservableOptions = { timeout: { firstTokenMs: 15_000, idleMs: 30_000 }, logger: console };
 * ```
 */
export interface SseObservableOptions extends ChunkStreamOptions {
  /**
   * Puts the raw message of provider and unknown errors in the `error` event. Stack traces never.
   * @defaultValue `false`
   * @example
   * ```ts
   * sseObservable(factory, { exposeErrors: process.env.NODE_ENV !== 'production' });
   * ```
   */
  exposeErrors?: boolean | undefined;
}

/**
 * What an `@Sse()` handler returns: an `Observable` of Nest `MessageEvent`s, one per chunk
 * (`type: 'token'`, `id`: the chunk's index, `data`: the chunk), then one `done` event
 * (`{ finishReason, index, usage, model, provider }`) or `error` event (`{ code, message }`), then
 * it completes. It never errors: a provider failure is the `error` event, as on the raw path.
 *
 * The Observable is cold: each subscription calls the factory with its own `AbortSignal`.
 * Unsubscribing (Nest does so when the client disconnects) aborts that signal, so the provider
 * request is cancelled and `monitor.onFinish` reports `'aborted'`. The stream runs through
 * `withTimeout`, `withBackpressure`, `withAbort` and `monitored`; options are checked here, once.
 * `closeAllStreams()` ends it with a `shutdown` event carrying `retry`.
 *
 * Nest frames the events and cannot pause the Observable: compared with {@link sendSSE} there is no
 * per-tick write combining, no backpressure from the client (Nest queues events, up to `@Sse()`'s
 * `maxPendingDataLength`), no HTTP status for an early error, and no `retryMs` or `protocol`.
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * @Sse('chat')
 * chat(@Query('q') q: string): Observable<MessageEvent> {
 *   return sseObservable((signal) =>
 *     streamOpenAI(this.openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: q }] }, { signal }));
 * }
 * ```
 */
export function sseObservable(source: TokenSourceInput, options: SseObservableOptions = {}): Observable<MessageEvent> {
  assertSource(source);
  const plan = planObservable(options);
  let subscribed = false;
  return new Observable<MessageEvent>((subscriber) => {
    // A stream can be read once; a factory makes a new one per subscription.
    if (typeof source !== 'function') {
      if (subscribed) {
        subscriber.error(new TypeError('Expected one subscription to an sseObservable() of a stream; pass a factory (signal) => stream to subscribe again'));
        return undefined;
      }
      subscribed = true;
    }
    const pump = new ChunkEventPump(openChunkStream(source, plan), subscriber, plan.exposeErrors);
    return () => pump.stop();
  });
}

/** The parts of a Fastify request that {@link sendSSE} uses (Nest's Fastify platform: `@Req()`). */
export interface FastifyRequestLike {
  /** The Node request underneath. */
  readonly raw: NodeRequest;
}

/** The parts of a Fastify reply that {@link sendSSE} uses (Nest's Fastify platform: `@Res()`). */
export interface FastifyReplyLike {
  /** The Node response underneath, written raw after the hijack. */
  readonly raw: NodeResponse;
  /** Whether Fastify already sent the reply. */
  readonly sent: boolean;
  /** The headers set on the reply so far (`@fastify/cors`…), sent with the stream. */
  getHeaders(): Record<string, number | string | string[] | undefined>;
  /** Tells Fastify the reply is written by hand. */
  hijack(): unknown;
}

/**
 * Streams TokenChunks as Server-Sent Events from a `@Post()` (or any) route that injects
 * `@Req()` and `@Res()`, on the Express platform (the Express `req`/`res`) or the Fastify
 * platform (`FastifyRequest`/`FastifyReply`: the reply is hijacked, headers already set on it are
 * sent, and the raw response is written). Everything `tokenrelay/node`'s `sendSSE` does: client
 * disconnect aborts the provider, socket backpressure, frames of a tick joined in one write, an
 * HTTP status for an error before the first token, `protocol`, `retryMs`, `closeAllStreams()`.
 *
 * Resolves once the response has ended, with how it ended; rejects only for bad arguments, before
 * the response is touched. With `@Res()`, Nest leaves the response to this call.
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * @Post('chat')
 * async chat(@Req() req: Request, @Res() res: Response, @Body() body: ChatBody): Promise<void> {
 *   await sendSSE(req, res, (signal) =>
 *     streamOpenAI(this.openai, { model: 'gpt-4o-mini', messages: body.messages }, { signal }));
 * }
 * ```
 */
export async function sendSSE(
  req: NodeRequest | FastifyRequestLike,
  res: NodeResponse | FastifyReplyLike,
  source: TokenSourceInput,
  options: SendSSEOptions = NO_NODE_OPTIONS,
): Promise<SendSSEResult> {
  // Checked before a Fastify reply is hijacked (its options too): a hijacked reply that is never written hangs.
  assertSource(source);
  if (isFastifyReply(res)) return sendFastifySSE(req as never, res as never, source, options);
  return sendPlanned(req as NodeRequest, res, source, planNodeFor(options));
}

function isFastifyReply(res: unknown): res is FastifyReplyLike {
  return res !== null && typeof res === 'object' && typeof (res as { hijack?: unknown }).hijack === 'function' && 'raw' in res;
}

function assertSource(source: unknown): asserts source is TokenSourceInput {
  const ok =
    typeof source === 'function' ||
    (source !== null && typeof source === 'object' && typeof (source as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function');
  if (!ok) {
    throw new TypeError(
      `Expected \`source\` to be an async iterable of chunks or a function (signal) => stream, got ${describeValue(source)}`,
    );
  }
}
