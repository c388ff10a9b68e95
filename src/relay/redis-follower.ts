import type { TokenChunk } from '../core/types.js';
import { randomId, type StoredEnd } from './store.js';
import { scripts, type ScriptCaller } from './redis-scripts.js';

/** What a follower's blocking connection must do: run commands, and close. @internal */
export interface BlockingConnection extends ScriptCaller {
  disconnect(): void;
}

/** What a wait ends with. `retry`: entries arrived that the reader must read with XRANGE. */
export type WaitOutcome =
  | { type: 'data'; chunks: TokenChunk[]; end: StoredEnd | undefined; lastIndex: number }
  | { type: 'retry' | 'timeout' | 'aborted' };

interface Waiter {
  /** Entry position the reader has: entry ids are `<position>-0`, chunk `i` at position `i + 1`. */
  readonly position: number;
  readonly limit: number;
  readonly resolve: (outcome: WaitOutcome) => void;
}

interface Track {
  /** Position of the last entry seen: the XREAD cursor. */
  position: number;
  readonly waiters: Set<Waiter>;
}

interface Entry {
  readonly position: number;
  readonly chunk?: TokenChunk;
  readonly end?: StoredEnd;
}

// A track nobody waits on stays in the XREAD until its next entry or the next timeout, so a
// reader that comes back at the same position joins without a round trip.
const BLOCK_MS = 2_000;
const WAKE_TTL_MS = 60_000;
const RETRY_DELAY_MS = 100;

/**
 * Follows many streams on one connection: a single `XREAD BLOCK` over every stream a reader of
 * this instance waits on, each from the position its readers have, so no entry written between a
 * reader's `XRANGE` and its wait is missed. A new stream interrupts the XREAD through the
 * follower's own wake stream (no `CLIENT UNBLOCK`, so no extra permission). Waits time out and
 * abort locally; the connection is opened on the first wait and closed by {@link close}.
 * @internal
 */
export class Follower {
  readonly #client: ScriptCaller;
  readonly #open: () => BlockingConnection;
  readonly #keyPrefix: string;
  readonly #wakeKey: string;
  readonly #tracks = new Map<string, Track>();
  #connection: BlockingConnection | undefined;
  #running = false;
  #blocked = false;
  #closed = false;
  #wakeSent = 0;
  #wakeSeen = 0;
  #wakeIssued = 0;
  #pause: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;

  /**
   * @param client - sends the wake-ups (the user's client).
   * @param open - opens the blocking connection.
   * @param prefix - the store's prefix, for the follower's wake stream.
   * @param keyPrefix - the client's own `keyPrefix` (ioredis prepends it to keys but not to replies).
   */
  constructor(client: ScriptCaller, open: () => BlockingConnection, prefix: string, keyPrefix: string) {
    this.#client = client;
    this.#open = open;
    this.#keyPrefix = keyPrefix;
    this.#wakeKey = `${prefix}wake:${randomId()}`;
  }

  /** True when the XREAD already waits on `key` right after chunk `after`: a reader there can wait without reading first. */
  isAt(key: string, after: number): boolean {
    return this.#tracks.get(key)?.position === after + 1;
  }

