import { StreamLimitError, StreamNotFoundError } from '../core/errors.js';
import type { TokenChunk } from '../core/types.js';
import { assertOptionalNumber } from '../core/validate.js';
import { SlidingWindows } from './sliding-windows.js';
import {
  randomId,
  type ClaimOptions,
  type CreateStreamOptions,
  type ProducerStatus,
  type RateCharge,
  type RateLimits,
  type RateUsage,
  type RateVerdict,
  type ReadOptions,
  type ReadResult,
  type RelayStore,
  type SetActiveOptions,
  type SlotGrant,
  type StoreEvent,
  type StoredEnd,
  type StreamInfo,
  type StreamState,
} from './store.js';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * How many streams (live and finished) it holds at most. Finished streams are evicted first,
   * oldest first; when every stream is live, `relay.start` fails with a `StreamLimitError`.
   * @defaultValue `10_000`
   * @example
   * ```ts
   * memoryStore({ maxStreams: 1_000 });
   * ```
   */
  maxStreams?: number | undefined;
  /**
   * How many bytes of chunks (estimated as the heap they take) it holds at most. Finished
   * streams are evicted first, oldest first; a live stream's chunk that still does not fit fails
   * that stream with a `StreamLimitError` instead of growing the heap.
   * @defaultValue `67_108_864` (64 MiB)
   * @example
   * ```ts
   * memoryStore({ maxBytes: 16 * 1024 * 1024 });
   * ```
   */
  maxBytes?: number | undefined;
}

/** What a {@link MemoryStore} holds right now. */
export interface MemoryStoreStats {
  /** Streams held, live and finished. */
  streams: number;
  /** Streams whose producer has not ended. */
  liveStreams: number;
  /** Estimated heap bytes of everything held; never above `maxBytes` while a finished stream is left to evict. */
  bytes: number;
  /** Slots held by `limitStreams`. */
  slots: number;
}

/** The embedded {@link RelayStore}: one process, bounded, expired by TTL. */
export interface MemoryStore extends RelayStore {
  /** What it holds right now. */
  stats(): MemoryStoreStats;
  claim(key: string, id: string, options: ClaimOptions): Promise<string>;
  getClaim(key: string): Promise<string | undefined>;
  checkRate(key: string, limits: RateLimits): Promise<RateVerdict>;
  chargeRate(key: string, charge: RateCharge): Promise<RateUsage>;
}

interface Entry {
  readonly id: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly ttlMs: number;
  expiresAt: number;
  readonly chunks: string[];
  bytes: number;
  end: StoredEnd | undefined;
  aliveUntil: number;
  cancelled: boolean;
  readonly presence: Map<string, number>;
  readonly waiters: Set<() => void>;
  readonly watchers: Set<(event: StoreEvent) => void>;
  /** The key of `setActive` that points at this stream, if any. */
  activeKey?: string | undefined;
}

// Heap cost estimates, measured on V8 (test/relay/memory-store.test.ts checks them against the heap).
const STREAM_BYTES = 1_200;
const CHUNK_BYTES = 40;

