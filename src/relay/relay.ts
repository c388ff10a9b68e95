import { isStoreUnavailableError, ProducerLostError, StreamAbortedError, StreamNotFoundError } from '../core/errors.js';
import type { TokenChunk, TokenSourceFactory } from '../core/types.js';
import { assertFunction, assertOptionalNumber, assertSignal, describeValue } from '../core/validate.js';
import { disposeFactory } from './dispose.js';
import { scopedIdempotencyKey } from './idempotency.js';
import { memoryStore } from './memory-store.js';
import { within } from './outage.js';
import { Producer, type ProducerResult } from './producer.js';
import { deserializeError, isStreamId, randomId, serializeError, type ProducerStatus, type RelayStore, type StreamInfo } from './store.js';
import { openSubscription, type CursorInput, type RelayAuthorize } from './subscription.js';

/** Options of {@link createRelay}. */
export interface RelayOptions {
  /**
   * Where streams live. Pass a shared store (Redis) when several instances serve the same
   * streams; a store you pass is yours to close.
   * @defaultValue `memoryStore()`, closed by `relay.close()`
   * @example
   * ```ts
   * createRelay({ store: memoryStore({ maxStreams: 1_000 }) });
   * ```
   */
  store?: RelayStore | undefined;
  /**
   * How long a producer keeps running with no subscriber attached (counted from its start
   * until the first one attaches, and from every moment the last one leaves). Then it is
   * aborted, which cancels the provider request. `0` aborts on disconnect; `Infinity` always
   * finishes (e.g. to persist the answer).
   * @defaultValue `10_000`
   * @example
   * ```ts
   * createRelay({ graceMs: 30_000 }); // survive a phone switching networks
   * ```
   */
  graceMs?: number | undefined;
  /**
   * How long a stream stays readable after its last chunk (or its end), in ms. A reconnect
   * later gets a `StreamNotFoundError`.
   * @defaultValue `600_000` (10 minutes)
   * @example
   * ```ts
   * createRelay({ ttlMs: 60_000 });
   * ```
   */
  ttlMs?: number | undefined;
  /**
   * Chunks a stream may have. The producer that reaches it is aborted and its subscribers get a
   * `StreamLimitError` (`limit: 'chunks'`): a runaway generation costs neither tokens nor memory.
   * @defaultValue `100_000`
   * @example
   * ```ts
   * createRelay({ maxChunks: 20_000 });
   * ```
   */
  maxChunks?: number | undefined;
  /**
   * How long a producer or a subscriber counts as present after its last heartbeat (sent every
   * `livenessMs / 3`). A subscriber whose producer died (its instance crashed) gets a
   * `ProducerLostError` within about twice this; a crashed subscriber stops counting within it.
   *
   * Also how long a store outage is ridden out: writes and reads that fail as unavailable are
   * retried, in order, and once the store has not answered for `livenessMs` the producer is
   * aborted (its provider request cancelled) and subscribers end with a `StoreUnavailableError`.
   * `relay.start` and `relay.cancel` fail with it when the store is unavailable (after
   * `livenessMs` at most when it does not answer).
   * @defaultValue `10_000`
   * @example
   * ```ts
   * createRelay({ store: redis, livenessMs: 5_000 });
   * ```
   */
  livenessMs?: number | undefined;
  /**
   * Checks every `subscribe` and `cancel` against the stream's `metadata`, with the `context`
   * the caller passed (e.g. the signed-in user). A refusal looks exactly like an unknown id
   * (`StreamNotFoundError`, `cancel` resolves `false`), so ids cannot be probed.
   * @defaultValue none: knowing the (unguessable) id is enough
   * @example
   * ```ts
   * createRelay({ authorize: (stream, user) => stream.metadata.userId === (user as User).id });
   * ```
   */
  authorize?: RelayAuthorize | undefined;
}

