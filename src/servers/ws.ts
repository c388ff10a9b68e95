import { StreamAbortedError } from '../core/errors.js';
import type { StreamMetrics, StreamOutcome } from '../operators/monitored.js';
import { describeError, type SSEDonePayload, type SSEErrorPayload } from '../sse/encoder.js';
import type { TokenChunk, Usage } from '../core/types.js';
import { describeValue } from '../core/validate.js';
import { planWebSocket, type WebSocketPlan } from './internal/options.js';
import { MAX_DELAY } from './internal/pump.js';
import { trackStream, type ShutdownNotice } from './internal/registry.js';
import { openChunkStream, type ChunkStream, type ChunkStreamOptions, type TokenSourceInput } from './internal/response-stream.js';
import { CONNECTING, linkOf, OPEN, type SocketLink, type WebSocketLike } from './internal/websocket-link.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { ChunkStreamOptions, StreamLogError, StreamLogger, StreamLogRecord, TokenSourceInput } from './internal/response-stream.js';
export type { WebSocketLike } from './internal/websocket-link.js';

/** A chunk of the answer, as is: `chunk.type` is the chunk's kind (`'text'`, `'reasoning'`, `'tool-call'`). */
export interface WebSocketTokenMessage {
  /** Always `'token'`: tells this message apart from the other {@link WebSocketMessage} kinds. */
  type: 'token';
  /** The `streamId` option, when set. */
  streamId?: string | undefined;
  /** The chunk as the source produced it; the last chunk's `finishReason` and `usage` go in the `done` message instead. */
  chunk: TokenChunk;
}

/** The end of an answer: `{ finishReason, index?, usage?, model?, provider? }`, as the SSE `done` event. */
export interface WebSocketDoneMessage extends SSEDonePayload {
  /** Always `'done'`: the answer ended normally, and no more messages come for this stream. */
  type: 'done';
  /** The `streamId` option, when set. */
  streamId?: string | undefined;
}

/** The end of a failed answer: `{ code, message, status?, retryable?, retryAfterMs? }`, as the SSE `error` event. */
export interface WebSocketErrorMessage extends SSEErrorPayload {
  /** Always `'error'`: the answer failed (or was stopped by `signal`), and no more messages come for this stream. */
  type: 'error';
  /** The `streamId` option, when set. */
  streamId?: string | undefined;
}

/** Sent by {@link closeAllStreams} before the socket is closed: reconnect after `retryMs`. */
export interface WebSocketShutdownMessage {
  /** Always `'shutdown'`: the server is going away, and the socket is about to close. */
  type: 'shutdown';
  /** The `streamId` option, when set. */
  streamId?: string | undefined;
  /** How long to wait before reconnecting, in ms: {@link CloseAllStreamsOptions.retryMs}. */
  retryMs: number;
  /** Why, for the client: {@link CloseAllStreamsOptions.reason}, else `'The server is shutting down'`. */
  message: string;
}

/**
 * Every message {@link sendOverWebSocket} sends, as JSON text. A stream is any number of `token`
 * messages and then exactly one `done`, `error` or `shutdown`, unless the socket closed first.
 *
 * @example
 * ```ts
 * socket.addEventListener('message', ({ data }) => {
 *   const message = JSON.parse(data) as WebSocketMessage;
 *   if (message.type === 'token') output.append(message.chunk.token);
 * });
 * ```
 */
export type WebSocketMessage =
  | WebSocketTokenMessage
  | WebSocketDoneMessage
  | WebSocketErrorMessage
  | WebSocketShutdownMessage;

/** Options of {@link sendOverWebSocket}: the pipeline's (`timeout`, `backpressure`, `monitor`, `logger`) and the socket's (`maxBufferedAmount`, `writeTimeoutMs`, …). */
export interface SendOverWebSocketOptions extends ChunkStreamOptions {
  /**
   * Stops reading the source while `socket.bufferedAmount` is above this many bytes, until it
   * falls back to it (told by the `ws` send callback, or checked every 10 ms on a standard socket).
   * `Infinity` never waits.
   * @defaultValue `65536`
   */
  maxBufferedAmount?: number | undefined;
  /**
   * How long `socket.bufferedAmount` may stay above `maxBufferedAmount` (the client stopped
   * reading) before the client is considered gone: the socket is dropped (`terminate()` on a `ws`
   * socket, else closed), so every answer it carries ends, and the provider request is aborted
   * (`outcome: 'aborted'`, `metrics.error` a `StreamAbortedError`). `Infinity` waits forever; so
   * does a socket without `bufferedAmount`, or `maxBufferedAmount: Infinity`, which never wait.
   * @defaultValue `30_000`
   * @example
   * ```ts
   * sendOverWebSocket(socket, factory, { maxBufferedAmount: 256 * 1024, writeTimeoutMs: 10_000 });
   * ```
   */
  writeTimeoutMs?: number | undefined;
  /**
   * Closes the socket with code `1000` after the `done` or `error` message. Off by default: a chat
   * socket usually carries several answers.
   * @defaultValue `false`
   */
  closeOnEnd?: boolean | undefined;
  /**
   * Put in every message of this stream, so a client can tell apart answers that share a socket.
   * @defaultValue none
   */
  streamId?: string | undefined;
  /**
   * Stops this answer (and its provider request) without closing the socket, e.g. on a client's
   * "stop" message; the client then receives an `error` message with code `'aborted'`.
   * @defaultValue none
   */
  signal?: AbortSignal | undefined;
  /**
   * Puts the raw message of provider and unknown errors in the `error` message. Stack traces never.
   * @defaultValue `false`
   */
  exposeErrors?: boolean | undefined;
}

