import type { TokenChunk } from '../core/types.js';
import type { SubscriberLink } from './redis-client.js';
import type { WaitOutcome } from './redis-follower.js';
import type { StoredEnd } from './store.js';

interface Entry {
  /** Entry position, as in the chunk stream: chunk `i` at `i + 1`, the end at `last + 2`. */
  readonly position: number;
  readonly chunk?: TokenChunk;
  readonly end?: StoredEnd;
}

interface Waiter {
  readonly position: number;
  readonly limit: number;
  readonly resolve: (outcome: WaitOutcome) => void;
}

interface Track {
  readonly channel: string;
  /** Position of the last entry heard; `undefined` before the first. */
  position: number | undefined;
  /** The last entries heard (at most {@link RECENT}), so a reader that comes back is served without a read. */
  readonly recent: Entry[];
  readonly waiters: Set<Waiter>;
  subscribed: boolean;
  idle: ReturnType<typeof setTimeout> | undefined;
}

// A track nobody waits on stays subscribed this long, so a reader that comes back joins without a round trip.
const IDLE_MS = 2_000;
const RECENT = 64;

/**
 * Follows live streams on a Redis Cluster, where one `XREAD` cannot span hash slots: the append
 * and end scripts `SPUBLISH` each entry on the stream's follow channel (`<prefix>{id}:f`, in the
 * stream's slot), and this follower `SSUBSCRIBE`s to the channels its readers wait on, on one
 * subscriber connection (one socket per master: the client routes each channel to its slot's
 * node). Pub/sub is at most once, so positions are checked: an entry heard after a gap, or a
 * reader behind what was heard, gets `retry` (the reader reads the chunks with `XRANGE`), and a
 * new subscription answers `retry` once it is acknowledged, so an entry written between the
 * reader's `XRANGE` and the `SSUBSCRIBE` is not missed. Same contract as `Follower`.
 * @internal
 */
export class ShardedFollower {
  readonly #open: () => SubscriberLink;
  readonly #channelOf: (key: string) => string;
  readonly #tracks = new Map<string, Track>();
  readonly #keys = new Map<string, string>();
  #connection: SubscriberLink | undefined;
  #closed = false;

  /**
   * @param open - the (shared) subscriber connection.
   * @param channelOf - a stream key's follow channel.
   */
  constructor(open: () => SubscriberLink, channelOf: (key: string) => string) {
    this.#open = open;
    this.#channelOf = channelOf;
  }

  /** True when a reader right after chunk `after` can wait without reading first. */
  isAt(key: string, after: number): boolean {
    const track = this.#tracks.get(key);
    // Without an entry heard, the follower cannot tell where the stream is: the reader reads first.
    return track !== undefined && track.subscribed && track.position !== undefined && this.#covers(track, after + 1);
  }

