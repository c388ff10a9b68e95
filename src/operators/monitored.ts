import { estimateCost, estimateOutputTokens, assertPrice, type Cost, type Price } from '../cost.js';
import { isStreamAbortedError, isStreamTimeoutError } from '../core/errors.js';
import type { FinishReason, Operator, TokenChunk, Usage } from '../core/types.js';
import { assertFunction, assertOptions, describeValue } from '../core/validate.js';
import {
  Interruptible,
  READ_INTO,
  READ_THROUGH,
  SETTLES_ON_RETURN,
  TAKE_READY,
  type ErrorHandler,
  type ResultHandler,
} from '../core/kernel.js';

/**
 * How a stream ended: `'completed'` (the source finished), `'aborted'`, `'timeout'`, `'error'`
 * (the source threw anything else), or `'cancelled'` (the consumer stopped reading first).
 */
export type StreamOutcome = 'completed' | 'aborted' | 'timeout' | 'error' | 'cancelled';

/** What is known about a stream when it ends; reported once per stream. Times are in ms. */
export interface StreamMetrics {
  /** How the stream ended. */
  outcome: StreamOutcome;
  /** From the first read to the first chunk with a non-empty `token`; `undefined` if none came. */
  ttftMs: number | undefined;
  /** From the first read to the end. */
  durationMs: number;
  /** Chunks received, metadata-only ones included. */
  chunks: number;
  /**
   * `usage.outputTokens` when the provider's final usage came; else estimated from the text seen
   * (the larger of the chunks with a non-empty `token` and their characters / 4), and `estimated` is set.
   */
  outputTokens: number;
  /** `outputTokens` per second from the first token to the end; `undefined` when not measurable. */
  tokensPerSecond: number | undefined;
  /** The `finishReason` of the last chunk, if one came. */
  finishReason: FinishReason | undefined;
  /** The latest usage seen, also when the stream was aborted or failed afterwards. */
  usage: Usage | undefined;
  /** What the source threw, for the `'aborted'`, `'timeout'` and `'error'` outcomes. */
  error: unknown;
  /** The `provider` of the chunks, where known. */
  provider: string | undefined;
  /** The `model` of the chunks, where known. */
  model: string | undefined;
  /**
   * The estimated cost, when a `price` was given and either usage was reported or the stream was
   * cut short (then priced from the estimated output and the input tokens reported so far, if any).
   */
  cost: Cost | undefined;
  /**
   * `true` when `outputTokens` (and `cost`) are estimated from the text seen because the
   * provider's final usage never came (the stream was aborted, timed out, failed or was
   * cancelled first, or the source reports no usage); absent otherwise.
   */
  estimated?: true | undefined;
  /** The concatenated `'text'` tokens, with `keepText: true` only. */
  text?: string | undefined;
}

/** Passed to {@link MonitorHooks.onFirstToken}. */
export interface FirstTokenEvent {
  /** From the first read to this chunk. */
  ttftMs: number;
  /** The first chunk with a non-empty `token`. */
  chunk: TokenChunk;
}

/** Which hook (or the `price` function) threw. */
export type MonitorHookName = 'onStart' | 'onFirstToken' | 'onChunk' | 'onFinish' | 'onError' | 'price';

/**
 * Hooks that observe one stream only: what {@link MonitorHooks.onStart} may return to keep
 * per-stream state (a tracing span, a request id) in its closure.
 */
export type StreamObserver = Pick<MonitorHooks, 'onFirstToken' | 'onChunk' | 'onFinish'>;

/**
 * Callbacks that observe a stream. They never break it: a hook that throws (or returns a
 * promise that rejects) is reported to `onHookError` and the stream goes on.
 */
