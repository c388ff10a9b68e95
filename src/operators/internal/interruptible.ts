const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * An async iterator over a source that can be stopped at any moment, even while a read is
 * pending: a native async generator queues `return()` behind a pending `next()`, so a stop
 * settles the pending read itself and asks the source to return without awaiting it.
 *
 * `onClose` runs exactly once, on whichever exit comes first (source done or failed, consumer
 * `return()`, or {@link Interruptible.stop}); operators release their timers and listeners there.
 */
export class Interruptible<T> implements AsyncIterableIterator<T> {
  #source: AsyncIterator<T>;
  #onClose: (() => void) | undefined;
  #closed = false;
  #sourceDone = false;
  #error: { value: unknown } | undefined;
  #pending: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void } | undefined;
  #current: Promise<IteratorResult<T>> | undefined;

  constructor(source: AsyncIterable<T>, onClose?: () => void) {
    this.#source = source[Symbol.asyncIterator]();
    this.#onClose = onClose;
  }

  /** True once any exit path has run. */
  get closed(): boolean {
    return this.#closed;
  }

  next(): Promise<IteratorResult<T>> {
    const inFlight = this.#current;
    if (this.#pending !== undefined && inFlight !== undefined) {
      // Reads are served in order: a second caller waits for the read in flight.
      const again = () => this.next();
      return inFlight.then(again, again);
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
    if (!this.#sourceDone) returnQuietly(this.#source);
    const pending = this.#pending;
    this.#pending = undefined;
    if (error === undefined) pending?.resolve(DONE);
    else if (pending !== undefined) pending.reject(error);
    else this.#error = { value: error };
  }

  #read(): Promise<IteratorResult<T>> {
    if (this.#closed) {
      const error = this.#error;
      if (error === undefined) return Promise.resolve(DONE);
      this.#error = undefined;
      return Promise.reject(error.value);
    }
    const read = new Promise<IteratorResult<T>>(this.#capture);
    nextOf(this.#source).then(this.#onResult, this.#onError);
    this.#current = read;
    return read;
  }

  // Bound once: a read allocates its promise and nothing else. A result that arrives after a
  // stop finds no pending read and is dropped.
  readonly #capture = (resolve: (result: IteratorResult<T>) => void, reject: (error: unknown) => void): void => {
    this.#pending = { resolve, reject };
  };

  readonly #onResult = (result: IteratorResult<T>): void => {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    if (result.done === true) {
      this.#sourceDone = true;
      this.#close();
    }
    pending.resolve(result);
  };

  readonly #onError = (error: unknown): void => {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#sourceDone = true;
    this.#close();
    pending.reject(error);
  };

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
