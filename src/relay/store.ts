import {
  BackpressureError,
  BudgetExceededError,
  InvalidCursorError,
  InvalidJSONError,
  isTokenRelayError,
  ProducerLostError,
  ProviderError,
  StreamAbortedError,
  StreamLimitError,
  StreamNotFoundError,
  StreamTimeoutError,
  StoreUnavailableError,
  type BudgetKind,
  type StreamLimitKind,
  type TimeoutPhase,
} from '../core/errors.js';
import type { TokenChunk } from '../core/types.js';

/**
 * Where resumable streams live: their chunks, how they ended, who is listening, and per-user
 * slots. `memoryStore()` is the embedded default; a store shared by several instances (Redis)
 * lets any instance serve any reconnect and cancel any producer.
 *
 * The store owns its connections: the relay never opens or closes one per request, and a store
 * you create is yours to {@link RelayStore.close}. Every key the store writes expires by itself
 * (`ttlMs`), so an instance that dies leaves nothing behind for long.
 *
 * Ids and slot keys reaching a store are already validated: stream ids match
 * {@link STREAM_ID_PATTERN}, subscriber and slot ids are ids the relay generated.
 *
 * **When the store cannot be reached** (a network store whose server is down or not answering),
 * a method rejects with a `StoreUnavailableError` (its `cause` the client's error), or stays
 * pending until its client gives up; it never answers as if the stream were unknown. Only that
 * error means "try again": the relay retries the same call (an `append` in order, never the next
 * one before it) until the store has not answered for `livenessMs`, then aborts the producer and
 * ends its subscribers with a `StoreUnavailableError`. Any other rejection is final. So a retried
 * `append` whose first attempt was applied but whose answer was lost must not fail or duplicate:
 * appending the index already stored last again resolves and changes nothing. A store that
 * cannot be unavailable (the memory store) never throws it.
 */
