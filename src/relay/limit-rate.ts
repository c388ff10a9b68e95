import { assertPrice, type Price } from '../cost.js';
import { StreamLimitError } from '../core/errors.js';
import { Interruptible } from '../core/kernel.js';
import type { TokenChunk, TokenSourceFactory } from '../core/types.js';
import { assertFunction, assertNumber, describeValue } from '../core/validate.js';
import { disposeFactory, withDispose } from './dispose.js';
import { memoryStore } from './memory-store.js';
import { Meter, type MeterConfig } from './meter.js';
import type { RateStore, RateWindow } from './store.js';

/** A window of {@link LimitRateOptions}: at most `max` in any `windowMs`. */
export interface RateLimitWindow {
  /**
   * The most a key may use in any window of `windowMs` (a sliding window, exact).
   * @example
   * ```ts
   * limitRate({ key, requests: { max: 10, windowMs: 60_000 } });
   * ```
   */
  max: number;
  /** The window's length, in ms. */
  windowMs: number;
}

/** The cost window of {@link LimitRateOptions}: USD per window, priced like `monitored`. */
export interface CostLimitWindow extends RateLimitWindow {
  /**
   * What the model costs: a {@link Price}, or a function of the chunks' `model` (a model it
   * returns `undefined` for costs nothing).
   * @example
   * ```ts
   * limitRate({ key, cost: { max: 5, windowMs: 86_400_000, price: { inputPerMTok: 0.15, outputPerMTok: 0.6 } } });
   * ```
   */
  price: Price | ((model: string | undefined) => Price | undefined);
}

/** Options of {@link limitRate}. At least one of `requests`, `tokens` and `cost`. */
export interface LimitRateOptions<Request> {
  /**
   * Where the windows are counted. Pass the relay's shared store (`relay.store`) so the limits
   * hold across instances (and survive their restarts).
   * @defaultValue a `memoryStore()` of its own (this instance only)
   * @example
   * ```ts
   * limitRate({ store: relay.store, key, requests: { max: 10, windowMs: 60_000 } });
   * ```
   */
  store?: RateStore | undefined;
  /**
   * Who a request counts against: a user id, an API key, an organization (1 to 512 characters).
   * @example
   * ```ts
   * limitRate({ key: (req: Request) => req.headers.get('x-org') ?? 'anonymous', requests: { max: 100, windowMs: 60_000 } });
   * ```
   */
  key: (request: Request) => string;
  /**
   * Requests per window: the one that would pass `max` is refused (429, `Retry-After`).
   * @defaultValue not limited
   */
  requests?: RateLimitWindow | undefined;
  /**
   * Input + output tokens per window. A request is refused once the window is used up; a stream
   * that uses it up is stopped (`BudgetExceededError`).
   * @defaultValue not limited
   */
  tokens?: RateLimitWindow | undefined;
  /**
   * Estimated cost (USD, with `estimateCost`) per window; refused and stopped like `tokens`.
   * @defaultValue not limited
   */
  cost?: CostLimitWindow | undefined;
}

/** Limits each key's requests, tokens and cost per window, on every instance that shares the store. */
export interface RateLimiter<Request> {
  /**
   * Counts one request of `request`'s key, or rejects with a `StreamLimitError` (`limit`:
   * `'requests'`, `'tokens'` or `'cost'`; 429 with `Retry-After`) when a window is used up.
   */
  check(request: Request): Promise<void>;
  /**
   * Checks like {@link RateLimiter.check}, and returns `factory` metered: the tokens are charged
   * as they arrive, a stream that uses up its key's token or cost budget is stopped (its provider
   * request aborted) and ends with a `BudgetExceededError`, and at its end the real usage
   * replaces the running estimate (a stream cut short is charged what it produced).
   */
  wrap(request: Request, factory: TokenSourceFactory): Promise<TokenSourceFactory>;
}

