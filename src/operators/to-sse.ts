import type { Protocol, StreamEncoder } from '../protocols/protocol.js';
import { tokenrelayProtocol } from '../protocols/tokenrelay.js';
import { assertFieldValue, encodeSSEFrame } from '../sse/encoder.js';
import type { Operator, TokenChunk } from '../core/types.js';
import { assertFunction, assertNumber, assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import {
  READ_INTO,
  returnQuietly,
  TAKE_READY,
  takeReady,
  tryReadInto,
  UNHANDLED,
  type ErrorHandler,
  type ResultHandler,
} from '../core/kernel.js';

/** Event names of the frames {@link toSSE} writes. Each must be non-empty and free of CR, LF, NUL and lone surrogates. */
export interface SSEEventNames {
  /** @defaultValue `'token'` */
  token?: string | undefined;
  /** @defaultValue `'done'` */
  done?: string | undefined;
  /** @defaultValue `'error'` */
  error?: string | undefined;
}

/** Options of {@link toSSE}. */
export interface ToSSEOptions {
  /**
   * Renames the `token`, `done` and `error` events.
   * @defaultValue `{ token: 'token', done: 'done', error: 'error' }`
   */
  events?: SSEEventNames | undefined;
  /**
   * Sends a `: ping` comment when no frame went out for this long while waiting on the source,
   * so proxies do not close an idle connection. `0`, `Infinity` or `false` turn it off.
   * @defaultValue `15_000`
   */
  heartbeatMs?: number | false | undefined;
  /**
   * The reconnection delay for the client, in ms, sent at once as a `retry:` frame of its own.
   * @defaultValue none (the client's default)
   */
  retryMs?: number | undefined;
  /**
   * Builds the `data` of each `token` frame; its line breaks are split into `data:` lines.
   * @defaultValue `JSON.stringify`
   */
  serialize?: ((chunk: TokenChunk) => string) | undefined;
  /**
   * Puts the raw message of provider and unknown errors in the `error` frame. Stack traces never.
   * @defaultValue `false`
   */
  exposeErrors?: boolean | undefined;
}

/**
 * Encodes a chunk stream as Server-Sent Events frames: `id: <index>`, `event: token` and the
 * chunk as JSON for each chunk; the chunk with a `finishReason` (after a `token` frame of its
 * own if its token is not empty) becomes a `done` frame and ends the output, and the source is
 * returned. A source error becomes one final `error` frame `{ code, message }`, then the output
 * ends normally. A consumer `return()` ends the output at once, even while a read is pending,
 * clears the heartbeat timer and returns the source without awaiting it.
 *
 * @example
 * ```ts
 * for await (const frame of pipe(tokens(['Hel', 'lo']), toSSE({ retryMs: 3000 }))) res.write(frame);
 * ```
 */
export function toSSE(options: ToSSEOptions = {}): Operator<TokenChunk, string> {
  return sseWith(checkSSEOptions(options, true));
}

/** @internal The keys of {@link ToSSEOptions}, which the adapters take among their own. */
export const SSE_OPTION_KEYS = ['events', 'heartbeatMs', 'retryMs', 'serialize', 'exposeErrors'] as const;

/** @internal `toSSE` options checked deeply, with the frames' fixed parts made once. */
export type SSEConfig = Config;

/**
 * @internal Checks `toSSE` options once. `ownKeys`: reject keys that are not `toSSE`'s (an
 * adapter checks its whole options object itself instead).
 */
export function checkSSEOptions(options: ToSSEOptions, ownKeys: boolean): SSEConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  if (ownKeys) assertOptions('options', options, SSE_OPTION_KEYS);
  const { events = {}, heartbeatMs = 15_000, retryMs, serialize, exposeErrors = false } = options;
  assertOptions('events', events, ['token', 'done', 'error']);
  if (heartbeatMs !== false) assertNumber('heartbeatMs', heartbeatMs, { allowInfinity: true });
  assertOptionalNumber('retryMs', retryMs, { integer: true });
  if (serialize !== undefined) assertFunction('serialize', serialize);
  if (typeof exposeErrors !== 'boolean') {
    throw new TypeError(`Expected \`exposeErrors\` to be a boolean, got ${describeValue(exposeErrors)}`);
  }
  const protocol = tokenrelayProtocol({
    tokenEvent: `event: ${assertFieldValue('events.token', events.token ?? 'token')}\n`,
    doneEvent: `event: ${assertFieldValue('events.done', events.done ?? 'done')}\n`,
    errorEvent: assertFieldValue('events.error', events.error ?? 'error'),
    retryFrame: retryMs === undefined ? undefined : encodeSSEFrame({ retry: retryMs }),
    serialize,
  });
  return { protocol, heartbeatMs: heartbeatDelay(heartbeatMs), exposeErrors };
}

