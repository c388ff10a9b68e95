import { isStreamAbortedError, isTokenRelayError } from '../../core/errors.js';
import { MonitorStage, type MonitorOptions, type StreamMetrics } from '../../operators/monitored.js';
import { EncodeStage, type ToSSEOptions } from '../../operators/to-sse.js';
import type { WithBackpressureOptions } from '../../operators/with-backpressure.js';
import { ReadAhead, type ReadAheadConfig, type ReadAheadStages } from '../../operators/internal/read-ahead.js';
import { takeReady } from '../../core/kernel.js';
import { timeoutStageOf, type WithTimeoutOptions } from '../../operators/with-timeout.js';
import type { TokenChunk, TokenSourceFactory } from '../../core/types.js';
import { describeValue } from '../../core/validate.js';
import type { Protocol, ProtocolName } from '../../protocols/protocol.js';
import type { ResponsePlan, StreamPlan } from './options.js';
import { toHttpError, type HttpErrorResponse } from './http-error.js';

/**
 * A stream to send, or (the recommended form) a factory that receives the request's signal and
 * returns the stream or a promise of it; a rejected promise fails the stream like a throw.
 */
export type TokenSourceInput =
  | AsyncIterable<TokenChunk>
  | TokenSourceFactory
  | ((signal: AbortSignal) => PromiseLike<AsyncIterable<TokenChunk>>);

/** The pipeline options every adapter takes, whatever it encodes the chunks into. */
export interface ChunkStreamOptions {
  /** Deadlines for the provider (`withTimeout`); on expiry the provider request is aborted. */
  timeout?: Omit<WithTimeoutOptions, 'controller'> | undefined;
  /**
   * Read-ahead toward the provider (`withBackpressure`), or `false` to read only on demand.
   * @defaultValue `{}` (64 chunks / 256 KiB, `overflow: 'wait'`)
   */
  backpressure?: WithBackpressureOptions | false | undefined;
  /** Hooks and price for `monitored`; `onFinish` gets the same metrics the adapter resolves with. */
  monitor?: MonitorOptions | undefined;
  /**
   * Receives one {@link StreamLogRecord} per stream, when it ends (never one per token): a
   * function, or a pino/console-like object whose `info(record)` is called.
   * @defaultValue none
   * @example
   * ```ts
   * await sendSSE(req, res, factory, { logger: req.log, monitor: { price } }); // pino-http's child logger
   * ```
   */
  logger?: StreamLogger | undefined;
}

/** A function that takes the record, or a logger with an `info` method (pino, console, …). */
export type StreamLogger =
  | ((record: StreamLogRecord) => void)
  | {
      /** Called once per stream, at its end. */
      info(record: StreamLogRecord): void;
    };

/** What the `logger` receives once per stream. Times in ms; `cost` in USD when a `monitor.price` was given. */
export interface StreamLogRecord {
  /** The stream's id, where the adapter has one (`streamId` of the WebSocket adapter). */
  id?: string | undefined;
  /** The chunks' `provider`, where known. */
  provider: string | undefined;
  /** The chunks' `model`, where known. */
  model: string | undefined;
  /** How the stream ended. */
  outcome: StreamMetrics['outcome'];
  /** From the first read to the first token; `undefined` if none came. */
  ttftMs: number | undefined;
  /** From the first read to the end. */
  durationMs: number;
  /** As the provider reported them; `undefined` when it reported none. */
  inputTokens: number | undefined;
  /** Reported by the provider, or estimated when `estimated` is `true`. */
  outputTokens: number;
  /** `true` when `outputTokens` and `cost` are estimated from the text (no final usage came). */
  estimated: boolean;
  /** The estimated cost in USD; `undefined` without a `monitor.price` (or a price for this model). */
  cost: number | undefined;
  /** What ended the stream, for the `'aborted'`, `'timeout'` and `'error'` outcomes; absent otherwise. */
  error?: StreamLogError | undefined;
}

/** The error of a {@link StreamLogRecord}: enough to find it, nothing the client sees. */
export interface StreamLogError {
  /** The error's class name, e.g. `'TypeError'` or `'ProviderError'`. */
  name: string;
  /** tokenrelay's error code (`'provider'`, `'timeout'`, …), or the error's own string `code`. */
  code?: string | undefined;
  /** The error's message (for a provider error, the message tokenrelay wrote, never the provider's text). */
  message: string;
}

