import type { Operator, TokenChunk } from '../core/types.js';
import { assertNumber, assertOneOf, assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import { ReadAhead, type ReadAheadConfig } from './internal/read-ahead.js';
import { checkRateOptions } from './with-rate.js';

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
   * buffer meanwhile, so the bounds and `overflow` apply. No text is ever dropped. Kept for
   * compatibility: pacing is `withRate`'s, which this runs at the buffer's exit; prefer
   * `pipe(source, withBackpressure(), withRate({ rate }))` in new code.
   * @defaultValue no pacing
   */
  rate?: number | undefined;
  /**
   * How many chunks may go out back to back before `rate` applies (the bucket's size); as
   * `withRate`'s `burst`.
   * @defaultValue `Math.max(1, rate)`
   */
  burst?: number | undefined;
}


/**
 * Reads ahead of a slow consumer into a bounded buffer, so a fast provider is drained without
 * waiting on each read, but never beyond `highWaterMark` chunks or `maxBufferedBytes` of text.
 * A source error reaches the consumer after the chunks already buffered. Pacing is
 * {@link withRate}'s (`rate` and `burst` here run the same stage, in this layer).
 *
 * @example
 * ```ts
 * const stream = pipe(source, withBackpressure({ highWaterMark: 32, overflow: 'coalesce' }), withRate({ rate: 50 }));
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
    return { [Symbol.asyncIterator]: () => new ReadAhead(source, config, { signal }) };
  };
}

/** @internal Options checked deeply (unknown keys included), with the defaults resolved. */
export type BackpressureConfig = ReadAheadConfig;

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
  if (rate === undefined) {
    assertOptionalNumber(field('burst'), burst, { min: 1 });
    return { highWaterMark, maxBufferedBytes, overflow, rate, burst: burst ?? 1 };
  }
  return { highWaterMark, maxBufferedBytes, overflow, rate, burst: checkRateOptions({ rate, burst }, name).burst };
}

/** @internal How much a `withBackpressure` iterator holds right now (the adapters use it to know a frame is ready). */
export function inspectBuffer(iterator: AsyncIterator<TokenChunk>): { chunks: number; bytes: number } | undefined {
  return iterator instanceof ReadAhead ? iterator.buffered : undefined;
}
