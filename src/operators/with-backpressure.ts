import { BackpressureError } from '../core/errors.js';
import type { Operator, TokenChunk } from '../core/types.js';
import { assertNumber, assertOneOf, assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import { ChunkBuffer, utf8Length } from './internal/coalesce.js';
import {
  IGNORE,
  READ_INTO,
  READ_THROUGH,
  returnQuietly,
  settleThrough,
  SETTLES_ON_RETURN,
  TAKE_READY,
  type ErrorHandler,
  type ResultHandler,
  tryReadInto,
  tryReadThrough,
  UNHANDLED,
} from '../core/kernel.js';
import { TokenBucket } from './internal/token-bucket.js';
import { abortErrorOf } from './with-abort.js';

/**
 * Options of {@link withBackpressure}.
 *
 * @example
 * ```ts
 * const options: WithBackpressureOptions = { highWaterMark: 32, maxBufferedBytes: 64 * 1024, overflow: 'error' };
 * ```
 */
export interface WithBackpressureOptions {
  /**
   * How many chunks may be read ahead of the consumer.
   * @defaultValue `64`
   */
  highWaterMark?: number | undefined;
  /**
   * How many UTF-8 bytes of `token` text (counted exactly) may be read ahead of the consumer.
   * Reading stops once the buffer holds this much, so it can exceed it by at most one chunk.
   * `Infinity` leaves only `highWaterMark`.
   * @defaultValue `262144` (256 KiB)
   */
  maxBufferedBytes?: number | undefined;
  /**
   * What to do when the buffer is full: `'wait'` stops reading the source until the consumer
   * catches up; `'coalesce'` merges runs of chunks of the same kind into one chunk (then waits if
   * the byte bound is reached); `'error'` ends the stream with a `BackpressureError` after the
   * chunks already buffered, and returns the source.
   * @defaultValue `'wait'`
   */
  overflow?: 'wait' | 'coalesce' | 'error' | undefined;
  /**
   * Paces delivery to at most this many chunks per second (a token bucket); chunks wait in the
   * buffer meanwhile, so the bounds and `overflow` apply. No text is ever dropped.
   * @defaultValue no pacing
   */
  rate?: number | undefined;
  /**
   * How many chunks may go out back to back before `rate` applies (the bucket's size).
   * @defaultValue `Math.max(1, rate)`
   */
  burst?: number | undefined;
}

interface Config {
  highWaterMark: number;
  maxBufferedBytes: number;
  overflow: 'wait' | 'coalesce' | 'error';
  rate: number | undefined;
  burst: number;
}

type Result = IteratorResult<TokenChunk, undefined>;
const DONE: Result = Object.freeze({ done: true, value: undefined });
// The #reader of a read taken into handlers (READ_INTO): it has no promise of its own.
const DETACHED: Promise<Result> = new Promise<Result>(() => undefined);

/**
 * Reads ahead of a slow consumer into a bounded buffer, so a fast provider is drained without
 * waiting on each read, but never beyond `highWaterMark` chunks or `maxBufferedBytes` of text.
 * Optionally paces what the consumer receives. A source error reaches the consumer after the
 * chunks already buffered.
 *
 * @example
 * ```ts
 * const stream = pipe(source, withBackpressure({ highWaterMark: 32, overflow: 'coalesce', rate: 50 }));
 * ```
 */
export function withBackpressure(options: WithBackpressureOptions = {}): Operator<TokenChunk, TokenChunk> {
  return readAhead(checkBackpressureOptions(options), undefined);
}

/**
 * @internal `withBackpressure` followed by `withAbort(signal)`, in one layer: on abort the
 * buffered chunks are dropped and the pending (or else the next) read rejects as `withAbort`'s
 * would. The server adapters' pipeline uses it, to save a layer on every chunk.
 */
export function withBackpressureUntil(options: WithBackpressureOptions, signal: AbortSignal): Operator<TokenChunk, TokenChunk> {
  return readAhead(checkBackpressureOptions(options), signal);
}

/** @internal The read-ahead for checked options (what the adapters build per request, with no checks). */
export function readAhead(config: BackpressureConfig, signal: AbortSignal | undefined): Operator<TokenChunk, TokenChunk> {
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    return { [Symbol.asyncIterator]: () => new ReadAhead(source, config, signal) };
  };
}