export interface RelayStore {
  /**
   * Records a new, live stream with no chunks. Resolves `false` (and changes nothing) when the id
   * is taken. Rejects with a `StreamLimitError` when the store cannot hold one more stream.
   */
  create(id: string, options: CreateStreamOptions): Promise<boolean>;
  /**
   * Appends one chunk; the relay only ever appends `index === lastIndex + 1`, or the same index
   * again when the first attempt failed with a `StoreUnavailableError` (then, if it was stored
   * after all, nothing changes). Refreshes the stream's TTL and wakes every
   * {@link RelayStore.read} waiting on it. Rejects with a `StreamLimitError` when the chunk does
   * not fit (the store never grows past its bounds), with a `StreamNotFoundError` when the stream
   * is gone.
   */
  append(id: string, chunk: TokenChunk): Promise<void>;
  /**
   * Marks the stream ended (the completion marker). Written once, after the last chunk; wakes
   * waiting reads. The stream is then kept `ttlMs` from now.
   */
  end(id: string, end: StoredEnd): Promise<void>;
  /**
   * The chunks with `index > after`, oldest first, at most `limit`. When there is none and the
   * stream has not ended, waits up to `waitMs` for one (Redis: `XREAD BLOCK`), returning early
   * when `signal` aborts; a wait that times out resolves with no chunks. Resolves `undefined` for
   * an unknown or expired stream.
   */
  read(id: string, after: number, options: ReadOptions): Promise<ReadResult | undefined>;
  /** The stream's metadata and state, or `undefined` when it is unknown or expired. */
  info(id: string): Promise<StreamInfo | undefined>;
  /**
   * The producer's check-in, every `ttlMs / 3`: marks it alive for `ttlMs` (Redis: a key with
   * `PX`), keeps the stream at least that long (and at least its own `ttlMs`), so a quiet live
   * stream never expires, and answers what the producer must act on. `undefined` when the stream
   * is gone.
   */
  heartbeat(id: string, ttlMs: number): Promise<ProducerStatus | undefined>;
  /**
   * Counts `subscriberId` as attached to the stream for `ttlMs` (a subscriber refreshes it every
   * `ttlMs / 3`, so one on a dead instance stops counting by itself), and announces the new count
   * to watchers. Applied in call order with the store's other commands. No effect on an unknown
   * or ended stream.
   */
  attach(id: string, subscriberId: string, ttlMs: number): Promise<void>;
  /** Stops counting `subscriberId` and announces the new count to watchers. */
  detach(id: string, subscriberId: string): Promise<void>;
  /**
   * Calls `listener` when a subscriber attaches or detaches, or the stream is cancelled, from
   * whichever instance (Redis: pub/sub on one shared connection). Best effort: the producer also
   * polls {@link RelayStore.heartbeat}. Returns the function that stops the calls.
   */
  watch(id: string, listener: (event: StoreEvent) => void): () => void;
  /**
   * Asks the producer of a live stream to stop, wherever it runs: recorded (so a heartbeat
   * reports it) and announced to watchers. Resolves `false` when the stream is unknown or ended.
   */
  cancel(id: string): Promise<boolean>;
  /**
   * Takes one of `max` slots of `key` for `ttlMs`, counting only unexpired slots (Redis: a sorted
   * set scored by expiry, in one script).
   */
  acquireSlot(key: string, max: number, ttlMs: number): Promise<SlotGrant>;
  /** Extends a held slot to `ttlMs` from now. Resolves `false` when it is no longer held. */
  refreshSlot(key: string, slotId: string, ttlMs: number): Promise<boolean>;
  /** Frees a slot. Releasing a slot that is not held does nothing. */
  releaseSlot(key: string, slotId: string): Promise<void>;
  /** Releases what the store holds (connections, waiting reads). Only the store's owner calls it. */
  close(): Promise<void>;
  /**
   * Points `key` (a chat id, say) at the stream `id`, for `ttlMs`: the stream now active for it,
   * replacing the one it pointed at. With `refresh`, only extends a pointer that still names `id`,
   * so a stream started later for the same key keeps it. Optional: needed by
   * `relay.start(…, { key })`; `memoryStore` and `redisStore` have it.
   */
  setActive?(key: string, id: string, options: SetActiveOptions): Promise<void>;
  /**
   * The stream `key` points at, while that stream is live (its producer alive, no end stored);
   * `undefined` when there is none, or the stream ended, expired or its producer is gone. A
   * pointer to a stream that ended or vanished is cleared. Optional, like {@link RelayStore.setActive}.
   */
  getActive?(key: string): Promise<string | undefined>;
  /**
   * Claims an idempotency key (already scoped and hashed by the relay) for the stream `id`, for
   * `ttlMs`, in one atomic step: sets it when the key is free, names `id` already (a refresh), or
   * names `replacing` (a stream found gone); otherwise changes nothing. Resolves with the id the key
   * names afterwards: `id` when the claim is this caller's, the earlier stream's id when not.
   * Optional: needed by `relay.start(…, { idempotencyKey })`; `memoryStore` and `redisStore` have it.
   */
  claim?(key: string, id: string, options: ClaimOptions): Promise<string>;
  /** The stream id an idempotency key names, or `undefined`. Optional, like {@link RelayStore.claim}. */
  getClaim?(key: string): Promise<string | undefined>;
  /**
   * `limitRate`'s check before a stream starts, one atomic step over the sliding windows of `key`:
   * refuses when a window is used up (`requests`: one more would pass `max`; `tokens`, `cost`:
   * the usage in the window has reached `max`), else records one request. Optional; `memoryStore`
   * and `redisStore` have it.
   */
  checkRate?(key: string, limits: RateLimits): Promise<RateVerdict>;
  /**
   * Records `tokens` and `cost` (either may be negative: the real usage replacing an estimate) in
   * the windows of `key` at the store's time, and answers the usage now in each window. Optional,
   * like {@link RelayStore.checkRate}.
   */
  chargeRate?(key: string, charge: RateCharge): Promise<RateUsage>;
}

/** Options of {@link RelayStore.claim}. */
export interface ClaimOptions {
  /** How long the claim is kept unless claimed again, in ms. */
  ttlMs: number;
  /** Take the key over when it names this stream (found gone). */
  replacing?: string | undefined;
}

/** A sliding window: at most `max` in any `windowMs`. */
export interface RateWindow {
  /** The most the window holds. */
  max: number;
  /** Its length, in ms. */
  windowMs: number;
}

/** The windows {@link RelayStore.checkRate} checks; absent ones are not limited. */
export interface RateLimits {
  /** Requests per window: refused when one more would pass `max`; a request that passes is recorded. */
  requests?: RateWindow | undefined;
  /** Input + output tokens per window: refused once the tokens charged in the window reach `max`. */
  tokens?: RateWindow | undefined;
  /** Estimated cost (USD) per window: refused once the cost charged in the window reaches `max`. */
  cost?: RateWindow | undefined;
}

/** What {@link RelayStore.checkRate} answers. */
export type RateVerdict =
  | {
      /** `true`: the request may go ahead, and was recorded in the request window. */
      allowed: true;
      /** Tokens in the token window (`0` without one). */
      tokens: number;
      /** Cost in the cost window (`0` without one). */
      cost: number;
    }
  | {
      /** `false`: a window is used up, and nothing was recorded. */
      allowed: false;
      /** The first window found used up, in the order requests, tokens, cost. */
      limit: 'requests' | 'tokens' | 'cost';
      /** Until enough of that window slides out, in ms (at least 1). */
      retryAfterMs: number;
    };

