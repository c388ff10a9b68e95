import { estimateCost, assertPrice, type Cost, type Price } from '../cost.js';
import { isStreamAbortedError, isStreamTimeoutError } from '../errors.js';
import type { FinishReason, Operator, TokenChunk, Usage } from '../types.js';
import { assertFunction, describeValue } from '../validate.js';
import { Interruptible } from './internal/interruptible.js';

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
  /** `usage.outputTokens` when the provider reported usage, else the chunks with a non-empty `token`. */
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
  /** The estimated cost, when a `price` was given and usage was reported. */
  cost: Cost | undefined;
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
export type MonitorHookName = 'onFirstToken' | 'onChunk' | 'onFinish' | 'price';

/**
 * Callbacks that observe a stream. They never break it: a hook that throws (or returns a
 * promise that rejects) is reported to `onHookError` and the stream goes on.
 */
export interface MonitorHooks {
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
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  for (const name of ['onFirstToken', 'onChunk', 'onFinish', 'onHookError'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  if (options.price !== undefined && typeof options.price !== 'function') assertPrice(options.price);
  return (source) => ({
    [Symbol.asyncIterator]: () => new Monitored(source, options),
  });
}

class Monitored implements AsyncIterableIterator<TokenChunk> {
  readonly #inner: Interruptible<TokenChunk>;
  readonly #options: MonitorOptions;
  #startedAt: number | undefined;
  #firstTokenAt: number | undefined;
  #chunks = 0;
  #tokenChunks = 0;
  #usage: Usage | undefined;
  #finishReason: FinishReason | undefined;
  #provider: string | undefined;
  #model: string | undefined;
  #text = '';
  #finished = false;

  constructor(source: AsyncIterable<TokenChunk>, options: MonitorOptions) {
    this.#inner = new Interruptible(source);
    this.#options = options;
  }

  // Bound once, so a read allocates no closure; the source's result object is passed on as is.
  readonly #onResult = (result: IteratorResult<TokenChunk>): IteratorResult<TokenChunk> => {
    if (result.done === true) {
      this.#finish(outcomeOf(this.#finishReason, 'completed'), undefined);
      return result;
    }
    const chunk = result.value;
    this.#chunks++;
    if (chunk.token !== '') {
      this.#tokenChunks++;
      if (this.#options.keepText === true && chunk.type === 'text') this.#text += chunk.token;
      if (this.#firstTokenAt === undefined) this.#firstToken(chunk);
    }
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason !== undefined) this.#finishReason = chunk.finishReason;
    if (chunk.model !== undefined) this.#model = chunk.model;
    if (chunk.provider !== undefined) this.#provider = chunk.provider;
    if (this.#options.onChunk !== undefined) this.#call('onChunk', this.#options.onChunk, chunk);
    return result;
  };

  readonly #onError = (error: unknown): never => {
    const outcome = isStreamTimeoutError(error) || hasName(error, 'TimeoutError')
      ? 'timeout'
      : isStreamAbortedError(error) || hasName(error, 'AbortError') ? 'aborted' : 'error';
    this.#finish(outcome, error);
    throw error;
  };

  next(): Promise<IteratorResult<TokenChunk>> {
    this.#startedAt ??= performance.now();
    return this.#inner.next().then(this.#onResult, this.#onError);
  }

  return(): Promise<IteratorResult<TokenChunk>> {
    this.#finish(outcomeOf(this.#finishReason, 'cancelled'), undefined);
    return this.#inner.return();
  }

  throw(error?: unknown): Promise<IteratorResult<TokenChunk>> {
    this.#finish(outcomeOf(this.#finishReason, 'cancelled'), undefined);
    return this.#inner.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #firstToken(chunk: TokenChunk): void {
    this.#firstTokenAt = performance.now();
    const onFirstToken = this.#options.onFirstToken;
    if (onFirstToken === undefined) return;
    this.#call('onFirstToken', onFirstToken, { ttftMs: this.#firstTokenAt - (this.#startedAt ?? 0), chunk });
  }

  #finish(outcome: StreamOutcome, error: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    const onFinish = this.#options.onFinish;
    if (onFinish === undefined) return;
    const end = performance.now();
    const start = this.#startedAt ?? end;
    const outputTokens = this.#usage?.outputTokens ?? this.#tokenChunks;
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
      cost: this.#cost(),
    };
    if (this.#options.keepText === true) metrics.text = this.#text;
    this.#call('onFinish', onFinish, metrics);
  }

  #cost(): Cost | undefined {
    const { price } = this.#options;
    if (price === undefined || this.#usage === undefined) return undefined;
    try {
      const resolved = typeof price === 'function' ? price(this.#model) : price;
      return resolved === undefined ? undefined : estimateCost(this.#usage, resolved);
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