/** Where a stream is served, for the report of an unexpected error. */
export interface StreamContext {
  /** The adapter's id of the stream (the WebSocket adapter's `streamId`). */
  id?: string | undefined;
  /** The request's method, e.g. `'POST'`. */
  method?: string | undefined;
  /** The request's URL path, without the query string. */
  path?: string | undefined;
}

/** Options every server adapter takes, so the common case is one call with no manual `pipe`. */
export interface StreamResponseOptions extends ToSSEOptions, ChunkStreamOptions {
  /**
   * The wire protocol, for the frontend that reads the stream: tokenrelay's own SSE, the AI SDK
   * UI message stream (`useChat`), AG-UI events, OpenAI Chat Completions chunks, or NDJSON.
   * Every protocol gets the same abort, timeouts, backpressure, monitoring and resume.
   * `events` and `serialize` shape tokenrelay's SSE only.
   * @defaultValue `'tokenrelay'`
   * @example
   * ```ts
   * app.post('/api/chat', sse((req, signal) => streamOpenAI(openai, params(req), { signal }), { protocol: 'ai-sdk' }));
   * ```
   */
  protocol?: ProtocolName | undefined;
  /** Extra response headers (e.g. CORS); the SSE headers cannot be overridden. */
  headers?: Record<string, string> | undefined;
  /**
   * How long to wait for the first chunk before committing to `200` and sending the headers.
   * A provider error inside this window is answered with its own HTTP status and a JSON body
   * (429 with `Retry-After`, 5xx as 502, …); after it, errors become the SSE `error` event.
   * @defaultValue `500`
   */
  statusWindowMs?: number | undefined;
}

/** One response's stream: its cancellation, its SSE frames, and the metrics it ends with. */
export interface ResponseStream {
  /** Aborting it cancels the provider request; the adapter links it to the client disconnect. */
  readonly controller: AbortController;
  /** The wire protocol the frames are in: its headers, and its shutdown frame. */
  readonly protocol: Protocol;
  /**
   * Waits (up to `statusWindowMs`) for the stream to start. Resolves with an HTTP error to send
   * instead of a stream when it failed before its first chunk, else with `undefined`.
   */
  begin(): Promise<HttpErrorResponse | undefined>;
  /** The SSE frames, the first chunk included. */
  readonly frames: AsyncIterator<string>;
  /**
   * The next frame when it is already there (its chunk was peeked, or waits in the read-ahead
   * buffer), taken at once, as `frames.next()` would have returned it; else `undefined`, and the
   * adapter reads with `frames.next()`. Lets an adapter join such frames into one write.
   */
  takeFrame(): string | undefined;
  /** Resolves once, when the stream has ended in any way. */
  readonly metrics: Promise<StreamMetrics>;
}

/** One stream's cancellation, its chunks and the metrics it ends with, before any encoding. */
export interface ChunkStream {
  /** Aborting it cancels the provider request; the adapter links it to the client disconnect. */
  readonly controller: AbortController;
  /** Created at once, so a `return()` before the first read still reports an outcome. */
  readonly chunks: AsyncIterableIterator<TokenChunk>;
  /** Resolves once, when the stream has ended in any way. */
  readonly metrics: Promise<StreamMetrics>;
}

/** Builds the standard pipeline of a response: abort, timeouts, read-ahead, monitoring, SSE. */
export function openResponseStream(input: TokenSourceInput, plan: ResponsePlan, context: StreamContext = {}): ResponseStream {
  const { protocol, exposeErrors, heartbeatMs } = plan.sse;
  return new OpenResponse(plan, context, input, (signal) => ({
    output: new EncodeStage(protocol, exposeErrors, signal),
    // A protocol with no heartbeat frame (NDJSON) has no heartbeat timer either.
    keepAlive: protocol.heartbeat === '' ? undefined : { idleMs: heartbeatMs, value: protocol.heartbeat },
  }));
}

/** A response's stream, its methods shared by every stream (no closures of its own). */
class OpenResponse implements ResponseStream {
  readonly controller: AbortController;
  readonly protocol: Protocol;
  readonly frames: ReadAhead<string>;
  readonly metrics: Promise<StreamMetrics>;
  readonly #plan: ResponsePlan;

  constructor(
    plan: ResponsePlan,
    context: StreamContext,
    input: TokenSourceInput,
    output: (signal: AbortSignal) => Pick<ReadAheadStages<string>, 'output' | 'keepAlive'>,
  ) {
    const { controller, chunks, metrics } = openStream(input, plan, context, output);
    this.controller = controller;
    this.protocol = plan.sse.protocol;
    this.frames = chunks;
    this.metrics = metrics;
    this.#plan = plan;
  }

