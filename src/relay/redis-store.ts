import { StoreUnavailableError, StreamAbortedError, StreamLimitError, StreamNotFoundError } from '../core/errors.js';
import type { TokenChunk } from '../core/types.js';
import { assertOptionalNumber, describeValue } from '../core/validate.js';
import { clientKind, driverOf, taggedKey, type OwnedLink, type RedisDriver, type SubscriberLink } from './redis-client.js';
import { Follower } from './redis-follower.js';
import { limitScripts } from './redis-limit-scripts.js';
import { scripts } from './redis-scripts.js';
import { ShardedFollower } from './redis-sharded-follower.js';
import { Announcements } from './redis-watch.js';
import {
  isStreamId,
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
} from './store.js';

/**
 * The Redis client `redisStore` works with: an ioredis client (`new Redis(url)`), typed by the
 * few methods the store calls, so this entry loads without ioredis installed. The store sends its
 * commands through it and opens its own connections with `duplicate()`; it never closes it.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const client: RedisStoreClient = new Redis('redis://127.0.0.1:6379');
 * ```
 */
export interface RedisStoreClient {
  /** Sends one command (`EVALSHA`, `ZREM`, …) and resolves with its reply. */
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  /** Opens a new connection with the same options (and these overrides). */
  duplicate(override?: { commandTimeout?: number | undefined }): RedisStoreConnection;
  /** ioredis' options: a `keyPrefix` there is prepended to every key the store uses. */
  readonly options?:
    | {
        /** ioredis' own key prefix, which ioredis puts before every key (and so before the store's `prefix`); the store reads it to recognise its keys in replies. */
        readonly keyPrefix?: string | undefined;
      }
    | undefined;
}

/** A connection the store opened with `duplicate()`, used for `XREAD BLOCK` or pub/sub, and closed by `close()`. */
export interface RedisStoreConnection {
  /** Sends one command (`XREAD BLOCK …`). */
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  /** Subscribes to pub/sub channels (the `watch` connection only). */
  subscribe(...channels: string[]): Promise<unknown>;
  /** Unsubscribes from pub/sub channels. */
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** Closes the connection now, without waiting for replies (a blocked `XREAD` included). */
  disconnect(): void;
  /** `'message'`: a pub/sub message; `'error'`: a connection error (the store listens, so none goes unhandled). */
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  /** `'error'`: a connection error (the store listens, so none goes unhandled). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** `'end'`: the connection is closed for good. */
  once(event: 'end', listener: () => void): unknown;
  /** ioredis' connection status; `'end'` once closed. */
  readonly status?: string | undefined;
}

/**
 * An ioredis `Cluster` (`new Cluster([{ host, port }])`), typed by the methods the store calls.
 * Commands go through `call` (ioredis routes each to its key's slot); the store's own pub/sub
 * connection is a `duplicate()` with `shardedSubscribers: true`.
 */
export interface RedisStoreClusterClient {
  /** `true`: how the store tells it from a single connection. */
  readonly isCluster: boolean;
  /** Sends one command (`EVALSHA`, `SPUBLISH`, …), routed by ioredis to its key's node, and resolves with its reply. */
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  /** Opens a new cluster client with the same nodes and options; the store asks for `shardedSubscribers: true` and uses it for sharded pub/sub. */
  duplicate(startupNodes?: undefined, options?: { shardedSubscribers?: boolean | undefined }): unknown;
  /** ioredis' cluster options: a `keyPrefix` there is prepended to every key the store uses. */
  readonly options?:
    | {
        /** ioredis' own key prefix, which ioredis puts before every key (and so before the store's `prefix`); the store reads it to recognise its keys in replies. */
        readonly keyPrefix?: string | undefined;
      }
    | undefined;
}

/**
 * A node-redis v5+ client (`createClient({ url })`, connected), typed by the methods the store
 * calls. The store's own connections are `duplicate()`s it connects itself.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * const client = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
 * const store = redisStore(client);
 * ```
 */