export interface MonitorHooks {
  /**
   * Called once per stream at its first read, in the async context of that read (before
   * `onFinish`, also for a stream stopped before it was read). It may return a
   * {@link StreamObserver}: hooks for this stream only, called after the shared ones.
   * @defaultValue none
   * @example
   * ```ts
   * monitored({ onStart: () => { const started = Date.now(); return { onFinish: () => log(Date.now() - started) }; } });
   * ```
   */
  onStart?: (() => StreamObserver | void | PromiseLike<void>) | undefined;
  /**
   * Called at the first chunk with a non-empty `token`.
   * @defaultValue none
   */
  onFirstToken?: ((event: FirstTokenEvent) => void | PromiseLike<void>) | undefined;
  /**
   * Called for every chunk, before the consumer sees it. Keep it cheap.
   * @defaultValue none
   */
  onChunk?: ((chunk: TokenChunk) => void | PromiseLike<void>) | undefined;
  /**
   * Called exactly once per stream, on whichever way it ends. Not awaited.
   * @defaultValue none
   */
  onFinish?: ((metrics: StreamMetrics) => void | PromiseLike<void>) | undefined;
  /**
   * Called once, before `onFinish`, when the stream fails (outcome `'error'`), with what the
   * source threw. Giving it (or a `logger`) also tells the server adapters that errors are
   * handled: without either, they write an error that is not one of tokenrelay's typed errors
   * (a bug in the factory, say) to `console.error`.
   * @defaultValue none
   * @example
   * ```ts
   * monitored({ onError: (error) => Sentry.captureException(error) });
   * ```
   */
  onError?: ((error: unknown) => void | PromiseLike<void>) | undefined;
  /**
   * Receives what a hook threw.
   * @defaultValue logs with `console.error`
   */
  onHookError?: ((error: unknown, hook: MonitorHookName) => void) | undefined;
}

/** Options of {@link monitored}: the hooks, and what the finish report should include. */
export interface MonitorOptions extends MonitorHooks {
  /**
   * Prices for `metrics.cost`: a {@link Price}, or a function of the stream's model.
   * @defaultValue no cost estimate
   */
  price?: Price | ((model: string | undefined) => Price | undefined) | undefined;
  /**
   * Keep the answer text and report it as `metrics.text`, e.g. to persist it.
   * @defaultValue `false`
   */
  keepText?: boolean | undefined;
}

/**
 * Observes a stream without changing it (the same chunk objects pass through) and reports
 * time to first token, throughput, usage, cost and exactly one outcome per stream, also when
 * the consumer stops while a read is pending.
 *
 * @example
 * ```ts
 * const stream = pipe(source, monitored({
 *   price: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
 *   onFinish: (m) => log.info({ outcome: m.outcome, ttft: m.ttftMs, cost: m.cost?.total }),
 * }));
 * ```
 */
export function monitored(options: MonitorOptions): Operator<TokenChunk, TokenChunk> {
  checkMonitorOptions(options);
  return monitoredWith(options);
}

const HOOK_NAMES = ['onStart', 'onFirstToken', 'onChunk', 'onFinish', 'onError', 'onHookError'] as const;

/** @internal Checks monitor options deeply (unknown keys, hooks, price); `name` prefixes the errors. */
export function checkMonitorOptions(options: unknown, name = 'options'): asserts options is MonitorOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions(name, options, [...HOOK_NAMES, 'price', 'keepText']);
  const given = options as MonitorOptions;
  const field = (key: string): string => (name === 'options' ? key : `${name}.${key}`);
  for (const hook of HOOK_NAMES) {
    if (given[hook] !== undefined) assertFunction(field(hook), given[hook]);
  }
  if (given.price !== undefined && typeof given.price !== 'function') assertPrice(given.price);
  if (given.keepText !== undefined && typeof given.keepText !== 'boolean') {
    throw new TypeError(`Expected \`${field('keepText')}\` to be a boolean, got ${describeValue(given.keepText)}`);
  }
}

/** @internal `monitored` for checked options: what the adapters build per request, with no checks. */
export function monitoredWith(options: MonitorOptions): Operator<TokenChunk, TokenChunk> {
  return (source) => ({
    [Symbol.asyncIterator]: () => new Monitored(source, options),
  });
}

/** @internal What a {@link MonitorStage} tells first when the stream has ended, without a closure per stream. */
export interface FinishSink {
  /** The stream's metrics, once, before the `onFinish` hooks. */
  finished(metrics: StreamMetrics): void;
}

/**
 * @internal `monitored` as a stage (its state and hooks, not a reader): `start()` at the first
 * read, `result` and `error` see what the reader delivers, `cancel()` when the consumer stops
 * first. The standalone operator runs it in an {@link Interruptible}; the adapters' fused
 * pipeline runs it where chunks leave the read-ahead buffer.
 */
export class MonitorStage {
  readonly #options: MonitorOptions;
  /** Told of the metrics first, before `onFinish` (an adapter's stream: its metrics and its log). */
  sink: FinishSink | undefined;
  #startedAt: number | undefined;
  #firstTokenAt: number | undefined;
  #chunks = 0;
  #tokenChunks = 0;
  #characters = 0;
  #usage: Usage | undefined;
  #finishReason: FinishReason | undefined;
  #provider: string | undefined;
  #model: string | undefined;
  #text = '';
  #finished = false;
  #observer: StreamObserver | undefined;
  // Read on every chunk: one field, not a lookup through the observer.
  #ownOnChunk: StreamObserver['onChunk'];

