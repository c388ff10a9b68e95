import type { DefaultContext, DefaultState, Middleware, ParameterizedContext } from 'koa';
import { assertFunction, describeValue } from '../core/validate.js';
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
 * Starts the stream of one request from its Koa context. Hand `signal` to the provider SDK: it
 * aborts when the client goes away. May return a promise of the stream.
 *
 * @example
 * ```ts
 * const factory: KoaSourceFactory = async (ctx, signal) => {
 *   const messages = await loadConversation(ctx.params.id);
 *   return streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal });
 * };
 * ```
 */
export type KoaSourceFactory<State = DefaultState, Context = DefaultContext> = RouteSourceFactory<ParameterizedContext<State, Context>>;

/**
 * Koa middleware that streams what `factory` returns as Server-Sent Events. It sets
 * `ctx.respond = false` and writes the raw response with the same pump as `tokenrelay/node`
 * (frames of a tick in one write, `drain` respected, `writeTimeoutMs`); the response closing
 * before the end aborts the provider request. Headers set with `ctx.set()` before it (CORS, …)
 * are sent. It ends the chain (it does not call `next`) and resolves when the response has ended,
 * so middleware before it sees `ctx.status` as sent.
 *
 * The factory is called once the stream starts; if it throws (or its promise rejects), the client
 * gets the same HTTP answer as an early provider error (a JSON body, status 500 for an error that
 * is not a provider error), and the error goes to `logger`, `monitor.onError` or the console.
 * Options are checked when `sse()` is called. `koa-compress` leaves the stream alone: there is no
 * `ctx.body` to compress (and the stream is `no-transform`).
 *
 * @example
 * ```ts
 * router.post('/chat', bodyParser(), sse((ctx, signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages: ctx.request.body.messages }, { signal })));
 * ```
 */
export function sse<State = DefaultState, Context = DefaultContext>(
  factory: KoaSourceFactory<State, Context>,
  options: SendSSEOptions = {},
): Middleware<State, Context> {
  assertFunction('factory', factory);
  const plan = planNode(options);
  return async (ctx) => {
    await sendRaw(ctx, bindFactory(factory, ctx), plan);
  };
}

/**
 * Streams TokenChunks as Server-Sent Events from inside Koa middleware you already have:
 * {@link sse} without the middleware. Sets `ctx.respond = false` and resolves once the response
 * has ended, with how it ended; rejects only for bad arguments, before the response is touched.
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * router.get('/chat/:id', async (ctx) => {
 *   const { outcome, metrics } = await sendSSE(ctx, (signal) =>
 *     streamOpenAI(openai, { model: 'gpt-4o-mini', messages: await load(ctx.params.id) }, { signal }));
 *   ctx.log?.info({ outcome, ttftMs: metrics.ttftMs });
 * });
 * ```
 */
export async function sendSSE(ctx: ParameterizedContext, source: TokenSourceInput, options: SendSSEOptions = NO_NODE_OPTIONS): Promise<SendSSEResult> {
  return sendRaw(ctx, source, planNodeFor(options));
}

/** The parts of a Koa context used here. */
interface RawContext {
  readonly req: unknown;
  readonly res: unknown;
  respond?: boolean | undefined;
}

function sendRaw(ctx: RawContext, source: TokenSourceInput, plan: NodePlan): Promise<SendSSEResult> {
  const req = (ctx as Partial<RawContext> | null)?.req as NodeRequest | undefined;
  const res = (ctx as Partial<RawContext> | null)?.res as NodeResponse | undefined;
  if (typeof req?.httpVersion !== 'string' || typeof res?.writeHead !== 'function') {
    throw new TypeError(`Expected \`ctx\` to be a Koa context, got ${describeValue(ctx)}`);
  }
  if (res.headersSent) {
    throw new TypeError('Expected `ctx` to be a context whose response was not sent yet, got one already started');
  }
  // Koa must not answer after the chain (a 404, or a body of its own): the response is written raw.
  // `ctx.set()` wrote straight to `ctx.res`, so the headers set before are already there.
  ctx.respond = false;
  return sendPlanned(req, res, source, plan);
}
