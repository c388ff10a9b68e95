// The one pump below every HTTP adapter: frames in, joined per turn, out to a sink (a Node
// response, or a web body), with the sink's backpressure and the write timeout.
import { tryReadInto } from '../../core/kernel.js';
import type { ResponseStream } from './response-stream.js';

/** Frames are written at once when this many characters are pending, not after the turn. */
export const COMBINE_LIMIT = 16 * 1024;

/** Beyond the largest setTimeout delay, runtimes fire after 1 ms instead: such a limit means none. */
export const MAX_DELAY = 2_147_483_647;

// After this turn's I/O: setImmediate where the runtime has it (Node, Bun, Deno 2), else a 0 ms
// timer (Cloudflare Workers without `nodejs_compat`).
const afterTurn: (callback: () => void) => unknown =
  typeof globalThis.setImmediate === 'function' ? (callback) => setImmediate(callback) : (callback) => setTimeout(callback, 0);

/** Where the pump writes: a Node response, or a web `ReadableStream` body. */
export interface FrameSink {
  /** Sends text now; `false` when the sink is full, and nothing more should come until `watch`'s listener runs. */
  write(text: string): boolean;
  /** Calls `onWritable` when the sink can take more (Node `drain`, a web `pull`). */
  watch(onWritable: () => void): void;
  /** Stops calling the listener given to {@link FrameSink.watch}. */
  unwatch(onWritable: () => void): void;
  /** Sends the last text (may be `''`) and ends the sink normally. */
  end(text: string): void;
  /** Drops the sink without flushing it (the client is gone, or stopped reading). */
  destroy(reason: unknown): void;
}

let writeCombining = true;

/**
 * Turns write combining off (`false`) or back on for the streams planned from now on. For
 * bench/write-combining.bench.ts only, and exported from no entry: no option of any adapter
 * reaches it.
 */
export function setWriteCombining(enabled: boolean): void {
  writeCombining = enabled;
}

/** Whether plans made now combine writes ({@link setWriteCombining}). */
export function isWriteCombining(): boolean {
  return writeCombining;
}

/** How a {@link FrameWriter} writes. */
export interface FrameWriterOptions {
  /** How long the sink may stay full before `onStall` runs; above {@link MAX_DELAY}, never. */
  writeTimeoutMs: number;
  /** Combine the frames of one turn into one write; off only to measure what it saves. */
  combine: boolean;
  /** The sink starts full and waits for its first `watch` call (a pull-based body). */
  startFull?: boolean | undefined;
  /** Runs once the sink stayed full for `writeTimeoutMs`. */
  onStall(): void;
}

/**
 * Moves frames to a sink. Every write has a fixed cost (a chunk header, a `flush()` under
 * compression middleware, a DATA frame on HTTP/2, a body chunk through the runtime), so the
 * frames of one turn of the event loop are joined and written once, after its I/O (or at once
 * past {@link COMBINE_LIMIT}). One `setImmediate` serves every writer with frames pending. A
 * write the sink refuses blocks the writer until the sink is writable again: pending text then
 * stays here (at most one limit plus one frame, since {@link pumpFrames} stops reading while
 * {@link FrameWriter.blocked}), and `onStall` runs if the sink stays full for `writeTimeoutMs`.
 * The timer is armed at most once per `writeTimeoutMs`, never per write, since a pull-based
 * body is full after every chunk.
 */
export class FrameWriter {
  // The writers with frames pending, flushed together by one setImmediate.
  static #due: FrameWriter[] = [];
  static #scheduled = false;