/**
 * Per-key rate and budget limits: requests, tokens and estimated cost per sliding window, atomic
 * across instances with a shared store. Composes with `limitStreams` (put `limitRate` inside) and
 * the relay.
 *
 * @example
 * ```ts
 * const rate = limitRate({ store: relay.store, key: (req: Request) => userId(req), requests: { max: 10, windowMs: 60_000 }, tokens: { max: 50_000, windowMs: 3_600_000 } });
 * const factory = await rate.wrap(req, (signal) => streamOpenAI(openai, params, { signal })); // 429 when over
 * const { id } = await relay.start(factory);
 * ```
 */
export function limitRate<Request>(options: LimitRateOptions<Request>): RateLimiter<Request> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  assertFunction('key', options.key);
  const requests = checkWindow('requests', options.requests, true);
  const tokens = checkWindow('tokens', options.tokens, true);
  const cost = checkWindow('cost', options.cost, false);
  if (requests === undefined && tokens === undefined && cost === undefined) {
    throw new TypeError('Expected at least one of `requests`, `tokens` and `cost`, got none');
  }
  const price = options.cost?.price;
  if (cost !== undefined) {
    if (typeof price !== 'function') assertPrice(price);
  }
  const store = (options.store ?? memoryStore()) as Required<RateStore>;
  if (typeof store?.checkRate !== 'function' || typeof store.chargeRate !== 'function') {
    throw new TypeError(`Expected \`store\` to have checkRate() and chargeRate() (memoryStore and redisStore do), got ${describeValue(store)}`);
  }

  const check = async (request: Request): Promise<{ key: string; tokens: number; cost: number }> => {
    const key = options.key(request);
    if (typeof key !== 'string' || key === '' || key.length > 512) {
      throw new TypeError(`Expected \`key\` to return a string of 1 to 512 characters, got ${describeValue(key)}`);
    }
    const verdict = await store.checkRate(key, { requests, tokens, cost });
    if (!verdict.allowed) {
      throw new StreamLimitError(refusal(verdict.limit), { limit: verdict.limit, retryAfterMs: verdict.retryAfterMs });
    }
    return { key, tokens: verdict.tokens, cost: verdict.cost };
  };

  return {
    async check(request) {
      await check(request);
    },
    async wrap(request, factory) {
      assertFunction('factory', factory);
      const granted = await check(request);
      if (tokens === undefined && cost === undefined) return withDispose((signal) => factory(signal), () => disposeFactory(factory));
      let called = false;
      const config: MeterConfig = { store, key: granted.key, tokens, cost, price, used: granted };
      const wrapped: TokenSourceFactory = (signal) => {
        if (called) throw new TypeError('Expected the factory returned by `wrap` to be called once, got a second call');
        called = true;
        return metered(factory, signal, new Meter(config));
      };
      return withDispose(wrapped, () => disposeFactory(factory));
    },
  };
}

/** Runs the source under its own controller, so a budget that runs out aborts the provider request. */
function metered(factory: TokenSourceFactory, signal: AbortSignal, meter: Meter): AsyncIterableIterator<TokenChunk> {
  const controller = new AbortController();
  const forward = (): void => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  const close = (): void => {
    signal.removeEventListener('abort', forward);
    meter.finish();
  };
  let source: AsyncIterable<TokenChunk>;
  try {
    source = factory(controller.signal);
  } catch (error) {
    close();
    throw error;
  }
  return new Interruptible(meter.run(source, controller), close);
}

function checkWindow(name: string, window: unknown, integer: boolean): RateWindow | undefined {
  if (window === undefined) return undefined;
  if (window === null || typeof window !== 'object') {
    throw new TypeError(`Expected \`${name}\` to be an object ({ max, windowMs }), got ${describeValue(window)}`);
  }
  const { max, windowMs } = window as RateWindow;
  if (integer) assertNumber(`${name}.max`, max, { min: 1, integer: true });
  else if (!(typeof max === 'number' && Number.isFinite(max) && max > 0)) {
    throw new TypeError(`Expected \`${name}.max\` to be a finite number > 0, got ${describeValue(max)}`);
  }
  assertNumber(`${name}.windowMs`, windowMs, { min: 1 });
  return { max, windowMs };
}

function refusal(limit: 'requests' | 'tokens' | 'cost'): string {
  if (limit === 'requests') return 'Too many requests in the window';
  return limit === 'tokens' ? 'The token budget of the window is used up' : 'The cost budget of the window is used up';
}