/** Options of {@link Relay.start}. */
export interface RelayStartOptions {
  /**
   * The stream's id, when you choose it (letters, digits, `-`, `_`, `.`, `:`; 1–200 characters):
   * what the client reconnects with. An id that names an existing stream is a `TypeError`.
   * @defaultValue a fresh, unguessable id
   * @example
   * ```ts
   * await relay.start(factory, { id: `chat-${chatId}-${turn}` });
   * ```
   */
  id?: string | undefined;
  /**
   * Strings kept with the stream for `authorize` (e.g. `{ userId }`). At most 4 KiB as JSON.
   * @defaultValue `{}`
   * @example
   * ```ts
   * await relay.start(factory, { metadata: { userId: user.id } });
   * ```
   */
  metadata?: Record<string, string> | undefined;
  /**
   * Records the stream as the active stream of this key (a chat id, say: letters, digits, `-`,
   * `_`, `.`, `:`; 1–200 characters), replacing the one started before, so
   * {@link Relay.active} and {@link Relay.resume} find it from any instance that shares the
   * store, until it ends. Needs a store with `setActive` (`memoryStore`, `redisStore`).
   * @defaultValue none
   * @example
   * ```ts
   * await relay.start(factory, { key: chatId }); // GET /api/chat/:chatId/stream resumes it
   * ```
   */
  key?: string | undefined;
  /**
   * Makes the start idempotent: while a stream started with the same key (and the same
   * `metadata`) is live or inside its `ttlMs`, `start` returns that stream (`created: false`)
   * instead of calling the factory, on any instance that shares the store (one atomic claim in
   * Redis, a map in memory). The key is scoped by `metadata`, where `authorize` finds the owner,
   * so one user's key never joins another user's stream; with `authorize`, the joining caller's
   * `context` must also be allowed to read it, or `start` rejects with a `StreamNotFoundError`.
   * `undefined` (no `Idempotency-Key` header) starts a stream as usual. Any string of 1 to 1,024
   * characters; read it with {@link idempotencyKey}. Needs a store with `claim` (`memoryStore`,
   * `redisStore`).
   * @defaultValue none
   * @example
   * ```ts
   * const { id, created } = await relay.start(factory, { idempotencyKey: idempotencyKey(req), metadata: { userId } });
   * ```
   */
  idempotencyKey?: string | undefined;
  /**
   * Passed to `authorize` when an `idempotencyKey` joins an existing stream, e.g. the signed-in user.
   * @defaultValue `undefined`
   */
  context?: unknown;
}

/** Options of {@link Relay.active} and {@link Relay.resume}. */
export interface RelayActiveOptions {
  /**
   * Passed to `authorize`, e.g. the signed-in user: a stream the caller may not read is no active stream.
   * @defaultValue `undefined`
   */
  context?: unknown;
}

/** Options of {@link Relay.subscribe}. */
export interface RelaySubscribeOptions {
  /**
   * The index of the last chunk the client has (its `Last-Event-ID`); only later chunks are
   * sent. A string is parsed with `parseCursor`. Anything but a non-negative integer no greater
   * than the stream's last index fails the subscription with an `InvalidCursorError`.
   * @defaultValue from the first chunk
   * @example
   * ```ts
   * relay.subscribe(id, { after: resumeCursor(request) });
   * ```
   */
  after?: CursorInput;
  /**
   * Ends the subscription (not the producer) when it aborts, and detaches it at once: pass the
   * signal the server adapter gives your factory.
   * @defaultValue none: the subscription ends when its consumer stops
   * @example
   * ```ts
   * toResponse((signal) => relay.subscribe(id, { signal }), { request });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * Passed to `authorize`, e.g. the signed-in user.
   * @defaultValue `undefined`
   */
  context?: unknown;
}

/** Options of {@link Relay.cancel}. */
export interface RelayCancelOptions {
  /**
   * Passed to `authorize`, e.g. the signed-in user.
   * @defaultValue `undefined`
   * @example
   * ```ts
   * await relay.cancel(id, { context: user });
   * ```
   */
  context?: unknown;
}

/** A started stream. */
export interface RelayStream {
  /** The stream's id, unguessable unless you chose it: what the client reconnects with. */
  readonly id: string;
  /**
   * Resolves once, when the producer has ended and its end is stored. Never rejects. For a stream
   * joined through an `idempotencyKey` whose producer runs on another instance, it follows the
   * store (a read every `livenessMs / 3` from its first use), where an abandoned stream reads as
   * `'cancelled'`.
   */
  readonly done: Promise<ProducerResult>;
  /**
   * `false` when an `idempotencyKey` named a stream already started, which was returned instead
   * (its factory was not called); `true` otherwise.
   */
  readonly created: boolean;
}