export interface NodeRedisStoreClient {
  /** Sends one command, given as its words (`['EVALSHA', sha, …]`), and resolves with its reply; `timeout` (ms) bounds a blocking `XREAD`. */
  sendCommand(args: ReadonlyArray<string>, options?: { timeout?: number }): Promise<unknown>;
  /** Makes a new, unconnected client with the same options: the store connects it and uses it for `XREAD BLOCK` or pub/sub. */
  duplicate(): unknown;
}

/**
 * A node-redis v5+ cluster (`createCluster({ rootNodes })`, connected). Commands are routed by
 * their first key (`sendCommand(firstKey, false, args)`); pub/sub is sharded (`sSubscribe`).
 */
export interface NodeRedisStoreCluster {
  /** Sends one command (`args`: its words) to the node that owns `firstKey`'s slot, and resolves with its reply. */
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  /** Makes a new, unconnected cluster client with the same options: the store connects it and uses it for sharded pub/sub. */
  duplicate(): unknown;
  /** Not called: its presence is how the store tells a cluster from a single client. */
  nodeClient(...args: never[]): unknown;
}

/** Every client {@link redisStore} accepts: ioredis `Redis` or `Cluster`, node-redis client or cluster. */
export type RedisStoreInput = RedisStoreClient | RedisStoreClusterClient | NodeRedisStoreClient | NodeRedisStoreCluster;

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * Prepended to every key and channel the store uses, so several apps (or test runs) can share
   * one database. Every instance serving the same streams must use the same prefix.
   * @defaultValue `'tokenrelay:'`
   * @example
   * ```ts
   * redisStore(redis, { prefix: 'chat:relay:' });
   * ```
   */
  prefix?: string | undefined;
  /**
   * Chunks one stream may hold. The chunk past it fails its append with a `StreamLimitError`
   * (`limit: 'chunks'`) rather than trimming: a resume needs every chunk. Keep it at or above the
   * relay's own `maxChunks`.
   * @defaultValue `100_000`
   * @example
   * ```ts
   * redisStore(redis, { maxChunks: 20_000 });
   * ```
   */
  maxChunks?: number | undefined;
  /**
   * Connections opened to follow live streams (`XREAD BLOCK`). Each follows any number of
   * streams with one blocking read; streams are spread over them by id. Opened on first use,
   * closed by `close()`. Not used on a cluster (streams are followed over sharded pub/sub).
   * @defaultValue `1`
   * @example
   * ```ts
   * redisStore(redis, { blockingConnections: 4 }); // thousands of live subscribers per instance
   * ```
   */
  blockingConnections?: number | undefined;
}

/** A {@link RelayStore} on Redis Streams, shared by every instance connected to the same Redis. */
export interface RedisStore extends RelayStore {
  /**
   * How many connections the store opened itself and holds now, at most `blockingConnections + 1`
   * (never counting the client you passed); `0` after `close()`. On a cluster, at most 1: one
   * cluster client of the store's own (a socket per master, and a sharded subscriber per master).
   * @example
   * ```ts
   * app.get('/health', (req, res) => res.json({ redisConnections: 1 + store.connections() }));
   * ```
   */
  connections(): number;
}

/**
 * A relay store on Redis Streams: every instance that shares the Redis (and the `prefix`) can
 * serve any reconnect, see every subscriber, and cancel any producer. Chunks are `XADD`ed with
 * their index as the entry id, replayed with `XRANGE`, followed with `XREAD BLOCK` on a
 * connection of the store's own; every key expires (`PEXPIRE`), so a crashed instance leaves
 * nothing behind for long. Needs Redis ≥ 6.2, or Redis ≥ 7 for a Cluster (where every key of a
 * stream shares the hash tag `{<id>}` and live streams are followed over sharded pub/sub).
 *
 * `client` is an ioredis `Redis` or `Cluster`, or a connected node-redis client or cluster, and
 * stays yours: the store only `duplicate()`s it, at most `blockingConnections + 1` times (once on
 * a cluster), and `close()` closes exactly those.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createRelay } from 'tokenrelay';
 * import { redisStore } from 'tokenrelay/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL!);
 * const store = redisStore(redis, { prefix: 'myapp:relay:' });
 * const relay = createRelay({ store });
 * process.on('SIGTERM', async () => {
 *   await relay.close();
 *   await store.close();
 *   await redis.quit();
 * });
 * ```
 */
