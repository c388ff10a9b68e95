import type { Socket } from 'node:net';
import { StreamAbortedError } from '../../core/errors.js';
import { describeValue } from '../../core/validate.js';
import type { NodeRequest, NodeResponse, SendSSEOutcome, SendSSEResult } from '../node.js';
import type { HttpErrorResponse } from './http-error.js';
import { mergeHeaders } from './headers.js';
import { nodeSink } from './node-writer.js';
import type { NodePlan } from './options.js';
import { FrameWriter, MAX_DELAY, pumpFrames } from './pump.js';
import { trackStream, type LiveStream, type ShutdownNotice } from './registry.js';
import { openResponseStream, type ResponseStream, type StreamContext, type TokenSourceInput } from './response-stream.js';

/** `sendSSE` with its options already checked (`sse()` of Express checks them once, at creation). */
export async function sendPlanned(
  req: NodeRequest,
  res: NodeResponse,
  source: TokenSourceInput,
  plan: NodePlan,
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
  const stream = openResponseStream(source, plan, contextOf(req));
  return new NodeSSEResponse(req, res as Response, stream, plan).run();
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
  readonly #plan: NodePlan;
  readonly #writeTimeoutMs: number;
  readonly #writer: FrameWriter;
  readonly #closed: Promise<void>;
  #resolveClosed!: () => void;
  #state: State = 'starting';
  #status = 200;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(req: NodeRequest, res: Response, stream: ResponseStream, plan: NodePlan) {
    this.#req = req;
    this.#res = res;
    this.#stream = stream;
    this.#plan = plan;
    this.#writeTimeoutMs = plan.writeTimeoutMs;
    this.#writer = new FrameWriter(nodeSink(res), { writeTimeoutMs: this.#writeTimeoutMs, combine: plan.combine, onStall: this.#onStall });
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
      await pumpFrames(this.#stream, this.#writer, this.#accepts);
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
      if (this.#writer.blocked) this.#writer.destroy(notice.reason);
      else this.#end(this.#plan.sse.protocol.shutdownFrame(notice));
    }
    return this.#closed;
  }

  /** Frames go out while streaming; once the response is over they are only drained, so the stream settles. */
  readonly #accepts = (): boolean => this.#state === 'streaming';

  #startStream(): void {
    this.#state = 'streaming';
    this.#writeStreamHeaders();
  }

  #writeStreamHeaders(): void {
    const req = this.#req;
    const http2 = req.httpVersionMajor >= 2;
    // Node copies the headers it is given, so the plan's merged object is shared by every response.
    this.#res.writeHead(200, (http2 ? this.#plan.http2Headers : this.#plan.http1Headers) as Record<string, string>);
    this.#res.flushHeaders();
    // Frames are already joined per tick; Nagle would hold each one back waiting for an ACK.
    if (!http2) (req.socket as Socket | null)?.setNoDelay(true);
  }

  #sendError(error: HttpErrorResponse): void {
    this.#state = 'http-error';
    this.#status = error.status;
    void this.#stream.frames.return?.();
    const http2 = this.#req.httpVersionMajor >= 2;
    this.#res.writeHead(error.status, mergeHeaders(this.#plan.headers, error.headers, http2));
    this.#res.end(error.body);
    this.#armEndTimer();
  }

  #end(lastFrame: string): void {
    this.#writer.end(lastFrame);
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
    const reason = new StreamAbortedError(`The client read nothing for ${this.#writeTimeoutMs} ms`);
    if (this.#state === 'streaming') {
      this.#state = 'write-timeout';
      this.#stream.controller.abort(reason);
    }
    this.#writer.destroy(reason);
  };
}
