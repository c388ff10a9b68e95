import type { TokenChunk } from '../core/types.js';

/** A `fetch` as the client calls it: the global one, a wrapped one, or a test double. */
export type FetchLike = (input: string | URL, init: RequestInit) => Promise<Response>;

/** Why the client reconnects. */
export type ReconnectReason =
  /** `fetch` failed or the connection broke while reading. */
  | 'network'
  /** No byte, not even a heartbeat, arrived for `idleTimeoutMs`. */
  | 'idle'
  /** The server answered 408, 429 or 5xx, or a tokenrelay error body with a transient code (`store-unavailable`). */
  | 'status'
  /** The response ended without a terminal event. */
  | 'ended'
  /** The server sent a `shutdown` event (a restart or deploy). */
  | 'shutdown'
  /** The server sent an `error` event whose cause may pass (`store-unavailable`: its store is out). */
  | 'error';

/** What `onRetry` is told before each reconnection. */
export interface RetryInfo {
  /** 1-based number of this reconnection since the last progress. */
  attempt: number;
  /** How long the client waits before reconnecting, in ms. */
  delayMs: number;
  /** Why it reconnects. */
  reason: ReconnectReason;
  /**
   * What ended the previous connection, when something did: the typed error of the server's
   * error body or `error` event, a `StreamConnectionError` (with `status`, or after `idleTimeoutMs`),
   * or the error `fetch` failed with. `undefined` when the response merely ended.
   */
  error: unknown;
  /** The `Last-Event-ID` the reconnection sends, if any. */
  lastEventId: string | undefined;
}

/**
 * How the client reconnects: exponential back-off with full jitter (a random delay between 0
 * and `initialDelayMs · 2^(attempt−1)`, capped at `maxDelayMs`), never sooner than the server's
 * `retry` field, a `Retry-After` header or a `shutdown` event's `retryMs`.
 *
 * @example
 * ```ts
 * streamTokens('/chat', { body, reconnect: { retries: 3, onRetry: ({ delayMs }) => showReconnecting(delayMs) } });
 * ```
 */
