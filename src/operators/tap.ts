import type { Operator } from '../core/types.js';
import { assertFunction } from '../core/validate.js';
import { Interruptible } from '../core/kernel.js';

/**
 * Runs a synchronous side effect for each item and passes the item on unchanged (the same
 * object). If `fn` throws, the source is asked to `return()` and the error reaches the
 * consumer unchanged. For effects that must never break the stream, use `monitored`.
 *
 * `fn` is not awaited: start asynchronous work yourself and handle its errors there.
 *
 * @param fn - Called with each item and its 0-based position, before the consumer sees it.
 * @example
 * ```ts
 * const logged = pipe(stream, tap((chunk) => console.log(chunk.index, chunk.token)));
 * ```
 */
export function tap<T>(fn: (value: T, index: number) => void): Operator<T, T> {
  assertFunction('fn', fn);
  return (source) => ({
    [Symbol.asyncIterator]: () => new Tapped(source, fn),
  });
}

class Tapped<T> implements AsyncIterableIterator<T> {
  readonly #inner: Interruptible<T>;
  readonly #fn: (value: T, index: number) => void;
  #index = 0;

  constructor(source: AsyncIterable<T>, fn: (value: T, index: number) => void) {
    this.#inner = new Interruptible(source);
    this.#fn = fn;
  }

  // Bound once, so a read allocates no closure; the source's result object is passed on as is.
  readonly #onResult = (result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) return result;
    try {
      this.#fn(result.value, this.#index++);
    } catch (error) {
      this.#inner.stop();
      throw error;
    }
    return result;
  };

  next(): Promise<IteratorResult<T>> {
    return this.#inner.next().then(this.#onResult);
  }

  return(): Promise<IteratorResult<T>> {
    return this.#inner.return();
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    return this.#inner.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