/**
 * The embedded store: keeps streams in this process, for one instance (use a shared store such
 * as Redis when several instances serve the same streams). Bounded by `maxStreams` and
 * `maxBytes`, and every stream expires `ttlMs` after its last write; no timer runs in the
 * background (expired streams are dropped when met or when room is needed).
 *
 * @example
 * ```ts
 * const relay = createRelay({ store: memoryStore({ maxStreams: 1_000, maxBytes: 32 * 1024 * 1024 }) });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  assertOptionalNumber('maxStreams', options.maxStreams, { min: 1, integer: true });
  assertOptionalNumber('maxBytes', options.maxBytes, { min: 1, integer: true });
  return new InMemoryStore(options.maxStreams ?? 10_000, options.maxBytes ?? 64 * 1024 * 1024);
}

class InMemoryStore implements MemoryStore {
  readonly #maxStreams: number;
  readonly #maxBytes: number;
  // Map order is the eviction order: finished streams in the order they ended.
  readonly #live = new Map<string, Entry>();
  readonly #finished = new Map<string, Entry>();
  readonly #slots = new Map<string, Map<string, number>>();
  // Pointers of setActive: only to live streams (dropped when their stream ends or is dropped).
  readonly #active = new Map<string, { id: string; expiresAt: number }>();
  // Idempotency claims of relay.start: key → stream id, kept for their TTL.
  readonly #claims = new Map<string, { id: string; expiresAt: number }>();
  readonly #windows = new SlidingWindows();
  #bytes = 0;

  constructor(maxStreams: number, maxBytes: number) {
    this.#maxStreams = maxStreams;
    this.#maxBytes = maxBytes;
  }

  async create(id: string, options: CreateStreamOptions): Promise<boolean> {
    this.#dropExpiredFinished();
    if (this.#get(id) !== undefined) return false;
    const bytes = STREAM_BYTES + textBytes(id) + textBytes(JSON.stringify(options.metadata));
    if (this.#live.size + this.#finished.size >= this.#maxStreams) this.#dropExpiredLive();
    while (this.#live.size + this.#finished.size >= this.#maxStreams) {
      if (!this.#evictOldestFinished()) throw new StreamLimitError('The relay store is full', { limit: 'streams' });
    }
    this.#makeRoom(bytes, undefined);
    const now = performance.now();
    this.#live.set(id, {
      id,
      metadata: { ...options.metadata },
      ttlMs: options.ttlMs,
      expiresAt: now + options.ttlMs,
      chunks: [],
      bytes,
      end: undefined,
      aliveUntil: now,
      cancelled: false,
      presence: new Map(),
      waiters: new Set(),
      watchers: new Set(),
    });
    this.#bytes += bytes;
    return true;
  }

  async append(id: string, chunk: TokenChunk): Promise<void> {
    const entry = this.#get(id);
    if (entry === undefined || entry.end !== undefined) throw new StreamNotFoundError();
    // The contract's retry rule; this store never loses an answer, so it only meets it in tests.
    if (chunk.index === entry.chunks.length - 1) return;
    const text = JSON.stringify(chunk);
    const bytes = CHUNK_BYTES + textBytes(text);
    this.#makeRoom(bytes, entry);
    entry.chunks.push(text);
    entry.bytes += bytes;
    this.#bytes += bytes;
    touch(entry);
    wake(entry);
  }

  async end(id: string, end: StoredEnd): Promise<void> {
    const entry = this.#get(id);
    if (entry === undefined || entry.end !== undefined) throw new StreamNotFoundError();
    const bytes = CHUNK_BYTES + textBytes(JSON.stringify(end));
    entry.end = end;
    entry.bytes += bytes;
    this.#bytes += bytes;
    entry.presence.clear();
    entry.watchers.clear();
    this.#clearActive(entry);
    // Kept ttlMs from its end, whatever heartbeats promised: the finished map stays in expiry order.
    entry.expiresAt = performance.now() + entry.ttlMs;
    this.#live.delete(id);
    this.#finished.set(id, entry);
    // The completion marker is always written; it may displace older finished streams.
    this.#evictUntil(this.#maxBytes, entry);
    wake(entry);
  }

  async read(id: string, after: number, options: ReadOptions): Promise<ReadResult | undefined> {
    let entry = this.#get(id);
    if (entry === undefined) return undefined;
    if (options.waitMs > 0 && entry.end === undefined && entry.chunks.length - 1 <= after) {
      await waitForWrite(entry, options.waitMs, options.signal);
      entry = this.#get(id);
      if (entry === undefined) return undefined;
    }
    const chunks = entry.chunks.slice(after + 1, after + 1 + options.limit).map((text) => JSON.parse(text) as TokenChunk);
    const reachedEnd = after + chunks.length >= entry.chunks.length - 1;
    return { ...stateOf(entry), end: reachedEnd ? entry.end : undefined, chunks };
  }

  async info(id: string): Promise<StreamInfo | undefined> {
    const entry = this.#get(id);
    return entry === undefined ? undefined : { ...stateOf(entry), metadata: entry.metadata };
  }

  async heartbeat(id: string, ttlMs: number): Promise<ProducerStatus | undefined> {
    const entry = this.#get(id);
    if (entry === undefined) return undefined;
    entry.aliveUntil = performance.now() + ttlMs;
    touch(entry, ttlMs);
    return { subscribers: countPresence(entry), cancelled: entry.cancelled };
  }

  async attach(id: string, subscriberId: string, ttlMs: number): Promise<void> {
    const entry = this.#get(id);
    if (entry === undefined || entry.end !== undefined) return;
    const known = entry.presence.has(subscriberId);
    entry.presence.set(subscriberId, performance.now() + ttlMs);
    if (!known) announce(entry, { type: 'presence', subscribers: countPresence(entry) });
  }

  async detach(id: string, subscriberId: string): Promise<void> {
    const entry = this.#get(id);
    if (entry === undefined || !entry.presence.delete(subscriberId)) return;
    announce(entry, { type: 'presence', subscribers: countPresence(entry) });
  }

  watch(id: string, listener: (event: StoreEvent) => void): () => void {
    const entry = this.#get(id);
    if (entry === undefined || entry.end !== undefined) return () => undefined;
    entry.watchers.add(listener);
    return () => entry.watchers.delete(listener);
  }

  async cancel(id: string): Promise<boolean> {
    const entry = this.#get(id);
    if (entry === undefined || entry.end !== undefined) return false;
    entry.cancelled = true;
    announce(entry, { type: 'cancel' });
    return true;
  }

  async acquireSlot(key: string, max: number, ttlMs: number): Promise<SlotGrant> {
    const now = performance.now();
    const slots = this.#slotsOf(key, now);
    if (slots.size >= max) {
      const oldest = Math.min(...slots.values());
      return { granted: false, retryAfterMs: Math.max(1, Math.ceil(oldest - now)) };
    }
    const slotId = randomId();
    slots.set(slotId, now + ttlMs);
    this.#slots.set(key, slots);
    return { granted: true, slotId };
  }

  async refreshSlot(key: string, slotId: string, ttlMs: number): Promise<boolean> {
    const now = performance.now();
    const slots = this.#slotsOf(key, now);
    if (!slots.has(slotId)) return false;
    slots.set(slotId, now + ttlMs);
    return true;
  }

  async releaseSlot(key: string, slotId: string): Promise<void> {
    const slots = this.#slots.get(key);
    if (slots === undefined) return;
    slots.delete(slotId);
    if (slots.size === 0) this.#slots.delete(key);
  }

  async close(): Promise<void> {
    for (const entry of [...this.#live.values(), ...this.#finished.values()]) this.#drop(entry);
    this.#slots.clear();
    this.#active.clear();
    this.#claims.clear();
    this.#windows.clear();
  }

  async claim(key: string, id: string, options: ClaimOptions): Promise<string> {
    const now = performance.now();
    const current = this.#claims.get(key);
    if (current !== undefined && current.expiresAt > now && current.id !== id && current.id !== options.replacing) {
      return current.id;
    }
    this.#claims.set(key, { id, expiresAt: now + options.ttlMs });
    if (this.#claims.size > 1_000 && this.#claims.size % 1_000 === 1) this.#dropExpiredClaims(now);
    return id;
  }

  async getClaim(key: string): Promise<string | undefined> {
    const current = this.#claims.get(key);
    if (current === undefined) return undefined;
    if (current.expiresAt > performance.now()) return current.id;
    this.#claims.delete(key);
    return undefined;
  }

  async checkRate(key: string, limits: RateLimits): Promise<RateVerdict> {
    return this.#windows.check(key, limits, performance.now());
  }

  async chargeRate(key: string, charge: RateCharge): Promise<RateUsage> {
    return this.#windows.charge(key, charge, performance.now());
  }

  #dropExpiredClaims(now: number): void {
    for (const [key, claim] of this.#claims) if (claim.expiresAt <= now) this.#claims.delete(key);
  }

  async setActive(key: string, id: string, options: SetActiveOptions): Promise<void> {
    const now = performance.now();
    const current = this.#active.get(key);
    if (options.refresh && (current === undefined || current.id !== id || current.expiresAt <= now)) return;
    const entry = this.#get(id);
    // Only a live stream is pointed at, so every pointer goes when its stream ends or is dropped.
    if (entry === undefined || entry.end !== undefined) return;
    if (current !== undefined && current.id !== id) {
      const previous = this.#live.get(current.id);
      if (previous?.activeKey === key) previous.activeKey = undefined;
    }
    entry.activeKey = key;
    this.#active.set(key, { id, expiresAt: now + options.ttlMs });
  }

  async getActive(key: string): Promise<string | undefined> {
    const pointer = this.#active.get(key);
    if (pointer === undefined) return undefined;
    const entry = this.#get(pointer.id);
    if (entry === undefined || entry.end !== undefined || pointer.expiresAt <= performance.now()) {
      if (this.#active.get(key) === pointer) this.#active.delete(key);
      return undefined;
    }
    return stateOf(entry).alive ? pointer.id : undefined;
  }

  stats(): MemoryStoreStats {
    let slots = 0;
    for (const held of this.#slots.values()) slots += held.size;
    return {
      streams: this.#live.size + this.#finished.size,
      liveStreams: this.#live.size,
      bytes: this.#bytes,
      slots,
    };
  }

  #get(id: string): Entry | undefined {
    const entry = this.#live.get(id) ?? this.#finished.get(id);
    if (entry === undefined || entry.expiresAt > performance.now()) return entry;
    this.#drop(entry);
    return undefined;
  }

  /** Evicts finished streams until `bytes` more fit, or fails the write. */
  #makeRoom(bytes: number, writer: Entry | undefined): void {
    if (this.#bytes + bytes <= this.#maxBytes) return;
    this.#dropExpiredLive();
    if (!this.#evictUntil(this.#maxBytes - bytes, writer)) {
      throw new StreamLimitError('The relay store is full', { limit: 'bytes' });
    }
  }

  #evictUntil(budget: number, keep: Entry | undefined): boolean {
    while (this.#bytes > budget) {
      const oldest = this.#finished.values().next().value;
      if (oldest === undefined || oldest === keep) return false;
      this.#drop(oldest);
    }
    return true;
  }

  #evictOldestFinished(): boolean {
    const oldest = this.#finished.values().next().value;
    if (oldest === undefined) return false;
    this.#drop(oldest);
    return true;
  }

  #dropExpiredFinished(): void {
    const now = performance.now();
    for (const entry of this.#finished.values()) {
      if (entry.expiresAt > now) return;
      this.#drop(entry);
    }
  }

  #dropExpiredLive(): void {
    const now = performance.now();
    for (const entry of this.#live.values()) if (entry.expiresAt <= now) this.#drop(entry);
  }

  #drop(entry: Entry): void {
    const map = entry.end === undefined ? this.#live : this.#finished;
    if (map.get(entry.id) !== entry) return;
    map.delete(entry.id);
    this.#clearActive(entry);
    this.#bytes -= entry.bytes;
    entry.watchers.clear();
    entry.presence.clear();
    wake(entry);
  }

  #clearActive(entry: Entry): void {
    const key = entry.activeKey;
    if (key === undefined) return;
    entry.activeKey = undefined;
    if (this.#active.get(key)?.id === entry.id) this.#active.delete(key);
  }

  #slotsOf(key: string, now: number): Map<string, number> {
    const slots = this.#slots.get(key) ?? new Map<string, number>();
    for (const [slotId, expiresAt] of slots) if (expiresAt <= now) slots.delete(slotId);
    if (slots.size === 0) this.#slots.delete(key);
    return slots;
  }
}

