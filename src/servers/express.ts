import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TokenChunk } from '../core/types.js';
import { assertFunction, describeValue } from '../core/validate.js';
import { sendPlanned } from './internal/node-response.js';
import { planNode, NO_NODE_OPTIONS, planNodeFor } from './internal/options.js';
import type { TokenSourceInput } from './internal/response-stream.js';
import type { SendSSEOptions, SendSSEResult } from './node.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamLogError, StreamLogger, StreamLogRecord, TokenSourceInput } from './internal/response-stream.js';
export type { SendSSEOptions, SendSSEOutcome, SendSSEResult } from './node.js';

/**
 * Starts the stream of one request. Hand `signal` to the provider SDK: it aborts when the client
 * goes away. May return a promise of the stream (e.g. after loading the conversation).
 *
 * @example
 * ```ts
 * const factory: ExpressSourceFactory = async (req, signal) => {
 *   const messages = await loadConversation(req.params.id);
 *   return streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal });
 * };
 * ```
 */
export type ExpressSourceFactory = (
  req: Request,
  signal: AbortSignal,
) => AsyncIterable<TokenChunk> | PromiseLike<AsyncIterable<TokenChunk>>;

/**
 * An Express route handler (Express 5, and 4) that streams what `factory` returns as Server-Sent
 * Events, with everything {@link sendSSE} does: disconnect aborts the provider, backpressure,
 * one write per tick, HTTP error statuses for early provider errors, `monitor` metrics.
 *
 * The factory is called once the stream starts; if it throws (or its promise rejects), the error
 * gets the same HTTP answer as an early provider error (a JSON body, status 500 for an error
 * that is not a provider error) rather than going to `next(err)`, so every failure of the
 * route is reported to `monitor` and answered alike. Options are checked when `sse()` is called.
 *
 * Put `compression()` before it freely: the `no-transform` header keeps the stream uncompressed,
 * and `res.flush()` is called after each write.
 *
 * @example
 * ```ts
 * app.post('/chat', express.json(), sse((req, signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages: req.body.messages }, { signal })));
 * ```
 */
export function sse(factory: ExpressSourceFactory, options: SendSSEOptions = {}): RequestHandler {
  assertFunction('factory', factory);
  const plan = planNode(options);
  return (req: Request, res: Response, next: NextFunction): void => {
    sendPlanned(req, res, ((signal: AbortSignal) => start(factory, req, signal)) as TokenSourceInput, plan).then(undefined, next);
  };
}

// A promise goes to the pipeline as it is (it awaits it on the first read): no generator around it.
function start(
  factory: ExpressSourceFactory,
  req: Request,
  signal: AbortSignal,
): AsyncIterable<TokenChunk> | PromiseLike<AsyncIterable<TokenChunk>> {
  const source = factory(req, signal);
  if (isThenable(source)) return source;
  if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source)) {
    throw new TypeError(`Expected the \`sse()\` factory to return an async iterable of chunks, got ${describeValue(source)}`);
  }
  return source;
}

function isThenable(value: unknown): value is PromiseLike<AsyncIterable<TokenChunk>> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Streams TokenChunks as Server-Sent Events from inside an Express handler you already have:
 * {@link sse} without the route (the same function as `tokenrelay/node`'s, typed for Express).
 * Resolves once the response has ended, with how it ended; rejects only for bad arguments (a
 * `TypeError`, before the response is touched), never because the client left.
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * app.post('/chat', express.json(), async (req, res) => {
 *   const { outcome, metrics } = await sendSSE(req, res, (signal) =>
 *     streamOpenAI(openai, { model: 'gpt-4o-mini', messages: req.body.messages }, { signal }));
 *   console.log(outcome, metrics.ttftMs);
 * });
 * ```
 */
export async function sendSSE(req: Request, res: Response, source: TokenSourceInput, options: SendSSEOptions = NO_NODE_OPTIONS): Promise<SendSSEResult> {
  return sendPlanned(req, res, source, planNodeFor(options));
}