/** Runs producers detached from responses, and serves their chunks to any number of (re)connections. */
export interface Relay {
  /** The store the streams live in (share it with `limitStreams`). */
  readonly store: RelayStore;
  /**
   * Starts a producer with a fresh, unguessable id (or the `id` option), detached from any
   * response: it keeps writing chunks to the store while clients come and go, until it ends or is
   * aborted (grace, `cancel`, `maxChunks`). The factory's signal aborts then; hand it to the
   * provider SDK.
   * Resolves once the stream exists in the store, so a subscribe that follows always finds it.
   * @example
   * ```ts
   * const { id, done } = await relay.start((signal) => streamOpenAI(openai, params, { signal }));
   * ```
   */
  start(factory: TokenSourceFactory, options?: RelayStartOptions): Promise<RelayStream>;
  /**
   * Replays the chunks after `after`, then follows live, then ends with the stream's terminal
   * chunk, or throws the error the producer failed with. Unknown, expired or unauthorized ids
   * throw a `StreamNotFoundError`; a producer that vanished, a `ProducerLostError`. Errors are
   * thrown on the first read, so server adapters answer them with 404 / 400 before streaming.
   * The subscriber counts as attached from this call on.
   * @example
   * ```ts
   * for await (const chunk of relay.subscribe(id, { after: 41, signal })) send(chunk);
   * ```
   */
  subscribe(id: string, options?: RelaySubscribeOptions): AsyncIterableIterator<TokenChunk>;
  /**
   * Aborts a stream's producer wherever it runs (through the store). Resolves `true` when a
   * live stream was asked to stop, `false` when it is unknown, ended, or not the caller's.
   * @example
   * ```ts
   * app.post('/chat/:id/stop', async (req, res) => res.json({ stopped: await relay.cancel(req.params.id) }));
   * ```
   */
  cancel(id: string, options?: RelayCancelOptions): Promise<boolean>;
  /**
   * The id of the stream started with this `key` while it is live (started, not ended, its
   * producer alive), on whichever instance it runs; `undefined` when there is none (or the caller
   * may not read it, with `authorize`).
   * @example
   * ```ts
   * app.delete('/api/chat/:chatId/stream', async (req, res) => {
   *   const id = await relay.active(req.params.chatId);
   *   res.status(id !== undefined && (await relay.cancel(id)) ? 204 : 404).end();
   * });
   * ```
   */
  active(key: string, options?: RelayActiveOptions): Promise<string | undefined>;
  /**
   * For a resume route (`useChat({ resume: true })` calls `GET {api}/{chatId}/stream`): a source
   * factory that replays the active stream of `key` from its first chunk and follows it live, for
   * any server adapter; or `undefined` when the key has no active stream: answer `204`.
   * @example
   * ```ts
   * app.get('/api/chat/:chatId/stream', async (req, res) => {
   *   const source = await relay.resume(req.params.chatId);
   *   if (source === undefined) return void res.status(204).end();
   *   await sendSSE(req, res, source, { protocol: 'ai-sdk' });
   * });
   * ```
   */
  resume(key: string, options?: RelayActiveOptions): Promise<TokenSourceFactory | undefined>;
  /**
   * Cancels the producers this relay runs and waits until their ends are stored; closes the
   * store if the relay created it. Subscribers elsewhere get a `StreamAbortedError`.
   * @example
   * ```ts
   * process.on('SIGTERM', () => void relay.close());
   * ```
   */
  close(): Promise<void>;
}

/**
 * Creates a relay: LLM streams that survive reconnects. A producer runs detached from the HTTP
 * response and writes each chunk to a store; every response is a subscriber that replays what
 * the client missed (from its `Last-Event-ID`) and then follows live. When no subscriber is
 * attached for `graceMs` the producer is aborted, so a closed tab still stops the bill.
 *
 * @example
 * ```ts
 * const relay = createRelay({ graceMs: 10_000 });
 * app.post('/chat', async (req, res) => {
 *   const { id } = await relay.start((signal) => streamOpenAI(openai, params(req), { signal }));
 *   res.json({ id });
 * });
 * app.get('/chat/:id', (req, res) =>
 *   sendSSE(req, res, (signal) => relay.subscribe(req.params.id, { after: resumeCursor(req), signal })),
 * );
 * ```
 */
