import { isTokenRelayError, StreamAbortedError } from '../core/errors.js';
import { Interruptible } from '../core/kernel.js';
import type { EventSourceEngine } from './engine.js';
import type { ClientStreamState } from './types.js';

/**
 * A client stream as its consumer sees it: reads can be stopped at any moment (a `return()` or
 * an abort of `signal` settles a pending read at once and closes the connection), and every exit
 * path stops the engine and removes the listener from the caller's signal. The listener is only
 * added by the first read, so a stream that is never read holds nothing.
 */
export class ClientStream<T> implements AsyncIterableIterator<T>, ClientStreamState {
  readonly #engine: EventSourceEngine;
  readonly #signal: AbortSignal | undefined;
  readonly #iterator: Interruptible<T>;
  #listening = false;

  constructor(engine: EventSourceEngine, source: AsyncIterable<T>, signal: AbortSignal | undefined) {
    this.#engine = engine;
    this.#signal = signal;
    this.#iterator = new Interruptible(source, this.#onClose);
  }

  get lastEventId(): string | undefined {
    const id = this.#engine.lastEventId.value;
    return id === '' ? undefined : id;
  }

  get streamId(): string | undefined {
    return this.#engine.streamId;
  }

  next(): Promise<IteratorResult<T>> {
    if (!this.#listening) this.#listen();
    return this.#iterator.next();
  }

  return(): Promise<IteratorResult<T>> {
    return this.#iterator.return();
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    return this.#iterator.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #listen(): void {
    this.#listening = true;
    const signal = this.#signal;
    if (signal === undefined || this.#iterator.closed) return;
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    const reason: unknown = this.#signal?.reason;
    this.#iterator.stop(isTokenRelayError(reason) ? reason : new StreamAbortedError(undefined, { cause: reason }));
  };

  readonly #onClose = (): void => {
    this.#engine.stop();
    this.#signal?.removeEventListener('abort', this.#onAbort);
  };
}
