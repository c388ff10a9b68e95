const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Brands an iterator whose `return()` settles its own pending `next()` at once (as
 * {@link Interruptible} does). Stopping an `Interruptible` over such a source only has to return
 * the source, so it reads it directly instead of allocating a promise of its own for each read:
 * stacked operators then cost one promise per chunk, not one per layer.
 */
export const SETTLES_ON_RETURN: unique symbol = Symbol('tokenrelay.settlesOnReturn');

/** Sees each result (or failure) of the source before the reader; what `result` throws fails that read. */
export interface ReadObserver<T> {
  result?: ((result: IteratorResult<T>) => IteratorResult<T>) | undefined;
  error?: ((error: unknown) => void) | undefined;
}

/**
 * An async iterator over a source that can be stopped at any moment, even while a read is
 * pending: a native async generator queues `return()` behind a pending `next()`, so a stop
 * settles the pending read itself and asks the source to return without awaiting it.
 *
 * `onClose` runs exactly once, on whichever exit comes first (source done or failed, consumer
 * `return()`, or {@link Interruptible.stop}); operators release their timers and listeners there.
 * An `observer` sees what the source delivers, so an operator needs no promise of its own per read.
 */
export class Interruptible<T> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterator<T>;
  readonly #observer: ReadObserver<T> | undefined;
  // The source settles its pending read when returned: read it directly (see SETTLES_ON_RETURN).
  readonly #direct: boolean;
  #onClose: (() => void) | undefined;
  #closed = false;
  #sourceDone = false;
  #error: { value: unknown } | undefined;
  #reading = false;
  #resolve: ((result: IteratorResult<T>) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #current: Promise<IteratorResult<T>> | undefined;
  // Direct reads only: the stop error that the read in flight rejects with once the source settles it.
  #stopError: { value: unknown } | undefined;

  constructor(source: AsyncIterable<T>, onClose?: () => void, observer?: ReadObserver<T>) {
    this.#source = source[Symbol.asyncIterator]();
    this.#onClose = onClose;
    this.#observer = observer;
    this.#direct = (this.#source as { [SETTLES_ON_RETURN]?: unknown })[SETTLES_ON_RETURN] === true;
  }

  /** True once any exit path has run. */
  get closed(): boolean {
    return this.#closed;
  }

  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#reading) {
      // Reads are served in order: a second caller waits for the read in flight.
      const again = () => this.next();
      return (this.#current as Promise<IteratorResult<T>>).then(again, again);
    }
    return this.#read();
  }

  return(): Promise<IteratorResult<T>> {
    this.stop();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Ends the stream now. With an `error`, the pending read (or else the next one) rejects with
   * it; without, reads resolve as done. Later calls do nothing.
   */
  stop(error?: unknown): void {
    if (this.#closed) return;
    this.#close();
    if (this.#direct && this.#reading) {
      // The source's return() settles the read in flight, which then ends as a stopped read.
      if (error !== undefined) this.#stopError = { value: error };
      if (!this.#sourceDone) returnQuietly(this.#source);
      return;
    }
    if (!this.#sourceDone) returnQuietly(this.#source);
    const resolve = this.#resolve;
    const reject = this.#reject;
    this.#settled();
    if (error === undefined) resolve?.(DONE);
    else if (reject !== undefined) reject(error);
    else this.#error = { value: error };
  }

  #read(): Promise<IteratorResult<T>> {
    if (this.#closed) {
      const error = this.#error;
      if (error === undefined) return Promise.resolve(DONE);
      this.#error = undefined;
      return Promise.reject(error.value);
    }
    this.#reading = true;
    let read: Promise<IteratorResult<T>>;
    if (this.#direct) {
      read = nextOf(this.#source).then(this.#onDirectResult, this.#onDirectError);
    } else {
      read = new Promise<IteratorResult<T>>(this.#capture);
      nextOf(this.#source).then(this.#onResult, this.#onError);
    }
    this.#current = read;
    return read;
  }

  // Bound once: a read allocates its promise and nothing else. A result that arrives after a
  // stop finds no pending read and is dropped.
  readonly #capture = (resolve: (result: IteratorResult<T>) => void, reject: (error: unknown) => void): void => {
    this.#resolve = resolve;
    this.#reject = reject;
  };

  readonly #onResult = (result: IteratorResult<T>): void => {
    const resolve = this.#resolve;
    const reject = this.#reject as (error: unknown) => void;
    if (resolve === undefined) return;
    this.#settled();
    let observed: IteratorResult<T>;
    try {
      observed = this.#observe(result);
    } catch (error) {
      reject(error);
      return;
    }
    resolve(observed);
  };

  readonly #onError = (error: unknown): void => {
    const reject = this.#reject;
    if (reject === undefined) return;
    this.#settled();
    reject(this.#fail(error));
  };

  readonly #onDirectResult = (result: IteratorResult<T>): IteratorResult<T> => {
    this.#settled();
    if (this.#closed && !this.#sourceDone) return this.#stopped();
    return this.#observe(result);
  };

  readonly #onDirectError = (error: unknown): IteratorResult<T> => {
    this.#settled();
    if (this.#closed && !this.#sourceDone) return this.#stopped();
    throw this.#fail(error);
  };

  #stopped(): IteratorReturnResult<undefined> {
    const error = this.#stopError;
    if (error === undefined) return DONE;
    this.#stopError = undefined;
    throw error.value;
  }

  #observe(result: IteratorResult<T>): IteratorResult<T> {
    if (result.done === true) {
      this.#sourceDone = true;
      this.#close();
    }
    const observe = this.#observer?.result;
    return observe === undefined ? result : observe(result);
  }

  #fail(error: unknown): unknown {
    this.#sourceDone = true;
    this.#close();
    this.#observer?.error?.(error);
    return error;
  }

  #settled(): void {
    this.#reading = false;
    this.#resolve = undefined;
    this.#reject = undefined;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }
}

/** A `next()` that throws synchronously fails the read like a rejection, so every exit path closes. */
function nextOf<T>(iterator: AsyncIterator<T>): Promise<IteratorResult<T>> {
  try {
    return iterator.next();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Asks an iterator to finish without waiting for it: its `return()` may hang behind a read. */
export function returnQuietly(iterator: AsyncIterator<unknown>): void {
  try {
    const result = iterator.return?.();
    if (result !== undefined) result.then(undefined, () => undefined);
  } catch {
    // A source that throws from return() has nothing more to clean up that we could reach.
  }
}
