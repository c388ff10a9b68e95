import type { Operator } from '../core/types.js';
import { assertFunction } from '../core/validate.js';
import { Interruptible } from '../core/kernel.js';

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Transforms each item with a synchronous function. If `fn` throws, the source is asked to
 * `return()` and the error reaches the consumer unchanged; a consumer that stops early stops
 * the source at once, even while a read is pending.
 *
 * @param fn - Called with each item and its 0-based position; returns the item to pass on.
 * @example
 * ```ts
 * const upper = pipe(tokens(['a', 'b']), map((chunk) => ({ ...chunk, token: chunk.token.toUpperCase() })));
 * ```
 */
export function map<In, Out>(fn: (value: In, index: number) => Out): Operator<In, Out> {
  assertFunction('fn', fn);
  return (source) => ({
    [Symbol.asyncIterator]: () => new Mapped(source, fn),
  });
}

class Mapped<In, Out> implements AsyncIterableIterator<Out> {
  readonly #inner: Interruptible<In>;
  readonly #fn: (value: In, index: number) => Out;
  #index = 0;

  constructor(source: AsyncIterable<In>, fn: (value: In, index: number) => Out) {
    this.#inner = new Interruptible(source);
    this.#fn = fn;
  }

  // Bound once, so a read allocates no closure.
  readonly #onResult = (result: IteratorResult<In>): IteratorResult<Out> => {
    if (result.done === true) return result;
    try {
      return { done: false, value: this.#fn(result.value, this.#index++) };
    } catch (error) {
      this.#inner.stop();
      throw error;
    }
  };

  next(): Promise<IteratorResult<Out>> {
    return this.#inner.next().then(this.#onResult);
  }

  return(): Promise<IteratorResult<Out>> {
    this.#inner.stop();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<Out>> {
    this.#inner.stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
