// Refills are sums of float products: a timer armed for exactly one token may land a hair short.
const FULL_TOKEN = 1 - 1e-9;

/**
 * A token bucket on the monotonic clock: holds up to `burst` tokens, refills at `ratePerSecond`,
 * starts full. Refills lazily from a timestamp, so it needs no timer of its own.
 */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, burst: number) {
    this.#perMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = performance.now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < FULL_TOKEN) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0 when one is). */
  delay(): number {
    this.#refill();
    return this.#tokens >= FULL_TOKEN ? 0 : Math.ceil((1 - this.#tokens) / this.#perMs);
  }

  #refill(): void {
    const now = performance.now();
    if (this.#tokens < this.#burst) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    }
    this.#last = now;
  }
}