export function redisStore(client: RedisStoreInput, options: RedisStoreOptions = {}): RedisStore {
  if (clientKind(client) === undefined) {
    throw new TypeError(
      `Expected \`client\` to be an ioredis client or Cluster, or a node-redis client or cluster, got ${describeValue(client)}`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const { prefix = 'tokenrelay:' } = options;
  if (typeof prefix !== 'string' || prefix.length > 200 || /[{}\s]/.test(prefix)) {
    throw new TypeError(
      `Expected \`prefix\` to be a string of at most 200 characters without braces or spaces, got ${describeValue(prefix)}`,
    );
  }
  assertOptionalNumber('maxChunks', options.maxChunks, { min: 1, integer: true });
  assertOptionalNumber('blockingConnections', options.blockingConnections, { min: 1, integer: true });
  if ((options.maxChunks ?? 0) > 2 ** 31) {
    throw new TypeError(`Expected \`maxChunks\` to be at most 2^31, got ${describeValue(options.maxChunks)}`);
  }
  if ((options.blockingConnections ?? 0) > 64) {
    throw new TypeError(`Expected \`blockingConnections\` to be at most 64, got ${describeValue(options.blockingConnections)}`);
  }
  return new RedisStreamsStore(driverOf(client), prefix, options.maxChunks ?? 100_000, options.blockingConnections ?? 1);
}

interface StreamKeys {
  /** meta hash, chunk stream, heartbeat, presence, cancel flag */
  readonly all: [string, string, string, string, string];
  /** Events for `watch`: presence counts, cancel. */
  readonly channel: string;
  /** On a cluster, every chunk and the end, for followers; `''` on one node. */
  readonly follow: string;
}

/** What the store needs of a follower: `Follower` (XREAD BLOCK) on one node, `ShardedFollower` (SSUBSCRIBE) on a cluster. */
type StreamFollower = Pick<Follower, 'isAt' | 'wait' | 'close'>;

// A follower's XREAD blocks 2 s; this bounds a command on a connection that stopped answering.
const BLOCKING_COMMAND_TIMEOUT_MS = 12_000;
const CLOSE_WAIT_MS = 2_000;
const MAX_WAIT_ROUNDS = 1_000;

class RedisStreamsStore implements RedisStore {
  /** The user's client behind one face (redis-client.ts): `call` routes by the first key on a cluster. */
  readonly #client: RedisDriver;
  readonly #prefix: string;
  readonly #maxChunks: number;
  readonly #followers: StreamFollower[];
  readonly #announcements: Announcements;
  readonly #opened = new Set<OwnedLink>();
  #subscriber: SubscriberLink | undefined;
  #closed = false;

  constructor(client: RedisDriver, prefix: string, maxChunks: number, blockingConnections: number) {
    this.#client = client;
    this.#prefix = prefix;
    this.#maxChunks = maxChunks;
    // One pub/sub connection for watch (and, on a cluster, for following streams).
    const openSubscriber = (): SubscriberLink => (this.#subscriber ??= this.#own(client.openSubscriber()));
    if (client.cluster) {
      // One XREAD cannot span hash slots: followers hear chunks over sharded pub/sub instead.
      this.#followers = [new ShardedFollower(openSubscriber, (key) => `${key.slice(0, -2)}:f`)];
    } else {
      const openBlocking = () => this.#own(client.openBlocking(BLOCKING_COMMAND_TIMEOUT_MS));
      this.#followers = Array.from({ length: blockingConnections }, () => new Follower(client, openBlocking, prefix, client.keyPrefix));
    }
    this.#announcements = new Announcements(openSubscriber);
  }

  async create(id: string, options: CreateStreamOptions): Promise<boolean> {
    const created = await this.#run('create', id, [ms(options.ttlMs), JSON.stringify(options.metadata)]);
    return created === 1;
  }

  async append(id: string, chunk: TokenChunk): Promise<void> {
    const [code, last] = (await this.#run('append', id, [chunk.index, JSON.stringify(chunk), this.#maxChunks, this.#keys(id).follow])) as number[];
    if (code === 1) throw new StreamNotFoundError();
    if (code === 2) throw new TypeError(`Expected \`chunk.index\` to be ${Number(last) + 1}, got ${describeValue(chunk.index)}`);
    if (code === 3) throw new StreamLimitError(`The stream reached the store's maxChunks (${this.#maxChunks})`, { limit: 'chunks' });
  }

  async end(id: string, end: StoredEnd): Promise<void> {
    if ((await this.#run('end', id, [JSON.stringify(end), this.#keys(id).follow])) !== 1) throw new StreamNotFoundError();
  }

  async read(id: string, after: number, options: ReadOptions): Promise<ReadResult | undefined> {
    const { limit, waitMs, signal } = options;
    if (!Number.isSafeInteger(after) || after < -1) {
      throw new TypeError(`Expected \`after\` to be an integer >= -1, got ${describeValue(after)}`);
    }
    if (this.#closed && waitMs > 0) throw new StreamAbortedError('The relay store was closed');
    const key = this.#keys(id).all[1];
    const follower = this.#followerOf(key);
    const deadline = performance.now() + waitMs;
    let state: ReadResult | undefined;
    if (!(waitMs > 0 && follower.isAt(key, after))) {
      state = await this.#readNow(id, after, limit);
      if (state === undefined || state.chunks.length > 0 || state.end !== undefined || waitMs <= 0) return state;
    }
    for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      const outcome = await follower.wait(key, after, limit, remaining, signal);
      // close() ends the waits it releases; answering them would only start new ones.
      if (this.#closed) throw new StreamAbortedError('The relay store was closed');
      if (outcome.type === 'data') return { chunks: outcome.chunks, end: outcome.end, lastIndex: outcome.lastIndex, alive: true };
      if (outcome.type === 'aborted') return { lastIndex: state?.lastIndex ?? after, end: undefined, alive: state?.alive ?? true, chunks: [] };
      if (outcome.type === 'timeout') break;
      state = await this.#readNow(id, after, limit);
      if (state === undefined || state.chunks.length > 0 || state.end !== undefined) return state;
    }
    // A wait that timed out tells whether the producer is still alive.
    return this.#readNow(id, after, limit);
  }

  async info(id: string): Promise<StreamInfo | undefined> {
    const keys = this.#keys(id).all;
    const reply = (await this.#script('info', [keys[0], keys[2]], [])) as [string, string, string, number] | null;
    if (reply === null) return undefined;
    const [metadata, last, end, alive] = reply;
    return {
      metadata: JSON.parse(metadata) as Record<string, string>,
      lastIndex: Number(last),
      end: end === '' ? undefined : (JSON.parse(end) as StoredEnd),
      alive: alive === 1,
    };
  }

  async heartbeat(id: string, ttlMs: number): Promise<ProducerStatus | undefined> {
    const reply = (await this.#run('heartbeat', id, [ms(ttlMs)])) as [number, number] | null;
    return reply === null ? undefined : { subscribers: reply[0], cancelled: reply[1] === 1 };
  }

  async attach(id: string, subscriberId: string, ttlMs: number): Promise<void> {
    const { all, channel } = this.#keys(id);
    await this.#script('attach', [all[0], all[3]], [subscriberId, ms(ttlMs), channel, this.#client.publish]);
  }

  async detach(id: string, subscriberId: string): Promise<void> {
    const { all, channel } = this.#keys(id);
    await this.#script('detach', [all[3]], [subscriberId, channel, this.#client.publish]);
  }

  watch(id: string, listener: (event: StoreEvent) => void): () => void {
    if (this.#closed) return () => undefined;
    return this.#announcements.watch(this.#keys(id).channel, listener);
  }

  async cancel(id: string): Promise<boolean> {
    const { all, channel } = this.#keys(id);
    return (await this.#script('cancel', [all[0], all[4]], [channel, this.#client.publish])) === 1;
  }

  async acquireSlot(key: string, max: number, ttlMs: number): Promise<SlotGrant> {
    const slotId = randomId();
    const [granted, retryAfterMs] = (await this.#script('acquireSlot', [this.#slotKey(key)], [max, ms(ttlMs), slotId])) as number[];
    return granted === 1 ? { granted: true, slotId } : { granted: false, retryAfterMs: Number(retryAfterMs) };
  }

  async refreshSlot(key: string, slotId: string, ttlMs: number): Promise<boolean> {
    return (await this.#script('refreshSlot', [this.#slotKey(key)], [slotId, ms(ttlMs)])) === 1;
  }

  async releaseSlot(key: string, slotId: string): Promise<void> {
    try {
      await this.#client.call('ZREM', this.#slotKey(key), slotId);
    } catch (error) {
      throw typedError(error);
    }
  }

  async setActive(key: string, id: string, options: SetActiveOptions): Promise<void> {
    // The pointer and the stream live in different slots: check the stream, then set the pointer.
    const info = await this.info(id);
    if (info === undefined || info.end !== undefined) return;
    await this.#script('setActive', [this.#activeKey(key)], [id, ms(options.ttlMs), options.refresh ? 1 : 0]);
  }

  async getActive(key: string): Promise<string | undefined> {
    const pointer = this.#activeKey(key);
    const id = (await this.#script('getActive', [pointer], [])) as string | null;
    if (id === null) return undefined;
    const info = isStreamId(id) ? await this.info(id) : undefined;
    if (info === undefined || info.end !== undefined) {
      await this.#script('clearActive', [pointer], [id]);
      return undefined;
    }
    return info.alive ? id : undefined;
  }

  // Idempotent start and limitRate (redis-limit-scripts.ts): one script each, keys under one hash tag.
  async claim(key: string, id: string, options: ClaimOptions): Promise<string> {
    return String(await this.#limitScript('claim', [`${this.#prefix}{idem:${key}}`], [id, ms(options.ttlMs), options.replacing ?? '']));
  }

  async getClaim(key: string): Promise<string | undefined> {
    const id = await this.#limitScript('getClaim', [`${this.#prefix}{idem:${key}}`], []);
    return typeof id === 'string' ? id : undefined;
  }

  async checkRate(key: string, limits: RateLimits): Promise<RateVerdict> {
    const windows = [limits.requests, limits.tokens, limits.cost].flatMap((window) => (window === undefined ? [0, 0] : [window.max, ms(window.windowMs)]));
    const reply = (await this.#limitScript('checkRate', this.#rateKeys(key, ['r', 't', 'c']), [...windows, randomId()])) as unknown[];
    if (Number(reply[0]) === 1) return { allowed: true, tokens: Number(reply[1]), cost: Number(reply[2]) };
    const limit = (['requests', 'tokens', 'cost'] as const)[Number(reply[1]) - 1] ?? 'requests';
    return { allowed: false, limit, retryAfterMs: Number(reply[2]) };
  }

  async chargeRate(key: string, charge: RateCharge): Promise<RateUsage> {
    const parts = [charge.tokens, charge.cost].flatMap((part) => (part === undefined ? [0, 0] : [String(part.amount), ms(part.windowMs)]));
    const reply = (await this.#limitScript('chargeRate', this.#rateKeys(key, ['t', 'c']), [...parts, randomId()])) as unknown[];
    return { tokens: Number(reply[0]), cost: Number(reply[1]) };
  }

  #rateKeys(key: string, suffixes: string[]): string[] {
    const base = `${this.#prefix}{rate:${encodeURIComponent(key)}}`;
    return suffixes.map((suffix) => `${base}:${suffix}`);
  }

  async #limitScript(name: keyof typeof limitScripts, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await limitScripts[name].run(this.#client, keys, args);
    } catch (error) {
      throw typedError(error);
    }
  }

  connections(): number {
    return this.#opened.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const follower of this.#followers) follower.close();
    this.#announcements.close();
    this.#subscriber?.disconnect();
    await Promise.all([...this.#opened].map(untilEnded));
    this.#opened.clear();
  }

  async #readNow(id: string, after: number, limit: number): Promise<ReadResult | undefined> {
    const keys = this.#keys(id).all;
    const reply = (await this.#script('read', [keys[0], keys[1], keys[2]], [`${after + 2}-0`, limit])) as
      | [string, string, number, Array<[string, string[]]>]
      | null;
    if (reply === null) return undefined;
    const [last, end, alive, entries] = reply;
    const chunks: TokenChunk[] = [];
    for (const [, fields] of entries) if (fields[0] === 'c') chunks.push(JSON.parse(fields[1]!) as TokenChunk);
    const lastIndex = Number(last);
    const reachedEnd = after + chunks.length >= lastIndex;
    return { chunks, lastIndex, alive: alive === 1, end: reachedEnd && end !== '' ? (JSON.parse(end) as StoredEnd) : undefined };
  }

  /** Runs a script on all five keys of a stream. */
  #run(name: 'create' | 'append' | 'end' | 'heartbeat', id: string, args: Array<string | number>): Promise<unknown> {
    return this.#script(name, this.#keys(id).all, args);
  }

  async #script(name: keyof typeof scripts, keys: readonly string[], args: Array<string | number>): Promise<unknown> {
    const subscribing = this.#announcements.settled();
    if (subscribing !== undefined) await subscribing;
    try {
      return await scripts[name].run(this.#client, keys, args);
    } catch (error) {
      throw typedError(error);
    }
  }

  #keys(id: string): StreamKeys {
    const base = `${this.#prefix}{${id}}`;
    return {
      all: [`${base}:m`, `${base}:c`, `${base}:h`, `${base}:p`, `${base}:x`],
      channel: `${base}:e`,
      follow: this.#client.cluster ? `${base}:f` : '',
    };
  }

  #slotKey(key: string): string {
    return taggedKey(this.#prefix, 'slot', key);
  }

  #activeKey(key: string): string {
    return taggedKey(this.#prefix, 'active', key);
  }

  #followerOf(key: string): StreamFollower {
    if (this.#followers.length === 1) return this.#followers[0]!;
    let hash = 0;
    for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0;
    return this.#followers[Math.abs(hash) % this.#followers.length]!;
  }

  /** Counts a connection the store opened until it has ended. */
  #own<T extends OwnedLink>(link: T): T {
    this.#opened.add(link);
    link.onEnd(() => this.#opened.delete(link));
    return link;
  }
}

// Server answers that mean "not now": loading after a restart, a script running, a failover.
const UNAVAILABLE_REPLY = /^(?:LOADING|BUSY|MASTERDOWN|TRYAGAIN|READONLY|CLUSTERDOWN)\b/;

/**
 * What a failed command means for the relay. An error reply is the server's answer (OOM: the
 * store is full; LOADING, READONLY…: unavailable; anything else: final); any other error comes
 * from the client, not the server (connection closed, `MaxRetriesPerRequestError`, command timed
 * out): the store is unavailable.
 */
function typedError(error: unknown): unknown {
  const message = String((error as Error | undefined)?.message);
  if (!isReplyError(error)) {
    return new StoreUnavailableError(`The relay store (Redis) is unavailable: ${message}`, { cause: error });
  }
  // maxmemory with noeviction: the store is full, like a memory store at maxBytes.
  if (message.startsWith('OOM')) return new StreamLimitError('The relay store is full (Redis maxmemory)', { limit: 'bytes', cause: error });
  if (UNAVAILABLE_REPLY.test(message)) return new StoreUnavailableError(`The relay store (Redis) is unavailable: ${message}`, { cause: error });
  return error;
}

/** An error reply from the server: ioredis' `ReplyError`, node-redis' `ErrorReply` (and its `SimpleError`, `BlobError`). */
function isReplyError(error: unknown): boolean {
  if ((error as Error | undefined)?.name === 'ReplyError') return true;
  for (let proto = error === null || typeof error !== 'object' ? null : Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: unknown } }).constructor?.name === 'ErrorReply') return true;
  }
  return false;
}

/** Milliseconds as Redis takes them (an integer, at least 1). */
function ms(value: number): number {
  return Math.max(1, Math.ceil(value));
}

/** Resolves once a connection the store closed has ended (its socket is closed), or after 2 s. */
function untilEnded(connection: OwnedLink): Promise<void> {
  if (connection.ended) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, CLOSE_WAIT_MS);
    connection.onEnd(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