/** @internal Options checked deeply (unknown keys included), with the defaults resolved. */
export type BackpressureConfig = Config;

/** @internal Checks `withBackpressure` options once; `name` prefixes the option names in errors. */
export function checkBackpressureOptions(options: unknown, name = 'options'): BackpressureConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions(name, options, ['highWaterMark', 'maxBufferedBytes', 'overflow', 'rate', 'burst']);
  const { highWaterMark = 64, maxBufferedBytes = 256 * 1024, overflow = 'wait', rate, burst } = options as WithBackpressureOptions;
  const field = (key: string): string => (name === 'options' ? key : `${name}.${key}`);
  assertNumber(field('highWaterMark'), highWaterMark, { min: 1, integer: true });
  assertNumber(field('maxBufferedBytes'), maxBufferedBytes, { min: 1, allowInfinity: true });
  assertOneOf(field('overflow'), overflow, ['wait', 'coalesce', 'error']);
  if (rate !== undefined && !(typeof rate === 'number' && rate > 0 && Number.isFinite(rate))) {
    throw new TypeError(`Expected \`${field('rate')}\` to be a finite number > 0, got ${describeValue(rate)}`);
  }
  assertOptionalNumber(field('burst'), burst, { min: 1 });
  return { highWaterMark, maxBufferedBytes, overflow, rate, burst: burst ?? Math.max(1, rate ?? 1) };
}


class ReadAhead implements AsyncIterableIterator<TokenChunk, undefined> {
  readonly #config: Config;
  readonly #source: AsyncIterator<TokenChunk>;
  readonly #buffer = new ChunkBuffer();
  readonly #bucket: TokenBucket | undefined;
  #started = false;
  #pulling = false;
  #sourceDone = false;
  // Nothing more will enter the buffer; #failure (if any) follows the buffered chunks.
  #ended = false;
  #failure: { error: unknown } | undefined;
  #reader: Promise<Result> | undefined;
  #resolve: ((result: Result) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  // The pending read was taken through (READ_THROUGH): it settles with these applied.
  #thenResult: ResultHandler<TokenChunk, unknown> | undefined;
  #thenError: ErrorHandler<unknown> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  // A second reader of a detached read waits on this.
  #wake: (() => void) | undefined;
  // Ends the stream when it aborts (withBackpressureUntil); its listener goes in #finish.
  readonly #signal: AbortSignal | undefined;

  constructor(source: AsyncIterable<TokenChunk>, config: Config, signal: AbortSignal | undefined) {
    this.#config = config;
    this.#source = source[Symbol.asyncIterator]();
    this.#bucket = config.rate === undefined ? undefined : new TokenBucket(config.rate, config.burst);
    this.#signal = signal;
    if (signal === undefined) return;
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  // Whatever is buffered is dropped: the pending read, or else the next one, rejects now.
  readonly #onAbort = (): void => {
    this.#buffer.clear();
    this.#stopSource();
    this.#end({ error: abortErrorOf(this.#signal as AbortSignal) });
  };

