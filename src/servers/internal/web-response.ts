// The body of `toResponse`, below every fetch-runtime adapter (`tokenrelay/web`, `tokenrelay/hono`):
// options checked once into a plan, then one pull-based `Response` per request.
import { StreamAbortedError } from '../../core/errors.js';
import { streamHeaders } from '../../protocols/protocol.js';
import type { ToResponseOptions } from '../web.js';
import { assertNumber, assertSignal, describeValue } from '../../core/validate.js';
import { planResponse, RESPONSE_KEYS, type ResponsePlan } from './options.js';
import { trackStream, type LiveStream, type ShutdownNotice } from './registry.js';
import { openResponseStream, type ResponseStream, type StreamContext, type TokenSourceInput } from './response-stream.js';

/** A {@link ResponsePlan} with the web response's own options, checked and resolved. */
export interface WebPlan extends ResponsePlan {
  readonly status: number;
  readonly headers: Record<string, string> | undefined;
  readonly writeTimeoutMs: number;
}

/** Every adapter's keys, plus the web ones. */
export const WEB_KEYS = [...RESPONSE_KEYS, 'request', 'status', 'writeTimeoutMs'] as const;

/** Checks `toResponse`'s options once (`request` aside: it is per request), e.g. when a route handler is made. */
export function planWeb(options: Omit<ToResponseOptions, 'request'>, keys: readonly string[] = WEB_KEYS): WebPlan {
  const { status = 200, headers, writeTimeoutMs = 30_000 } = checkOptions(options);
  return { ...planResponse(options, keys), status, headers, writeTimeoutMs };
}

/**
 * `toResponse` for a checked plan: waits (up to `statusWindowMs`) for the first chunk, then
 * answers with the early error's status or with the stream. `request` is checked here.
 */
export async function respondPlanned(
  source: TokenSourceInput,
  plan: WebPlan,
  request: Pick<Request, 'signal'> | undefined,
): Promise<Response> {
  checkRequest(request);
  const stream = openResponseStream(source, plan, contextOf(request));
  warnOnceWithoutDisconnect();
  const body = new SSEBody(stream, request?.signal, plan.writeTimeoutMs);
  const early = await stream.begin();
  if (early !== undefined) {
    body.release();
    return new Response(early.body, { status: early.status, headers: mergeHeaders(plan.headers, early.headers) });
  }
  return new Response(body.readable(), { status: plan.status, headers: mergeHeaders(plan.headers, streamHeaders(stream.protocol)) });
}

const encoder = new TextEncoder();
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
const MAX_COMBINED_FRAMES = 64;
const MAX_COMBINED_CHARS = 16 * 1024;
/** Beyond the largest setTimeout delay, runtimes fire after 1 ms instead: such a limit means none. */
const MAX_DELAY = 2_147_483_647;

let runtimeChecked = false;

/**
 * Cloudflare Workers (workerd) tell a Worker that its client left only through `request.signal`,
 * and only with the `enable_request_signal` compatibility flag (no compatibility date turns it
 * on): without it the body is never cancelled either, so the provider runs to its end. Said once
 * per isolate, at the first response.
 */
function warnOnceWithoutDisconnect(): void {
  if (runtimeChecked) return;
  runtimeChecked = true;
  const flags = (globalThis as { Cloudflare?: { compatibilityFlags?: Record<string, boolean> } }).Cloudflare?.compatibilityFlags;
  if (flags === undefined || flags['enable_request_signal'] === true) return;
  console.warn(
    'tokenrelay: this Worker cannot notice a client that disconnects, so the provider request runs to its end. ' +
      'Add the `enable_request_signal` compatibility flag (no compatibility date enables it) and pass `{ request }` to toResponse.',
  );
}

/**
 * The response body, and the one owner of the stream's end: body cancelled, request aborted,
 * shutdown, early error or normal end all meet here, once.
 */