/** What {@link sendOverWebSocket} resolves with. */
export interface WebSocketStreamResult {
  /** How the stream ended: `'aborted'` when the socket closed or `signal` aborted. Same as `metrics.outcome`. */
  outcome: StreamOutcome;
  /** The stream's measurements (time to first token, duration, output tokens, usage, cost, error): the same object `monitor.onFinish` receives. */
  metrics: StreamMetrics;
}

// Long enough for a closing handshake, short enough for a deploy; then the connection is dropped.
const SHUTDOWN_CLOSE_MS = 1000;

/**
 * Sends a token stream over a WebSocket as JSON messages ({@link WebSocketMessage}): one `token`
 * message per chunk, then `done` (or `error`). The socket closing (or failing) aborts the
 * provider request; reading pauses while `socket.bufferedAmount` exceeds `maxBufferedAmount`.
 * Resolves when the stream has ended, however it ended; it never rejects for a socket close.
 * The stream is ended by {@link closeAllStreams}, which sends `shutdown` and closes the socket.
 *
 * @example
 * ```ts
 * wss.on('connection', (socket) => {
 *   socket.on('message', (data) => {
 *     const { messages } = JSON.parse(String(data));
 *     void sendOverWebSocket(socket, (signal) => streamOpenAI(openai, { model, messages }, { signal }));
 *   });
 * });
 * ```
 */
export function sendOverWebSocket(
  socket: WebSocketLike,
  source: TokenSourceInput,
  options: SendOverWebSocketOptions = {},
): Promise<WebSocketStreamResult> {
  assertSocket(socket);
  const plan = planWebSocket(options);
  const stream = openChunkStream(source, plan.stream, { id: plan.streamId });
  return new WebSocketRelay(linkOf(socket), stream, plan).run();
}


class WebSocketRelay {
  readonly #link: SocketLink;
  readonly #stream: ChunkStream;
  readonly #config: WebSocketPlan;
  readonly #tokenPrefix: string;
  #notice: ShutdownNotice | undefined;
  #finished: Promise<unknown> = Promise.resolve();
  #last: TokenChunk | undefined;
  #usage: Usage | undefined;

  constructor(link: SocketLink, stream: ChunkStream, config: WebSocketPlan) {
    this.#link = link;
    this.#stream = stream;
    this.#config = config;
    this.#tokenPrefix = `${prefix('token', config.streamId)},"chunk":`;
  }

  run(): Promise<WebSocketStreamResult> {
    const finished = this.#relay();
    this.#finished = finished;
    return finished;
  }

