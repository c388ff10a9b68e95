// The body of `toResponse`, below every fetch-runtime adapter (`tokenrelay/web`, `tokenrelay/hono`):
// options checked once into a plan (options.ts), then one pull-based `Response` per request,
// written by the shared pump (pump.ts).
import { StreamAbortedError } from '../../core/errors.js';
import { assertSignal, describeValue } from '../../core/validate.js';
import { mergeHeaders } from './headers.js';
import type { WebPlan } from './options.js';
import { FramePump, pumpFrames, type FrameGate, type FrameSink } from './pump.js';
import { trackStream, type LiveStream, type ShutdownNotice } from './registry.js';
import { openResponseStream, type ResponseStream, type StreamContext, type TokenSourceInput } from './response-stream.js';

/** A response to make, in the runtime's or the framework's own way (`new Response`, Hono's `c.newResponse`). */
export interface PlannedResponse {
  readonly body: ReadableStream<Uint8Array> | string;
  readonly init: { readonly status: number; readonly headers: Readonly<Record<string, string>> };
}

/**
 * `toResponse` for a checked plan: waits (up to `statusWindowMs`) for the first chunk, then
 * answers with the early error's status or with the stream. `request` is checked here.
 */
export async function respondPlanned(
  source: TokenSourceInput,
  plan: WebPlan,
  request: Pick<Request, 'signal'> | undefined,
): Promise<PlannedResponse> {
  checkRequest(request);
  const stream = openResponseStream(source, plan, contextOf(request));
  warnOnceWithoutDisconnect();
  const body = new SSEBody(stream, request?.signal, plan);
  const early = await stream.begin();
  if (early !== undefined) {
    body.release();
    // Fetch runtimes manage the connection themselves: no connection-specific header of the user's.
    return { body: early.body, init: { status: early.status, headers: mergeHeaders(plan.headers, early.headers, true) } };
  }
  return { body: body.readable(), init: { status: plan.status, headers: plan.streamHeaders } };
}

const encoder = new TextEncoder();
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

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
 * shutdown, early error, write timeout or normal end all meet here, once. It is the pump's
 * {@link FrameSink}: pull-based (`highWaterMark: 0`), so it is full after every chunk until the
 * runtime pulls again, and the pump reads the provider only as fast as the client takes bytes
 * (plus the read-ahead). The frames of one turn go out as one chunk, as in the Node adapters.
 */
class SSEBody implements LiveStream, FrameSink, FrameGate {
  readonly #stream: ResponseStream;
  readonly #signal: AbortSignal | undefined;
  readonly #plan: WebPlan;
  readonly #untrack: () => void;
  #body: ReadableStreamDefaultController<Uint8Array> | undefined;
  #writer: FramePump | undefined;
  #pumped: Promise<void> | undefined;
  // The body still takes chunks: not cancelled, errored or closed.
  #open = true;
  // The runtime pulled since the last chunk.
  #demand = false;
  #onWritable: (() => void) | undefined;
  #notice: string | undefined;
  #stopped: Promise<void> | undefined;

  constructor(stream: ResponseStream, signal: AbortSignal | undefined, plan: WebPlan) {
    this.#stream = stream;
    this.#signal = signal;
    this.#plan = plan;
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
          if (this.#notice !== undefined) this.end(this.#notice);
          else if (this.#stopped !== undefined) this.end('');
          else this.#startPump();
        },
        pull: () => {
          this.#demand = true;
          this.#onWritable?.();
        },
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
    else if (this.#writer !== undefined) this.#writer.end(frame);
    else this.end(frame);
    await this.#stop(notice.reason);
  }

  /** FrameSink: one body chunk; `false` (full) until the runtime pulls again. */
  write(text: string): boolean {
    const body = this.#body as ReadableStreamDefaultController<Uint8Array>;
    // Cleared first: enqueueing into a pending read may pull again at once.
    this.#demand = false;
    body.enqueue(encoder.encode(text));
    return this.#demand || (body.desiredSize ?? 0) > 0;
  }

  /** FrameSink: `onWritable` runs at the next pull. */
  watch(onWritable: () => void): void {
    this.#onWritable = onWritable;
  }

  /** FrameSink. */
  unwatch(): void {
    this.#onWritable = undefined;
  }

  /** FrameSink: the last text, then the end of the body (unless it was cancelled meanwhile). */
  end(text: string): void {
    if (!this.#open || this.#body === undefined) return;
    this.#open = false;
    try {
      if (text !== '') this.#body.enqueue(encoder.encode(text));
      this.#body.close();
    } catch {
      // The runtime closed the body itself (Deno does when the request's signal aborts): nothing left to end.
    }
  }

  /** FrameSink: errored, not closed, so the runtime drops the connection instead of waiting to flush to it. */
  destroy(reason: unknown): void {
    if (!this.#open) return;
    this.#open = false;
    this.#body?.error(reason);
  }

  #startPump(): void {
    const writer = new FramePump(this, this.#plan, true);
    this.#writer = writer;
    this.#pumped = pumpFrames(this.#stream, writer, this).then(this.#onFramesEnd, this.#onPumpError);
  }

  /** FrameGate: frames go out while the body is open. */
  accepts(): boolean {
    return this.#open;
  }

  /** The stream ended by itself (done or error frame sent): no abort, just release. */
  readonly #onFramesEnd = (): void => {
    if (!this.#open) return;
    this.#writer?.end('');
    this.#cleanup();
  };

  readonly #onPumpError = (error: unknown): void => {
    this.#writer?.destroy(error);
    void this.#stop(error);
  };

  /** FrameSink: the runtime pulled nothing for `writeTimeoutMs`. */
  stalled(): void {
    const reason = new StreamAbortedError(`The client read nothing for ${this.#plan.writeTimeoutMs} ms`);
    this.#writer?.destroy(reason);
    void this.#stop(reason);
  }

  readonly #onAbort = (): void => {
    void this.#stop((this.#signal as AbortSignal).reason);
  };

  #stop(reason: unknown): Promise<void> {
    this.#stopped ??= this.#abort(reason);
    return this.#stopped;
  }

  async #abort(reason: unknown): Promise<void> {
    this.#cleanup();
    this.#stream.controller.abort(reason);
    if (this.#writer !== undefined) this.#writer.end('');
    else this.end('');
    // The pump drains what is left, so the abort reaches `monitored` (outcome `aborted` with the
    // usage so far, not `cancelled`).
    if (this.#pumped !== undefined) return this.#pumped;
    // Never pumped (stopped before the body was made): a few reads do the same.
    for (let reads = 0; reads < 3; reads++) {
      const result = await this.#stream.frames.next().catch(() => DONE);
      if (result.done === true) return;
    }
    await this.#stream.frames.return?.();
  }

  #cleanup(): void {
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

function checkRequest(request: unknown): void {
  if (request === undefined) return;
  if (request === null || typeof request !== 'object') {
    throw new TypeError(`Expected \`request\` to be a Request, got ${describeValue(request)}`);
  }
  assertSignal('request.signal', (request as { signal?: unknown }).signal);
}
