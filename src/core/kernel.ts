const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Brands an iterator whose `return()` settles its own pending `next()` at once (as
 * {@link Interruptible} does). Stopping an `Interruptible` over such a source only has to return
 * the source, so it reads it directly instead of allocating a promise of its own for each read:
 * stacked operators then cost one promise per chunk, not one per layer.
 */
export const SETTLES_ON_RETURN: unique symbol = Symbol('tokenrelay.settlesOnReturn');

/**
 * An iterator with `[READ_THROUGH](onResult, onError)` can settle its next read with those
 * handlers already applied: the same as `next().then(onResult, onError)`, without a promise and a
 * reaction of its own in between (a layer over it then costs no promise per chunk). It returns
 * `undefined` when it cannot take the read that way; the caller then uses `next().then(…)`.
 */
export const READ_THROUGH: unique symbol = Symbol('tokenrelay.readThrough');

/**
 * Like {@link READ_THROUGH} for a caller that has no use for the read's promise:
 * `[READ_INTO](onResult, onError)` takes the next read with no promise at all (the handlers
 * run when it settles; what they throw is an unhandled rejection, as from an unused `then()`),
 * and returns `false` when it cannot.
 */
export const READ_INTO: unique symbol = Symbol('tokenrelay.readInto');

/**
 * `[TAKE_READY]()` hands over the next result at once, synchronously, when it is already there
 * (read ahead into a buffer), and returns `undefined` when it is not (or a read is pending, or
 * the stream has ended): then the caller reads as usual. A taken result is exactly what the
 * next `next()` would have settled with, so a consumer can drain what is buffered in one go
 * (one write, one body chunk) without a promise per chunk. What it throws fails that read.
 */
export const TAKE_READY: unique symbol = Symbol('tokenrelay.takeReady');

export interface TakesReady<T> {
  [TAKE_READY](): IteratorYieldResult<T> | undefined;
}

/** The next result of `iterator` if it is there now (see {@link TAKE_READY}), else `undefined`. */
export function takeReady<T>(iterator: AsyncIterator<T>): IteratorYieldResult<T> | undefined {
  const take = (iterator as Partial<TakesReady<T>>)[TAKE_READY];
  return take === undefined ? undefined : take.call(iterator);
}

export interface ReadsInto<T> {
  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean;
}

/** Takes the next read of `iterator` into the handlers (see {@link READ_INTO}); `false` if it takes none. */
export function tryReadInto<T>(
  iterator: AsyncIterator<T>,
  onResult: ResultHandler<T, unknown>,
  onError: ErrorHandler<unknown>,
): boolean {
  const into = (iterator as Partial<ReadsInto<T>>)[READ_INTO];
  return into !== undefined && into.call(iterator, onResult, onError);
}

/** The settle functions of a read that has no promise (READ_INTO). */
export const IGNORE = (): void => undefined;
export const UNHANDLED = (error: unknown): void => void Promise.reject(error);

export type ResultHandler<T, R = IteratorResult<T>> = (result: IteratorResult<T>) => R;
export type ErrorHandler<R> = (error: unknown) => R;

export interface ReadsThrough<T> {
  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined;
}

/** `iterator.next().then(onResult, onError)`, read through when the iterator can. */
export function readThrough<T, R>(
  iterator: AsyncIterator<T>,
  onResult: ResultHandler<T, R>,
  onError: ErrorHandler<R>,
): Promise<R> {
  return tryReadThrough(iterator, onResult, onError) ?? nextOf(iterator).then(onResult, onError);
}

/** The read through `iterator` (see {@link READ_THROUGH}), or `undefined` if it takes none. */
export function tryReadThrough<T, R>(
  iterator: AsyncIterator<T>,
  onResult: ResultHandler<T, R>,
  onError: ErrorHandler<R>,
): Promise<R> | undefined {
  const through = (iterator as Partial<ReadsThrough<T>>)[READ_THROUGH];
  return through === undefined ? undefined : (through.call(iterator, onResult, onError) as Promise<R> | undefined);
}

