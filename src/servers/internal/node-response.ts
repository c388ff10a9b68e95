import type { Socket } from 'node:net';
import { StreamAbortedError } from '../../core/errors.js';
import { describeValue } from '../../core/validate.js';
import type { NodeRequest, NodeResponse, SendSSEOutcome, SendSSEResult } from '../node.js';
import type { HttpErrorResponse } from './http-error.js';
import { mergeHeaders } from './headers.js';
import { NodeSink } from './node-writer.js';
import type { NodePlan } from './options.js';
import { FramePump, MAX_DELAY, type FrameTarget } from './pump.js';
import { addStream, untrackStream, type LiveStream, type ShutdownNotice } from './registry.js';
import { openResponseStream, type ResponseStream, type StreamContext, type TokenSourceInput } from './response-stream.js';

/**
 * `sendSSE` with its options already checked (`sse()` of Express checks them once, at creation).
 * Not an async function, so a stream holds one promise (the result's), not one per layer; a bad
 * argument still rejects it rather than throwing.
 */
export function sendPlanned(
  req: NodeRequest,
  res: NodeResponse,
  source: TokenSourceInput,
  plan: NodePlan,
): Promise<SendSSEResult> {
  try {
    if (req === null || typeof req !== 'object' || typeof req.httpVersion !== 'string') {
      throw new TypeError(`Expected \`req\` to be a node:http or node:http2 request, got ${describeValue(req)}`);
    }
    if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
      throw new TypeError(`Expected \`res\` to be a node:http or node:http2 response, got ${describeValue(res)}`);
    }
    if (res.headersSent) {
      throw new TypeError('Expected `res` to be a response whose headers were not sent yet, got one already started');
    }
    return new NodeSSEResponse(req, res as Response, source, plan).run();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The route's path, for the report of an error nobody handled (Express's `originalUrl` survives routers). */