class SSEBody implements LiveStream {
  readonly #stream: ResponseStream;
  readonly #signal: AbortSignal | undefined;
  readonly #untrack: () => void;
  #body: ReadableStreamDefaultController<Uint8Array> | undefined;
  #open = true;
  #notice: string | undefined;
  #stopped: Promise<void> | undefined;
  readonly #writeTimeoutMs: number;
  // When the body last got a chunk that nobody has pulled since; `undefined` while a pull runs.
  #unreadSince: number | undefined;
  // One timer per stream, armed at most once per `writeTimeoutMs`, never per chunk.
  #writeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(stream: ResponseStream, signal: AbortSignal | undefined, writeTimeoutMs: number) {
    this.#stream = stream;
    this.#signal = signal;
    this.#writeTimeoutMs = writeTimeoutMs;
    this.#untrack = trackStream(this);
    if (signal === undefined) return;
    if (signal.aborted) void this.#stop(signal.reason);
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  readable(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#body = controller;
          if (this.#notice !== undefined) this.#end(this.#notice);
          else if (this.#stopped !== undefined) this.#end(undefined);
          else this.#unread();
        },
        pull: (controller) => this.#pull(controller),
        cancel: (reason) => {
          this.#open = false;
          return this.#stop(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** After an early error: the pipeline already failed, so only the bookkeeping remains. */
  release(): void {
    this.#open = false;
    this.#cleanup();
    void this.#stream.frames.return?.();
  }

  async shutdown(notice: ShutdownNotice): Promise<void> {
    const frame = this.#stream.protocol.shutdownFrame(notice);
    if (this.#body === undefined) this.#notice = frame;
    else this.#end(frame);
    await this.#stop(notice.reason);
  }

  readonly #onAbort = (): void => {
    void this.#stop((this.#signal as AbortSignal).reason);
  };

  /**
   * One body chunk: the frames that are already there (read ahead while the client was slow, or
   * a burst from the provider), joined, or else the next frame once it comes. A frame that needs
   * the provider is never waited for once there is text to send, so nothing read is held back.
   */
  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    this.#unreadSince = undefined;
    const stream = this.#stream;
    let text = stream.takeFrame();
    if (text === undefined) {
      const first = await stream.frames.next();
      if (!this.#open) return;
      if (first.done === true) return this.#finish();
      text = first.value;
    }
    for (let count = 1; count < MAX_COMBINED_FRAMES && text.length < MAX_COMBINED_CHARS; count++) {
      const frame = stream.takeFrame();
      if (frame === undefined) break;
      text += frame;
    }
    if (!this.#open) return;
    controller.enqueue(encoder.encode(text));
    this.#unread();
  }

  /** A chunk waits for the runtime to pull the next one: from now on the write timeout counts. */
  #unread(): void {
    this.#unreadSince = performance.now();
    if (this.#writeTimer === undefined && this.#writeTimeoutMs <= MAX_DELAY) {
      this.#writeTimer = setTimeout(this.#onWriteTimer, this.#writeTimeoutMs);
    }
  }

  readonly #onWriteTimer = (): void => {
    this.#writeTimer = undefined;
    const since = this.#unreadSince;
    if (!this.#open || since === undefined) return;
    const left = since + this.#writeTimeoutMs - performance.now();
    if (left > 0) {
      this.#writeTimer = setTimeout(this.#onWriteTimer, left);
      return;
    }
    const reason = new StreamAbortedError(`The client read nothing for ${this.#writeTimeoutMs} ms`);
    // Errored, not closed: the runtime drops the connection instead of waiting to flush to it.
    this.#open = false;
    this.#body?.error(reason);
    void this.#stop(reason);
  };

  /** The stream ended by itself (done or error frame sent): no abort, just release. */
  #finish(): void {
    this.#end(undefined);
    this.#cleanup();
  }

  #end(lastFrame: string | undefined): void {
    if (!this.#open || this.#body === undefined) return;
    this.#open = false;
    if (lastFrame !== undefined) this.#body.enqueue(encoder.encode(lastFrame));
    this.#body.close();
  }

  #stop(reason: unknown): Promise<void> {
    this.#stopped ??= this.#abort(reason);
    return this.#stopped;
  }

  async #abort(reason: unknown): Promise<void> {
    this.#cleanup();
    this.#stream.controller.abort(reason);
    this.#end(undefined);
    // A few more reads let the abort reach `monitored` (it sits right after the layer that
    // rejects on abort at once; at most the peeked first chunk is ahead of it), so the outcome
    // is `aborted` with the usage so far, not `cancelled`.
    for (let reads = 0; reads < 3; reads++) {
      const result = await this.#stream.frames.next().catch(() => DONE);
      if (result.done === true) return;
    }
    await this.#stream.frames.return?.();
  }

  #cleanup(): void {
    clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
    this.#untrack();
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** The route, for the report of an error nobody handled, when `request` is a whole `Request`. */
function contextOf(request: object | undefined): StreamContext {
  const { method, url } = (request ?? {}) as { method?: unknown; url?: unknown };
  if (typeof url !== 'string') return {};
  let path: string | undefined;
  try {
    path = new URL(url).pathname;
  } catch {
    path = undefined;
  }
  return { method: typeof method === 'string' ? method : undefined, path };
}

function mergeHeaders(user: Record<string, string> | undefined, own: Record<string, string>): Headers {
  const headers = new Headers(user);
  for (const [name, value] of Object.entries(own)) headers.set(name, value);
  return headers;
}

function checkRequest(request: unknown): void {
  if (request === undefined) return;
  if (request === null || typeof request !== 'object') {
    throw new TypeError(`Expected \`request\` to be a Request, got ${describeValue(request)}`);
  }
  assertSignal('request.signal', (request as { signal?: unknown }).signal);
}

function checkOptions(options: Omit<ToResponseOptions, 'request'>): Omit<ToResponseOptions, 'request'> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const { status, headers, writeTimeoutMs } = options;
  if (writeTimeoutMs !== undefined) assertNumber('writeTimeoutMs', writeTimeoutMs, { min: 1, allowInfinity: true });
  if (status !== undefined && !(Number.isInteger(status) && status >= 200 && status <= 599 && !NULL_BODY.has(status))) {
    throw new TypeError(`Expected \`status\` to be an integer from 200 to 599 that allows a body, got ${describeValue(status)}`);
  }
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw new TypeError(`Expected \`headers\` to be an object of header names and values, got ${describeValue(headers)}`);
    }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') {
        throw new TypeError(`Expected header \`${name}\` to be a string, got ${describeValue(value)}`);
      }
    }
  }
  return options;
}

const NULL_BODY = new Set([204, 205, 304]);
