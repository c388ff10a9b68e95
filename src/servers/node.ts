import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { StreamAbortedError } from '../errors.js';
import type { StreamMetrics } from '../operators/monitored.js';
import { sseHeaders } from '../sse/encoder.js';
import { describeValue } from '../validate.js';
import { tryReadInto } from '../operators/internal/interruptible.js';
import type { HttpErrorResponse } from './internal/http-error.js';
import { assertNodeOptions, FrameWriter, MAX_DELAY, mergeHeaders } from './internal/node-writer.js';
import { trackStream, type LiveStream, type ShutdownNotice } from './internal/registry.js';
import {
  openResponseStream,
  type ResponseStream,
  type StreamContext,
  type StreamResponseOptions,
  type TokenSourceInput,
} from './internal/response-stream.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamLogError, StreamLogger, StreamLogRecord, StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

/** A request from `node:http` or from the `node:http2` compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** A response from `node:http` or from the `node:http2` compatibility API. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Options of {@link sendSSE}: the options every server adapter takes (`timeout`, `backpressure`,
 * `monitor`, `headers`, `statusWindowMs`, and the `toSSE` options), plus `writeTimeoutMs`.
 *
 * @example
 * ```ts
 * const options: SendSSEOptions = {
 *   timeout: { firstTokenMs: 15_000, idleMs: 30_000 },
 *   headers: { 'Access-Control-Allow-Origin': 'https://app.example.com' },
 *   writeTimeoutMs: 10_000,
 * };
 * ```
 */
export interface SendSSEOptions extends StreamResponseOptions {
  /**
   * How long the response may stay full (`write()` returned `false` and no `drain` came) before
   * the client is considered gone: the response is destroyed and the provider request aborted.
   * Also bounds how long the last bytes may take once the response is ended. `Infinity` waits
   * forever (the kernel's TCP timeouts then decide).
   * @defaultValue `30_000`
   * @example
   * ```ts
   * await sendSSE(req, res, factory, { writeTimeoutMs: 10_000 });
   * ```
   */
  writeTimeoutMs?: number | undefined;
}

/**
 * How the response ended:
 * - `'completed'`: the stream ran to its last `done` or `error` event and the response ended;
 * - `'http-error'`: the stream failed before its first chunk and was answered with an HTTP error status;
 * - `'client-closed'`: the client went away first (the provider request was aborted);
 * - `'write-timeout'`: the client stopped reading for `writeTimeoutMs` (the provider request was aborted);
 * - `'shutdown'`: {@link closeAllStreams} ended it with a `shutdown` event.
 */
export type SendSSEOutcome = 'completed' | 'http-error' | 'client-closed' | 'write-timeout' | 'shutdown';

/**
 * What {@link sendSSE} resolves with once the response has ended.
 *
 * @example
 * ```ts
 * const { outcome, status, metrics } = await sendSSE(req, res, factory);
 * log.info({ outcome, status, ttftMs: metrics.ttftMs, usage: metrics.usage });
 * ```
 */
export interface SendSSEResult {
  /** How the response ended. */
  outcome: SendSSEOutcome;
  /** The HTTP status sent: `200`, or the error status of an `'http-error'`. */
  status: number;
  /** The stream's metrics, the same report `monitor.onFinish` receives. */
  metrics: StreamMetrics;
}

/**
 * Streams TokenChunks to a `node:http` (or `node:http2` compat) response as Server-Sent Events.
 *
 * Pass a factory `(signal) => stream` and hand its signal to the provider SDK: when the client
 * goes away (the response closes before it finished), the signal aborts and the provider request
 * is cancelled. The stream runs through `withAbort`, `withTimeout`, `withBackpressure` and
 * `monitored`; frames of the same tick go out in one write, and the socket's backpressure is
 * respected. An error before the first chunk (within `statusWindowMs`) is answered with its own
 * HTTP status and a JSON body; later errors become the final `error` event.
 *
 * Resolves when the response has ended, never rejects because the client left; rejects only for
 * bad arguments (`TypeError`).
 *
 * @param source - A factory `(signal) => AsyncIterable<TokenChunk>` (recommended), or a stream.
 * @example
 * ```ts
 * http.createServer(async (req, res) => {
 *   const { metrics } = await sendSSE(req, res, (signal) =>
 *     streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal }));
 *   log.info(metrics);
 * });
 * ```
 */