/** What {@link RelayStore.chargeRate} records: amounts and the windows they count in. */
export interface RateCharge {
  /** Tokens to record in the token window; absent when tokens are not limited. */
  tokens?:
    | {
        /** How many tokens; negative to take back part of an earlier estimate. */
        amount: number;
        /** The token window's length, in ms. */
        windowMs: number;
      }
    | undefined;
  /** Cost (USD) to record in the cost window; absent when cost is not limited. */
  cost?:
    | {
        /** How much, in USD; negative to take back part of an earlier estimate. */
        amount: number;
        /** The cost window's length, in ms. */
        windowMs: number;
      }
    | undefined;
}

/** The usage in each window after a {@link RelayStore.chargeRate}; `0` for a window not charged. */
export interface RateUsage {
  /** Tokens now in the token window. */
  tokens: number;
  /** Cost (USD) now in the cost window. */
  cost: number;
}

/** Options of {@link RelayStore.setActive}. */
export interface SetActiveOptions {
  /** How long the pointer is kept unless refreshed, in ms. */
  ttlMs: number;
  /** Only extend the pointer if it still names this stream. */
  refresh: boolean;
}

/** Options of {@link RelayStore.create}. */
export interface CreateStreamOptions {
  /** How long the stream is kept after its last append, end or heartbeat, in ms. */
  ttlMs: number;
  /** Strings kept with the stream for `authorize` (e.g. the owner's user id). */
  metadata: Readonly<Record<string, string>>;
}

/** Options of {@link RelayStore.read}. */
export interface ReadOptions {
  /** At most this many chunks. */
  limit: number;
  /** How long to wait for a first new chunk when there is none; `0` answers at once. */
  waitMs: number;
  /** Ends the wait early. */
  signal?: AbortSignal | undefined;
}

/** A stream's state, as every read reports it. */
export interface StreamState {
  /** The last index written so far; `-1` before the first chunk. */
  lastIndex: number;
  /** How the stream ended; `undefined` while it is live. */
  end: StoredEnd | undefined;
  /** `true` while the producer's heartbeat has not expired, and for every ended stream. */
  alive: boolean;
}

/** What {@link RelayStore.info} answers. */
export interface StreamInfo extends StreamState {
  /** The metadata given at creation. */
  metadata: Readonly<Record<string, string>>;
}

/** What {@link RelayStore.read} answers. */
export interface ReadResult extends StreamState {
  /** Chunks with `index > after`, in order, gap-free. */
  chunks: TokenChunk[];
}

/** What a producer learns at each heartbeat. */
export interface ProducerStatus {
  /** Subscribers attached now, on any instance. */
  subscribers: number;
  /** Someone called `relay.cancel(id)`. */
  cancelled: boolean;
}

/** What {@link RelayStore.watch} announces. */
export type StoreEvent =
  | {
      /** `'presence'`: a subscriber attached or detached. */
      type: 'presence';
      /** Subscribers attached now, on any instance. */
      subscribers: number;
    }
  | {
      /** `'cancel'`: someone called `relay.cancel(id)`; the producer should stop. */
      type: 'cancel';
    };

/** How a stream ended, as the store keeps it (the completion marker). */
export type StoredEnd =
  | {
      /** `'completed'`: the source ended normally, after the last chunk. */
      type: 'completed';
    }
  | {
      /** `'failed'`: the producer stopped before the source ended (it threw, was cancelled, abandoned, or hit a limit). */
      type: 'failed';
      /** What it failed with: every subscriber, on any instance, rethrows it as the same typed error. */
      error: StoredError;
    };

