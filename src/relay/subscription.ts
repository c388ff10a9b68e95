import {
  InvalidCursorError,
  isStoreUnavailableError,
  ProducerLostError,
  StoreUnavailableError,
  StreamAbortedError,
  StreamNotFoundError,
} from '../core/errors.js';
import { Interruptible } from '../core/kernel.js';
import type { TokenChunk } from '../core/types.js';
import { parseCursor } from './cursor.js';
import { MAX_ATTEMPTS, OutageClock, pause, retryDelay } from './outage.js';
import { deserializeError, isStreamId, randomId, type ReadResult, type RelayStore } from './store.js';

/** A stream as `authorize` sees it. */
export interface RelayStreamInfo {
  /** The stream's id. */
  id: string;
  /** The metadata given to `relay.start`. */
  metadata: Readonly<Record<string, string>>;
}

/** Decides whether the caller described by `context` may read or cancel a stream. */
export type RelayAuthorize = (stream: RelayStreamInfo, context: unknown) => boolean | Promise<boolean>;

/** A resume cursor as `subscribe` takes it: an index, or the raw `Last-Event-ID` text. */
export type CursorInput = number | string | null | undefined;

/** @internal */
export interface SubscriptionConfig {
  store: RelayStore;
  id: string;
  after: CursorInput;
  signal: AbortSignal | undefined;
  context: unknown;
  authorize: RelayAuthorize | undefined;
  livenessMs: number;
}

const BATCH = 256;

/**
 * One subscriber: counted as attached from the call on (so a producer's grace window sees it at
 * once), replays, then follows. Reads that fail as unavailable are retried; once the store has
 * not answered for `livenessMs` (its presence refreshes, every third of it, tell), it ends with a
 * `StoreUnavailableError`. Every exit detaches it, clears its timers and removes its listener at
 * once, without waiting for a read in flight.
 * @internal
 */
export function openSubscription(config: SubscriptionConfig): AsyncIterableIterator<TokenChunk> {
  const { store, id, signal, livenessMs } = config;
  const stopped = new AbortController();
  const subscriberId = randomId();
  const outage = new OutageClock(livenessMs, (error) => iterator.stop(error));
  const presence = { timer: undefined as ReturnType<typeof setTimeout> | undefined, started: undefined as number | undefined };
  const attached = isStreamId(id) && signal?.aborted !== true;

  // A refresh still unanswered when the next is due counts as missed; none is sent on top of it.
  const attach = (): void => {
    if (presence.started !== undefined) {
      outage.missed(presence.started);
      return;
    }
    const started = performance.now();
    presence.started = started;
    quietly(() =>
      outage.call(() => store.attach(id, subscriberId, livenessMs)).finally(() => {
        if (presence.started === started) presence.started = undefined;
      }),
    );
  };
  if (attached) attach();

  const keepPresence = (): void => {
    if (!attached || stopped.signal.aborted) return;
    presence.timer = setTimeout(() => {
      attach();
      keepPresence();
    }, livenessMs / 3);
  };
  const onAbort = (): void => {
    iterator.stop(new StreamAbortedError(undefined, { cause: signal?.reason }));
  };
  const close = (): void => {
    stopped.abort();
    clearTimeout(presence.timer);
    outage.stop();
    signal?.removeEventListener('abort', onAbort);
    if (attached) quietly(() => store.detach(id, subscriberId));
  };
  const iterator = new Interruptible(follow(config, outage, stopped.signal, keepPresence), close);
  if (signal?.aborted === true) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return iterator;
}

async function* follow(
  config: SubscriptionConfig,
  outage: OutageClock,
  stopped: AbortSignal,
  keepPresence: () => void,
): AsyncGenerator<TokenChunk, void, undefined> {
  const { store, id, authorize, livenessMs } = config;
  const after = toCursor(config.after);
  if (!isStreamId(id)) throw new StreamNotFoundError();
  const retrying = <T>(call: () => Promise<T>): Promise<T> => untilAnswered(outage, stopped, call);
  if (authorize !== undefined) {
    const info = await retrying(() => store.info(id));
    if (info === undefined || (await authorize({ id, metadata: info.metadata }, config.context)) !== true) {
      throw new StreamNotFoundError();
    }
  }
  keepPresence();
  let cursor = after ?? -1;
  let result: ReadResult | undefined = await retrying(() => store.read(id, cursor, { limit: BATCH, waitMs: 0, signal: stopped }));
  if (result === undefined) throw new StreamNotFoundError();
  if (cursor > result.lastIndex) throw new InvalidCursorError();
  for (;;) {
    for (const chunk of result.chunks) {
      yield chunk;
      cursor = chunk.index;
    }
    if (result.end !== undefined) {
      if (result.end.type === 'failed') throw deserializeError(result.end.error);
      return;
    }
    if (result.chunks.length === 0 && !result.alive) throw new ProducerLostError();
    if (stopped.aborted) return;
    result = await retrying(() => store.read(id, cursor, { limit: BATCH, waitMs: livenessMs, signal: stopped }));
    if (result === undefined) throw new StreamNotFoundError('The stream expired');
  }
}

/** One store call, again after each `StoreUnavailableError`, until it is answered or the subscription stops (the outage clock stops it). */
async function untilAnswered<T>(outage: OutageClock, stopped: AbortSignal, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    try {
      return await outage.call(call);
    } catch (error) {
      if (stopped.aborted || !isStoreUnavailableError(error)) throw error;
    }
    await pause(retryDelay(attempt), stopped);
    if (stopped.aborted) break;
  }
  throw new StoreUnavailableError();
}

function toCursor(after: CursorInput): number | undefined {
  if (typeof after !== 'number') return parseCursor(after);
  if (!Number.isSafeInteger(after) || after < 0) throw new InvalidCursorError();
  return after;
}

/** Presence is best effort: a store that fails here must not fail the subscriber. */
function quietly(command: () => Promise<unknown>): void {
  try {
    command().then(undefined, () => undefined);
  } catch {
    // Same as a rejection.
  }
}