export async function sendSSE(
  req: NodeRequest,
  res: NodeResponse,
  source: TokenSourceInput,
  options: SendSSEOptions = {},
): Promise<SendSSEResult> {
  if (req === null || typeof req !== 'object' || typeof req.httpVersion !== 'string') {
    throw new TypeError(`Expected \`req\` to be a node:http or node:http2 request, got ${describeValue(req)}`);
  }
  if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
    throw new TypeError(`Expected \`res\` to be a node:http or node:http2 response, got ${describeValue(res)}`);
  }
  if (res.headersSent) {
    throw new TypeError('Expected `res` to be a response whose headers were not sent yet, got one already started');
  }
  assertNodeOptions(options);
  const stream = openResponseStream(source, options, contextOf(req));
  // Undocumented: turns write combining off, for bench/write-combining.bench.ts.
  const internal = options as { writeCombining?: boolean | undefined };
  return new NodeSSEResponse(req, res as Response, stream, options, internal.writeCombining !== false).run();
}

/** The route, for the report of an error nobody handled (Express's `originalUrl` survives routers). */
function contextOf(req: NodeRequest): StreamContext {
  const url = (req as { originalUrl?: unknown }).originalUrl ?? req.url;
  return { method: req.method, path: typeof url === 'string' ? url.replace(/[?#].*$/s, '') : undefined };
}

/** The response methods used here, which both `node:http` and the `node:http2` compat API have. */
interface Response {
  readonly headersSent: boolean;
  /** Not on the http2 compat response: its `stream` has it. */
  readonly destroyed?: boolean | undefined;
  readonly stream?: { readonly destroyed: boolean } | undefined;
  writeHead(status: number, headers: Record<string, string>): unknown;
  flushHeaders(): void;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
}

type State = 'starting' | 'streaming' | SendSSEOutcome;

class NodeSSEResponse implements LiveStream {
  readonly #req: NodeRequest;
  readonly #res: Response;
  readonly #stream: ResponseStream;
  readonly #options: SendSSEOptions;
  readonly #writeTimeoutMs: number;
  readonly #writer: FrameWriter;
  readonly #closed: Promise<void>;
  #resolveClosed!: () => void;
  #state: State = 'starting';
  #status = 200;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(req: NodeRequest, res: Response, stream: ResponseStream, options: SendSSEOptions, combine: boolean) {
    this.#req = req;
    this.#res = res;
    this.#stream = stream;
    this.#options = options;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 30_000;
    this.#writer = new FrameWriter(res, { writeTimeoutMs: this.#writeTimeoutMs, combine, onStall: this.#onStall });
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  async run(): Promise<SendSSEResult> {
    const res = this.#res;
    res.on('close', this.#onClose);
    const untrack = trackStream(this);
    try {
      // The client may have gone while middleware read the body: 'close' was already emitted.
      if (res.destroyed === true || res.stream?.destroyed === true) this.#onClose();
      const httpError = await this.#stream.begin();
      if (this.#state === 'starting') {
        if (httpError === undefined) this.#startStream();
        else this.#sendError(httpError);
      }
      await this.#pump();
      if (this.#state === 'streaming') {
        this.#state = 'completed';
        this.#end('');
      }
      await this.#closed;
      return { outcome: this.#state as SendSSEOutcome, status: this.#status, metrics: await this.#stream.metrics };
    } catch (error) {
      this.#stream.controller.abort(error);
      void this.#stream.frames.return?.();
      res.destroy();
      throw error;
    } finally {
      untrack();
      res.off('close', this.#onClose);
      this.#writer.close();
      clearTimeout(this.#endTimer);
    }
  }

  shutdown(notice: ShutdownNotice): Promise<void> {
    const state = this.#state;
    if (state === 'starting' || state === 'streaming') {
      this.#state = 'shutdown';
      this.#stream.controller.abort(notice.reason);
      if (state === 'starting') this.#writeStreamHeaders();
      // A client that is not reading would get the notice only after its backlog: drop it now.
      if (this.#writer.blocked) this.#res.destroy();
      else this.#end(notice.sseFrame);
    }
    return this.#closed;
  }

  /** Reads every frame to the end; once the response is over, frames are only drained so the stream settles. */
  // Reads each frame into #onFrame (no promise per frame where the frames allow, READ_INTO),
  // writes it, and reads the next; settles when the frames end.
  #pump(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pumpDone = resolve;
      this.#pumpFailed = reject;
      this.#readFrame();
    });
  }

  #pumpDone: (() => void) | undefined;
  #pumpFailed: ((error: unknown) => void) | undefined;

  readonly #readFrame = (): void => {
    const stream = this.#stream;
    try {
      // Frames already there (read ahead, or peeked) go to the writer at once, joined there.
      for (let frame = stream.takeFrame(); frame !== undefined; frame = stream.takeFrame()) {
        if (this.#state !== 'streaming') continue;
        const writer = this.#writer;
        writer.push(frame);
        if (writer.blocked) {
          writer.whenWritable().then(this.#readFrame, this.#onFrameError);
          return;
        }
      }
      const frames = stream.frames;
      if (!tryReadInto(frames, this.#onFrame, this.#onFrameError)) frames.next().then(this.#onFrame, this.#onFrameError);
    } catch (error) {
      this.#onFrameError(error);
    }
  };

  readonly #onFrame = (result: IteratorResult<string>): void => {
    try {
      if (result.done === true) {
        this.#pumpDone?.();
        return;
      }
      if (this.#state === 'streaming') {
        const writer = this.#writer;
        writer.push(result.value);
        if (writer.blocked) {
          writer.whenWritable().then(this.#readFrame, this.#onFrameError);
          return;
        }
      }
      this.#readFrame();
    } catch (error) {
      this.#onFrameError(error);
    }
  };

  readonly #onFrameError = (error: unknown): void => {
    this.#pumpFailed?.(error);
  };

  #startStream(): void {
    this.#state = 'streaming';
    this.#writeStreamHeaders();
  }

  #writeStreamHeaders(): void {
    const req = this.#req;
    const http2 = req.httpVersionMajor >= 2;
    this.#res.writeHead(200, mergeHeaders(this.#options.headers, sseHeaders(req.httpVersion), http2));
    this.#res.flushHeaders();
    // Frames are already joined per tick; Nagle would hold each one back waiting for an ACK.
    if (!http2) (req.socket as Socket | null)?.setNoDelay(true);
  }

  #sendError(error: HttpErrorResponse): void {
    this.#state = 'http-error';
    this.#status = error.status;
    void this.#stream.frames.return?.();
    const http2 = this.#req.httpVersionMajor >= 2;
    this.#res.writeHead(error.status, mergeHeaders(this.#options.headers, error.headers, http2));
    this.#res.end(error.body);
    this.#armEndTimer();
  }

  #end(lastFrame: string): void {
    this.#res.end(this.#writer.finish() + lastFrame);
    this.#armEndTimer();
  }

  /** A client that stops reading must not hold the response open after its end either. */
  #armEndTimer(): void {
    if (this.#writeTimeoutMs <= MAX_DELAY) this.#endTimer = setTimeout(this.#onEndTimeout, this.#writeTimeoutMs);
  }

  readonly #onEndTimeout = (): void => {
    this.#endTimer = undefined;
    this.#res.destroy();
  };

  readonly #onClose = (): void => {
    const state = this.#state;
    // Until the response is ended here, a close can only mean the client went away.
    if (state === 'starting' || state === 'streaming') {
      this.#state = 'client-closed';
      this.#stream.controller.abort(new StreamAbortedError('The client closed the connection'));
    }
    this.#writer.close();
    this.#resolveClosed();
  };

  readonly #onStall = (): void => {
    if (this.#state === 'streaming') {
      this.#state = 'write-timeout';
      const reason = `The client read nothing for ${this.#writeTimeoutMs} ms`;
      this.#stream.controller.abort(new StreamAbortedError(reason));
    }
    this.#res.destroy();
  };
}