function stateOf(entry: Entry): StreamState {
  return {
    lastIndex: entry.chunks.length - 1,
    end: entry.end,
    alive: entry.end !== undefined || entry.aliveUntil > performance.now(),
  };
}

function touch(entry: Entry, atLeastMs = 0): void {
  entry.expiresAt = Math.max(entry.expiresAt, performance.now() + Math.max(entry.ttlMs, atLeastMs));
}

/** V8 keeps a string of Latin-1 characters in one byte each, any other in two. */
function textBytes(text: string): number {
  return NOT_LATIN1.test(text) ? 2 * text.length : text.length;
}

const NOT_LATIN1 = /[^\u0000-\u00ff]/;

function countPresence(entry: Entry): number {
  const now = performance.now();
  for (const [subscriberId, expiresAt] of entry.presence) if (expiresAt <= now) entry.presence.delete(subscriberId);
  return entry.presence.size;
}

function announce(entry: Entry, event: StoreEvent): void {
  for (const listener of [...entry.watchers]) {
    try {
      listener(event);
    } catch {
      // A watcher's failure is its own; the others still hear about it.
    }
  }
}

function wake(entry: Entry): void {
  const waiters = [...entry.waiters];
  entry.waiters.clear();
  for (const resolve of waiters) resolve();
}

/** Resolves on the next write to `entry`, after `ms`, or when `signal` aborts, whichever comes first. */
function waitForWrite(entry: Entry, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      entry.waiters.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    entry.waiters.add(done);
  });
}
