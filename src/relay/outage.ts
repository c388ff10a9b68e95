import { isStoreUnavailableError, StoreUnavailableError } from '../core/errors.js';

// Retries after a StoreUnavailableError: quick at first (a dropped connection is back at once),
// then no more often than this.
const FIRST_RETRY_MS = 25;
const MAX_RETRY_MS = 500;
/** Guards every retry loop; the outage clock ends them long before. @internal */
export const MAX_ATTEMPTS = 10_000;

/**
 * One producer's or subscriber's view of its store: it goes down when the store has answered
 * nothing for `livenessMs` since a call that failed with a `StoreUnavailableError` or was left
 * unanswered. Any answer (a result, or an error other than unavailability) clears it.
 * @internal
 */
export class OutageClock {
  readonly #livenessMs: number;
  readonly #onDown: (error: StoreUnavailableError) => void;
  #lastAnswer = performance.now();
  #since: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(livenessMs: number, onDown: (error: StoreUnavailableError) => void) {
    this.#livenessMs = livenessMs;
    this.#onDown = onDown;
  }

  /** The store answered. */
  answered(): void {
    this.#lastAnswer = performance.now();
    if (this.#since === undefined) return;
    this.#since = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A call started at `started` failed as unavailable, or has no answer yet. A call older than
   * the last answer says nothing about when the outage began (a long wait): it counts from now.
   */
  missed(started: number): void {
    if (this.#stopped) return;
    const since = started >= this.#lastAnswer ? started : performance.now();
    if (this.#since !== undefined && this.#since <= since) return;
    this.#since = since;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#expire, Math.max(0, since + this.#livenessMs - performance.now()));
  }

  /** Feeds the clock with the outcome of one store call. */
  async call<T>(call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const value = await call();
      this.answered();
      return value;
    } catch (error) {
      if (isStoreUnavailableError(error)) this.missed(started);
      else this.answered();
      throw error;
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#stopped = true;
    this.#onDown(new StoreUnavailableError(`The relay store did not answer for ${this.#livenessMs} ms`));
  };
}

/** How long to wait before retry number `attempt` (0-based). @internal */
export function retryDelay(attempt: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(attempt, 10));
}

/** Resolves after `ms`, or at once when `signal` aborts; its timer and listener are gone either way. @internal */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * `pending`, or a `StoreUnavailableError` when it has not settled within `ms`. What it settles
 * with later is dropped (never an unhandled rejection).
 * @internal
 */
export function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailableError(`The relay store did not answer ${what} within ${Math.round(ms)} ms`)), ms);
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