  takeFrame(): string | undefined {
    return takeReady(this.frames)?.value;
  }

  async begin(): Promise<HttpErrorResponse | undefined> {
    const plan = this.#plan;
    const first = await settleWithin(this.frames.peek(), plan.statusWindowMs);
    if (first === undefined || !('error' in first)) return undefined;
    if (this.controller.signal.aborted && isStreamAbortedError(first.error)) return undefined;
    return toHttpError(first.error, plan.exposeErrors, plan.sse.protocol);
  }
}

/**
 * Builds the pipeline every adapter shares: abort, timeouts, read-ahead, monitoring. The plan's
 * options were checked when it was made, so nothing here checks them again.
 */
export function openChunkStream(input: TokenSourceInput, plan: StreamPlan, context: StreamContext = {}): ChunkStream {
  return openStream<TokenChunk>(input, plan, context, undefined);
}

/**
 * The standard pipeline as one object per stream (fused): the stages of `withTimeout`,
 * `withAbort`, `withBackpressure`, `monitored` and, for a response, the encoding and the
 * heartbeat, all run by one {@link ReadAhead} with one pending read of the provider.
 */
function openStream<T>(
  input: TokenSourceInput,
  plan: StreamPlan,
  context: StreamContext,
  output: ((signal: AbortSignal) => Pick<ReadAheadStages<T>, 'output' | 'keepAlive'>) | undefined,
): { controller: AbortController; chunks: ReadAhead<T>; metrics: Promise<StreamMetrics> } {
  if (typeof input !== 'function' && !isAsyncIterable(input)) {
    throw new TypeError(
      `Expected \`source\` to be an async iterable of chunks or a function (signal) => stream, got ${describeValue(input)}`,
    );
  }
  const { log, backpressure } = plan;
  const controller = new AbortController();
  const { signal } = controller;
  let reportMetrics!: (metrics: StreamMetrics) => void;
  const metrics = new Promise<StreamMetrics>((resolve) => (reportMetrics = resolve));
  const userFinish = plan.monitor?.onFinish;
  // Errors are someone's to see: the logger's, the monitor's, or else the console's.
  const unhandled = log === undefined && plan.monitor?.onError === undefined;
  const monitor: MonitorOptions = {
    ...plan.monitor,
    onFinish(report) {
      reportMetrics(report);
      if (log !== undefined) writeLog(log, report, context.id, plan.monitor?.onHookError);
      else if (unhandled && report.outcome === 'error' && isUnexpected(report.error)) reportUnexpected(report.error, context);
      return userFinish?.(report);
    },
  };
  // The abort acts after the read-ahead buffer, so a disconnect reaches the monitor at once,
  // not after the chunks still buffered for a client that is gone.
  const chunks = new ReadAhead<T>(new LazySource(input, signal), backpressure === false ? ON_DEMAND : backpressure, {
    signal,
    timeout: timeoutStageOf<TokenChunk>(plan.timeout, controller),
    monitor: new MonitorStage(monitor),
    ahead: backpressure !== false,
    ...output?.(signal),
  });
  return { controller, chunks, metrics };
}

function writeLog(
  log: (record: StreamLogRecord) => void,
  metrics: StreamMetrics,
  id: string | undefined,
  onHookError: MonitorOptions['onHookError'],
): void {
  const record: StreamLogRecord = {
    ...(id === undefined ? {} : { id }),
    provider: metrics.provider,
    model: metrics.model,
    outcome: metrics.outcome,
    ttftMs: metrics.ttftMs,
    durationMs: metrics.durationMs,
    inputTokens: metrics.usage?.inputTokens,
    outputTokens: metrics.outputTokens,
    estimated: metrics.estimated === true,
    cost: metrics.cost?.total,
  };
  if (metrics.outcome === 'aborted' || metrics.outcome === 'timeout' || metrics.outcome === 'error') {
    record.error = logErrorOf(metrics.error);
  }
  try {
    log(record);
  } catch (error) {
    // Like a throwing monitor hook: reported, never allowed to break the stream or the other hooks.
    try {
      if (onHookError !== undefined) onHookError(error, 'onFinish');
      else console.error('tokenrelay: the logger threw', error);
    } catch {
      // Nowhere left to report to.
    }
  }
}

function logErrorOf(error: unknown): StreamLogError {
  if (error === null || typeof error !== 'object') return { name: typeof error, message: String(error) };
  const { name, message, code } = error as { name?: unknown; message?: unknown; code?: unknown };
  const record: StreamLogError = {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : String(error),
  };
  if (typeof code === 'string') record.code = code;
  return record;
}

