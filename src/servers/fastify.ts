import type {
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RawServerDefault,
  RouteGenericInterface,
  RouteHandlerMethod,
} from 'fastify';
import { assertFunction, describeValue } from '../core/validate.js';
import { isDroppedHeader } from './internal/headers.js';
import { sendPlanned } from './internal/node-response.js';
import { planNode, NO_NODE_OPTIONS, planNodeFor, type NodePlan } from './internal/options.js';
import { bindFactory, type RouteSourceFactory } from './internal/route-source.js';
import type { TokenSourceInput } from './internal/response-stream.js';
import type { NodeRequest, NodeResponse, SendSSEOptions, SendSSEResult } from './node.js';

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
 * const factory: FastifySourceFactory<{ Body: { messages: Message[] } }> = (request, signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages: request.body.messages }, { signal });
 * ```
 */
export type FastifySourceFactory<
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  RawServer extends RawServerBase = RawServerDefault,
> = RouteSourceFactory<FastifyRequest<RouteGeneric, RawServer>>;

/**
 * A Fastify route handler that streams what `factory` returns as Server-Sent Events. The reply is
 * hijacked and written raw by the same pump as `tokenrelay/node`: frames of a tick joined in one
 * write, `drain` respected, `writeTimeoutMs`; the raw response closing before the end aborts the
 * provider request. Headers set on `reply` before it (by `@fastify/cors`, your hooks) are sent.
 *
 * The factory is called once the stream starts; if it throws (or its promise rejects), the client
 * gets the same HTTP answer as an early provider error (a JSON body, status 500 for an error that
 * is not a provider error), and the error goes to `logger`, `monitor.onError` or the console.
 * Options are checked when `sse()` is called. A hijacked reply skips Fastify's `onSend` and
 * `onResponse` hooks: `@fastify/compress` leaves the stream alone (it is `no-transform` anyway).
 *
 * @example
 * ```ts
 * app.post<{ Body: { messages: Message[] } }>('/chat', sse((request, signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages: request.body.messages }, { signal })));
 * ```
 */
export function sse<RouteGeneric extends RouteGenericInterface = RouteGenericInterface, RawServer extends RawServerBase = RawServerDefault>(
  factory: FastifySourceFactory<RouteGeneric, RawServer>,
  options: SendSSEOptions = {},
): RouteHandlerMethod<RawServer, RawRequestDefaultExpression<RawServer>, RawReplyDefaultExpression<RawServer>, RouteGeneric> {
  assertFunction('factory', factory);
  const plan = planNode(options);
  // Fastify ignores what a hijacked handler resolves with; the promise ends when the response has.
  const handler = async (request: FastifyRequest<RouteGeneric, RawServer>, reply: FastifyReply<RouteGeneric, RawServer>): Promise<void> => {
    await sendHijacked(request, reply, bindFactory(factory, request), plan);
  };
  return handler as RouteHandlerMethod<RawServer, RawRequestDefaultExpression<RawServer>, RawReplyDefaultExpression<RawServer>, RouteGeneric>;
}

/**
 * Streams TokenChunks as Server-Sent Events from inside a Fastify handler you already have:
 * {@link sse} without the route. Hijacks the reply (headers already set on it are sent) and
 * resolves once the response has ended, with how it ended; rejects only for bad arguments, before
 * the reply is touched.
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * app.post('/chat', async (request, reply) => {
 *   const { outcome, metrics } = await sendSSE(request, reply, (signal) =>
 *     streamOpenAI(openai, { model: 'gpt-4o-mini', messages: request.body.messages }, { signal }));
 *   request.log.info({ outcome, ttftMs: metrics.ttftMs });
 * });
 * ```
 */
export async function sendSSE<RouteGeneric extends RouteGenericInterface = RouteGenericInterface, RawServer extends RawServerBase = RawServerDefault>(
  request: FastifyRequest<RouteGeneric, RawServer>,
  reply: FastifyReply<RouteGeneric, RawServer>,
  source: TokenSourceInput,
  options: SendSSEOptions = NO_NODE_OPTIONS,
): Promise<SendSSEResult> {
  return sendHijacked(request, reply, source, planNodeFor(options));
}

/** The parts of Fastify's request and reply used here, whatever the server's raw types. */
interface Request {
  readonly raw: unknown;
}
interface Reply {
  readonly raw: unknown;
  readonly sent: boolean;
  getHeaders(): Record<string, number | string | string[] | undefined>;
  hijack(): unknown;
}

function sendHijacked(request: Request, reply: Reply, source: TokenSourceInput, plan: NodePlan): Promise<SendSSEResult> {
  if (request === null || typeof request !== 'object' || (request.raw as NodeRequest | undefined)?.httpVersion === undefined) {
    throw new TypeError(`Expected \`request\` to be a Fastify request, got ${describeValue(request)}`);
  }
  if (reply === null || typeof reply !== 'object' || typeof reply.hijack !== 'function' || typeof reply.getHeaders !== 'function') {
    throw new TypeError(`Expected \`reply\` to be a Fastify reply, got ${describeValue(reply)}`);
  }
  const req = request.raw as NodeRequest;
  const res = reply.raw as NodeResponse;
  if (reply.sent || res.headersSent) {
    throw new TypeError('Expected `reply` to be a reply not sent yet, got one already sent or hijacked');
  }
  // Fastify keeps `reply.header()` values to itself until it sends; a hijacked reply is written
  // raw, so they move to the raw response now, under the SSE headers written later.
  const headers = reply.getHeaders();
  reply.hijack();
  const http2 = req.httpVersionMajor >= 2;
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !isDroppedHeader(name, http2)) res.setHeader(name, value);
  }
  return sendPlanned(req, res, source, plan);
}