  constructor(options: MonitorOptions) {
    this.#options = options;
  }

  /** Sees a result on its way to the consumer; the result object is passed on as is. */
  result(result: IteratorResult<TokenChunk>): IteratorResult<TokenChunk> {
    if (result.done === true) {
      this.#finish(outcomeOf(this.#finishReason, 'completed'), undefined);
      return result;
    }
    const chunk = result.value;
    this.#chunks++;
    if (chunk.token !== '') {
      this.#tokenChunks++;
      this.#characters += chunk.token.length;
      if (this.#options.keepText === true && chunk.type === 'text') this.#text += chunk.token;
      if (this.#firstTokenAt === undefined) this.#firstToken(chunk);
    }
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason !== undefined) this.#finishReason = chunk.finishReason;
    if (chunk.model !== undefined) this.#model = chunk.model;
    if (chunk.provider !== undefined) this.#provider = chunk.provider;
    if (this.#options.onChunk !== undefined) this.#call('onChunk', this.#options.onChunk, chunk);
    if (this.#ownOnChunk !== undefined) this.#call('onChunk', this.#ownOnChunk, chunk);
    return result;
  }

  /** The reader failed with `error`: the outcome is a timeout, an abort or an error. */
  error(error: unknown): void {
    const outcome = isStreamTimeoutError(error) || hasName(error, 'TimeoutError')
      ? 'timeout'
      : isStreamAbortedError(error) || hasName(error, 'AbortError') ? 'aborted' : 'error';
    this.#finish(outcome, error);
  }

  /** Calls `onStart`, once, at the first read. */
  start(): void {
    if (this.#startedAt === undefined) this.#start();
  }

  /** The consumer stopped reading: `'cancelled'`, unless the stream already delivered its finish reason. */
  cancel(): void {
    this.#finish(outcomeOf(this.#finishReason, 'cancelled'), undefined);
  }

  #start(): void {
    this.#startedAt = performance.now();
    const onStart = this.#options.onStart;
    if (onStart === undefined) return;
    try {
      const result = onStart();
      if (result == null) return;
      if (typeof (result as PromiseLike<void>).then === 'function') {
        (result as PromiseLike<void>).then(undefined, (error: unknown) => this.#report(error, 'onStart'));
      } else {
        this.#observer = result as StreamObserver;
        this.#ownOnChunk = this.#observer.onChunk;
      }
    } catch (error) {
      this.#report(error, 'onStart');
    }
  }

  #firstToken(chunk: TokenChunk): void {
    this.#firstTokenAt = performance.now();
    const shared = this.#options.onFirstToken;
    const own = this.#observer?.onFirstToken;
    if (shared === undefined && own === undefined) return;
    const event: FirstTokenEvent = { ttftMs: this.#firstTokenAt - (this.#startedAt ?? 0), chunk };
    if (shared !== undefined) this.#call('onFirstToken', shared, event);
    if (own !== undefined) this.#call('onFirstToken', own, event);
  }

  #finish(outcome: StreamOutcome, error: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#startedAt === undefined) this.#start();
    const onError = this.#options.onError;
    if (outcome === 'error' && onError !== undefined) this.#call('onError', onError, error);
    const onFinish = this.#options.onFinish;
    const own = this.#observer?.onFinish;
    const sink = this.sink;
    if (onFinish === undefined && own === undefined && sink === undefined) return;
    const end = performance.now();
    const start = this.#startedAt ?? end;
    const { outputTokens, billed, estimated } = this.#counts();
    const generationMs = this.#firstTokenAt === undefined ? 0 : end - this.#firstTokenAt;
    const metrics: StreamMetrics = {
      outcome,
      ttftMs: this.#firstTokenAt === undefined ? undefined : this.#firstTokenAt - start,
      durationMs: end - start,
      chunks: this.#chunks,
      outputTokens,
      tokensPerSecond: generationMs > 0 && outputTokens > 0 ? (outputTokens * 1000) / generationMs : undefined,
      finishReason: this.#finishReason,
      usage: this.#usage,
      error,
      provider: this.#provider,
      model: this.#model,
      cost: this.#cost(billed),
    };
    if (estimated) metrics.estimated = true;
    if (this.#options.keepText === true) metrics.text = this.#text;
    if (sink !== undefined) {
      try {
        sink.finished(metrics);
      } catch (error) {
        this.#report(error, 'onFinish');
      }
    }
    if (onFinish !== undefined) this.#call('onFinish', onFinish, metrics);
    if (own !== undefined) this.#call('onFinish', own, metrics);
  }

  /**
   * The provider's counts are final only once its last chunk (with the finish reason) came: a
   * stream cut short before it is billed on its visible output, estimated, plus whatever input
   * count arrived early (Anthropic reports input tokens at the start). A stream that ended
   * without ever reporting usage gets an output estimate but no cost: its input is unknown.
   */
  #counts(): { outputTokens: number; billed: Usage | undefined; estimated: boolean } {
    const usage = this.#usage;
    const estimate = estimateOutputTokens(this.#characters, this.#tokenChunks);
    if (this.#finishReason !== undefined) {
      return usage === undefined
        ? { outputTokens: estimate, billed: undefined, estimated: true }
        : { outputTokens: usage.outputTokens, billed: usage, estimated: false };
    }
    const outputTokens = Math.max(usage?.outputTokens ?? 0, estimate);
    const billed: Usage = { inputTokens: usage?.inputTokens ?? 0, outputTokens };
    if (usage?.cachedInputTokens !== undefined) billed.cachedInputTokens = usage.cachedInputTokens;
    if (usage?.reasoningTokens !== undefined) billed.reasoningTokens = usage.reasoningTokens;
    return { outputTokens, billed, estimated: true };
  }

  #cost(usage: Usage | undefined): Cost | undefined {
    const { price } = this.#options;
    if (price === undefined || usage === undefined) return undefined;
    try {
      const resolved = typeof price === 'function' ? price(this.#model) : price;
      return resolved === undefined ? undefined : estimateCost(usage, resolved);
    } catch (error) {
      this.#report(error, 'price');
      return undefined;
    }
  }

  #call<A>(hook: MonitorHookName, fn: (arg: A) => void | PromiseLike<void>, arg: A): void {
    try {
      const result = fn(arg);
      if (result != null && typeof result.then === 'function') {
        result.then(undefined, (error: unknown) => this.#report(error, hook));
      }
    } catch (error) {
      this.#report(error, hook);
    }
  }

  #report(error: unknown, hook: MonitorHookName): void {
    const onHookError = this.#options.onHookError;
    try {
      if (onHookError !== undefined) onHookError(error, hook);
      else console.error(`tokenrelay: the monitored() ${hook} hook threw`, error);
    } catch {
      // An error handler that throws has nowhere left to report to; the stream must go on.
    }
  }
}

/** The standalone operator: the stage over an {@link Interruptible} of the source. */
class Monitored implements AsyncIterableIterator<TokenChunk> {
  readonly #inner: Interruptible<TokenChunk>;
  readonly #stage: MonitorStage;

  constructor(source: AsyncIterable<TokenChunk>, options: MonitorOptions) {
    this.#stage = new MonitorStage(options);
    this.#inner = new Interruptible(source, undefined, this.#stage);
  }

  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  next(): Promise<IteratorResult<TokenChunk>> {
    this.#stage.start();
    return this.#inner.next();
  }

  [READ_THROUGH]<R>(onResult: ResultHandler<TokenChunk, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    this.#stage.start();
    return this.#inner[READ_THROUGH](onResult, onError);
  }

  [READ_INTO](onResult: ResultHandler<TokenChunk, unknown>, onError: ErrorHandler<unknown>): boolean {
    this.#stage.start();
    return this.#inner[READ_INTO](onResult, onError);
  }

  [TAKE_READY](): IteratorYieldResult<TokenChunk> | undefined {
    this.#stage.start();
    return this.#inner[TAKE_READY]();
  }

  return(): Promise<IteratorResult<TokenChunk>> {
    this.#stage.cancel();
    return this.#inner.return();
  }

  throw(error?: unknown): Promise<IteratorResult<TokenChunk>> {
    this.#stage.cancel();
    return this.#inner.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

// A stream that already delivered its finish reason has ended, whoever stops it afterwards.
function outcomeOf(finishReason: FinishReason | undefined, otherwise: StreamOutcome): StreamOutcome {
  if (finishReason === undefined) return otherwise;
  if (finishReason === 'aborted') return 'aborted';
  if (finishReason === 'timeout') return 'timeout';
  return 'completed';
}

// Signals abort with DOMException `AbortError` / `TimeoutError` by default (`signal.reason`).
function hasName(error: unknown, name: string): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === name;
}
