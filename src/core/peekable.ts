import {
  READ_INTO,
  READ_THROUGH,
  returnQuietly,
  TAKE_READY,
  takeReady,
  tryReadInto,
  type ErrorHandler,
  type ReadsThrough,
  type ResultHandler,
} from './kernel.js';

/**
 * An iterator whose first result can be awaited before iteration starts: a server adapter
 * looks at how a stream begins (a chunk, or an early provider error) before it commits to an
 * HTTP status, and the stream then goes on from that same first result.
 */
export class Peekable<T> implements AsyncIterableIterator<T> {
  #source: AsyncIterator<T>;
  #first: Promise<IteratorResult<T>> | undefined;
  #served = false;
  // The first result once it settled with a chunk, so it can be taken without a promise.
  #value: IteratorYieldResult<T> | undefined;

  constructor(source: AsyncIterable<T>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** The first result of the stream; reading it does not consume it. */
  peek(): Promise<IteratorResult<T>> {
    if (this.#first === undefined) {
      this.#first = this.#source.next();
      this.#first.then(
        (result) => {
          if (result.done !== true && !this.#served) this.#value = result;
        },
        () => undefined,
      );
    }
    return this.#first;
  }

  next(): Promise<IteratorResult<T>> {
    if (!this.#served) {
      this.#served = true;
      this.#value = undefined;
      return this.peek();
    }
    return this.#source.next();
  }

  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    if (!this.#served) return undefined;
    return (this.#source as Partial<ReadsThrough<T>>)[READ_THROUGH]?.(onResult, onError);
  }

  [TAKE_READY](): IteratorYieldResult<T> | undefined {
    if (this.#served) return takeReady(this.#source);
    const value = this.#value;
    if (value === undefined) return undefined;
    this.#served = true;
    this.#value = undefined;
    return value;
  }

  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    return this.#served && tryReadInto(this.#source, onResult, onError);
  }

  return(): Promise<IteratorResult<T>> {
    this.#served = true;
    this.#value = undefined;
    returnQuietly(this.#source);
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