  static #schedule(writer: FrameWriter): void {
    FrameWriter.#due.push(writer);
    if (FrameWriter.#scheduled) return;
    FrameWriter.#scheduled = true;
    afterTurn(FrameWriter.#flushDue);
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

  readonly #sink: FrameSink;
  readonly #options: FrameWriterOptions;
  #pending = '';
  // Listed in FrameWriter.#due, to be flushed after this turn's I/O.
  #queued = false;
  #blocked = false;
  #blockedSince = 0;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(sink: FrameSink, options: FrameWriterOptions) {
    this.#sink = sink;
    this.#options = options;
    if (options.startFull === true) this.#block();
  }

  /** True while the sink is full: stop producing frames until {@link whenWritable}. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** True once ended, destroyed or closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a frame; it is written after this turn, or at once when combining is off. */
  push(frame: string): void {
    if (this.#closed) return;
    this.#pending += frame;
    if (!this.#options.combine || this.#pending.length >= COMBINE_LIMIT) this.flush();
    else if (!this.#queued) {
      this.#queued = true;
      FrameWriter.#schedule(this);
    }
  }

  /** Writes the pending frames now, unless the sink is full. */
  flush(): void {
    this.#queued = false;
    if (this.#closed || this.#blocked || this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    if (!this.#sink.write(text)) this.#block();
  }

  /** Resolves when the sink can take more (or the writer was closed). */
  whenWritable(): Promise<void> {
    if (!this.#blocked || this.#closed) return Promise.resolve();
    return new Promise((resolve) => (this.#wake = resolve));
  }

  /** Ends the sink once, with the text not written yet and then `lastFrame`, full or not. */
  end(lastFrame: string): void {
    if (this.#closed) return;
    const text = this.#pending + lastFrame;
    this.close();
    this.#sink.end(text);
  }

  /** Destroys the sink once, dropping what it had not written. */
  destroy(reason: unknown): void {
    if (this.#closed) return;
    this.close();
    this.#sink.destroy(reason);
  }

  /** Drops pending text and releases the timer and the listener, leaving the sink as it is. Later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = '';
    this.#queued = false;
    this.#release();
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#wakeUp();
  }

  readonly #onWritable = (): void => {
    if (this.#closed) return;
    this.#release();
    this.flush();
    if (!this.#blocked) this.#wakeUp();
  };

  readonly #onStallTimer = (): void => {
    this.#stallTimer = undefined;
    if (!this.#blocked || this.#closed) return;
    const left = this.#blockedSince + this.#options.writeTimeoutMs - performance.now();
    if (left > 0) this.#stallTimer = setTimeout(this.#onStallTimer, left);
    else this.#options.onStall();
  };

  #block(): void {
    this.#blocked = true;
    this.#blockedSince = performance.now();
    this.#sink.watch(this.#onWritable);
    const { writeTimeoutMs } = this.#options;
    if (this.#stallTimer === undefined && writeTimeoutMs <= MAX_DELAY) {
      this.#stallTimer = setTimeout(this.#onStallTimer, writeTimeoutMs);
    }
  }

  #release(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#sink.unwatch(this.#onWritable);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The part of a {@link ResponseStream} the pump reads. */
export type FrameSource = Pick<ResponseStream, 'frames' | 'takeFrame'>;

/**
 * Reads every frame of `source` to its end into `writer`: the frames already there (read ahead,
 * or peeked) at once, joined by the writer, then the next one as it comes, never while the
 * writer is blocked. Frames that come while `accepts()` is `false` (the response is over) are
 * only drained, so the stream settles and reports its outcome. Settles when the frames end;
 * rejects only if reading them throws.
 */
export function pumpFrames(source: FrameSource, writer: FrameWriter, accepts: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => new FrameReader(source, writer, accepts, resolve, reject).read());
}

// One object per stream, its callbacks bound once: no closure or promise per frame where the
// frames allow (READ_INTO).
class FrameReader {
  readonly #source: FrameSource;
  readonly #writer: FrameWriter;
  readonly #accepts: () => boolean;
  readonly #done: () => void;
  readonly #failed: (error: unknown) => void;

  constructor(source: FrameSource, writer: FrameWriter, accepts: () => boolean, done: () => void, failed: (error: unknown) => void) {
    this.#source = source;
    this.#writer = writer;
    this.#accepts = accepts;
    this.#done = done;
    this.#failed = failed;
  }

  readonly read = (): void => {
    const source = this.#source;
    const writer = this.#writer;
    try {
      for (;;) {
        if (writer.blocked) {
          writer.whenWritable().then(this.read, this.#failed);
          return;
        }
        const frame = source.takeFrame();
        if (frame === undefined) break;
        if (this.#accepts()) writer.push(frame);
      }
      const frames = source.frames;
      if (!tryReadInto(frames, this.#onFrame, this.#failed)) frames.next().then(this.#onFrame, this.#failed);
    } catch (error) {
      this.#failed(error);
    }
  };

  readonly #onFrame = (result: IteratorResult<string>): void => {
    if (result.done === true) {
      this.#done();
      return;
    }
    try {
      if (this.#accepts()) this.#writer.push(result.value);
    } catch (error) {
      this.#failed(error);
      return;
    }
    this.read();
  };
}
