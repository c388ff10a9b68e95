import { isStreamAbortedError, isTokenRelayError } from '../../core/errors.js';
import { MonitorStage, type FinishSink, type MonitorOptions, type StreamMetrics } from '../../operators/monitored.js';
import { EncodeStage, type ToSSEOptions } from '../../operators/to-sse.js';
import type { WithBackpressureOptions } from '../../operators/with-backpressure.js';
import { ReadAhead, type ReadAheadConfig } from '../../operators/internal/read-ahead.js';
import type { ReadStage } from '../../core/staged-read.js';
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
  const { protocol, exposeErrors } = plan.sse;
  return new PipelineStream<string>(input, plan, context, (signal) => new EncodeStage(protocol, exposeErrors, signal));
}

/**
 * Builds the pipeline every adapter shares: abort, timeouts, read-ahead, monitoring. The plan's
 * options were checked when it was made, so nothing here checks them again.
 */
export function openChunkStream(input: TokenSourceInput, plan: StreamPlan, context: StreamContext = {}): ChunkStream {
  return new PipelineStream<TokenChunk>(input, plan, context, undefined);
}

/**
 * The standard pipeline as one object per stream (fused): the stages of `withTimeout`,
 * `withAbort`, `withBackpressure`, `monitored` and, for a response, the encoding and the
 * heartbeat, all run by one {@link ReadAhead} with one pending read of the provider. The stream
 * is its own frames (or chunks), its monitor's finish sink and its response: its methods are
 * shared by every stream, and its metrics promise is made only when asked for.
 */
class PipelineStream<T> extends ReadAhead<T> implements FinishSink {
  readonly controller: AbortController;
  readonly #plan: StreamPlan;
  readonly #context: StreamContext;
  // The promise of the report: made when asked for (its resolver kept until the end), or at the end.
  #metrics: Promise<StreamMetrics> | undefined;
  #resolve: ((metrics: StreamMetrics) => void) | undefined;

  constructor(
    input: TokenSourceInput,
    plan: StreamPlan,
    context: StreamContext,
    output: ((signal: AbortSignal) => ReadStage<TokenChunk, T>) | undefined,
  ) {
    if (typeof input !== 'function' && !isAsyncIterable(input)) {
      throw new TypeError(
        `Expected \`source\` to be an async iterable of chunks or a function (signal) => stream, got ${describeValue(input)}`,
      );
    }
    const { backpressure } = plan;
    const controller = new StreamAbortController();
    const { signal } = controller;
    const monitor = new MonitorStage(plan.monitor ?? NO_MONITOR);
    const protocol = output === undefined ? undefined : (plan as ResponsePlan).sse;
    // The abort acts after the read-ahead buffer, so a disconnect reaches the monitor at once,
    // not after the chunks still buffered for a client that is gone.
    super(new LazySource(input, signal), backpressure === false ? ON_DEMAND : backpressure, {
      signal,
      toldOfAbort: true,
      timeout: timeoutStageOf<TokenChunk>(plan.timeout, controller),
      monitor,
      ahead: backpressure !== false,
      output: output?.(signal),
      // A protocol with no heartbeat frame (NDJSON) has no heartbeat timer either.
      keepAlive:
        protocol === undefined || protocol.protocol.heartbeat === ''
          ? undefined
          : { idleMs: protocol.heartbeatMs, value: protocol.protocol.heartbeat as T },
    });
    monitor.sink = this;
    controller.stream = this;
    this.controller = controller;
    this.#plan = plan;
    this.#context = context;
  }