/**
 * A failure nobody planned for: not one of tokenrelay's typed errors (a provider failure, an
 * abort, a timeout, …), so most likely a bug in the app's own factory or middleware.
 */
function isUnexpected(error: unknown): boolean {
  return !isTokenRelayError(error) && !hasName(error, 'AbortError') && !hasName(error, 'TimeoutError');
}

function hasName(error: unknown, name: string): boolean {
  return error !== null && typeof error === 'object' && (error as { name?: unknown }).name === name;
}

/** Like an unhandled route error in Express: once, with the route and the stack. */
function reportUnexpected(error: unknown, { method, path, id }: StreamContext): void {
  const where = [method, path].filter((part) => part !== undefined).join(' ');
  const label = where === '' ? (id === undefined ? 'a stream' : `stream ${id}`) : where;
  try {
    console.error(`tokenrelay: ${label} failed (the client got a generic error):`, error);
  } catch {
    // A console that throws has nowhere left to report to.
  }
}

// `backpressure: false`: the source is read only while the consumer waits.
const ON_DEMAND: ReadAheadConfig = { highWaterMark: 1, maxBufferedBytes: Infinity, overflow: 'wait', rate: undefined, burst: 1 };

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The source, opened on the first read (so a factory that throws fails like a stream) and then read directly: a generator around it
 * (`yield*`) would add its own promises to every chunk. A failure to open it (the factory
 * throws, or returns no iterable) rejects that first read. Stopped before the first read, it
 * never opens the source.
 */
class LazySource implements AsyncIterableIterator<TokenChunk> {
  #input: TokenSourceInput | undefined;
  readonly #signal: AbortSignal;
  #iterator: AsyncIterator<TokenChunk> | undefined;
  #returned = false;

  constructor(input: TokenSourceInput, signal: AbortSignal) {
    this.#input = input;
    this.#signal = signal;
  }

  next(): Promise<IteratorResult<TokenChunk>> {
    let iterator = this.#iterator;
    if (iterator === undefined) {
      const input = this.#input;
      if (input === undefined) return Promise.resolve(DONE);
      this.#input = undefined;
      try {
        const source = typeof input === 'function' ? input(this.#signal) : input;
        if (isThenable(source)) return this.#openLater(source);
        iterator = iteratorOf(source);
      } catch (error) {
        return Promise.reject(error);
      }
      this.#iterator = iterator;
    }
    return iterator.next();
  }

  /** An async factory: its promise is awaited on the first read; returned meanwhile, the source is closed once it comes. */
  async #openLater(pending: PromiseLike<AsyncIterable<TokenChunk>>): Promise<IteratorResult<TokenChunk>> {
    const iterator = iteratorOf(await pending);
    if (this.#returned) {
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      return DONE;
    }
    this.#iterator = iterator;
    return iterator.next();
  }

  return(): Promise<IteratorResult<TokenChunk>> {
    this.#input = undefined;
    this.#returned = true;
    const iterator = this.#iterator;
    if (iterator?.return === undefined) return Promise.resolve(DONE);
    return iterator.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Like `yield*`: an async iterable, or else a sync one (its values awaited). */
function iteratorOf(source: AsyncIterable<TokenChunk> | Iterable<TokenChunk>): AsyncIterator<TokenChunk> {
  const asyncIterator = (source as Partial<AsyncIterable<TokenChunk>> | null | undefined)?.[Symbol.asyncIterator];
  if (typeof asyncIterator === 'function') return asyncIterator.call(source);
  if (typeof (source as Partial<Iterable<TokenChunk>> | null | undefined)?.[Symbol.iterator] === 'function') {
    return fromSync(source as Iterable<TokenChunk>);
  }
  throw new TypeError(`Expected the source factory to return an async iterable of chunks, got ${describeValue(source)}`);
}

async function* fromSync(source: Iterable<TokenChunk>): AsyncGenerator<TokenChunk, void, undefined> {
  yield* source;
}

function settleWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | undefined> {
  return new Promise((resolve) => {
    const timer = Number.isFinite(ms) ? setTimeout(() => resolve(undefined), ms) : undefined;
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ error });
      },
    );
  });
}

function isThenable(value: unknown): value is PromiseLike<AsyncIterable<TokenChunk>> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<TokenChunk> {
  return value !== null && typeof value === 'object' && Symbol.asyncIterator in value;
}