export function createRelay(options: RelayOptions = {}): Relay {
  assertOptionalNumber('graceMs', options.graceMs, { allowInfinity: true });
  assertOptionalNumber('ttlMs', options.ttlMs, { min: 1 });
  assertOptionalNumber('maxChunks', options.maxChunks, { min: 1, integer: true, allowInfinity: true });
  assertOptionalNumber('livenessMs', options.livenessMs, { min: 3 });
  if (options.authorize !== undefined) assertFunction('authorize', options.authorize);
  if (options.store !== undefined) assertStore(options.store);
  const ownsStore = options.store === undefined;
  const store = options.store ?? memoryStore();
  const graceMs = options.graceMs ?? 10_000;
  const ttlMs = options.ttlMs ?? 600_000;
  const maxChunks = options.maxChunks ?? 100_000;
  const livenessMs = options.livenessMs ?? 10_000;
  const { authorize } = options;
  // A key's pointer must outlive the heartbeats that refresh it.
  const activeTtlMs = Math.max(ttlMs, livenessMs);
  const producers = new Map<string, Producer>();
  let closed = false;

  const mayAccess = async (id: string, context: unknown): Promise<boolean> => {
    if (!isStreamId(id)) return false;
    if (authorize === undefined) return true;
    const info = await within(store.info(id), livenessMs, 'the stream info');
    return info !== undefined && (await authorize({ id, metadata: info.metadata }, context)) === true;
  };

  async function start(factory: TokenSourceFactory, startOptions?: RelayStartOptions): Promise<RelayStream> {
    // The 0.1 form, `start(id, factory, options)`: name the one that replaced it.
    if (typeof factory === 'string' || typeof startOptions === 'function') {
      throw new TypeError(
        `Expected \`factory\` to be a function, got ${describeValue(factory)}: pass the id as an option, \`relay.start(factory, { id })\``,
      );
    }
    const idInput = startOptions?.id;
    if (idInput !== undefined && !isStreamId(idInput)) {
      throw new TypeError(
        `Expected \`id\` to be 1–200 letters, digits, '-', '_', '.' or ':', got ${describeValue(idInput)}`,
      );
    }
    assertFunction('factory', factory);
    const metadata = checkMetadata(startOptions?.metadata);
    const key = checkKey(startOptions?.key, store);
    const idempotency = checkIdempotencyKey(startOptions?.idempotencyKey, store);
    if (closed) throw new StreamAbortedError('The relay is closed');
    const context = startOptions?.context;
    let claimKey: string | undefined;
    let stale: string | undefined;
    if (idempotency !== undefined) {
      claimKey = await scopedIdempotencyKey(idempotency, metadata);
      const claimed = await within(store.getClaim!(claimKey), livenessMs, 'the idempotency key');
      const joined = claimed === undefined ? undefined : await join(claimed, context);
      if (joined !== undefined) {
        disposeFactory(factory);
        return joined;
      }
      stale = claimed;
    }
    const id = idInput ?? randomId();
    if (!(await within(store.create(id, { ttlMs, metadata }), livenessMs, 'the new stream'))) {
      throw new TypeError('Expected `id` to name a new stream, got the id of an existing one');
    }
    const refreshers = [
      key === undefined ? undefined : activeRefresher(store, key, id, activeTtlMs),
      claimKey === undefined ? undefined : claimRefresher(store, claimKey, id, activeTtlMs),
    ].filter((refresh) => refresh !== undefined);
    const onBeat = refreshers.length === 0 ? undefined : () => refreshers.forEach((refresh) => refresh());
    const producer = new Producer({ store, id, factory: factory, graceMs, livenessMs, maxChunks, onBeat });
    const unwatch = store.watch(id, producer.onEvent);
    let status: ProducerStatus;
    try {
      // Awaited: until it is stored, a subscriber would find the stream without a live producer.
      const first = await within(store.heartbeat(id, livenessMs), livenessMs, 'the first heartbeat');
      status = first ?? { subscribers: 0, cancelled: false };
    } catch (error) {
      if (isStoreUnavailableError(error)) {
        unwatch();
        throw error;
      }
      status = { subscribers: 0, cancelled: false };
    }
    if (claimKey !== undefined) {
      // Claimed after the first heartbeat: a request that joins finds a live producer.
      let joined: RelayStream | undefined;
      try {
        joined = await claimFor(claimKey, id, stale, context);
      } catch (error) {
        unwatch();
        await discard(id);
        throw error;
      }
      if (joined !== undefined) {
        unwatch();
        await discard(id);
        disposeFactory(factory);
        return joined;
      }
    }
    if (key !== undefined) {
      try {
        await within(store.setActive!(key, id, { ttlMs: activeTtlMs, refresh: false }), livenessMs, 'the active stream of the key');
      } catch (error) {
        unwatch();
        throw error;
      }
    }
    producers.set(id, producer);
    producer.begin(unwatch, status);
    if (closed) producer.cancel('The relay was closed'); // close() ran while the stream was created
    void producer.done.then(() => {
      producers.delete(id);
      // The claim lasts as long as the stream is kept: ttlMs from its end.
      if (claimKey !== undefined) store.claim!(claimKey, id, { ttlMs }).catch(() => undefined);
    });
    return { id, done: producer.done, created: true };
  }

  /** Takes the idempotency key for `id`; when another live stream holds it, that stream (to join). */
  async function claimFor(claimKey: string, id: string, stale: string | undefined, context: unknown): Promise<RelayStream | undefined> {
    let replacing = stale;
    for (let attempt = 0; attempt < 5; attempt++) {
      const holder = await within(store.claim!(claimKey, id, { ttlMs: activeTtlMs, replacing }), livenessMs, 'the idempotency key');
      if (holder === id) return undefined;
      const joined = await join(holder, context);
      if (joined !== undefined) return joined;
      replacing = holder;
    }
    throw new StreamAbortedError('The idempotency key kept changing hands');
  }

  /** The stream a claim names, to return instead of a new one; `undefined` when it is gone or its producer died. */
  async function join(id: string, context: unknown): Promise<RelayStream | undefined> {
    const info = isStreamId(id) ? await within(store.info(id), livenessMs, 'the stream info') : undefined;
    if (info === undefined || (info.end === undefined && !info.alive)) return undefined;
    if (authorize !== undefined && (await authorize({ id, metadata: info.metadata }, context)) !== true) {
      throw new StreamNotFoundError('The idempotency key names a stream the caller may not read');
    }
    const local = producers.get(id);
    let followed: Promise<ProducerResult> | undefined;
    return {
      id,
      created: false,
      get done() {
        return local?.done ?? (followed ??= followEnd(id, info));
      },
    };
  }

  /** Resolves with the end of a stream produced elsewhere, as the store tells it. */
  async function followEnd(id: string, first: StreamInfo): Promise<ProducerResult> {
    let info: StreamInfo | undefined = first;
    for (;;) {
      if (info === undefined) return { outcome: 'failed', chunks: 0, error: new StreamNotFoundError() };
      const chunks = info.lastIndex + 1;
      if (info.end?.type === 'completed') return { outcome: 'completed', chunks };
      if (info.end?.type === 'failed') {
        const error = deserializeError(info.end.error);
        return { outcome: info.end.error.code === 'aborted' ? 'cancelled' : 'failed', chunks, error };
      }
      if (!info.alive) return { outcome: 'failed', chunks, error: new ProducerLostError() };
      if (closed) return { outcome: 'failed', chunks, error: new StreamAbortedError('The relay was closed') };
      await new Promise((resolve) => setTimeout(resolve, livenessMs / 3));
      try {
        info = await within(store.info(id), livenessMs, 'the stream info');
      } catch {
        // The store is out: look again later.
      }
    }
  }

  /** Ends a stream created for a claim another request won; nobody knows its id, it expires by TTL. */
  async function discard(id: string): Promise<void> {
    const error = serializeError(new StreamAbortedError('Another request with the same idempotency key started first'));
    await store.end(id, { type: 'failed', error }).catch(() => undefined);
  }

  async function active(key: string, activeOptions: RelayActiveOptions = {}): Promise<string | undefined> {
    if (typeof key !== 'string') throw new TypeError(`Expected \`key\` to be a string, got ${describeValue(key)}`);
    if (typeof store.getActive !== 'function') {
      throw new TypeError('Expected `store` to have getActive() (memoryStore and redisStore do), got a store without it');
    }
    if (!isStreamId(key)) return undefined;
    const id = await within(store.getActive(key), livenessMs, 'the active stream of the key');
    if (id === undefined || !(await mayAccess(id, activeOptions.context))) return undefined;
    return id;
  }

  return {
    store,
    start: start as Relay['start'],
    active,
    async resume(key, resumeOptions = {}) {
      const id = await active(key, resumeOptions);
      if (id === undefined) return undefined;
      const { context } = resumeOptions;
      return (signal) => openSubscription({ store, id, after: undefined, signal, context, authorize, livenessMs });
    },
    subscribe(id, subscribeOptions = {}) {
      if (typeof id !== 'string') throw new TypeError(`Expected \`id\` to be a string, got ${describeValue(id)}`);
      const { after, signal } = subscribeOptions;
      if (signal !== undefined) assertSignal('signal', signal);
      if (after !== undefined && after !== null && typeof after !== 'number' && typeof after !== 'string') {
        throw new TypeError(`Expected \`after\` to be a number or a string, got ${describeValue(after)}`);
      }
      return openSubscription({ store, id, after, signal, context: subscribeOptions.context, authorize, livenessMs });
    },
    async cancel(id, cancelOptions = {}) {
      if (typeof id !== 'string') throw new TypeError(`Expected \`id\` to be a string, got ${describeValue(id)}`);
      if (!(await mayAccess(id, cancelOptions.context))) return false;
      const cancelled = within(store.cancel(id), livenessMs, 'the cancel');
      // The producer may run here: stop it now rather than after the store's round trip.
      producers.get(id)?.cancel();
      return cancelled;
    },
    async close() {
      closed = true;
      const running = [...producers.values()];
      for (const producer of running) producer.cancel('The relay was closed');
      await Promise.all(running.map((producer) => producer.done));
      if (ownsStore) await store.close();
    },
  };
}

