import { checkMonitorOptions, type MonitorOptions } from '../../operators/monitored.js';
import { checkSSEOptions, SSE_OPTION_KEYS, type SSEConfig } from '../../operators/to-sse.js';
import { checkBackpressureOptions, type BackpressureConfig } from '../../operators/with-backpressure.js';
import { checkTimeoutOptions, type TimeoutLimits } from '../../operators/with-timeout.js';
import { protocolNamed } from '../../protocols/index.js';
import { assertNumber, assertOptions, assertSignal, describeValue } from '../../core/validate.js';
import type { SseObservableOptions } from '../nestjs.js';
import type { SendSSEOptions } from '../node.js';
import type { ToResponseOptions } from '../web.js';
import type { SendOverWebSocketOptions } from '../ws.js';
import { streamHeaders } from '../../protocols/protocol.js';
import { checkHeaders, mergeHeaders } from './headers.js';
import { PlanCache } from './plan-cache.js';
import { isWriteCombining } from './pump.js';
import type { ChunkStreamOptions, StreamLogRecord, StreamResponseOptions } from './response-stream.js';

/**
 * An adapter's pipeline options, checked deeply once (when a handler is created, or at the call
 * of a one-shot function) and resolved, so each request builds its operators with no checks.
 */
export interface StreamPlan {
  readonly timeout: TimeoutLimits;
  readonly backpressure: BackpressureConfig | false;
  readonly monitor: MonitorOptions | undefined;
  readonly log: ((record: StreamLogRecord) => void) | undefined;
}

/** A {@link StreamPlan} that also encodes SSE and answers early errors with their own status. */
export interface ResponsePlan extends StreamPlan {
  readonly sse: SSEConfig;
  readonly statusWindowMs: number;
  readonly exposeErrors: boolean;
}

/** The keys of {@link ChunkStreamOptions}. */
export const CHUNK_STREAM_KEYS = ['timeout', 'backpressure', 'monitor', 'logger'] as const;

/** The keys of {@link StreamResponseOptions}: the pipeline's, `toSSE`'s, and the response's. */
export const RESPONSE_KEYS = [...CHUNK_STREAM_KEYS, ...SSE_OPTION_KEYS, 'protocol', 'headers', 'statusWindowMs'] as const;

/**
 * Checks the options every adapter takes, and that no key is outside `keys` (the adapter's whole
 * list, so a typo such as `idleMS` or `writeTimeout` fails with a suggestion).
 */
export function planChunkStream(options: ChunkStreamOptions, keys: readonly string[] = CHUNK_STREAM_KEYS): StreamPlan {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions('options', options, keys);
  const { timeout, backpressure, monitor, logger } = options;
  if (monitor !== undefined) checkMonitorOptions(monitor, 'monitor');
  return {
    timeout: checkTimeoutOptions(timeout, 'timeout', false),
    backpressure: backpressure === false ? false : checkBackpressureOptions(backpressure ?? {}, 'backpressure'),
    monitor,
    log: loggerOf(logger),
  };
}

/** {@link planChunkStream} for the SSE adapters: also the `toSSE` options and `statusWindowMs`. */
export function planResponse(options: StreamResponseOptions, keys: readonly string[] = RESPONSE_KEYS): ResponsePlan {
  const plan = planChunkStream(options, keys);
  const { statusWindowMs = 500 } = options;
  assertNumber('statusWindowMs', statusWindowMs, { allowInfinity: true });
  const sse = checkSSEOptions(options, false);
  const protocol = protocolNamed(options.protocol, { retryMs: options.retryMs });
  if (protocol !== undefined) {
    for (const key of ['events', 'serialize'] as const) {
      if (options[key] !== undefined) {
        throw new TypeError(`Expected no \`${key}\` with \`protocol: '${protocol.name}'\`: it shapes tokenrelay's own SSE only`);
      }
    }
    sse.protocol = protocol;
  }
  return { ...plan, sse, statusWindowMs, exposeErrors: options.exposeErrors === true };
}

/** What the pump of an HTTP adapter (Node or web) needs, besides the stream. */
export interface WritePlan {
  /** The user's extra headers, checked (names and values) and copied. */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** How long the sink may stay full before the client is dropped; `Infinity` for never. */
  readonly writeTimeoutMs: number;
  /** `false` only while bench/write-combining.bench.ts has turned combining off (`setWriteCombining`). */
  readonly combine: boolean;
}

/** The Node adapters' options (`sendSSE` of node, express, fastify, koa, nestjs), checked and resolved. */
export interface NodePlan extends ResponsePlan, WritePlan {
  /** The headers of a stream on HTTP/1.x: the user's under the protocol's, merged once. */
  readonly http1Headers: Readonly<Record<string, string>>;
  /** The same on HTTP/2, without the connection-specific ones. */
  readonly http2Headers: Readonly<Record<string, string>>;
}

/** The keys the Node adapters take: every adapter's, plus `writeTimeoutMs`. */
export const NODE_KEYS = [...RESPONSE_KEYS, 'writeTimeoutMs'] as const;

/** Checks every option of a Node adapter deeply, once (when `sse()` makes a handler, or at `sendSSE`). */
export function planNode(options: SendSSEOptions, keys: readonly string[] = NODE_KEYS): NodePlan {
  const plan = planResponse(options, keys);
  const write = planWrite(options);
  const { protocol } = plan.sse;
  return {
    ...plan,
    ...write,
    http1Headers: Object.freeze(mergeHeaders(write.headers, streamHeaders(protocol, '1.1'), false)),
    http2Headers: Object.freeze(mergeHeaders(write.headers, streamHeaders(protocol, '2.0'), true)),
  };
}

