import { IdleTimer, type IdleHost } from './idle-timer.js';
import {
  PendingRead,
  READ_INTO,
  returnQuietly,
  SETTLES_ON_RETURN,
  TAKE_READY,
  takeReady,
  tryReadInto,
  type ErrorHandler,
  type ResultHandler,
} from './kernel.js';

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** What a {@link ReadStage} may do to the stream that runs it. */
export interface StageHost {
  /** Ends the stream after the result being made: the source is returned, the idle timer cleared. */
  end(): void;
}

/**
 * What one stream does with what its source delivers: the part of an operator that is not
 * about reading (which {@link StagedRead} owns). What a hook throws fails that read, and the
 * stream then ends.
 */
export interface ReadStage<S, T> {
  /** A result to hand out before the source is read (an encoder's opening frame), if any. */
  open(): T | undefined;
  /** A chunk of the source. */
  chunk(result: IteratorYieldResult<S>, host: StageHost): IteratorResult<T>;
  /** The source ended: the stream's last result (a closing frame, or done). */
  done(): IteratorResult<T>;
  /** The source failed: the stream's last result (an error frame), or throw to fail the read. */
  error(error: unknown): IteratorResult<T>;
}

/** The stage that passes everything through as it is. */
export const PASS_THROUGH: ReadStage<never, never> = {
  open: () => undefined,
  chunk: (result) => result,
  done: () => DONE,
  error: (error) => {
    throw error;
  },
};

/**
 * An async iterator that keeps one source read in flight across the consumer's reads, so that
 * something other than the source can settle a read meanwhile: a keep-alive when the consumer
 * has waited `idleMs` (a heartbeat), or a stop, at once, even while the source read is pending
 * (the source is then returned without awaiting it). What the source delivers goes through a
 * {@link ReadStage} (an encoder, or nothing). The idle timer is re-armed lazily from the time
 * the current wait began ({@link IdleTimer}).
 */
export class StagedRead<S, T> extends PendingRead<T> implements AsyncIterableIterator<T>, StageHost, IdleHost {
  readonly #source: AsyncIterator<S>;
  readonly #stage: ReadStage<S, T>;
  // `undefined` for no keep-alive (then no timer either).
  readonly #keepAlive: IteratorYieldResult<T> | undefined;
  readonly #idle: IdleTimer | undefined;
  #first: T | undefined;
  #ready: IteratorYieldResult<T> | undefined;
  #failure: { error: unknown } | undefined;
  #ended = false;
  #sourceDone = false;
  #reading = false;

  /** `idleMs` `0` (or no `keepAlive`) sends no keep-alive. */
  constructor(source: AsyncIterable<S>, stage: ReadStage<S, T>, idleMs: number, keepAlive: T | undefined) {
    super();
    this.#source = source[Symbol.asyncIterator]();
    this.#stage = stage;
    const beats = idleMs > 0 && keepAlive !== undefined;
    this.#idle = beats ? new IdleTimer(idleMs, this) : undefined;
    this.#keepAlive = beats ? { done: false, value: keepAlive } : undefined;
    this.#first = stage.open();
  }

  // return() settles a pending read at once.
  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.pending) return this.afterPending(() => this.next());
    const held = this.#takeHeld();
    if (held !== undefined) return Promise.resolve(held);
    const failure = this.#failure;
    if (failure !== undefined) {
      this.#failure = undefined;
      return Promise.reject(failure.error);
    }
    if (this.#ended) return Promise.resolve(DONE);
    const read = this.openRead();
    this.#wait();
    return read;
  }

  // Taken only when the read has to wait: a result ready now goes through next().
  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    if (this.pending || this.#ended || this.#ready !== undefined || this.#first !== undefined) return false;
    this.openInto(onResult, onError);
    this.#wait();
    return true;
  }

  // A result that needs no wait: one already made, or a chunk the source has ready.
  [TAKE_READY](): IteratorYieldResult<T> | undefined {
    if (this.pending) return undefined;
    const held = this.#takeHeld();
    if (held !== undefined) return held;
    if (this.#ended || this.#reading) return undefined;
    let result: IteratorYieldResult<S> | undefined;
    try {
      result = takeReady(this.#source);
    } catch (error) {
      this.#sourceDone = true;
      return this.#yielded(this.#failed(error));
    }
    return result === undefined ? undefined : this.#yielded(this.#map(result));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    this.#ready = undefined;
    this.#failure = undefined;
    this.settleRead(DONE, false);
    return Promise.resolve(DONE);
  }

  end(): void {
    this.#ended = true;
    this.#idle?.clear();
    if (!this.#sourceDone) {
      this.#sourceDone = true;
      returnQuietly(this.#source);
    }
  }

  /** A result already made and not read yet: one that came while no read waited, or the opening one. */
  #takeHeld(): IteratorYieldResult<T> | undefined {
    // The opening result goes first.
    const first = this.#first;
    if (first !== undefined) {
      this.#first = undefined;
      if (!this.#ended || this.#ready !== undefined) return { done: false, value: first };
    }
    const ready = this.#ready;
    if (ready === undefined) return undefined;
    this.#ready = undefined;
    return ready;
  }

  #wait(): void {
    this.#idle?.wait();
    if (!this.#reading) this.#read();
  }

  #read(): void {
    this.#reading = true;
    // No promise for this read when the source can take it into the handlers (READ_INTO).
    if (tryReadInto(this.#source, this.#onResult, this.#onError)) return;
    let result: Promise<IteratorResult<S>>;
    try {
      result = Promise.resolve(this.#source.next());
    } catch (error) {
      this.#onError(error);
      return;
    }
    result.then(this.#onResult, this.#onError);
  }

  readonly #onResult = (result: IteratorResult<S>): void => {
    this.#reading = false;
    if (result.done === true) this.#sourceDone = true;
    if (this.#ended) return;
    this.#emit(this.#map(result));
  };

  readonly #onError = (error: unknown): void => {
    this.#reading = false;
    this.#sourceDone = true;
    if (!this.#ended) this.#emit(this.#failed(error));
  };

  isWaiting(): boolean {
    return this.pending;
  }

  onIdle(): void {
    this.settleRead(this.#keepAlive, false);
  }

  /** Hands a result (or a failure) to the pending read, or else holds it for the next. */
  #emit(result: IteratorResult<T> | Failure): void {
    if (result instanceof Failure) {
      if (!this.settleRead(result.error, true)) this.#failure = { error: result.error };
    } else if (!this.settleRead(result, false) && result.done !== true) this.#ready = result;
  }

  /** What a source result becomes; the stream ends with the source, or when the stage fails. */
  #map(result: IteratorResult<S>): IteratorResult<T> | Failure {
    try {
      if (result.done === true) {
        this.end();
        return this.#stage.done();
      }
      return this.#stage.chunk(result, this);
    } catch (error) {
      return this.#failed(error);
    }
  }

  #failed(error: unknown): IteratorResult<T> | Failure {
    this.end();
    try {
      return this.#stage.error(error);
    } catch (failure) {
      return new Failure(failure);
    }
  }

  /** For a take: a yielded result as it is, the end as nothing (the next read gets it), a failure thrown. */
  #yielded(result: IteratorResult<T> | Failure): IteratorYieldResult<T> | undefined {
    if (result instanceof Failure) throw result.error;
    return result.done === true ? undefined : result;
  }
}

/** What a stage threw, carried to the read it fails. */
class Failure {
  readonly error: unknown;

  constructor(error: unknown) {
    this.error = error;
  }
}