  wait(key: string, after: number, limit: number, ms: number, signal: AbortSignal | undefined): Promise<WaitOutcome> {
    if (this.#closed) return Promise.resolve({ type: 'timeout' });
    if (signal?.aborted === true) return Promise.resolve({ type: 'aborted' });
    const track = this.#track(key);
    const position = after + 1;
    if (track.subscribed && track.position !== undefined && track.position > position) {
      const outcome = this.#covers(track, position) ? serve(track.recent, position, limit) : undefined;
      return Promise.resolve(outcome ?? { type: 'retry' });
    }
    if (track.idle !== undefined) clearTimeout(track.idle);
    track.idle = undefined;
    return new Promise((resolve) => {
      const finish = (outcome: WaitOutcome): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        track.waiters.delete(waiter);
        if (track.waiters.size === 0) this.#idle(key, track);
        resolve(outcome);
      };
      const onAbort = (): void => finish({ type: 'aborted' });
      const waiter: Waiter = { position, limit, resolve: finish };
      const timer = setTimeout(() => finish({ type: 'timeout' }), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      track.waiters.add(waiter);
    });
  }

  close(): void {
    this.#closed = true;
    for (const track of this.#tracks.values()) {
      if (track.idle !== undefined) clearTimeout(track.idle);
      for (const waiter of [...track.waiters]) waiter.resolve({ type: 'timeout' });
    }
    this.#tracks.clear();
    this.#keys.clear();
    this.#connection = undefined;
  }

  #track(key: string): Track {
    let track = this.#tracks.get(key);
    if (track !== undefined) return track;
    const channel = this.#channelOf(key);
    const created: Track = { channel, position: undefined, recent: [], waiters: new Set(), subscribed: false, idle: undefined };
    track = created;
    this.#tracks.set(key, created);
    this.#keys.set(channel, key);
    this.#connect()
      .subscribe(channel)
      .then(
        () => {
          if (this.#tracks.get(key) !== created) return;
          created.subscribed = true;
          // Entries written between the reader's XRANGE and this SSUBSCRIBE were not heard: read them.
          for (const waiter of [...created.waiters]) waiter.resolve({ type: 'retry' });
        },
        () => this.#drop(key, created),
      );
    return track;
  }

  #connect(): SubscriberLink {
    if (this.#connection !== undefined) return this.#connection;
    const connection = this.#open();
    connection.on('message', (channel, message) => this.#hear(channel, message));
    this.#connection = connection;
    return connection;
  }

  #hear(channel: string, message: string): void {
    const key = this.#keys.get(channel);
    const track = key === undefined ? undefined : this.#tracks.get(key);
    if (key === undefined || track === undefined) return;
    const entry = parseEntry(message);
    if (entry === undefined || (track.position !== undefined && entry.position <= track.position)) return;
    const gap = track.position !== undefined && entry.position > track.position + 1;
    if (gap) track.recent.length = 0;
    track.position = entry.position;
    track.recent.push(entry);
    if (track.recent.length > RECENT) track.recent.shift();
    for (const waiter of [...track.waiters]) {
      if (waiter.position >= entry.position) continue;
      waiter.resolve(gap ? { type: 'retry' } : (serve(track.recent, waiter.position, waiter.limit) ?? { type: 'retry' }));
    }
    if (entry.end !== undefined && track.waiters.size === 0) this.#drop(key, track);
  }

  /** True when what was heard continues right after `position` (a reader there misses nothing). */
  #covers(track: Track, position: number): boolean {
    if (track.position === undefined || position >= track.position) return true;
    const first = track.recent[0];
    return first !== undefined && first.position <= position + 1;
  }

  #idle(key: string, track: Track): void {
    if (this.#closed || this.#tracks.get(key) !== track) return;
    if (track.recent.at(-1)?.end !== undefined) {
      this.#drop(key, track);
      return;
    }
    track.idle = setTimeout(() => {
      if (track.waiters.size === 0) this.#drop(key, track);
    }, IDLE_MS);
  }

  #drop(key: string, track: Track): void {
    if (this.#tracks.get(key) !== track) return;
    if (track.idle !== undefined) clearTimeout(track.idle);
    this.#tracks.delete(key);
    this.#keys.delete(track.channel);
    if (track.subscribed && !this.#closed) this.#connection?.unsubscribe(track.channel).then(undefined, () => undefined);
  }
}

/** The entries after `position` as a wait's answer, when they continue it; `undefined` when none does. */
function serve(recent: readonly Entry[], position: number, limit: number): WaitOutcome | undefined {
  const chunks: TokenChunk[] = [];
  let end: StoredEnd | undefined;
  let next = position + 1;
  for (const entry of recent) {
    if (entry.position < next) continue;
    if (entry.position > next) break;
    if (entry.end !== undefined) {
      end = entry.end;
      break;
    }
    if (chunks.length === limit) break;
    chunks.push(entry.chunk!);
    next++;
  }
  if (chunks.length === 0 && end === undefined) return undefined;
  const lastIndex = end === undefined ? chunks.at(-1)!.index : next - 2;
  return { type: 'data', chunks, end, lastIndex };
}

/** `c<chunk JSON>` or `e<last index>:<end JSON>`, as the append and end scripts publish them. */
function parseEntry(message: string): Entry | undefined {
  try {
    if (message.startsWith('c')) {
      const chunk = JSON.parse(message.slice(1)) as TokenChunk;
      return { position: chunk.index + 1, chunk };
    }
    if (message.startsWith('e')) {
      const colon = message.indexOf(':');
      return { position: Number(message.slice(1, colon)) + 2, end: JSON.parse(message.slice(colon + 1)) as StoredEnd };
    }
  } catch {
    // Not ours.
  }
  return undefined;
}