/** The options of a one-shot `sendSSE` called without any: one object, so its plan is made once. */
export const NO_NODE_OPTIONS: SendSSEOptions = Object.freeze({});

const nodePlans = new PlanCache((options: SendSSEOptions) => planNode(options));

/**
 * {@link planNode} for the one-shot `sendSSE` functions, which are usually given the same options
 * object on every request: its plan is made once and shared while the object holds the same values.
 */
export function planNodeFor(options: SendSSEOptions): NodePlan {
  return nodePlans.planFor(options, isWriteCombining());
}

/** The fetch-runtime adapters' options (`toResponse`, Hono), checked and resolved; `request` is per request. */
export interface WebPlan extends ResponsePlan, WritePlan {
  readonly status: number;
  /** The headers of a stream: the user's under the protocol's, merged once (no connection-specific ones). */
  readonly streamHeaders: Readonly<Record<string, string>>;
}

/** Every adapter's keys, plus the web ones. */
export const WEB_KEYS = [...RESPONSE_KEYS, 'request', 'status', 'writeTimeoutMs'] as const;

/** The web keys without `request`: Hono's `c.req.raw` is the request. */
export const HONO_KEYS: readonly string[] = WEB_KEYS.filter((key) => key !== 'request');

const NULL_BODY = new Set([204, 205, 304]);

/** Checks `toResponse`'s options once (`request` aside: it is per request), e.g. when a route handler is made. */
export function planWeb(options: Omit<ToResponseOptions, 'request'>, keys: readonly string[] = WEB_KEYS): WebPlan {
  const plan = planResponse(options, keys);
  const write = planWrite(options);
  const { status = 200 } = options;
  if (!(Number.isInteger(status) && status >= 200 && status <= 599 && !NULL_BODY.has(status))) {
    throw new TypeError(`Expected \`status\` to be an integer from 200 to 599 that allows a body, got ${describeValue(status)}`);
  }
  const headers = Object.freeze(mergeHeaders(write.headers, streamHeaders(plan.sse.protocol), true));
  return { ...plan, ...write, status, streamHeaders: headers };
}

function planWrite(options: { headers?: unknown; writeTimeoutMs?: unknown }): WritePlan {
  const { writeTimeoutMs = 30_000 } = options;
  assertNumber('writeTimeoutMs', writeTimeoutMs, { min: 1, allowInfinity: true });
  return { headers: checkHeaders(options.headers), writeTimeoutMs, combine: isWriteCombining() };
}

/** `sendOverWebSocket`'s options, checked and resolved once per call. */
export interface WebSocketPlan {
  /** The pipeline's options (`timeout`, `backpressure`, `monitor`, `logger`). */
  readonly stream: StreamPlan;
  readonly maxBufferedAmount: number;
  readonly writeTimeoutMs: number;
  readonly closeOnEnd: boolean;
  readonly streamId: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly exposeErrors: boolean;
}

const WEBSOCKET_KEYS = [...CHUNK_STREAM_KEYS, 'maxBufferedAmount', 'writeTimeoutMs', 'closeOnEnd', 'streamId', 'signal', 'exposeErrors'] as const;

/** Checks every option of `sendOverWebSocket`. */
export function planWebSocket(options: SendOverWebSocketOptions): WebSocketPlan {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const { maxBufferedAmount = 65_536, writeTimeoutMs = 30_000, closeOnEnd = false, streamId, signal, exposeErrors = false } = options;
  assertNumber('maxBufferedAmount', maxBufferedAmount, { allowInfinity: true });
  assertNumber('writeTimeoutMs', writeTimeoutMs, { min: 1, allowInfinity: true });
  assertBoolean('closeOnEnd', closeOnEnd);
  assertBoolean('exposeErrors', exposeErrors);
  if (streamId !== undefined && typeof streamId !== 'string') {
    throw new TypeError(`Expected \`streamId\` to be a string, got ${describeValue(streamId)}`);
  }
  if (signal !== undefined) assertSignal('signal', signal);
  const stream = planChunkStream(options, WEBSOCKET_KEYS);
  return { stream, maxBufferedAmount, writeTimeoutMs, closeOnEnd, streamId, signal, exposeErrors };
}

/** `sseObservable`'s options (NestJS `@Sse()`), checked and resolved once per observable. */
export interface ObservablePlan extends StreamPlan {
  readonly exposeErrors: boolean;
}

const OBSERVABLE_KEYS = [...CHUNK_STREAM_KEYS, 'exposeErrors'] as const;

/** Checks every option of `sseObservable`. */
export function planObservable(options: SseObservableOptions): ObservablePlan {
  const plan = planChunkStream(options, OBSERVABLE_KEYS);
  const { exposeErrors = false } = options;
  assertBoolean('exposeErrors', exposeErrors);
  return { ...plan, exposeErrors };
}

function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describeValue(value)}`);
  }
}

function loggerOf(logger: unknown): ((record: StreamLogRecord) => void) | undefined {
  if (logger === undefined) return undefined;
  if (typeof logger === 'function') return logger as (record: StreamLogRecord) => void;
  if (logger !== null && typeof logger === 'object' && typeof (logger as { info?: unknown }).info === 'function') {
    const target = logger as { info(record: StreamLogRecord): void };
    return (record) => target.info(record);
  }
  throw new TypeError(`Expected \`logger\` to be a function or an object with an info() method, got ${describeValue(logger)}`);
}
