import { StreamLimitError } from '../core/errors.js';
import { Interruptible } from '../core/kernel.js';
import type { TokenChunk, TokenSourceFactory } from '../core/types.js';
import { assertFunction, assertNumber, assertOptionalNumber, describeValue } from '../core/validate.js';
import { disposeFactory, withDispose } from './dispose.js';
import { memoryStore } from './memory-store.js';
import type { SlotStore } from './store.js';

/** Options of {@link limitStreams}. */
export interface LimitStreamsOptions<Request> {
  /**
   * Where slots are counted. Pass the relay's shared store (`relay.store`) so the limit holds
   * across instances.
   * @defaultValue a `memoryStore()` of its own (this instance only)
   * @example
   * ```ts
   * limitStreams({ store: relay.store, maxPerKey: 3, key });
   * ```
   */
  store?: SlotStore | undefined;
  /**
   * Streams one key (user) may have open at once.
   * @example
   * ```ts
   * limitStreams({ maxPerKey: 2, key: (req: Request) => userOf(req).id });
   * ```
   */
  maxPerKey: number;
  /**
   * Who a request counts against, e.g. the signed-in user's id or the client's IP (1 to 512
   * characters).
   * @example
   * ```ts
   * limitStreams({ maxPerKey: 3, key: (req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown' });
   * ```
   */
  key: (request: Request) => string;
  /**
   * How long a slot outlives its holder's last refresh (every `ttlMs / 3` while the stream
   * lives), so slots of an instance that died come back by themselves.
   * @defaultValue `60_000`
   * @example
   * ```ts
   * limitStreams({ maxPerKey: 3, key, ttlMs: 30_000 });
   * ```
   */
  ttlMs?: number | undefined;
}

/** A held slot. */
export interface StreamSlot {
  /** The key it counts against. */
  readonly key: string;
  /** `true` once released. */
  readonly released: boolean;
  /** Frees the slot. Idempotent; never rejects (a slot the store fails to free expires by TTL). */
  release(): Promise<void>;
}

/** Limits how many streams each key has open, on every instance that shares the store. */
export interface StreamLimiter<Request> {
  /**
   * Takes a slot for `request`'s key, and keeps it refreshed until you release it. Rejects with
   * a `StreamLimitError` (429, `Retry-After`) when the key already has `maxPerKey` streams.
   */
  acquire(request: Request): Promise<StreamSlot>;
  /**
   * Takes a slot (rejecting like `acquire`), and returns `factory` wrapped so the slot is held
   * while its stream lives and released on every outcome: completed, failed, aborted, cancelled.
   * A returned factory that is never called releases its slot by TTL (at once when `relay.start`
   * joins an idempotent stream instead of calling it).
   */
  wrap(request: Request, factory: TokenSourceFactory): Promise<TokenSourceFactory>;
}

/**
 * Per-user stream limits: a slot is held for a stream's whole life and released on every
 * terminal outcome (and by TTL if its instance dies).
 *
 * @example
 * ```ts
 * const limiter = limitStreams({ store: relay.store, maxPerKey: 3, key: (req: Request) => userId(req) });
 * const factory = await limiter.wrap(req, (signal) => streamOpenAI(openai, params, { signal })); // 429 when over
 * const { id } = await relay.start(factory);
 * ```
 */
export function limitStreams<Request>(options: LimitStreamsOptions<Request>): StreamLimiter<Request> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  assertNumber('maxPerKey', options.maxPerKey, { min: 1, integer: true });
  assertFunction('key', options.key);
  assertOptionalNumber('ttlMs', options.ttlMs, { min: 3 });
  const store = options.store ?? memoryStore();
  const { maxPerKey } = options;
  const ttlMs = options.ttlMs ?? 60_000;

  const take = async (request: Request): Promise<Slot> => {
    const key = options.key(request);
    if (typeof key !== 'string' || key === '' || key.length > 512) {
      throw new TypeError(`Expected \`key\` to return a string of 1 to 512 characters, got ${describeValue(key)}`);
    }
    const grant = await store.acquireSlot(key, maxPerKey, ttlMs);
    if (!grant.granted) {
      throw new StreamLimitError(`Too many open streams (at most ${maxPerKey})`, {
        limit: 'per-key',
        retryAfterMs: grant.retryAfterMs,
      });
    }
    return new Slot(store, key, grant.slotId, ttlMs);
  };

  return {
    async acquire(request) {
      const slot = await take(request);
      slot.keepAlive();
      return slot;
    },
    async wrap(request, factory) {
      assertFunction('factory', factory);
      const slot = await take(request);
      let called = false;
      const wrapped: TokenSourceFactory = (signal) => {
        if (called) throw new TypeError('Expected the factory returned by `wrap` to be called once, got a second call');
        called = true;
        return hold(slot, factory, signal);
      };
      // Never called (relay.start joined an idempotent stream): the slot goes back now, not by TTL.
      return withDispose(wrapped, () => {
        if (called) return;
        called = true;
        void slot.release();
        disposeFactory(factory);
      });
    },
  };
}

function hold(slot: Slot, factory: TokenSourceFactory, signal: AbortSignal): AsyncIterableIterator<TokenChunk> {
  const release = (): void => void slot.release();
  let source: AsyncIterable<TokenChunk>;
  try {
    source = factory(signal);
  } catch (error) {
    release();
    throw error;
  }
  slot.keepAlive();
  const iterator = new Interruptible(source, () => {
    signal.removeEventListener('abort', release);
    release();
  });
  if (signal.aborted) release();
  else signal.addEventListener('abort', release, { once: true });
  return iterator;
}

class Slot implements StreamSlot {
  readonly key: string;
  readonly #store: SlotStore;
  readonly #slotId: string;
  readonly #ttlMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #release: Promise<void> | undefined;

  constructor(store: SlotStore, key: string, slotId: string, ttlMs: number) {
    this.#store = store;
    this.key = key;
    this.#slotId = slotId;
    this.#ttlMs = ttlMs;
  }

  get released(): boolean {
    return this.#release !== undefined;
  }

  keepAlive(): void {
    if (this.released || this.#timer !== undefined) return;
    const refresh = (): void => {
      this.#timer = setTimeout(() => {
        this.#store.refreshSlot(this.key, this.#slotId, this.#ttlMs).then(undefined, () => false);
        if (!this.released) refresh();
      }, this.#ttlMs / 3);
    };
    refresh();
  }

  release(): Promise<void> {
    if (this.#release === undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#release = (async () => {
        try {
          await this.#store.releaseSlot(this.key, this.#slotId);
        } catch {
          // The slot expires by its TTL.
        }
      })();
    }
    return this.#release;
  }
}
