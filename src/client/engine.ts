import { backoffDelay, sleep } from './backoff.js';
import { StreamConnectionError, StreamServerError } from './errors.js';
import { EventReader, MAX_EVENT_SIZE } from './event-reader.js';
import { IdleTimer } from './idle-timer.js';
import type { ClientConfig } from './options.js';
import { checkURL, isEventStream, lastEventIdHeader, resumeURL, retryAfterMs } from './request.js';
import { cancelBody, errorOfBody, untilAborted } from './response.js';
import { isRetryableAnswer } from './retry-policy.js';
import type { ReconnectReason, RetryInfo, ServerSentEvent } from './types.js';

/** Why a connection ended short of the end of the stream. */
interface Failure {
  reason: ReconnectReason;
  /** What ended it (for `onRetry` and as the `cause` of the final error). */
  error: unknown;
  /** The typed error from the server's error body: thrown as it is once retries run out. */
  typed?: Error | undefined;
  status?: number | undefined;
  /** The least delay the server asked for (`Retry-After`). */
  floorMs: number;
}

const IDLE = Symbol('idle');
const OPEN = Symbol('open');

/**
 * The connection loop shared by both client streams: connect, parse, and on a broken or idle
 * connection reconnect with `Last-Event-ID` (to the `resume` URL once the server named the
 * stream), with back-off. Terminal answers (see `isRetryableAnswer`) throw at once; the consumer
 * ends the stream on its terminal events by stopping the iteration, or asks for a reconnection
 * with `retryAfterError`. `stop()` closes the connection in flight at once.
 */
export class EventSourceEngine {
  /** The last event id, shared with each response's reader: it outlives connections. */
  readonly lastEventId = { value: '' };
  streamId: string | undefined;
  readonly #config: ClientConfig;
  readonly #stopper = new AbortController();
  #attempts = 0;
  #connections = 0;
  #retryMs = 0;
  #planned: { floorMs: number; reason: ReconnectReason } | undefined;
  /** The current connection went to the `resume` URL. */
  #resuming = false;
  /** Set by the consumer: end the current connection with this failure after the event it is handling. */
  #failure: Failure | undefined;

  constructor(config: ClientConfig) {
    this.#config = config;
  }

  /** Closes the connection in flight (or the back-off wait) and ends `events()`. */
  stop(): void {
    this.#stopper.abort();
  }

  /** The consumer got something new: the next failure starts the back-off over. */
  progress(): void {
    this.#attempts = 0;
  }

  /** The server announced its end (`shutdown`): reconnect no sooner than `floorMs`. */
  reconnectAfter(floorMs: number, reason: ReconnectReason): void {
    this.#planned = { floorMs, reason };
  }

  /**
   * The server reported, inside the stream, a failure it may recover from (an `error` event with
   * a transient code): the connection is closed before its next event and resumed, with back-off;
   * `error` is thrown if the retries run out.
   */
  retryAfterError(error: Error): void {
    this.#failure = { reason: 'error', error, typed: error, floorMs: 0 };
  }

