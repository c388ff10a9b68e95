/** What an {@link IdleTimer} tells when the consumer has waited long enough. */
export interface IdleHost {
  /** True while a consumer read waits to be settled. */
  isWaiting(): boolean;
  /** The waiting read has waited `idleMs` since {@link IdleTimer.wait}: settle it with the keep-alive. */
  onIdle(): void;
}

/**
 * One timer for a stream's idle interval (a heartbeat's), re-armed lazily from the time the
 * current wait began: a steady stream costs one timer per interval, not one per read, and the
 * time the consumer spends between reads never counts.
 */
export class IdleTimer {
  readonly #idleMs: number;
  readonly #host: IdleHost;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #since = 0;

  /** `idleMs` > 0. */
  constructor(idleMs: number, host: IdleHost) {
    this.#idleMs = idleMs;
    this.#host = host;
  }

  /** A read starts waiting now. */
  wait(): void {
    this.#since = performance.now();
    this.#timer ??= setTimeout(this.#onTimer, this.#idleMs);
  }

  /** No read waits any more for good (the stream ended). */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // With no read waiting there is nothing to send: the timer stays off until the next wait.
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (!this.#host.isWaiting()) return;
    const idle = performance.now() - this.#since;
    if (idle < this.#idleMs) this.#timer = setTimeout(this.#onTimer, this.#idleMs - idle);
    else this.#host.onIdle();
  };
}