export interface ReconnectOptions {
  /**
   * Reconnections allowed in a row without progress (a new event). Then the last failure is thrown.
   * @defaultValue `8`
   */
  retries?: number | undefined;
  /**
   * The ceiling of the first back-off delay, in ms; it doubles with each attempt.
   * @defaultValue `1000`
   */
  initialDelayMs?: number | undefined;
  /**
   * The largest back-off ceiling, in ms. A longer `retry` from the server still wins.
   * @defaultValue `30_000`
   */
  maxDelayMs?: number | undefined;
  /**
   * The source of jitter, returning a number in [0, 1). Inject one for deterministic tests.
   * @defaultValue `Math.random`
   */
  random?: (() => number) | undefined;
  /**
   * Called before each reconnection — also while the first connection keeps failing — with the
   * attempt number, the delay before it, why, and the error that ended the previous connection:
   * the place to show "reconnecting…" (and `onOpen`, the place to hide it). Not called for a
   * terminal answer (`producer-lost`, `not-found`, 401, …), which is thrown at once. What it
   * throws (or an `async` hook rejects with) is ignored: it cannot end or stall the reconnection.
   * @defaultValue none
   * @example
   * ```ts
   * streamTokens('/chat', {
   *   body,
   *   reconnect: { onRetry: ({ attempt, delayMs }) => banner.show(`Reconnecting (attempt ${attempt}) in ${Math.ceil(delayMs / 1000)} s…`) },
   *   onOpen: () => banner.hide(),
   * });
   * ```
   */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

/**
 * Options of {@link streamEvents}, and of {@link streamTokens}.
 *
 * @example
 * ```ts
 * const options: StreamEventsOptions = {
 *   body: { messages },
 *   headers: { authorization: `Bearer ${token}` },
 *   resume: '/chat/{id}',
 *   signal: controller.signal,
 * };
 * ```
 */
export interface StreamEventsOptions {
  /**
   * The HTTP method of the first request. Reconnections to a `resume` URL always use `GET`.
   * @defaultValue `'POST'` when there is a `body`, else `'GET'`
   */
  method?: string | undefined;
  /**
   * Request headers, sent with every (re)connection. `Accept: text/event-stream` is added unless set.
   * @defaultValue none
   */
  headers?: HeadersInit | undefined;
  /**
   * The request body. A plain object or array is sent as JSON (with `Content-Type:
   * application/json` unless set). A `ReadableStream` is refused: it could not be sent again.
   * @defaultValue none
   */
  body?: BodyInit | Record<string, unknown> | readonly unknown[] | null | undefined;
  /**
   * Aborting it closes the connection at once; a pending read rejects with a
   * `StreamAbortedError` whose `cause` is the signal's reason.
   * @defaultValue none
   */
  signal?: AbortSignal | undefined;
  /**
   * Where to reconnect once the server has named the stream in its `X-Stream-Id` response
   * header: a function of the id, or a template whose `{id}` is replaced by the URL-encoded id.
   * Without it, or before an id is known, a reconnection repeats the first request.
   * @defaultValue none
   * @example
   * ```ts
   * streamTokens('/chat', { body, resume: (id) => `/chat/${encodeURIComponent(id)}` });
   * streamTokens('/chat', { body, resume: '/chat/{id}' });
   * ```
   */
  resume?: string | ((streamId: string) => string | URL) | undefined;
  /**
   * Reconnection with `Last-Event-ID`, or `false` to fail on the first broken connection.
   * @defaultValue `{ retries: 8, initialDelayMs: 1000, maxDelayMs: 30_000 }`
   */
  reconnect?: ReconnectOptions | false | undefined;
  /**
   * A connection that delivers no byte (not even a heartbeat comment) for this long, headers
   * included, is closed and reconnected. Keep it above the server's `heartbeatMs` (15 s by
   * default). `0` or `Infinity` turn it off.
   * @defaultValue `45_000`
   */
  idleTimeoutMs?: number | undefined;
  /**
   * The `fetch` to use, e.g. one that adds `credentials: 'include'`, or a test double.
   * @defaultValue `globalThis.fetch`, looked up at each request
   */
  fetch?: FetchLike | undefined;
  /**
   * Called with each response that opens a stream (the first one, and each reconnection).
   * @defaultValue none
   */
  onOpen?: ((response: Response) => void) | undefined;
}

/** Event names {@link streamTokens} reacts to; match the server's `toSSE({ events })`. */
export interface ClientEventNames {
  /** @defaultValue `'token'` */
  token?: string | undefined;
  /** @defaultValue `'done'` */
  done?: string | undefined;
  /** @defaultValue `'error'` */
  error?: string | undefined;
  /** @defaultValue `'shutdown'` */
  shutdown?: string | undefined;
}

/**
 * Options of {@link streamTokens}.
 *
 * @example
 * ```ts
 * streamTokens('/chat', { body: { messages }, resume: '/chat/{id}', idleTimeoutMs: 30_000 });
 * ```
 */
export interface StreamTokensOptions extends StreamEventsOptions {
  /**
   * Renamed events, when the server renamed them.
   * @defaultValue `{ token: 'token', done: 'done', error: 'error', shutdown: 'shutdown' }`
   */
  events?: ClientEventNames | undefined;
}

/** One Server-Sent Event, as the WHATWG `EventSource` would dispatch it. */
export interface ServerSentEvent {
  /** The event type: the `event` field, or `'message'` when there was none. */
  event: string;
  /** The `data` lines joined with `\n`. */
  data: string;
  /** The last `id` the stream set, this event's or an earlier one (it persists); `''` if none. */
  lastEventId: string;
}

/** What both client streams expose besides their items. */
export interface ClientStreamState {
  /** The last event id received (sent as `Last-Event-ID` on reconnect), if any. */
  readonly lastEventId: string | undefined;
  /** The stream id from the server's `X-Stream-Id` header, once a response carried one. */
  readonly streamId: string | undefined;
}

/** The events of {@link streamEvents}: iterate once; `break` or `return()` closes the connection. */
export interface ClientEventStream extends AsyncIterableIterator<ServerSentEvent>, ClientStreamState {
  /** Stops the stream now, even during a pending read (which resolves as done), and closes the connection. */
  return(): Promise<IteratorResult<ServerSentEvent>>;
}

/** The chunks of {@link streamTokens}: iterate once; `break` or `return()` closes the connection. */
export interface ClientTokenStream extends AsyncIterableIterator<TokenChunk>, ClientStreamState {
  /** Stops the stream now, even during a pending read (which resolves as done), and closes the connection. */
  return(): Promise<IteratorResult<TokenChunk>>;
  /**
   * Reads the stream to its end and resolves with the whole answer: the tokens of every `'text'`
   * chunk, including those already iterated. Rejects as iteration would.
   * @example
   * ```ts
   * const answer = await streamTokens('/chat', { body: { messages } }).text();
   * ```
   */
  text(): Promise<string>;
}
