import { validateHeaderName, validateHeaderValue } from 'node:http';
import { assertNumber, describeValue } from '../../core/validate.js';
import { planResponse, RESPONSE_KEYS, type ResponsePlan } from './options.js';
import type { StreamResponseOptions } from './response-stream.js';

/** The parts of a `node:http` or `node:http2` compat response the writer uses. */
export interface WritableResponse {
  write(chunk: string): boolean;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/** Frames are written at once when this many characters are pending, not on the next tick. */
export const COMBINE_LIMIT = 16 * 1024;

/** Beyond the largest setTimeout delay Node fires after 1 ms instead: such a limit means none. */
export const MAX_DELAY = 2_147_483_647;

export interface FrameWriterOptions {
  /** How long a full response may stay full (no `drain`) before `onStall` runs. */
  writeTimeoutMs: number;
  /** Combine the frames of one tick into one write; off only to measure what it saves. */
  combine: boolean;
  onStall(): void;
}

/**
 * Moves SSE frames to a response. Every `res.write` has a fixed cost (a chunk header, a `flush()`
 * under compression middleware, a DATA frame on HTTP/2), so the frames of one turn of the event
 * loop are joined and written once, after its I/O (or at once past {@link COMBINE_LIMIT}). One
 * `setImmediate` serves every writer with frames pending, not one per writer: with thousands of
 * streams, each receiving a token now and then, that is one callback per turn, not per token.
 * A write that returns `false` blocks the writer until `drain`: pending text then stays here
 * (at most one limit plus one frame, since the caller stops reading frames while
 * {@link FrameWriter.blocked}), and `onStall` runs if no `drain` comes in time.
 */
export class FrameWriter {
  // The writers with frames pending, flushed together by one setImmediate.
  static #due: FrameWriter[] = [];
  static #scheduled = false;

  static #schedule(writer: FrameWriter): void {
    FrameWriter.#due.push(writer);
    if (FrameWriter.#scheduled) return;
    FrameWriter.#scheduled = true;
    setImmediate(FrameWriter.#flushDue);
  }

  static readonly #flushDue = (): void => {
    const writers = FrameWriter.#due;
    FrameWriter.#due = [];
    FrameWriter.#scheduled = false;
    for (const writer of writers) {
      // Flushed or closed meanwhile: nothing left to write (a writer is listed once per wait).
      if (!writer.#queued) continue;
      try {
        writer.flush();
      } catch (error) {
        // As a throw from its own setImmediate would: it must not keep the other writers from theirs.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };

  readonly #res: WritableResponse;
  readonly #options: FrameWriterOptions;
  readonly #flushes: boolean;
  #pending = '';
  // Listed in FrameWriter.#due, to be flushed after this turn's I/O.
  #queued = false;
  #blocked = false;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(res: WritableResponse, options: FrameWriterOptions) {
    this.#res = res;
    this.#options = options;
    // Compression middleware adds `res.flush()`; without a call its zlib stream holds the frames.
    this.#flushes = typeof (res as { flush?: unknown }).flush === 'function';
  }

  /** True while the response is full: stop producing frames until {@link whenWritable}. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Queues a frame; it is written on the next tick, or at once when combining is off. */
  push(frame: string): void {
    if (this.#closed) return;
    this.#pending += frame;
    if (!this.#options.combine || this.#pending.length >= COMBINE_LIMIT) this.flush();
    else if (!this.#queued) {
      this.#queued = true;
      FrameWriter.#schedule(this);
    }
  }

  /** Writes the pending frames now, unless the response is full. */
  flush(): void {
    this.#queued = false;
    if (this.#closed || this.#blocked || this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    const ok = this.#res.write(text);
    if (this.#flushes) (this.#res as unknown as { flush(): void }).flush();
    if (!ok) this.#block();
  }

  /** Resolves when the response can take more (or the writer was closed). */
  whenWritable(): Promise<void> {
    if (!this.#blocked || this.#closed) return Promise.resolve();
    return new Promise((resolve) => (this.#wake = resolve));
  }

  /** Stops the writer (timers, listener) and returns the text it had not written yet. */
  finish(): string {
    const text = this.#pending;
    this.close();
    return text;
  }

  /** Drops pending text and releases the timers and the listener. Later pushes do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = '';
    this.#queued = false;
    this.#release();
    this.#wakeUp();
  }

  readonly #onDrain = (): void => {
    this.#release();
    this.flush();
    if (!this.#blocked) this.#wakeUp();
  };

  readonly #onStallTimer = (): void => {
    this.#stallTimer = undefined;
    this.#options.onStall();
  };

  #block(): void {
    this.#blocked = true;
    this.#res.on('drain', this.#onDrain);
    const { writeTimeoutMs } = this.#options;
    if (writeTimeoutMs <= MAX_DELAY) this.#stallTimer = setTimeout(this.#onStallTimer, writeTimeoutMs);
  }

  #release(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#res.off('drain', this.#onDrain);
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

// HTTP/2 forbids connection-specific headers; a stream has no length.
const FORBIDDEN = new Set(['content-length']);
const FORBIDDEN_HTTP2 = new Set(['content-length', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/**
 * The user's extra headers under the fixed ones: a user header that names a fixed header in
 * another case would otherwise be sent twice, and headers a stream cannot carry are dropped.
 */
export function mergeHeaders(
  user: Record<string, string> | undefined,
  fixed: Record<string, string>,
  http2: boolean,
): Record<string, string> {
  if (user === undefined) return fixed;
  const taken = new Set(Object.keys(fixed).map((name) => name.toLowerCase()));
  const forbidden = http2 ? FORBIDDEN_HTTP2 : FORBIDDEN;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(user)) {
    const lower = name.toLowerCase();
    if (!taken.has(lower) && !forbidden.has(lower)) headers[name] = value;
  }
  return Object.assign(headers, fixed);
}

/** The keys the Node adapters take: every adapter's, plus `writeTimeoutMs`. */
const NODE_KEYS = [...RESPONSE_KEYS, 'writeTimeoutMs'] as const;

let writeCombining = true;

/**
 * Turns write combining off (`false`) or back on for the streams planned from now on. For
 * bench/write-combining.bench.ts only, and exported from no entry: no option of `sendSSE`
 * reaches it.
 */
export function setWriteCombining(enabled: boolean): void {
  writeCombining = enabled;
}

/** The Node adapters' options, checked once (when `sse()` makes a handler, or at `sendSSE`). */
export interface NodePlan extends ResponsePlan {
  readonly headers: Record<string, string> | undefined;
  readonly writeTimeoutMs: number;
  /** `false` only while bench/write-combining.bench.ts has turned combining off ({@link setWriteCombining}). */
  readonly combine: boolean;
}

/** Checks every option of a Node adapter deeply, once, and resolves the defaults. */
export function planNode(options: StreamResponseOptions & { writeTimeoutMs?: number | undefined }): NodePlan {
  const plan = planResponse(options, NODE_KEYS);
  const { writeTimeoutMs = 30_000, headers } = options;
  assertNumber('writeTimeoutMs', writeTimeoutMs, { min: 1, allowInfinity: true });
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw new TypeError(`Expected \`headers\` to be an object of header names and string values, got ${describeValue(headers)}`);
    }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') {
        throw new TypeError(`Expected header \`${name}\` to be a string, got ${describeValue(value)}`);
      }
      validateHeaderName(name);
      validateHeaderValue(name, value);
    }
  }
  return { ...plan, headers, writeTimeoutMs, combine: writeCombining };
}
