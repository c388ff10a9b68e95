import type { Operator } from '../core/types.js';
import { assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import {
  PendingRead,
  READ_INTO,
  READ_THROUGH,
  readThrough,
  returnQuietly,
  SETTLES_ON_RETURN,
  TAKE_READY,
  takeReady,
  tryReadInto,
  type ErrorHandler,
  type ResultHandler,
} from '../core/kernel.js';
import { TokenBucket } from './internal/token-bucket.js';

/**
 * Options of {@link withRate}.
 *
 * @example
 * ```ts
 * const options: WithRateOptions = { rate: 30, burst: 10 };
 * ```
 */
export interface WithRateOptions {
  /**
   * The most chunks delivered per second (a token bucket). Counts chunks (frames), not
   * characters or model tokens. A finite number > 0.
   */
  rate: number;
  /**
   * How many chunks may go out back to back before `rate` applies (the bucket's size; it starts full).
   * @defaultValue `Math.max(1, rate)`
   */
  burst?: number | undefined;
}

/** @internal {@link WithRateOptions} checked, with the default `burst` resolved. */
export interface RateConfig {
  rate: number;
  burst: number;
}

/**
 * Paces delivery to at most `rate` chunks per second, after a first `burst`: a chunk that comes
 * early waits (read, not dropped) until the bucket holds a token; the end of the stream and a
 * source error are never delayed. It reads the source only when the consumer asks and no chunk
 * is waiting, so it holds at most one chunk; put it after `withBackpressure` to let a fast
 * source run ahead into a bounded buffer meanwhile (`withBackpressure({ rate })` does both in
 * one layer). A consumer `return()` ends it at once, clears its timer and returns the source.
 *
 * @example
 * ```ts
 * const stream = pipe(source, withBackpressure({ overflow: 'coalesce' }), withRate({ rate: 30, burst: 10 }));
 * ```
 */
export function withRate<T>(options: WithRateOptions): Operator<T, T> {
  const config = checkRateOptions(options);
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    return { [Symbol.asyncIterator]: () => new Paced(source, config) };
  };
}

/** @internal Checks `withRate` options (unknown keys included); `name` prefixes the option names in errors. */
export function checkRateOptions(options: unknown, name = 'options', keys: readonly string[] = ['rate', 'burst']): RateConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions(name, options, keys);
  const { rate, burst } = options as unknown as WithRateOptions;
  const field = (key: string): string => (name === 'options' ? key : `${name}.${key}`);
  if (!(typeof rate === 'number' && rate > 0 && Number.isFinite(rate))) {
    throw new TypeError(`Expected \`${field('rate')}\` to be a finite number > 0, got ${describeValue(rate)}`);
  }
  assertOptionalNumber(field('burst'), burst, { min: 1 });
  return { rate, burst: burst ?? Math.max(1, rate) };
}

/**
 * @internal The pacing of one stream, as a stage any reader can run: a token bucket, and one
 * timer (armed only while a chunk waits) that calls `onReady` when a token is due. `withRate`
 * runs it over a one-chunk hold, `withBackpressure` over its read-ahead buffer.
 */
export class Pacer {
  readonly #bucket: TokenBucket;
  readonly #onReady: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(config: RateConfig, onReady: () => void) {
    this.#bucket = new TokenBucket(config.rate, config.burst);
    this.#onReady = onReady;
  }

  /** Takes a token if there is one. */
  take(): boolean {
    return this.#bucket.take();
  }

  /** Calls `onReady` once a token is due (one timer, however often it is asked). */
  wait(): void {
    if (this.#timer === undefined) this.#timer = setTimeout(this.#onTimer, this.#bucket.delay());
  }

  /** Cancels the wait. */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#onReady();
  };
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** `withRate` over any source: one source read at a time, a chunk that came early held until its token. */
class Paced<T> extends PendingRead<T> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterator<T>;
  readonly #pacer: Pacer;
  #held: IteratorYieldResult<T> | undefined;
  #reading = false;
  #ended = false;
  #sourceDone = false;

  constructor(source: AsyncIterable<T>, config: RateConfig) {
    super();
    this.#source = source[Symbol.asyncIterator]();
    this.#pacer = new Pacer(config, this.#onReady);
  }

  // return() settles a pending read at once.
  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.pending) return this.afterPending(() => this.next());
    if (this.#ended) return Promise.resolve(DONE);
    const held = this.#held;
    if (held !== undefined && this.#pacer.take()) {
      this.#held = undefined;
      return Promise.resolve(held);
    }
    const read = this.openRead();
    this.#request();
    return read;
  }

  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    if (this.pending || this.#ended || this.#held !== undefined) return undefined;
    const read = this.openThrough(onResult, onError);
    this.#request();
    return read;
  }

  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    if (this.pending || this.#ended || this.#held !== undefined) return false;
    this.openInto(onResult, onError);
    this.#request();
    return true;
  }

  // A chunk goes out without a wait only with a token for it.
  [TAKE_READY](): IteratorYieldResult<T> | undefined {
    if (this.pending || this.#ended || this.#reading) return undefined;
    const held = this.#held;
    if (held !== undefined) {
      if (!this.#pacer.take()) return undefined;
      this.#held = undefined;
      return held;
    }
    let result: IteratorYieldResult<T> | undefined;
    try {
      result = takeReady(this.#source);
    } catch (error) {
      this.#sourceDone = true;
      this.#end();
      throw error;
    }
    if (result === undefined || this.#pacer.take()) return result;
    this.#held = result;
    return undefined;
  }

  return(): Promise<IteratorResult<T>> {
    this.#stop();
    this.settleRead(DONE, false);
    return Promise.resolve(DONE);
  }

  /** The pending read's chunk: the one held (once a token is due), or else the source's next. */
  #request(): void {
    if (this.#held !== undefined) return this.#pacer.wait();
    if (this.#reading) return;
    this.#reading = true;
    if (!tryReadInto(this.#source, this.#onResult, this.#onError)) {
      void readThrough(this.#source, this.#onResult, this.#onError);
    }
  }

  readonly #onResult = (result: IteratorResult<T>): void => {
    this.#reading = false;
    if (this.#ended) return;
    if (result.done === true) {
      this.#sourceDone = true;
      this.#end();
      this.settleRead(DONE, false);
    } else if (this.#pacer.take()) this.settleRead(result, false);
    else {
      this.#held = result;
      this.#pacer.wait();
    }
  };

  readonly #onError = (error: unknown): void => {
    this.#reading = false;
    if (this.#ended) return;
    this.#sourceDone = true;
    this.#end();
    this.settleRead(error, true);
  };

  readonly #onReady = (): void => {
    const held = this.#held;
    if (!this.pending || held === undefined) return;
    if (!this.#pacer.take()) return this.#pacer.wait();
    this.#held = undefined;
    this.settleRead(held, false);
  };

  #end(): void {
    this.#ended = true;
    this.#held = undefined;
    this.#pacer.clear();
  }

  // Not awaited: while a read is pending, a generator's return() waits for that read to settle.
  #stop(): void {
    this.#end();
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    returnQuietly(this.#source);
  }
}