/**
 * Settles a read taken through ({@link READ_THROUGH}): `resolve` with the handlers' result, or
 * `reject` with what they throw; without handlers, as they are.
 */
export function settleThrough<T>(
  onResult: ResultHandler<T, unknown> | undefined,
  onError: ErrorHandler<unknown> | undefined,
  resolve: (value: never) => void,
  reject: (error: unknown) => void,
  value: unknown,
  failed: boolean,
): void {
  if (onResult === undefined || onError === undefined) {
    if (failed) reject(value);
    else (resolve as (value: unknown) => void)(value);
    return;
  }
  let settled: unknown;
  try {
    settled = failed ? onError(value) : onResult(value as IteratorResult<T>);
  } catch (error) {
    reject(error);
    return;
  }
  (resolve as (value: unknown) => void)(settled);
}

/**
 * Sees each result (or failure) of the source before the reader; what `result` throws fails that
 * read. Both are called as methods of the observer (a stage's own methods need no binding).
 */
export interface ReadObserver<T> {
  result?: ((result: IteratorResult<T>) => IteratorResult<T>) | undefined;
  error?: ((error: unknown) => void) | undefined;
}

type Wake = () => void;

/**
 * The consumer's side of an iterator that settles its reads itself (a read-ahead buffer, a
 * paced or heartbeat stream): at most one read pending, taken as a promise of its own (`next()`),
 * through handlers ({@link READ_THROUGH}) or into handlers with no promise ({@link READ_INTO}),
 * and settled once from wherever the value comes (a source result, a timer, a stop). A second
 * reader waits for the pending read to settle. A base class rather than a field, so an iterator
 * costs no extra object per stream.
 */
export abstract class PendingRead<T> {
  #resolve: ((value: never) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #thenResult: ResultHandler<T, unknown> | undefined;
  #thenError: ErrorHandler<unknown> | undefined;
  // The pending read's promise, for a second reader; made on demand for a read that has none.
  #current: Promise<unknown> | undefined;
  #wake: Wake | undefined;

  /** True while a read waits to be settled. */
  protected get pending(): boolean {
    return this.#resolve !== undefined;
  }

