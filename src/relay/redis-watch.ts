import type { StoreEvent } from './store.js';

/** What the shared subscriber connection must do (an ioredis duplicate). @internal */
export interface SubscriberConnection {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  disconnect(): void;
}

// Commands wait this long at most for a SUBSCRIBE to be acknowledged (watch is best effort).
const SUBSCRIBE_WAIT_MS = 2_000;

/**
 * Every `watch` of a store on one pub/sub connection, opened on the first watch: one channel per
 * watched stream, subscribed while it has listeners. `settled()` lets the store hold its next
 * commands until the SUBSCRIBEs sent so far are acknowledged, so an event published by a command
 * issued after `watch()` reaches the watcher.
 * @internal
 */
export class Announcements {
  readonly #open: () => SubscriberConnection;
  readonly #listeners = new Map<string, Set<(event: StoreEvent) => void>>();
  readonly #pending = new Set<Promise<unknown>>();
  #connection: SubscriberConnection | undefined;
  #closed = false;

  constructor(open: () => SubscriberConnection) {
    this.#open = open;
  }

  watch(channel: string, listener: (event: StoreEvent) => void): () => void {
    if (this.#closed) return () => undefined;
    const connection = this.#connect();
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
      this.#track(connection.subscribe(channel));
    }
    // A wrapper per call, so the same function watched twice is unwatched once per call.
    const entry = (event: StoreEvent): void => listener(event);
    listeners.add(entry);
    return () => {
      if (!listeners.delete(entry) || listeners.size > 0 || this.#listeners.get(channel) !== listeners) return;
      this.#listeners.delete(channel);
      if (!this.#closed) this.#track(connection.unsubscribe(channel));
    };
  }

  /** Resolves when the SUBSCRIBEs sent so far are answered (or after 2 s); `undefined` when none is pending. */
  settled(): Promise<void> | undefined {
    if (this.#pending.size === 0) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS)));
    return Promise.race([Promise.allSettled([...this.#pending]), timeout]).then(() => clearTimeout(timer));
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#pending.clear();
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.disconnect();
  }

  #connect(): SubscriberConnection {
    if (this.#connection !== undefined) return this.#connection;
    const connection = this.#open();
    connection.on('message', (channel, message) => this.#announce(channel, message));
    this.#connection = connection;
    return connection;
  }

  #track(command: Promise<unknown>): void {
    const settled: Promise<unknown> = command.then(
      () => this.#pending.delete(settled),
      () => this.#pending.delete(settled),
    );
    this.#pending.add(settled);
  }

  #announce(channel: string, message: string): void {
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined) return;
    const event = parseEvent(message);
    if (event === undefined) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch {
        // A watcher's failure is its own; the others still hear about it.
      }
    }
  }
}

function parseEvent(message: string): StoreEvent | undefined {
  if (message === 'c') return { type: 'cancel' };
  if (!message.startsWith('p:')) return undefined;
  const subscribers = Number(message.slice(2));
  return Number.isSafeInteger(subscribers) && subscribers >= 0 ? { type: 'presence', subscribers } : undefined;
}