/** A thrown error reduced to JSON, so every instance rethrows it as the same typed error. */
export interface StoredError {
  /** The error's `name`, e.g. `'ProviderError'`; `'Error'` for a thrown non-error. */
  name: string;
  /** The error's `message`, cut to 500 characters. */
  message: string;
  /** The `code` of a tokenrelay error (`'provider'`, `'timeout'`, `'limit'`, …), which picks the class it is rebuilt as; absent for any other error. */
  code?: string | undefined;
  /** `ProviderError`: the HTTP status the provider answered with. */
  status?: number | undefined;
  /** `ProviderError`: whether the same request may succeed when sent again. */
  retryable?: boolean | undefined;
  /** `ProviderError`, `StreamLimitError`, `BudgetExceededError`: how long to wait before retrying, in ms. */
  retryAfterMs?: number | undefined;
  /** `ProviderError`: which provider failed, e.g. `'openai'`. */
  provider?: string | undefined;
  /** `ProviderError`: the provider's own error type, e.g. `'rate_limit_error'`. */
  providerType?: string | undefined;
  /** `StreamTimeoutError`: which timeout fired. */
  phase?: string | undefined;
  /** `StreamTimeoutError`: the limit that was passed, in ms. */
  timeoutMs?: number | undefined;
  /** `StreamLimitError`, `BudgetExceededError`: which limit was reached. */
  limit?: string | undefined;
  /** `InvalidJSONError`: the 0-based offset in the streamed text where parsing failed. */
  position?: number | undefined;
}

/** What {@link RelayStore.acquireSlot} answers. */
export type SlotGrant =
  | {
      /** `true`: a slot was taken. */
      granted: true;
      /** The slot's id, for {@link RelayStore.refreshSlot} and {@link RelayStore.releaseSlot}. */
      slotId: string;
    }
  | {
      /** `false`: all `max` slots of the key are held. */
      granted: false;
      /** Until the oldest slot of the key expires unless refreshed, in ms. */
      retryAfterMs: number;
    };

/** The slot methods of a {@link RelayStore}: all that `limitStreams` needs. */
export type SlotStore = Pick<RelayStore, 'acquireSlot' | 'refreshSlot' | 'releaseSlot'>;

/**
 * The rate methods of a {@link RelayStore}: all that `limitRate` needs (optional in the type, so
 * `relay.store` fits; `limitRate` checks that they are there).
 */
export type RateStore = Pick<RelayStore, 'checkRate' | 'chargeRate'>;

/** Stream ids: URL-safe, and safe inside a Redis key. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._:-]{0,199}$/;

/** True when `value` can name a stream. */
export function isStreamId(value: unknown): value is string {
  return typeof value === 'string' && STREAM_ID_PATTERN.test(value);
}

/** 144 random bits, base64url: an id nobody can guess. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_');
}

const MAX_MESSAGE = 500;

/** Reduces an error to JSON. Messages are cut to 500 characters; causes and stacks are dropped. */
export function serializeError(error: unknown): StoredError {
  if (!(error instanceof Error)) return { name: 'Error', message: cut(safeString(error)) };
  const stored: StoredError = { name: cut(error.name), message: cut(error.message) };
  if (!isTokenRelayError(error)) return stored;
  stored.code = error.code;
  const fields = error as unknown as Record<string, unknown>;
  for (const key of ['status', 'retryAfterMs', 'timeoutMs', 'position'] as const) {
    if (typeof fields[key] === 'number') stored[key] = fields[key];
  }
  for (const key of ['provider', 'providerType', 'phase', 'limit'] as const) {
    if (typeof fields[key] === 'string') stored[key] = cut(fields[key]);
  }
  if (typeof fields.retryable === 'boolean') stored.retryable = fields.retryable;
  return stored;
}

/** Rebuilds the typed error a producer failed with, from its stored form. */
export function deserializeError(stored: StoredError): Error {
  const { message } = stored;
  switch (stored.code) {
    case 'provider':
      return new ProviderError(message, {
        status: stored.status,
        retryable: stored.retryable,
        retryAfterMs: stored.retryAfterMs,
        provider: stored.provider,
        providerType: stored.providerType,
      });
    case 'aborted':
      return new StreamAbortedError(message);
    case 'timeout':
      return new StreamTimeoutError((stored.phase ?? 'total') as TimeoutPhase, stored.timeoutMs ?? 0);
    case 'backpressure':
      return new BackpressureError(message);
    case 'invalid-json':
      return new InvalidJSONError(message, stored.position ?? 0);
    case 'limit':
      return new StreamLimitError(message, {
        limit: stored.limit as StreamLimitKind | undefined,
        retryAfterMs: stored.retryAfterMs,
      });
    case 'budget-exceeded':
      return new BudgetExceededError(message, {
        limit: stored.limit as BudgetKind | undefined,
        retryAfterMs: stored.retryAfterMs,
      });
    case 'not-found':
      return new StreamNotFoundError(message);
    case 'producer-lost':
      return new ProducerLostError(message);
    case 'invalid-cursor':
      return new InvalidCursorError(message);
    case 'store-unavailable':
      return new StoreUnavailableError(message);
    default: {
      const error = new Error(message);
      error.name = stored.name;
      return error;
    }
  }
}

function cut(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'Unknown error';
  }
}