/** @internal `heartbeatMs` as a timer delay: `0` for none. */
export function heartbeatDelay(heartbeatMs: number | false): number {
  // Beyond the largest setTimeout delay a heartbeat would never be due in practice.
  return heartbeatMs === false || heartbeatMs > MAX_DELAY ? 0 : heartbeatMs;
}

/** @internal The encoder for checked options: what the adapters build per request, with no checks. */
export function sseWith(config: SSEConfig): Operator<TokenChunk, string> {
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    return { [Symbol.asyncIterator]: () => new FrameIterator(source, config) };
  };
}

const MAX_DELAY = 2_147_483_647;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
// #waiting while a read taken into a handler (READ_INTO) is pending: it has no promise.
const DETACHED: Promise<IteratorResult<string>> = new Promise<IteratorResult<string>>(() => undefined);

/** How a stream's chunks become frames: the protocol, and how often an idle stream sends its heartbeat. */
interface Config {
  protocol: Protocol;
  /** `0` for no heartbeat. */
  heartbeatMs: number;
  exposeErrors: boolean;
  /** The stream's signal, for the encoder (an adapter's response stream sets it per request). */
  signal?: AbortSignal | undefined;
}

/**
 * Runs any protocol's encoder over the source. The consumer's read is a promise of its own, settled by a frame, a heartbeat or a stop, while
 * one source read stays in flight across heartbeats. That already makes a stop take effect
 * during a pending read, so the source is read directly rather than through `Interruptible`,
 * which would add a promise and two closures per chunk. The heartbeat timer is re-armed lazily
 * from the time the current wait began: a steady stream costs one timer per interval, not per chunk.
 */
class FrameIterator implements AsyncIterableIterator<string> {
  readonly #config: Config;
  readonly #encoder: StreamEncoder;
  readonly #heartbeat: IteratorYieldResult<string>;
  readonly #source: AsyncIterator<TokenChunk>;
  #sourceDone = false;
  #first: string | undefined;
  #ended = false;
  #reading = false;
  #ready: string | undefined;
  #resolve: ((result: IteratorResult<string>) => void) | undefined;
  // The read in #resolve was taken into a handler (READ_INTO): it has no promise.
  #detached = false;
  #waiting: Promise<IteratorResult<string>> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #since = 0;

  constructor(source: AsyncIterable<TokenChunk>, config: Config) {
    const { protocol, exposeErrors, signal } = config;
    // A protocol with no heartbeat frame (NDJSON) has no heartbeat timer either.
    this.#config = protocol.heartbeat === '' ? { ...config, heartbeatMs: 0 } : config;
    this.#heartbeat = { done: false, value: protocol.heartbeat };
    this.#source = source[Symbol.asyncIterator]();
    this.#encoder = protocol.encoder({ exposeErrors, signal });
    this.#first = this.#encoder.open() || undefined;
  }

