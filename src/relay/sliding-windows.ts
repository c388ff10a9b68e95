import type { RateCharge, RateLimits, RateUsage, RateVerdict } from './store.js';

type Dimension = 'requests' | 'tokens' | 'cost';

interface Entry {
  readonly at: number;
  readonly amount: number;
}

interface Log {
  /** Oldest first. */
  entries: Entry[];
  /** When the newest entry leaves the longest window it was counted in. */
  expiresAt: number;
}

const DIMENSIONS: readonly Dimension[] = ['requests', 'tokens', 'cost'];

/**
 * Exact sliding windows (a log of timestamped amounts per key and dimension), the memory store's
 * `checkRate` and `chargeRate`. The Redis scripts (`redis-limit-scripts.ts`) apply the same rules.
 * @internal
 */
export class SlidingWindows {
  readonly #logs = new Map<string, Log>();
  #calls = 0;

  check(key: string, limits: RateLimits, now: number): RateVerdict {
    this.#sweep(now);
    for (const dimension of DIMENSIONS) {
      const window = limits[dimension];
      if (window === undefined) continue;
      const log = this.#log(key, dimension, window.windowMs, now);
      const full = isFull(dimension, window.max);
      const used = sum(log);
      if (full(used)) return { allowed: false, limit: dimension, retryAfterMs: retryAfter(log, used, full, window.windowMs, now) };
    }
    if (limits.requests !== undefined) this.#add(key, 'requests', 1, limits.requests.windowMs, now);
    return {
      allowed: true,
      tokens: limits.tokens === undefined ? 0 : sum(this.#log(key, 'tokens', limits.tokens.windowMs, now)),
      cost: limits.cost === undefined ? 0 : sum(this.#log(key, 'cost', limits.cost.windowMs, now)),
    };
  }

  charge(key: string, charge: RateCharge, now: number): RateUsage {
    this.#sweep(now);
    const usage: RateUsage = { tokens: 0, cost: 0 };
    for (const dimension of ['tokens', 'cost'] as const) {
      const part = charge[dimension];
      if (part === undefined) continue;
      if (part.amount !== 0) this.#add(key, dimension, part.amount, part.windowMs, now);
      usage[dimension] = sum(this.#log(key, dimension, part.windowMs, now));
    }
    return usage;
  }

  clear(): void {
    this.#logs.clear();
  }

  /** The log of `key`'s `dimension`, pruned to the last `windowMs`. */
  #log(key: string, dimension: Dimension, windowMs: number, now: number): Log {
    const name = `${dimension}:${key}`;
    const log = this.#logs.get(name) ?? { entries: [], expiresAt: 0 };
    let drop = 0;
    while (drop < log.entries.length && log.entries[drop]!.at <= now - windowMs) drop++;
    if (drop > 0) log.entries.splice(0, drop);
    return log;
  }

  #add(key: string, dimension: Dimension, amount: number, windowMs: number, now: number): void {
    const log = this.#log(key, dimension, windowMs, now);
    log.entries.push({ at: now, amount });
    log.expiresAt = Math.max(log.expiresAt, now + windowMs);
    this.#logs.set(`${dimension}:${key}`, log);
  }

  /** Drops logs whose every entry has left its window, every so many calls (no timer runs). */
  #sweep(now: number): void {
    if (++this.#calls < Math.max(1_000, this.#logs.size)) return;
    this.#calls = 0;
    for (const [name, log] of this.#logs) if (log.expiresAt <= now) this.#logs.delete(name);
  }
}

function sum(log: Log): number {
  let total = 0;
  for (const entry of log.entries) total += entry.amount;
  return Math.max(0, total);
}

/** A request needs room for one more; a budget is used up once it reaches `max`. */
function isFull(dimension: Dimension, max: number): (used: number) => boolean {
  return dimension === 'requests' ? (used) => used + 1 > max : (used) => used >= max;
}

/** Until the oldest entries have slid out far enough for the window not to be full. */
function retryAfter(log: Log, used: number, full: (used: number) => boolean, windowMs: number, now: number): number {
  let left = used;
  for (const entry of log.entries) {
    left -= entry.amount;
    if (!full(left)) return Math.max(1, Math.ceil(entry.at + windowMs - now));
  }
  return Math.max(1, Math.ceil(windowMs));
}