  async *events(): AsyncGenerator<ServerSentEvent, void, undefined> {
    // Bounded: each pass either makes progress or counts against `retries`.
    for (;;) {
      const failure = yield* this.#connect();
      if (failure === undefined || this.#stopper.signal.aborted) return;
      await this.#wait(failure);
      if (this.#stopper.signal.aborted) return;
    }
  }

  async #wait(failure: Failure): Promise<void> {
    const planned = this.#planned;
    this.#planned = undefined;
    const { backoff, onRetry } = this.#config;
    this.#attempts++;
    if (this.#attempts > backoff.retries) throw this.#exhausted(failure);
    const floorMs = Math.max(this.#retryMs, failure.floorMs, planned?.floorMs ?? 0);
    const delayMs = backoffDelay(backoff, this.#attempts, floorMs);
    const lastEventId = this.lastEventId.value === '' ? undefined : this.lastEventId.value;
    if (onRetry !== undefined) {
      notify(onRetry, { attempt: this.#attempts, delayMs, reason: planned?.reason ?? failure.reason, error: failure.error, lastEventId });
    }
    await sleep(delayMs, this.#stopper.signal);
  }

  #exhausted(failure: Failure): Error {
    if (failure.typed !== undefined) return failure.typed;
    const tries = this.#connections === 1 ? '1 connection' : `${this.#connections} connections`;
    return new StreamConnectionError(`${describeFailure(failure, this.#config.idleTimeoutMs)}; gave up after ${tries}`, {
      status: failure.status,
      attempts: this.#connections,
      cause: failure.error,
    });
  }

  async *#connect(): AsyncGenerator<ServerSentEvent, Failure | undefined, undefined> {
    const stop = this.#stopper.signal;
    if (stop.aborted) return undefined;
    const controller = new AbortController();
    const signal = controller.signal;
    const onStop = (): void => controller.abort();
    stop.addEventListener('abort', onStop, { once: true });
    const idle = new IdleTimer(this.#config.idleTimeoutMs, () => controller.abort(IDLE));
    this.#connections++;
    try {
      // Outside the inner `try`: a request that cannot even be built is a bug, not a network failure.
      const pending = this.#fetch(signal);
      let response: Response;
      try {
        response = await untilAborted(pending, signal);
      } catch (error) {
        return this.#interrupted(signal, error);
      }
      idle.touch();
      const verdict = await this.#check(response, signal);
      if (verdict !== OPEN) return verdict;
      this.#config.onOpen?.(response);
      const body = response.body;
      if (body === null) return { reason: 'ended', error: undefined, floorMs: 0 };
      const reader = body.getReader();
      // A cancelled reader settles its pending read, whatever the `fetch` did with the signal.
      signal.addEventListener('abort', () => void reader.cancel().catch(() => {}), { once: true });
      const events: ServerSentEvent[] = [];
      let overflow = false;
      const parser = new EventReader(
        {
          event: (event) => events.push(event),
          retry: (ms) => (this.#retryMs = ms),
          overflow: () => (overflow = true),
        },
        this.lastEventId,
      );
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          return this.#interrupted(signal, error);
        }
        if (signal.aborted) return this.#interrupted(signal, undefined);
        if (result.done) return { reason: 'ended', error: undefined, floorMs: 0 };
        idle.touch();
        parser.push(result.value);
        if (overflow) throw new StreamServerError('protocol', `The server sent an event larger than ${MAX_EVENT_SIZE} characters`);
        for (const event of events.splice(0)) {
          yield event;
          const failure = this.#failure;
          this.#failure = undefined;
          if (failure !== undefined) return failure;
        }
      }
    } finally {
      idle.clear();
      stop.removeEventListener('abort', onStop);
      // Closes the connection if it is still open: after a terminal event, a stop or an error.
      controller.abort();
    }
  }

  #fetch(signal: AbortSignal): Promise<Response> {
    const { request, resume } = this.#config;
    const streamId = this.streamId;
    const resuming = streamId !== undefined && resume !== undefined;
    this.#resuming = resuming;
    const url = resuming ? checkURL('the URL returned by `resume`', resumeURL(resume, streamId)) : request.url;
    const headers = new Headers(request.headers);
    if (resuming) headers.delete('content-type');
    const id = this.lastEventId.value;
    if (id !== '') headers.set('last-event-id', lastEventIdHeader(id));
    const fetchImpl = this.#config.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new TypeError('Expected a global `fetch` or the `fetch` option, got neither');
    }
    return Promise.resolve(
      fetchImpl(url, { method: resuming ? 'GET' : request.method, headers, body: resuming ? null : request.body, signal }),
    );
  }

  /** A response that opens a stream, or why not: an end for good (`undefined`), a failure to retry, or a throw. */
  async #check(response: Response, signal: AbortSignal): Promise<typeof OPEN | Failure | undefined> {
    const { status } = response;
    if (status === 204) {
      cancelBody(response);
      return undefined;
    }
    if (status >= 200 && status < 300) {
      if (!isEventStream(response)) {
        cancelBody(response);
        const type = response.headers.get('content-type');
        throw new StreamConnectionError(`Expected a text/event-stream response, got ${type === null ? 'none' : JSON.stringify(type)}`, {
          status,
          attempts: this.#connections,
        });
      }
      const streamId = response.headers.get('x-stream-id');
      if (streamId !== null && streamId !== '') this.streamId = streamId;
      return OPEN;
    }
    const typed = await errorOfBody(response, signal);
    const answered = `The server answered ${status}${response.statusText === '' ? '' : ` ${response.statusText}`}`;
    if (isRetryableAnswer(status, typed, this.#resuming)) {
      const error = typed ?? new StreamConnectionError(answered, { status, attempts: this.#connections });
      return { reason: 'status', error, typed, status, floorMs: retryAfterMs(response) ?? 0 };
    }
    throw typed ?? new StreamConnectionError(answered, { status, attempts: this.#connections });
  }

  #interrupted(signal: AbortSignal, error: unknown): Failure | undefined {
    if (this.#stopper.signal.aborted) return undefined;
    if (signal.aborted && signal.reason === IDLE) {
      const idleError = new StreamConnectionError(`No data for ${this.#config.idleTimeoutMs} ms`, { attempts: this.#connections });
      return { reason: 'idle', error: idleError, floorMs: 0 };
    }
    return { reason: 'network', error, floorMs: 0 };
  }
}

/** Calls the app's `onRetry`: whatever it throws or rejects with, the reconnection goes on. */
function notify(onRetry: (info: RetryInfo) => void, info: RetryInfo): void {
  try {
    const result = onRetry(info) as unknown;
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') Promise.resolve(result).catch(() => {});
  } catch {
    // The hook is for display; its failure must not end the stream it reports on.
  }
}

function describeFailure(failure: Failure, idleTimeoutMs: number): string {
  switch (failure.reason) {
    case 'idle':
      return `No data for ${idleTimeoutMs} ms`;
    case 'status':
      return `The server answered ${failure.status}`;
    case 'network':
      return 'The connection failed';
    default:
      return 'The stream ended before its last event';
  }
}