function checkKey(key: unknown, store: RelayStore): string | undefined {
  if (key === undefined) return undefined;
  if (!isStreamId(key)) {
    throw new TypeError(`Expected \`key\` to be 1–200 letters, digits, '-', '_', '.' or ':', got ${describeValue(key)}`);
  }
  if (typeof store.setActive !== 'function' || typeof store.getActive !== 'function') {
    throw new TypeError('Expected `store` to have setActive() and getActive() for a `key` (memoryStore and redisStore do), got a store without them');
  }
  return key;
}

/** Refreshes the key's pointer from the producer's heartbeats, about three times per TTL. */
function activeRefresher(store: RelayStore, key: string, id: string, ttlMs: number): () => void {
  let refreshedAt = performance.now();
  return () => {
    const now = performance.now();
    if (now - refreshedAt < ttlMs / 3) return;
    refreshedAt = now;
    // Best effort: a failed refresh is tried again at the next heartbeat.
    store.setActive!(key, id, { ttlMs, refresh: true }).catch(() => (refreshedAt = 0));
  };
}

function checkIdempotencyKey(key: unknown, store: RelayStore): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key === '' || key.length > 1024) {
    throw new TypeError(`Expected \`idempotencyKey\` to be a string of 1 to 1,024 characters, got ${describeValue(key)}`);
  }
  if (typeof store.claim !== 'function' || typeof store.getClaim !== 'function') {
    throw new TypeError('Expected `store` to have claim() and getClaim() for an `idempotencyKey` (memoryStore and redisStore do), got a store without them');
  }
  return key;
}