function pathOf(req: NodeRequest): string | undefined {
  const url = (req as { originalUrl?: unknown }).originalUrl ?? req.url;
  return typeof url === 'string' ? url.replace(/[?#].*$/s, '') : undefined;
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

// NodeSSEResponse's flags: the response closed; the frames ended; the result is settled.
const CLOSED = 1;
const FRAMES_ENDED = 2;
const SETTLED = 4;

// One object per stream: the response's lifecycle, its FrameSink (NodeSink), the pump's target,
// the stream's context (the route), and no promise of its own but the result's: callbacks, not
// awaits, carry it from stage to stage.
class NodeSSEResponse extends NodeSink<Response> implements LiveStream, FrameTarget, StreamContext {
  /** StreamContext: the route's path. */
  readonly path: string | undefined;
  readonly #req: NodeRequest;
  readonly #stream: ResponseStream;
  readonly #plan: NodePlan;
  readonly #writer: FramePump;
  #resolve!: (result: SendSSEResult) => void;
  #reject!: (error: unknown) => void;
  // CLOSED, FRAMES_ENDED and SETTLED, in one field (a stream's fields are what it costs).
  #flags = 0;
  // shutdown() callers waiting for the close.
  #waiters: Array<() => void> | undefined;
  #state: State = 'starting';
  #status = 200;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(req: NodeRequest, res: Response, source: TokenSourceInput, plan: NodePlan) {
    super(res);
    this.path = pathOf(req);
    this.#req = req;
    this.#stream = openResponseStream(source, plan, this);
    this.#plan = plan;
    this.#writer = new FramePump(this, plan);
  }

  /** StreamContext: the request's method (read when needed: Node never changes it). */
  get method(): string | undefined {
    return this.#req.method;
  }

  /** Serves the response; resolves once it has ended and the stream reported its metrics. */
  run(): Promise<SendSSEResult> {
    const result = new Promise<SendSSEResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const res = this.res;
    res.on('close', this.#listen());
    addStream(this);
    try {
      // The client may have gone while middleware read the body: 'close' was already emitted.
      if (res.destroyed === true || res.stream?.destroyed === true) this.#closed();
      this.#stream.begin().then(
        (httpError) => this.#begun(httpError),
        (error: unknown) => this.#fail(error),
      );
    } catch (error) {
      this.#fail(error);
    }
    return result;
  }

  shutdown(notice: ShutdownNotice): Promise<void> {
    const state = this.#state;
    if (state === 'starting' || state === 'streaming') {
      this.#state = 'shutdown';
      this.#stream.controller.abort(notice.reason);
      if (state === 'starting') this.#writeStreamHeaders();
      // A client that is not reading would get the notice only after its backlog: drop it now.
      if (this.#writer.blocked) this.#writer.destroy(notice.reason);
      else this.#finish(this.#plan.sse.protocol.shutdownFrame(notice));
    }
    if ((this.#flags & CLOSED) !== 0) return Promise.resolve();
    return new Promise((resolve) => (this.#waiters ??= []).push(resolve));
  }

  /** FrameGate: frames go out while streaming; once the response is over they are only drained, so the stream settles. */
  accepts(): boolean {
    return this.#state === 'streaming';
  }

  /** FrameTarget: the last frame was written (or drained): end the response, then wait for its close. */
  framesEnded(): void {
    try {
      if (this.#state === 'streaming') {
        this.#state = 'completed';
        this.#finish('');
      }
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#flags |= FRAMES_ENDED;
    this.#settleIfDone();
  }

  /** FrameTarget. */
  framesFailed(error: unknown): void {
    this.#fail(error);
  }

  /** FrameSink: the client read nothing for `writeTimeoutMs`. */
  stalled(): void {
    const reason = new StreamAbortedError(`The client read nothing for ${this.#plan.writeTimeoutMs} ms`);
    if (this.#state === 'streaming') {
      this.#state = 'write-timeout';
      this.#stream.controller.abort(reason);
    }
    this.#writer.destroy(reason);
  }

  #begun(httpError: HttpErrorResponse | undefined): void {
    try {
      if (this.#state === 'starting') {
        if (httpError === undefined) this.#startStream();
        else this.#sendError(httpError);
      }
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#writer.pump(this.#stream, this);
  }

  // Both the frames and the response are over: the result, once the stream reported its metrics.
  #settleIfDone(): void {
    if (this.#flags !== (CLOSED | FRAMES_ENDED)) return;
    this.#flags |= SETTLED;
    const outcome = this.#state as SendSSEOutcome;
    this.#stream.metrics.then(
      (metrics) => {
        this.#release();
        this.#resolve({ outcome, status: this.#status, metrics });
      },
      (error: unknown) => {
        this.#flags &= ~SETTLED;
        this.#fail(error);
      },
    );
  }

  // What the response did not get to do: abort the stream, drop the response, reject.
  #fail(error: unknown): void {
    if ((this.#flags & SETTLED) !== 0) return;
    this.#flags |= SETTLED;
    try {
      this.#stream.controller.abort(error);
      void this.#stream.frames.return?.();
      this.res.destroy();
    } finally {
      this.#release();
      this.#reject(error);
    }
  }

  #release(): void {
    untrackStream(this);
    this.res.off('close', this.#listener());
    this.#writer.close();
    clearTimeout(this.#endTimer);
  }

  #startStream(): void {
    this.#state = 'streaming';
    this.#writeStreamHeaders();
  }

  #writeStreamHeaders(): void {
    const req = this.#req;
    const http2 = req.httpVersionMajor >= 2;
    // Node copies the headers it is given, so the plan's merged object is shared by every response.
    this.res.writeHead(200, (http2 ? this.#plan.http2Headers : this.#plan.http1Headers) as Record<string, string>);
    this.res.flushHeaders();
    // Frames are already joined per tick; Nagle would hold each one back waiting for an ACK.
    if (!http2) (req.socket as Socket | null)?.setNoDelay(true);
  }

  #sendError(error: HttpErrorResponse): void {
    this.#state = 'http-error';
    this.#status = error.status;
    void this.#stream.frames.return?.();
    const http2 = this.#req.httpVersionMajor >= 2;
    this.res.writeHead(error.status, mergeHeaders(this.#plan.headers, error.headers, http2));
    this.res.end(error.body);
    this.#armEndTimer();
  }

  #finish(lastFrame: string): void {
    this.#writer.end(lastFrame);
    this.#armEndTimer();
  }

  /** A client that stops reading must not hold the response open after its end either. */
  #armEndTimer(): void {
    const { writeTimeoutMs } = this.#plan;
    if (writeTimeoutMs <= MAX_DELAY) this.#endTimer = setTimeout(NodeSSEResponse.#onEndTimeout, writeTimeoutMs, this);
  }

  // The timer's argument is the response: no closure per stream.
  static #onEndTimeout(this: void, response: NodeSSEResponse): void {
    response.#endTimer = undefined;
    response.res.destroy();
  }

  // One 'close' listener for every response, which finds its NodeSSEResponse by `res` (the
  // emitter is `this`): no closure and context per stream. A second response on the same `res`
  // (a misuse that Node does not stop) gets a closure of its own.
  static readonly #serving = new WeakMap<object, NodeSSEResponse>();
  #ownListener: (() => void) | undefined;

  static #onResponseClose(this: object): void {
    const response = NodeSSEResponse.#serving.get(this);
    if (response !== undefined) response.#closed();
  }

  #listen(): () => void {
    const serving = NodeSSEResponse.#serving;
    if (serving.has(this.res)) return (this.#ownListener = () => this.#closed());
    serving.set(this.res, this);
    return NodeSSEResponse.#onResponseClose;
  }

  #listener(): () => void {
    if (this.#ownListener !== undefined) return this.#ownListener;
    if (NodeSSEResponse.#serving.get(this.res) === this) NodeSSEResponse.#serving.delete(this.res);
    return NodeSSEResponse.#onResponseClose;
  }

  #closed(): void {
    const state = this.#state;
    // Until the response is ended here, a close can only mean the client went away.
    if (state === 'starting' || state === 'streaming') {
      this.#state = 'client-closed';
      this.#stream.controller.abort(new StreamAbortedError('The client closed the connection'));
    }
    this.#writer.close();
    if ((this.#flags & CLOSED) !== 0) return;
    this.#flags |= CLOSED;
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters !== undefined) for (const wake of waiters) wake();
    this.#settleIfDone();
  }
}