  /** Takes a read with a promise of its own. */
  protected openRead(): Promise<IteratorResult<T>> {
    PendingRead.#capturing = this as PendingRead<unknown>;
    const read = new Promise<IteratorResult<T>>(PendingRead.#capture);
    this.#current = read;
    return read;
  }

  /** Takes a read through `onResult` / `onError` ({@link READ_THROUGH}): its promise settles with what they return. */
  protected openThrough<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> {
    const read = this.openRead();
    this.#thenResult = onResult;
    this.#thenError = onError;
    return read as Promise<unknown> as Promise<R>;
  }

  /** Takes a read into `onResult` / `onError` with no promise ({@link READ_INTO}). */
  protected openInto(onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): void {
    this.#resolve = IGNORE;
    this.#reject = UNHANDLED;
    this.#thenResult = onResult;
    this.#thenError = onError;
  }

  /** A second reader: `again` runs once the pending read has settled. */
  protected afterPending(again: () => Promise<IteratorResult<T>>): Promise<IteratorResult<T>> {
    const current = this.#current ?? (this.#current = new Promise<void>((resolve) => (this.#wake = resolve)));
    return current.then(again, again);
  }

  /**
   * Settles the pending read with `value`, or rejects it with `value` when `failed` (through its
   * handlers, if it has any). Returns `false`, doing nothing, when no read is pending.
   */
  protected settleRead(value: unknown, failed: boolean, observe = false): boolean {
    const resolve = this.#resolve;
    if (resolve === undefined) return false;
    const reject = this.#reject as (error: unknown) => void;
    const thenResult = this.#thenResult;
    const thenError = this.#thenError;
    this.#resolve = undefined;
    this.#reject = undefined;
    this.#thenResult = undefined;
    this.#thenError = undefined;
    this.wakeReaders();
    if (observe) {
      // After the read was cleared: a stop from inside the hook finds no read to settle.
      try {
        value = failed ? this.observeError(value) : this.observeResult(value as IteratorResult<T>);
      } catch (error) {
        value = error;
        failed = true;
      }
    }
    settleThrough(thenResult, thenError, resolve, reject, value, failed);
    return true;
  }

  /** With `settleRead(…, observe)`: sees a result before the read it settles; what it throws fails that read. */
  protected observeResult(result: IteratorResult<T>): IteratorResult<T> {
    return result;
  }

  /** With `settleRead(…, observe)`: sees a failure before the read it rejects; returns what it rejects with. */
  protected observeError(error: unknown): unknown {
    return error;
  }

  /** A read whose promise is not this class's (a read through the source): second readers wait for it. */
  protected trackRead(read: Promise<unknown> | undefined): void {
    this.#current = read;
  }

  /** The read in flight settled: second readers go on. */
  protected wakeReaders(): void {
    this.#current = undefined;
    const wake = this.#wake;
    if (wake !== undefined) {
      this.#wake = undefined;
      wake();
    }
  }

  /** Ends the stream; the consumer's reads resolve as done. */
  abstract return(): Promise<IteratorResult<T, undefined>>;

  /** Ends the stream as {@link PendingRead.return} does, and rejects with `error`. */
  throw(error?: unknown): Promise<IteratorResult<T, undefined>> {
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  // One executor for every read of every stream (it runs synchronously, inside openRead): a
  // read allocates its promise and nothing else, and a stream no closure of its own for it.
  static #capturing: PendingRead<unknown> | undefined;
  static readonly #capture = (resolve: (value: never) => void, reject: (error: unknown) => void): void => {
    const self = PendingRead.#capturing as PendingRead<unknown>;
    PendingRead.#capturing = undefined;
    self.#resolve = resolve;
    self.#reject = reject;
  };
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
export class Interruptible<T> extends PendingRead<T> implements AsyncIterableIterator<T> {
  readonly #source: AsyncIterator<T>;
  readonly #observer: ReadObserver<T> | undefined;
  // The source settles its pending read when returned: read it directly (see SETTLES_ON_RETURN).
  readonly #direct: boolean;
  #onClose: (() => void) | undefined;
  #closed = false;
  #sourceDone = false;
  #error: { value: unknown } | undefined;
  #reading = false;
  // Direct reads only: the stop error that the read in flight rejects with once the source settles
  // it, and the handlers of a read taken through this one (READ_THROUGH, READ_INTO).
  #stopError: { value: unknown } | undefined;
  #thenResult: ResultHandler<T, unknown> | undefined;
  #thenError: ErrorHandler<unknown> | undefined;

  constructor(source: AsyncIterable<T>, onClose?: () => void, observer?: ReadObserver<T>) {
    super();
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

  /** True while a read is in flight or after the stream ended: a read through is not taken then. */
  get busy(): boolean {
    return this.#reading || this.#closed;
  }

  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    if (this.#reading || this.#closed) return undefined;
    return this.#read(onResult, onError) as Promise<unknown> as Promise<R>;
  }

  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    if (this.#reading || this.#closed) return false;
    this.#read(onResult, onError, true);
    return true;
  }

  [TAKE_READY](): IteratorYieldResult<T> | undefined {
    if (this.#reading || this.#closed) return undefined;
    let result: IteratorYieldResult<T> | undefined;
    try {
      result = takeReady(this.#source);
    } catch (error) {
      throw this.#fail(error);
    }
    // The observer may throw: that read fails, as a read that settled would.
    return result === undefined ? undefined : (this.#observe(result) as IteratorYieldResult<T>);
  }

  next(): Promise<IteratorResult<T>> {
    // Reads are served in order: a second caller waits for the read in flight.
    if (this.#reading) return this.afterPending(() => this.next());
    return this.#read();
  }

  return(): Promise<IteratorResult<T>> {
    this.stop();
    return Promise.resolve(DONE);
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
    this.#reading = false;
    const settled = error === undefined ? this.settleRead(DONE, false) : this.settleRead(error, true);
    if (!settled && error !== undefined) this.#error = { value: error };
  }

  #read(thenResult?: ResultHandler<T, unknown>, thenError?: ErrorHandler<unknown>, detached = false): Promise<IteratorResult<T>> {
    if (this.#closed) {
      const error = this.#error;
      if (error === undefined) return Promise.resolve(DONE);
      this.#error = undefined;
      return Promise.reject(error.value);
    }
    this.#reading = true;
    let read: Promise<IteratorResult<T>> | undefined;
    if (this.#direct) {
      this.#thenResult = thenResult;
      this.#thenError = thenError;
      // Read through the source when it can (stacked operators then share one promise per chunk).
      if (!detached || !tryReadInto(this.#source, this.#onDirectResult, this.#onDirectError)) {
        read = readThrough(this.#source, this.#onDirectResult, this.#onDirectError) as Promise<IteratorResult<T>>;
      }
      this.trackRead(read);
    } else {
      if (thenResult === undefined || thenError === undefined) read = this.openRead();
      else if (detached) this.openInto(thenResult, thenError);
      else read = this.openThrough(thenResult, thenError) as Promise<unknown> as Promise<IteratorResult<T>>;
      readThrough(this.#source, this.#onResult, this.#onError);
    }
    return read as Promise<IteratorResult<T>>;
  }

  // A result that arrives after a stop finds no pending read and is dropped.
  readonly #onResult = (result: IteratorResult<T>): void => {
    if (!this.pending) return;
    this.#reading = false;
    this.settleRead(result, false, true);
  };

  readonly #onError = (error: unknown): void => {
    if (!this.pending) return;
    this.#reading = false;
    this.settleRead(error, true, true);
  };

  protected override observeResult(result: IteratorResult<T>): IteratorResult<T> {
    return this.#observe(result);
  }

  protected override observeError(error: unknown): unknown {
    return this.#fail(error);
  }

  // A direct read's handlers, followed by those of a read taken through this one, as then() would.
  readonly #onDirectResult = (result: IteratorResult<T>): unknown => {
    const thenResult = this.#thenResult;
    const thenError = this.#thenError as ErrorHandler<unknown>;
    if (thenResult === undefined) return this.#directResult(result);
    let value: IteratorResult<T>;
    try {
      value = this.#directResult(result);
    } catch (error) {
      return thenError(error);
    }
    return thenResult(value);
  };

  readonly #onDirectError = (error: unknown): unknown => {
    const thenResult = this.#thenResult;
    const thenError = this.#thenError as ErrorHandler<unknown>;
    if (thenResult === undefined) return this.#directError(error);
    let value: IteratorResult<T>;
    try {
      value = this.#directError(error);
    } catch (failure) {
      return thenError(failure);
    }
    return thenResult(value);
  };

  #directResult(result: IteratorResult<T>): IteratorResult<T> {
    this.#directSettled();
    if (this.#closed && !this.#sourceDone) return this.#stopped();
    return this.#observe(result);
  }

  #directError(error: unknown): IteratorResult<T> {
    this.#directSettled();
    if (this.#closed && !this.#sourceDone) return this.#stopped();
    throw this.#fail(error);
  }

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
    const observer = this.#observer;
    return observer?.result === undefined ? result : observer.result(result);
  }

  #fail(error: unknown): unknown {
    this.#sourceDone = true;
    this.#close();
    this.#observer?.error?.(error);
    return error;
  }

  #directSettled(): void {
    this.#reading = false;
    this.#thenResult = undefined;
    this.#thenError = undefined;
    this.wakeReaders();
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