/** Refreshes an idempotency claim from the producer's heartbeats, about three times per TTL. */
function claimRefresher(store: RelayStore, claimKey: string, id: string, ttlMs: number): () => void {
  let refreshedAt = performance.now();
  return () => {
    const now = performance.now();
    if (now - refreshedAt < ttlMs / 3) return;
    refreshedAt = now;
    store.claim!(claimKey, id, { ttlMs }).catch(() => (refreshedAt = 0));
  };
}

function checkMetadata(metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  const ok =
    metadata !== null &&
    typeof metadata === 'object' &&
    !Array.isArray(metadata) &&
    Object.values(metadata).every((value) => typeof value === 'string') &&
    JSON.stringify(metadata).length <= 4096;
  if (!ok) {
    throw new TypeError(`Expected \`metadata\` to be an object of strings, at most 4 KiB as JSON, got ${describeValue(metadata)}`);
  }
  return { ...(metadata as Record<string, string>) };
}

const STORE_METHODS = ['create', 'append', 'end', 'read', 'info', 'heartbeat', 'attach', 'detach', 'watch', 'cancel'] as const;

function assertStore(store: unknown): asserts store is RelayStore {
  const ok =
    store !== null &&
    typeof store === 'object' &&
    STORE_METHODS.every((name) => typeof (store as Record<string, unknown>)[name] === 'function');
  if (!ok) {
    throw new TypeError(`Expected \`store\` to be a RelayStore (e.g. memoryStore()), got ${describeValue(store)}`);
  }
}