  next(): Promise<IteratorResult<string>> {
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      const again = () => this.next();
      if (waiting === DETACHED) return this.#waitDetached().then(again, again);
      return waiting.then(again, again);
    }
    const held = this.#takeHeld();
    if (held !== undefined) return Promise.resolve({ done: false, value: held });
    if (this.#ended) return Promise.resolve(DONE);
    const read = new Promise(this.#capture);
    this.#waiting = read;
    const { heartbeatMs } = this.#config;
    if (heartbeatMs > 0) {
      this.#since = performance.now();
      this.#timer ??= setTimeout(this.#onTimer, heartbeatMs);
    }
    if (!this.#reading) this.#read();
    return read;
  }

  // A frame that needs no wait: one already made, or a chunk the source has ready.
  [TAKE_READY](): IteratorYieldResult<string> | undefined {
    if (this.#waiting !== undefined) return undefined;
    const held = this.#takeHeld();
    if (held !== undefined) return { done: false, value: held };
    if (this.#ended || this.#reading) return undefined;
    let result: IteratorYieldResult<TokenChunk> | undefined;
    try {
      result = takeReady(this.#source);
    } catch (error) {
      this.#sourceDone = true;
      return { done: false, value: this.#errorFrame(error) };
    }
    return result === undefined ? undefined : { done: false, value: this.#frameOf(result) };
  }

  /** A frame already made and not read yet: one that came while no read waited, or the `retry` frame. */
  #takeHeld(): string | undefined {
    const ready = this.#ready;
    if (ready !== undefined) {
      this.#ready = undefined;
      return ready;
    }
    const first = this.#first;
    if (first === undefined || this.#ended) return undefined;
    this.#first = undefined;
    return first;
  }

  // Taken only when the read has to wait: a frame ready now goes through next().
  [READ_INTO](onResult: ResultHandler<string, unknown>, _onError: ErrorHandler<unknown>): boolean {
    if (this.#waiting !== undefined || this.#ready !== undefined || this.#ended || this.#first !== undefined) return false;
    this.#resolve = onResult as (result: IteratorResult<string>) => void;
    this.#detached = true;
    this.#waiting = DETACHED;
    const { heartbeatMs } = this.#config;
    if (heartbeatMs > 0) {
      this.#since = performance.now();
      this.#timer ??= setTimeout(this.#onTimer, heartbeatMs);
    }
    if (!this.#reading) this.#read();
    return true;
  }

  return(): Promise<IteratorResult<string>> {
    this.#end();
    this.#ready = undefined;
    this.#settle(DONE);
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<string>> {
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #read(): void {
    this.#reading = true;
    // No promise for this read when the source can take it into the handlers (READ_INTO).
    if (tryReadInto(this.#source, this.#onResult, this.#onError)) return;
    let result: Promise<IteratorResult<TokenChunk>>;
    try {
      result = Promise.resolve(this.#source.next());
    } catch (error) {
      this.#onError(error);
      return;
    }
    result.then(this.#onResult, this.#onError);
  }

  readonly #capture = (resolve: (result: IteratorResult<string>) => void): void => {
    this.#resolve = resolve;
  };

  readonly #onResult = (result: IteratorResult<TokenChunk>): void => {
    this.#reading = false;
    if (result.done === true) this.#sourceDone = true;
    if (this.#ended) return;
    this.#emit(this.#frameOf(result));
  };

  readonly #onError = (error: unknown): void => {
    this.#reading = false;
    this.#sourceDone = true;
    if (!this.#ended) this.#emit(this.#errorFrame(error));
  };

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#resolve === undefined) return;
    const idle = performance.now() - this.#since;
    const { heartbeatMs } = this.#config;
    if (idle < heartbeatMs) this.#timer = setTimeout(this.#onTimer, heartbeatMs - idle);
    else this.#settle(this.#heartbeat);
  };

  #emit(frame: string): void {
    if (this.#resolve === undefined) this.#ready = frame;
    else this.#settle({ done: false, value: frame });
  }

  #settle(result: IteratorResult<string>): void {
    const resolve = this.#resolve;
    const detached = this.#detached;
    const wake = this.#wake;
    this.#resolve = undefined;
    this.#waiting = undefined;
    this.#detached = false;
    this.#wake = undefined;
    wake?.();
    if (!detached) resolve?.(result);
    else {
      try {
        (resolve as (result: IteratorResult<string>) => unknown)(result);
      } catch (error) {
        UNHANDLED(error);
      }
    }
  }

  // A second reader while a detached read is pending waits for it to settle.
  #wake: (() => void) | undefined;
  #waitDetached(): Promise<unknown> {
    return new Promise<void>((resolve) => {
      const previous = this.#wake;
      this.#wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  #end(): void {
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#sourceDone) {
      this.#sourceDone = true;
      returnQuietly(this.#source);
    }
  }

  /** The frames of a source result; a chunk that cannot be encoded ends the stream with the error's frames. */
  #frameOf(result: IteratorResult<TokenChunk>): string {
    try {
      if (result.done === true) {
        this.#end();
        return this.#encoder.end();
      }
      const chunk = result.value;
      const frames = this.#encoder.chunk(chunk);
      if (chunk.finishReason !== undefined) this.#end();
      return frames;
    } catch (error) {
      return this.#errorFrame(error);
    }
  }

  #errorFrame(error: unknown): string {
    this.#end();
    return this.#encoder.error(error);
  }
}