  get protocol(): Protocol {
    return (this.#plan as ResponsePlan).sse.protocol;
  }

  get frames(): this {
    return this;
  }

  get chunks(): this {
    return this;
  }

  get metrics(): Promise<StreamMetrics> {
    return (this.#metrics ??= new Promise<StreamMetrics>((resolve) => (this.#resolve = resolve)));
  }

  takeFrame(): T | undefined {
    return takeReady(this)?.value;
  }

  async begin(): Promise<HttpErrorResponse | undefined> {
    const plan = this.#plan as ResponsePlan;
    const first = await settleWithin(this.peek(), plan.statusWindowMs);
    if (first === undefined || !('error' in first)) return undefined;
    if (this.controller.signal.aborted && isStreamAbortedError(first.error)) return undefined;
    return toHttpError(first.error, plan.exposeErrors, plan.sse.protocol);
  }

  /** The monitor's report, before the user's `onFinish`: the metrics promise, the log, or the console. */
  finished(report: StreamMetrics): void {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    if (resolve !== undefined) resolve(report);
    else this.#metrics ??= Promise.resolve(report);
    const { log, monitor } = this.#plan;
    const context = this.#context;
    if (log !== undefined) writeLog(log, report, context.id, monitor?.onHookError);
    // Errors are someone's to see: the logger's, the monitor's, or else the console's.
    else if (monitor?.onError === undefined && report.outcome === 'error' && isUnexpected(report.error)) {
      reportUnexpected(report.error, context);
    }
  }
}

/**
 * A stream's controller, which tells the stream of its abort itself (after the signal's
 * listeners), so the stream needs no listener on its own signal.
 */
class StreamAbortController extends AbortController {
  stream: { handleEvent(): void } | undefined;

  override abort(reason?: unknown): void {
    if (this.signal.aborted) return;
    super.abort(reason);
    this.stream?.handleEvent();
  }
}

// No monitor options: the stream's own sink is all its monitor tells.
const NO_MONITOR: MonitorOptions = Object.freeze({});

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
  // Until the first read, the input; then the source's iterator, or OPENING while an async
  // factory's promise is awaited, RETURNED when returned meanwhile, undefined when there is none.
  #state: TokenSourceInput | AsyncIterator<TokenChunk> | typeof OPENING | typeof RETURNED | undefined;
  // The factory's signal until the first read or return(), which it tells apart from the rest.
  #signal: AbortSignal | undefined;

  constructor(input: TokenSourceInput, signal: AbortSignal) {
    this.#state = input;
    this.#signal = signal;
  }

  next(): Promise<IteratorResult<TokenChunk>> {
    const signal = this.#signal;
    if (signal !== undefined) {
      const input = this.#state as TokenSourceInput;
      this.#signal = undefined;
      this.#state = undefined;
      try {
        const source = typeof input === 'function' ? input(signal) : input;
        if (isThenable(source)) {
          this.#state = OPENING;
          return this.#openLater(source);
        }
        this.#state = iteratorOf(source);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const state = this.#state;
    if (state === undefined || state === OPENING || state === RETURNED) return Promise.resolve(DONE);
    return (state as AsyncIterator<TokenChunk>).next();
  }

  /** An async factory: its promise is awaited on the first read; returned meanwhile, the source is closed once it comes. */
  async #openLater(pending: PromiseLike<AsyncIterable<TokenChunk>>): Promise<IteratorResult<TokenChunk>> {
    const iterator = iteratorOf(await pending);
    if (this.#state === RETURNED) {
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      return DONE;
    }
    this.#state = iterator;
    return iterator.next();
  }

  return(): Promise<IteratorResult<TokenChunk>> {
    const state = this.#state;
    if (this.#signal !== undefined || state === OPENING) {
      // Not opened yet: it never will be (an async factory's source is closed once it comes).
      this.#signal = undefined;
      this.#state = state === OPENING ? RETURNED : undefined;
      return Promise.resolve(DONE);
    }
    const iterator = state === RETURNED ? undefined : (state as AsyncIterator<TokenChunk> | undefined);
    if (iterator?.return === undefined) return Promise.resolve(DONE);
    return iterator.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

// LazySource's states besides its input and its iterator.
const OPENING: unique symbol = Symbol('opening');
const RETURNED: unique symbol = Symbol('returned');

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