  next(): Promise<Result> {
    const pending = this.#reader;
    if (pending !== undefined) {
      const again = () => this.next();
      const waiting =
        pending === DETACHED ? (this.#reader = new Promise<Result>((resolve) => (this.#wake = () => resolve(DONE)))) : pending;
      return waiting.then(again, again);
    }
    this.#started = true;
    if (this.#buffer.length > 0) {
      if (this.#bucket === undefined || this.#bucket.take()) return Promise.resolve(this.#take());
    } else if (this.#ended) {
      const failure = this.#failure;
      this.#finish();
      return failure === undefined ? Promise.resolve(DONE) : Promise.reject(failure.error);
    }
    const reader = new Promise<Result>(this.#capture);
    this.#reader = reader;
    if (this.#buffer.length > 0) this.#arm();
    else this.#pull();
    return reader;
  }

  return(): Promise<Result> {
    this.#finish();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<Result> {
    this.#finish();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  // return() resolves a pending read at once (#finish).
  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  // Taken only when the read has to wait for the source: the reader's promise is the only one.
  [READ_THROUGH]<R>(onResult: ResultHandler<TokenChunk, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    if (this.#reader !== undefined || this.#buffer.length > 0 || this.#ended) return undefined;
    this.#started = true;
    const reader = new Promise<Result>(this.#capture);
    this.#reader = reader;
    this.#thenResult = onResult;
    this.#thenError = onError;
    this.#pull();
    return reader as Promise<unknown> as Promise<R>;
  }

  [READ_INTO](onResult: ResultHandler<TokenChunk, unknown>, onError: ErrorHandler<unknown>): boolean {
    if (this.#reader !== undefined || this.#buffer.length > 0 || this.#ended) return false;
    this.#started = true;
    this.#reader = DETACHED;
    this.#resolve = IGNORE;
    this.#reject = UNHANDLED;
    this.#thenResult = onResult;
    this.#thenError = onError;
    this.#pull();
    return true;
  }

  // What is buffered goes out without a promise; paced chunks only when the bucket allows.
  [TAKE_READY](): IteratorYieldResult<TokenChunk> | undefined {
    if (this.#reader !== undefined || this.#buffer.length === 0) return undefined;
    if (this.#bucket !== undefined && !this.#bucket.take()) return undefined;
    this.#started = true;
    return this.#take();
  }

  get buffered(): { chunks: number; bytes: number } {
    return { chunks: this.#buffer.length, bytes: this.#buffer.bytes };
  }

  readonly #capture = (resolve: (result: Result) => void, reject: (error: unknown) => void): void => {
    this.#resolve = resolve;
    this.#reject = reject;
  };

  #pull(): void {
    if (this.#pulling || this.#ended || !this.#started) return;
    const { overflow, highWaterMark, maxBufferedBytes } = this.#config;
    const buffer = this.#buffer;
    if (overflow !== 'error' && (buffer.length >= highWaterMark || buffer.bytes >= maxBufferedBytes)) return;
    this.#pulling = true;
    try {
      if (!tryReadInto(this.#source, this.#onResult, this.#onError) && tryReadThrough(this.#source, this.#onResult, this.#onError) === undefined) {
        this.#source.next().then(this.#onResult, this.#onError);
      }
    } catch (error) {
      this.#onError(error);
    }
  }

  // Settled reads of a source that was stopped meanwhile are dropped (and their errors handled).
  readonly #onResult = (result: IteratorResult<TokenChunk>): void => {
    this.#pulling = false;
    if (this.#ended) return;
    if (result.done === true) {
      this.#sourceDone = true;
      this.#end(undefined);
    } else {
      this.#accept(result.value);
      this.#pull();
    }
  };

  readonly #onError = (error: unknown): void => {
    this.#pulling = false;
    if (this.#ended) return;
    this.#sourceDone = true;
    this.#end({ error });
  };

  #accept(chunk: TokenChunk): void {
    const buffer = this.#buffer;
    const resolve = this.#resolve;
    if (resolve !== undefined && buffer.length === 0 && (this.#bucket === undefined || this.#bucket.take())) {
      this.#settleReader(resolve, { done: false, value: chunk }, false);
      return;
    }
    const size = utf8Length(chunk.token);
    const { overflow, highWaterMark, maxBufferedBytes } = this.#config;
    if (overflow === 'error') {
      const bound =
        buffer.length >= highWaterMark
          ? 'highWaterMark'
          : buffer.length > 0 && buffer.bytes + size > maxBufferedBytes
            ? 'maxBufferedBytes'
            : undefined;
      if (bound !== undefined) {
        this.#stopSource();
        this.#end({ error: overflowError(bound, this.#config) });
        return;
      }
    }
    buffer.push(chunk, size);
    if (overflow === 'coalesce' && buffer.length >= highWaterMark) buffer.coalesce();
    if (resolve !== undefined) this.#arm();
  }

  #end(failure: { error: unknown } | undefined): void {
    this.#ended = true;
    this.#failure = failure;
    const resolve = this.#resolve;
    const reject = this.#reject;
    if (resolve === undefined || reject === undefined || this.#buffer.length > 0) return;
    const thenResult = this.#thenResult;
    const thenError = this.#thenError;
    this.#settleReader();
    this.#finish();
    if (failure === undefined) settleThrough(thenResult, thenError, resolve, reject, DONE, false);
    else settleThrough(thenResult, thenError, resolve, reject, failure.error, true);
  }

  #take(): IteratorYieldResult<TokenChunk> {
    const chunk = this.#buffer.shift();
    this.#pull();
    return { done: false, value: chunk };
  }

  #arm(): void {
    if (this.#timer === undefined && this.#bucket !== undefined) {
      this.#timer = setTimeout(this.#onTimer, this.#bucket.delay());
    }
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const resolve = this.#resolve;
    if (resolve === undefined || this.#buffer.length === 0) return;
    if (!(this.#bucket as TokenBucket).take()) return this.#arm();
    this.#settleReader(resolve, this.#take(), false);
  };

  /** Clears the pending read; with `resolve`, settles it with `value` (through its handlers, if any). */
  #settleReader(resolve?: (result: Result) => void, value?: Result, failed?: boolean): void {
    const reject = this.#reject as (error: unknown) => void;
    const thenResult = this.#thenResult;
    const thenError = this.#thenError;
    this.#reader = undefined;
    this.#resolve = undefined;
    this.#reject = undefined;
    this.#thenResult = undefined;
    this.#thenError = undefined;
    const wake = this.#wake;
    if (wake !== undefined) {
      this.#wake = undefined;
      wake();
    }
    if (resolve !== undefined) settleThrough(thenResult, thenError, resolve, reject, value, failed === true);
  }

  /** Releases everything: the source, the timer, the buffer; a pending read resolves as done. */
  #finish(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#ended = true;
    this.#failure = undefined;
    this.#stopSource();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#buffer.clear();
    const resolve = this.#resolve;
    if (resolve === undefined) this.#settleReader();
    else this.#settleReader(resolve, DONE, false);
  }

  // Not awaited: while a read is pending, a generator's return() waits for that read to settle.
  // Ended first: a source that settles its pending read from return() (SETTLES_ON_RETURN:
  // withTimeout, monitored, …) settles it as done, synchronously, and that read must be dropped,
  // not taken for the source's own end (a disconnect would then be reported as 'completed').
  #stopSource(): void {
    this.#ended = true;
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    returnQuietly(this.#source);
  }
}

function overflowError(bound: 'highWaterMark' | 'maxBufferedBytes', config: Config): BackpressureError {
  const limit = bound === 'highWaterMark' ? `${config.highWaterMark} chunks` : `${config.maxBufferedBytes} bytes`;
  return new BackpressureError(`The consumer fell more than ${limit} behind the source (\`${bound}\`)`);
}

/** @internal How much a `withBackpressure` iterator holds right now (the adapters use it to know a frame is ready). */
export function inspectBuffer(iterator: AsyncIterator<TokenChunk>): { chunks: number; bytes: number } | undefined {
  return iterator instanceof ReadAhead ? iterator.buffered : undefined;
}