  /** Waits up to `ms` for entries of `key` after chunk `after`. */
  wait(key: string, after: number, limit: number, ms: number, signal: AbortSignal | undefined): Promise<WaitOutcome> {
    if (this.#closed) return Promise.resolve({ type: 'timeout' });
    if (signal?.aborted === true) return Promise.resolve({ type: 'aborted' });
    const position = after + 1;
    let track = this.#tracks.get(key);
    if (track === undefined) {
      track = { position, waiters: new Set() };
      this.#tracks.set(key, track);
      this.#interrupt();
    } else if (track.position > position) {
      // Entries this reader has not seen arrived after its XRANGE: follow from its position.
      track.position = position;
      this.#interrupt();
    }
    const waiters = track.waiters;
    return new Promise((resolve) => {
      const finish = (outcome: WaitOutcome): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        resolve(outcome);
      };
      const onAbort = (): void => finish({ type: 'aborted' });
      const waiter: Waiter = { position, limit, resolve: finish };
      const timer = setTimeout(() => finish({ type: 'timeout' }), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
      void this.#run();
    });
  }

  /** Ends every wait and closes the connection, if one was opened. */
  close(): void {
    this.#closed = true;
    for (const track of this.#tracks.values()) for (const waiter of [...track.waiters]) waiter.resolve({ type: 'timeout' });
    this.#tracks.clear();
    if (this.#pause !== undefined) {
      clearTimeout(this.#pause.timer);
      this.#pause.resolve();
    }
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.disconnect();
  }

  async #run(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      while (!this.#closed && this.#tracks.size > 0) await this.#step();
    } finally {
      this.#running = false;
    }
  }

  async #step(): Promise<void> {
    this.#connection ??= this.#open();
    const keys = [...this.#tracks.keys()];
    const ids = keys.map((key) => `${this.#tracks.get(key)!.position}-0`);
    let count = 1;
    for (const track of this.#tracks.values()) for (const waiter of track.waiters) count = Math.max(count, waiter.limit + 1);
    let reply: unknown;
    this.#blocked = true;
    this.#wakeIssued = this.#wakeSent;
    try {
      const streams = [...keys, this.#wakeKey, ...ids, `${this.#wakeSeen}-0`];
      reply = await this.#connection.call('XREAD', 'COUNT', count, 'BLOCK', BLOCK_MS, 'STREAMS', ...streams);
    } catch {
      // Connection lost: waits end by their own timers; try again shortly (unless closed).
      if (!this.#closed) await this.#sleep(RETRY_DELAY_MS);
      return;
    } finally {
      this.#blocked = false;
    }
    if (reply === null || reply === undefined) {
      for (const [key, track] of this.#tracks) if (track.waiters.size === 0) this.#tracks.delete(key);
      return;
    }
    for (const [name, raw] of streamsOf(reply)) {
      const key = name.startsWith(this.#keyPrefix) ? name.slice(this.#keyPrefix.length) : name;
      const entries = raw.map(parseEntry);
      if (key === this.#wakeKey) {
        this.#wakeSeen = Math.max(this.#wakeSeen, ...entries.map((entry) => entry.position));
        continue;
      }
      const track = this.#tracks.get(key);
      if (track !== undefined && entries.length > 0) this.#deliver(key, track, entries);
    }
  }

  #deliver(key: string, track: Track, entries: Entry[]): void {
    const last = entries.at(-1)!;
    if (track.waiters.size === 0 || last.end !== undefined) this.#tracks.delete(key);
    track.position = last.position;
    const first = entries[0]!.position;
    for (const waiter of [...track.waiters]) {
      // An XREAD sent from a later position than this waiter's may have skipped entries it needs.
      if (first > waiter.position + 1) {
        waiter.resolve({ type: 'retry' });
        continue;
      }
      const fresh = entries.filter((entry) => entry.position > waiter.position);
      const chunks: TokenChunk[] = [];
      let end: StoredEnd | undefined;
      for (const entry of fresh) {
        if (entry.end !== undefined) {
          end = entry.end;
          break;
        }
        if (chunks.length === waiter.limit) break;
        chunks.push(entry.chunk!);
      }
      if (chunks.length === 0 && end === undefined) continue;
      const lastIndex = end === undefined ? chunks.at(-1)!.index : last.position - 2;
      waiter.resolve({ type: 'data', chunks, end, lastIndex });
    }
  }

  /** Makes an XREAD in flight return, so the next one includes a stream added since. */
  #interrupt(): void {
    if (!this.#blocked || this.#wakeSent > this.#wakeIssued) return;
    this.#wakeSent++;
    scripts.wake.run(this.#client, [this.#wakeKey], [`${this.#wakeSent}-0`, WAKE_TTL_MS]).then(undefined, () => undefined);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#pause = undefined;
        resolve();
      };
      this.#pause = { timer: setTimeout(done, ms), resolve: done };
    });
  }
}

type RawEntry = [string, string[]];

/** XREAD answers `[[key, entries]…]` in RESP2, `[key, entries, …]` in ioredis' RESP3 legacy mapping, `{ key: entries }` in its RESP3 mapping. */
function streamsOf(reply: unknown): Array<[string, RawEntry[]]> {
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, RawEntry[]>);
  if (reply.length === 0 || Array.isArray(reply[0])) return reply as Array<[string, RawEntry[]]>;
  const pairs: Array<[string, RawEntry[]]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1] as RawEntry[]]);
  return pairs;
}

function parseEntry([id, fields]: RawEntry): Entry {
  const position = Number(id.slice(0, id.indexOf('-')));
  if (fields[0] === 'e') return { position, end: JSON.parse(fields[1]!) as StoredEnd };
  if (fields[0] === 'c') return { position, chunk: JSON.parse(fields[1]!) as TokenChunk };
  return { position };
}