  async #relay(): Promise<WebSocketStreamResult> {
    const { controller, chunks, metrics } = this.#stream;
    const link = this.#link;
    const userSignal = this.#config.signal;
    const onUserAbort = (): void => controller.abort(userSignal?.reason);
    const unlisten = [link.listen('close', this.#onGone), link.listen('error', this.#onGone)];
    userSignal?.addEventListener('abort', onUserAbort, { once: true });
    if (userSignal?.aborted === true) onUserAbort();
    const untrack = trackStream({ shutdown: this.#shutdown });
    try {
      if (link.readyState === CONNECTING) await link.opened(controller.signal);
      if (link.readyState !== OPEN) this.#onGone();
      await this.#pump();
    } finally {
      void chunks.return?.();
      for (const remove of unlisten) remove();
      userSignal?.removeEventListener('abort', onUserAbort);
      untrack();
    }
    const report = await metrics;
    if (this.#config.closeOnEnd && this.#notice === undefined && link.readyState === OPEN) link.close(1000);
    return { outcome: report.outcome, metrics: report };
  }

  async #pump(): Promise<void> {
    const { controller, chunks } = this.#stream;
    const link = this.#link;
    const max = this.#config.maxBufferedAmount;
    for (;;) {
      if (link.full(max)) await this.#drained(max);
      let result: IteratorResult<TokenChunk>;
      try {
        result = await chunks.next();
        if (result.done === true) return this.#send(this.#doneMessage(undefined));
        this.#sendChunk(result.value);
      } catch (error) {
        return this.#send(this.#errorMessage(error));
      }
      if (result.value.finishReason !== undefined) return;
    }
  }

  /** Waits for the socket to drain, for `writeTimeoutMs` at most: then the client is dropped. */
  async #drained(max: number): Promise<void> {
    const { controller } = this.#stream;
    const ms = this.#config.writeTimeoutMs;
    if (ms > MAX_DELAY) return this.#link.drained(max, controller.signal);
    const timer = setTimeout(() => {
      // A socket that stays full carries nothing for any of its answers: dropping it ends them all.
      this.#link.drop();
      controller.abort(new StreamAbortedError(`The client read nothing for ${ms} ms`));
    }, ms);
    try {
      await this.#link.drained(max, controller.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends if the socket is still ours; a socket found closing ends the stream like a close event. */
  #send(message: string): void {
    if (this.#notice !== undefined || message === '') return;
    if (this.#link.readyState !== OPEN || !this.#link.send(message)) this.#onGone();
  }

  readonly #onGone = (): void => {
    this.#stream.controller.abort(new StreamAbortedError('The WebSocket closed before the stream ended'));
  };

  readonly #shutdown = async (notice: ShutdownNotice): Promise<void> => {
    if (this.#notice !== undefined) return;
    this.#notice = notice;
    const link = this.#link;
    if (link.readyState === OPEN) {
      const data = { retryMs: notice.retryMs, message: notice.message };
      link.send(`${prefix('shutdown', this.#config.streamId)},${JSON.stringify(data).slice(1)}`);
    }
    this.#stream.controller.abort(notice.reason);
    // closeAllStreams notifies every stream first: another stream on this socket still has to send its notice.
    await Promise.resolve();
    if (link.readyState === CONNECTING) return void (await this.#finished);
    const closed = link.closed(SHUTDOWN_CLOSE_MS);
    if (link.readyState === OPEN) link.closeForRestart();
    await Promise.all([this.#finished, closed]);
  };

  /** The final chunk becomes `done`, after a `token` message of its own if it carries text. */
  #sendChunk(chunk: TokenChunk): void {
    this.#last = chunk;
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason === undefined) return this.#send(this.#tokenPrefix + JSON.stringify(chunk) + '}');
    if (chunk.token !== '') {
      const { finishReason: _reason, usage: _usage, ...text } = chunk;
      this.#send(this.#tokenPrefix + JSON.stringify(text) + '}');
    }
    this.#send(this.#doneMessage(chunk));
  }

  #doneMessage(chunk: TokenChunk | undefined): string {
    const last = chunk ?? this.#last;
    const done: SSEDonePayload = { finishReason: chunk?.finishReason ?? 'stop' };
    if (last !== undefined) done.index = last.index;
    const usage = chunk?.usage ?? this.#usage;
    if (usage !== undefined) done.usage = usage;
    if (last?.model !== undefined) done.model = last.model;
    if (last?.provider !== undefined) done.provider = last.provider;
    return `${prefix('done', this.#config.streamId)},${JSON.stringify(done).slice(1)}`;
  }

  /** Empty when the client left or a shutdown notice went out: nobody is there to tell. */
  #errorMessage(error: unknown): string {
    if (this.#notice !== undefined || this.#link.readyState !== OPEN) return '';
    const payload = describeError(error, this.#config.exposeErrors);
    return `${prefix('error', this.#config.streamId)},${JSON.stringify(payload).slice(1)}`;
  }
}

/** The opening of a message object, ready for `,"field":…}`. */
function prefix(type: WebSocketMessage['type'], streamId: string | undefined): string {
  return streamId === undefined ? `{"type":"${type}"` : `{"type":"${type}","streamId":${JSON.stringify(streamId)}`;
}

function assertSocket(socket: unknown): asserts socket is WebSocketLike {
  const candidate = socket as Partial<WebSocketLike> | null;
  const ok =
    candidate !== null &&
    typeof candidate === 'object' &&
    typeof candidate.send === 'function' &&
    typeof candidate.close === 'function' &&
    typeof candidate.readyState === 'number' &&
    ((typeof candidate.on === 'function' && typeof candidate.off === 'function') ||
      (typeof candidate.addEventListener === 'function' && typeof candidate.removeEventListener === 'function'));
  if (!ok) {
    throw new TypeError(
      `Expected \`socket\` to be a WebSocket (from \`ws\` or the standard one: send, close, readyState and on/off or addEventListener), got ${describeValue(socket)}`,
    );
  }
}
