/**
 * Fires `onIdle` once no activity was seen for `ms`. One timer per connection, re-armed lazily:
 * `touch()` only records the time, so a busy stream costs one timer per interval, not per chunk.
 */
export class IdleTimer {
  readonly #ms: number;
  readonly #onIdle: () => void;
  #last = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `ms` of `Infinity` never fires. */
  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms;
    this.#onIdle = onIdle;
    if (Number.isFinite(ms)) this.#timer = setTimeout(this.#check, ms);
  }

  touch(): void {
    this.#last = performance.now();
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    const idle = performance.now() - this.#last;
    if (idle >= this.#ms) {
      this.#timer = undefined;
      this.#onIdle();
    } else {
      this.#timer = setTimeout(this.#check, this.#ms - idle);
    }
  };
}
