import {
  assertFieldValue,
  assertInteger,
  describeError,
  encodeData,
  encodeSSEFrame,
  HEARTBEAT_FRAME,
  type SSEDonePayload,
} from '../sse/encoder.js';
import type { Operator, TokenChunk, Usage } from '../types.js';
import { assertFunction, assertNumber, assertOptionalNumber, assertOptions, describeValue } from '../validate.js';
import {
  READ_INTO,
  returnQuietly,
  TAKE_READY,
  takeReady,
  tryReadInto,
  UNHANDLED,
  type ErrorHandler,
  type ResultHandler,
} from './internal/interruptible.js';

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
  return {
    tokenEvent: `event: ${assertFieldValue('events.token', events.token ?? 'token')}\n`,
    doneEvent: `event: ${assertFieldValue('events.done', events.done ?? 'done')}\n`,
    errorEvent: assertFieldValue('events.error', events.error ?? 'error'),
    // Beyond the largest setTimeout delay a heartbeat would never be due in practice.
    heartbeatMs: heartbeatMs === false || heartbeatMs > MAX_DELAY ? 0 : heartbeatMs,
    retryFrame: retryMs === undefined ? undefined : encodeSSEFrame({ retry: retryMs }),
    serialize,
    exposeErrors,
  };
}

/** @internal The encoder for checked options: what the adapters build per request, with no checks. */
export function sseWith(config: SSEConfig): Operator<TokenChunk, string> {
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    return { [Symbol.asyncIterator]: () => new SSEIterator(source, config) };
  };
}

const MAX_DELAY = 2_147_483_647;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const HEARTBEAT: IteratorYieldResult<string> = Object.freeze({ done: false, value: HEARTBEAT_FRAME });
// #waiting while a read taken into a handler (READ_INTO) is pending: it has no promise.
const DETACHED: Promise<IteratorResult<string>> = new Promise<IteratorResult<string>>(() => undefined);

interface Config {
  tokenEvent: string;
  doneEvent: string;
  errorEvent: string;
  heartbeatMs: number;
  retryFrame: string | undefined;
  serialize: ((chunk: TokenChunk) => string) | undefined;
  exposeErrors: boolean;
}

/**
 * The consumer's read is a promise of its own, settled by a frame, a heartbeat or a stop, while
 * one source read stays in flight across heartbeats. That already makes a stop take effect
 * during a pending read, so the source is read directly rather than through `Interruptible`,
 * which would add a promise and two closures per chunk. The heartbeat timer is re-armed lazily
 * from the time the current wait began: a steady stream costs one timer per interval, not per chunk.
 */
class SSEIterator implements AsyncIterableIterator<string> {
  readonly #config: Config;
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
  #last: TokenChunk | undefined;
  #usage: Usage | undefined;

  constructor(source: AsyncIterable<TokenChunk>, config: Config) {
    this.#config = config;
    this.#source = source[Symbol.asyncIterator]();
    this.#first = config.retryFrame;
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
    else this.#settle(HEARTBEAT);
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

  /** The frame of a source result; one that cannot be encoded ends the stream with an error frame. */
  #frameOf(result: IteratorResult<TokenChunk>): string {
    try {
      return result.done === true ? this.#doneFrame(undefined) : this.#encode(result.value);
    } catch (error) {
      return this.#errorFrame(error);
    }
  }

  #encode(chunk: TokenChunk): string {
    this.#last = chunk;
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason === undefined) return this.#tokenFrame(chunk);
    if (chunk.token === '') return this.#doneFrame(chunk);
    const { finishReason: _reason, usage: _usage, ...text } = chunk;
    return this.#tokenFrame(text) + this.#doneFrame(chunk);
  }

  #tokenFrame(chunk: TokenChunk): string {
    const { serialize, tokenEvent } = this.#config;
    // JSON.stringify escapes every control character, so its output needs no line splitting.
    const data = serialize === undefined ? `data: ${JSON.stringify(chunk)}\n` : encodeData(serialized(serialize(chunk)));
    return `id: ${assertInteger('index', chunk.index)}\n${tokenEvent}${data}\n`;
  }

  #doneFrame(chunk: TokenChunk | undefined): string {
    this.#end();
    const last = chunk ?? this.#last;
    const done: SSEDonePayload = { finishReason: chunk?.finishReason ?? 'stop' };
    if (last !== undefined) done.index = assertInteger('index', last.index);
    const usage = chunk?.usage ?? this.#usage;
    if (usage !== undefined) done.usage = usage;
    if (last?.model !== undefined) done.model = last.model;
    if (last?.provider !== undefined) done.provider = last.provider;
    const id = chunk === undefined ? '' : `id: ${chunk.index}\n`;
    return `${id}${this.#config.doneEvent}data: ${JSON.stringify(done)}\n\n`;
  }

  #errorFrame(error: unknown): string {
    this.#end();
    const { errorEvent, exposeErrors } = this.#config;
    return encodeSSEFrame({ event: errorEvent, data: JSON.stringify(describeError(error, exposeErrors)) });
  }
}

function serialized(data: unknown): string {
  if (typeof data !== 'string') {
    throw new TypeError(`Expected \`serialize\` to return a string, got ${describeValue(data)}`);
  }
  return data;
}
