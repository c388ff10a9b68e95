/** Resolved reconnection settings. */
export interface Backoff {
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
  random: () => number;
}

// Beyond the largest setTimeout delay, timers fire at once.
const MAX_DELAY = 2_147_483_647;

/**
 * The delay before reconnection number `attempt` (1-based): "full jitter", a uniform random
 * delay up to an exponentially growing ceiling, so clients that lost the same server do not come
 * back in lockstep; never below `floorMs` (what the server asked for).
 */
export function backoffDelay(backoff: Backoff, attempt: number, floorMs: number): number {
  const ceiling = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** Math.min(attempt - 1, 52));
  const draw = backoff.random();
  const jitter = Number.isFinite(draw) ? Math.min(Math.max(draw, 0), 1) : 0;
  return Math.min(MAX_DELAY, Math.max(floorMs, Math.floor(jitter * ceiling)));
}

/** Resolves after `ms`, or as soon as `signal` aborts; leaves no timer or listener behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
