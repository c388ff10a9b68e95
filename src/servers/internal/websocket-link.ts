// One socket, whichever kind (the `ws` package or the standard WebSocket): its events, its
// sends, and waiting for its buffer to drain. Shared by every stream the socket carries.

export const CONNECTING = 0;
export const OPEN = 1;
const CLOSED = 3;
const POLL_MS = 10;

/**
 * What `sendOverWebSocket` needs of a socket: the `ws` package's `WebSocket` and the
 * standard one (Node 22+ global, browsers, Deno, Cloudflare Workers) both fit. Events are heard
 * through `on`/`off` when present (`ws`), else through `addEventListener`/`removeEventListener`.
 */
export interface WebSocketLike {
  /** `0` connecting, `1` open, `2` closing, `3` closed. */
  readonly readyState: number;
  /** Bytes queued but not yet sent; a socket without it is never waited on. */
  readonly bufferedAmount?: number | undefined;
  /** Sends one text message; with `ws`, `callback` is called once it is written. */
  send(data: string, callback?: (error?: Error) => void): void;
  /** Closes the socket with a close code. */
  close(code?: number, reason?: string): void;
  /** `ws` style listener; a socket that has it is taken to be a `ws` socket. */
  on?(event: 'open' | 'close' | 'error', listener: () => void): unknown;
  /** `ws` style listener removal. */
  off?(event: 'open' | 'close' | 'error', listener: () => void): unknown;
  /** Standard `WebSocket` listener. */
  addEventListener?(type: 'open' | 'close' | 'error', listener: () => void): void;
  /** Standard `WebSocket` listener removal. */
  removeEventListener?(type: 'open' | 'close' | 'error', listener: () => void): void;
  /** `ws` only: drops the connection when a shutdown's closing handshake does not finish, or the client stopped reading (`writeTimeoutMs`). */
  terminate?(): void;
}

const links = new WeakMap<WebSocketLike, SocketLink>();

/** The link of a socket, shared by every stream it carries so any write completion can wake any of them. */
export function linkOf(socket: WebSocketLike): SocketLink {
  let link = links.get(socket);
  if (link === undefined) {
    link = new SocketLink(socket);
    links.set(socket, link);
  }
  return link;
}

type SocketEvent = 'open' | 'close' | 'error';

interface DrainWaiter {
  max: number;
  done(): void;
}

/** One socket, whichever kind: its events, its sends, and waiting for its buffer to drain. */
export class SocketLink {
  readonly #socket: WebSocketLike;
  // The `ws` send callback runs when a message has been written out: an exact drain signal.
  readonly #hasSendCallback: boolean;
  readonly #waiters = new Set<DrainWaiter>();
  // One listener of ours per event on the socket, whatever the number of streams it carries
  // (each stream adding its own would trip Node's MaxListeners warning past ten).
  readonly #listeners = new Map<SocketEvent, Set<() => void>>();
  readonly #detach = new Map<SocketEvent, () => void>();

  constructor(socket: WebSocketLike) {
    this.#socket = socket;
    this.#hasSendCallback = typeof socket.on === 'function';
  }

  get readyState(): number {
    return this.#socket.readyState;
  }

  full(max: number): boolean {
    const buffered = this.#socket.bufferedAmount;
    return typeof buffered === 'number' && buffered > max;
  }

  /** False when the socket threw, i.e. it can no longer send. */
  send(message: string): boolean {
    try {
      if (this.#hasSendCallback) this.#socket.send(message, this.#onSent);
      else this.#socket.send(message);
      return true;
    } catch {
      return false;
    }
  }

  /** Calls `listener` on each `type` event until the returned function is called. */
  listen(type: SocketEvent, listener: () => void): () => void {
    let listeners = this.#listeners.get(type);
    if (listeners === undefined) {
      const registered = new Set<() => void>();
      listeners = registered;
      this.#listeners.set(type, registered);
      // A copy: a listener may stop listening (or others may start) while the event is dispatched.
      this.#detach.set(type, this.#attach(type, () => [...registered].forEach((call) => call())));
    }
    const entry = (): void => listener();
    listeners.add(entry);
    return () => {
      const registered = this.#listeners.get(type);
      if (registered === undefined || !registered.delete(entry) || registered.size > 0) return;
      this.#listeners.delete(type);
      this.#detach.get(type)?.();
      this.#detach.delete(type);
    };
  }

  #attach(type: SocketEvent, dispatch: () => void): () => void {
    const socket = this.#socket;
    if (typeof socket.on === 'function' && typeof socket.off === 'function') {
      socket.on(type, dispatch);
      return () => socket.off?.(type, dispatch);
    }
    socket.addEventListener?.(type, dispatch);
    return () => socket.removeEventListener?.(type, dispatch);
  }

  /** Resolves once `bufferedAmount` is back to `max`, or `signal` aborts (a close aborts it). */
  drained(max: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: DrainWaiter = {
        max,
        done: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', waiter.done);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      const poll = (): void => {
        if (!this.full(max) || this.#socket.readyState !== OPEN) waiter.done();
        else timer = setTimeout(poll, POLL_MS);
      };
      if (signal.aborted) return waiter.done();
      signal.addEventListener('abort', waiter.done, { once: true });
      if (this.#hasSendCallback) this.#waiters.add(waiter);
      else timer = setTimeout(poll, POLL_MS);
    });
  }

  /** Resolves on `open`, or when `signal` aborts (a close aborts it). */
  opened(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        unlisten();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const unlisten = this.listen('open', done);
      signal.addEventListener('abort', done, { once: true });
      if (signal.aborted) done();
    });
  }

  /** Resolves when the socket has closed; after `ms` it is dropped (where it can be) and waited on `ms` more at most. */
  closed(ms: number): Promise<void> {
    const socket = this.#socket;
    if (socket.readyState === CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unlisten();
        resolve();
      };
      const drop = (): void => {
        if (typeof socket.terminate !== 'function') return done();
        timer = setTimeout(done, ms);
        try {
          socket.terminate();
        } catch {
          done();
        }
      };
      const unlisten = this.listen('close', done);
      let timer = setTimeout(drop, ms);
    });
  }

  /** 1012 (Service Restart) tells the client to come back; the standard API allows only 1000 and 3000–4999. */
  closeForRestart(): void {
    try {
      this.#socket.close(1012, 'shutdown');
    } catch {
      this.close(1000);
    }
  }

  /**
   * Drops a connection that stopped reading: `terminate()` where the socket has it (`ws`), since
   * a closing handshake cannot get through a full buffer; else a close (`1008`, or `1000` where
   * the runtime only allows that).
   */
  drop(): void {
    try {
      if (typeof this.#socket.terminate === 'function') return this.#socket.terminate();
      this.#socket.close(1008, 'write timeout');
    } catch {
      this.close(1000);
    }
  }

  close(code: number): void {
    try {
      this.#socket.close(code);
    } catch {
      // A socket that refuses to close is closing already.
    }
  }

  readonly #onSent = (): void => {
    for (const waiter of this.#waiters) if (!this.full(waiter.max)) waiter.done();
  };
}
