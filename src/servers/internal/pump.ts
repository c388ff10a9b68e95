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
  /** Runs once the sink stayed full for the writer's `writeTimeoutMs`. */
  stalled(): void;
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

/** How a {@link FrameWriter} writes: an adapter's plan has these, so every stream of it shares them. */
export interface FrameWriterOptions {
  /** How long the sink may stay full before its `stalled()` runs; above {@link MAX_DELAY}, never. */
  readonly writeTimeoutMs: number;
  /** Combine the frames of one turn into one write; off only to measure what it saves. */
  readonly combine: boolean;
}

// FrameWriter's flags.
const QUEUED = 1;
const BLOCKED = 2;
const CLOSED = 4;

/**
 * Moves frames to a sink. Every write has a fixed cost (a chunk header, a `flush()` under
 * compression middleware, a DATA frame on HTTP/2, a body chunk through the runtime), so the
 * frames of one turn of the event loop are joined and written once, after its I/O (or at once
 * past {@link COMBINE_LIMIT}). One `setImmediate` serves every writer with frames pending. A
 * write the sink refuses blocks the writer until the sink is writable again: pending text then
 * stays here (at most one limit plus one frame, since {@link FramePump} stops reading while
 * {@link FrameWriter.blocked}), and the sink's `stalled()` runs if the sink stays full for `writeTimeoutMs`.
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
      if ((writer.#flags & QUEUED) === 0) continue;
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
  // QUEUED (listed in FrameWriter.#due, to be flushed after this turn's I/O), BLOCKED and
  // CLOSED, in one field (a stream's fields are what it costs).
  #flags = 0;
  // Whole ms, rounded up (never early): a Smi field, where a double would be boxed per writer.
  #blockedSince = 0;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  // Made the first time the sink is full: most streams never need it.
  #onWritable: (() => void) | undefined;

  /** `startFull`: the sink is full until its first `watch` listener call (a pull-based body). */
  constructor(sink: FrameSink, options: FrameWriterOptions, startFull = false) {
    this.#sink = sink;
    this.#options = options;
    if (startFull) this.#block();
  }

  /** True while the sink is full: stop producing frames until {@link whenWritable}. */
  get blocked(): boolean {
    return (this.#flags & BLOCKED) !== 0;
  }

  /** True once ended, destroyed or closed. */
  get closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  /** Queues a frame; it is written after this turn, or at once when combining is off. */
  push(frame: string): void {
    if ((this.#flags & CLOSED) !== 0) return;
    this.#pending += frame;
    if (!this.#options.combine || this.#pending.length >= COMBINE_LIMIT) this.flush();
    else if ((this.#flags & QUEUED) === 0) {
      this.#flags |= QUEUED;
      FrameWriter.#schedule(this);
    }
  }

  /** Writes the pending frames now, unless the sink is full. */
  flush(): void {
    this.#flags &= ~QUEUED;
    if ((this.#flags & (CLOSED | BLOCKED)) !== 0 || this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    if (!this.#sink.write(text)) this.#block();
  }

  /** Resolves when the sink can take more (or the writer was closed). */
  whenWritable(): Promise<void> {
    if ((this.#flags & (BLOCKED | CLOSED)) !== BLOCKED) return Promise.resolve();
    return new Promise((resolve) => (this.#wake = resolve));
  }

  /** Ends the sink once, with the text not written yet and then `lastFrame`, full or not. */
  end(lastFrame: string): void {
    if ((this.#flags & CLOSED) !== 0) return;
    const text = this.#pending + lastFrame;
    this.close();
    this.#sink.end(text);
  }

  /** Destroys the sink once, dropping what it had not written. */
  destroy(reason: unknown): void {
    if ((this.#flags & CLOSED) !== 0) return;
    this.close();
    this.#sink.destroy(reason);
  }

  /** Drops pending text and releases the timer and the listener, leaving the sink as it is. Later calls do nothing. */
  close(): void {
    if ((this.#flags & CLOSED) !== 0) return;
    this.#flags = (this.#flags | CLOSED) & ~QUEUED;
    this.#pending = '';
    this.#release();
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#wakeUp();
  }

  #writable(): void {
    if ((this.#flags & CLOSED) !== 0) return;
    this.#release();
    this.flush();
    if ((this.#flags & BLOCKED) === 0) this.#wakeUp();
  }

  // The timer's argument is the writer: no closure per writer.
  static #onStallTimer(this: void, writer: FrameWriter): void {
    writer.#stallTimer = undefined;
    if ((writer.#flags & (BLOCKED | CLOSED)) !== BLOCKED) return;
    const left = writer.#blockedSince + writer.#options.writeTimeoutMs - performance.now();
    if (left > 0) writer.#stallTimer = setTimeout(FrameWriter.#onStallTimer, left, writer);
    else writer.#sink.stalled();
  }

  #block(): void {
    this.#flags |= BLOCKED;
    this.#blockedSince = Math.ceil(performance.now());
    this.#sink.watch((this.#onWritable ??= () => this.#writable()));
    const { writeTimeoutMs } = this.#options;
    if (this.#stallTimer === undefined && writeTimeoutMs <= MAX_DELAY) {
      this.#stallTimer = setTimeout(FrameWriter.#onStallTimer, writeTimeoutMs, this);
    }
  }

  #release(): void {
    if ((this.#flags & BLOCKED) === 0) return;
    this.#flags &= ~BLOCKED;
    this.#sink.unwatch(this.#onWritable as () => void);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The part of a {@link ResponseStream} the pump reads. */
export type FrameSource = Pick<ResponseStream, 'frames' | 'takeFrame'>;

/** Who the pump writes for: frames go out while `accepts()` is `true` (the response is not over). */
export interface FrameGate {
  /** `false` once the response is over: later frames are only drained. */
  accepts(): boolean;
}

/** A {@link FrameGate} that {@link FramePump.pump} also tells how the frames ended. */
export interface FrameTarget extends FrameGate {
  /** The frames ended (their last one was pushed, or drained). */
  framesEnded(): void;
  /** Reading the frames threw; the pump stopped. */
  framesFailed(error: unknown): void;
}

/**
 * {@link FramePump.pump} as a promise: settles when the frames end; rejects only if reading them
 * throws. `writer` reads them (one pump per writer).
 */
export function pumpFrames(source: FrameSource, writer: FramePump, gate: FrameGate): Promise<void> {
  return new Promise((resolve, reject) => writer.pump(source, { accepts: () => gate.accepts(), framesEnded: resolve, framesFailed: reject }));
}

/**
 * A {@link FrameWriter} that also reads its frames (one object per stream, its callbacks bound
 * once, in {@link FramePump.pump}, so they share one context): no closure or promise per frame
 * where the frames allow (READ_INTO).
 */
export class FramePump extends FrameWriter {
  #source: FrameSource | undefined;
  #target: FrameTarget | undefined;
  #onFrame: ((result: IteratorResult<string>) => void) | undefined;
  #onError: ((error: unknown) => void) | undefined;
  // Made the first time the writer blocks: most streams never need it.
  #onWritable: (() => void) | undefined;

  /**
   * Reads every frame of `source` to its end into this writer: the frames already there (read
   * ahead, or peeked) at once, joined, then the next one as it comes, never while
   * {@link FrameWriter.blocked}. Frames that come while `target.accepts()` is `false` (the
   * response is over) are only drained, so the stream settles and reports its outcome. Calls
   * `target.framesEnded()` when the frames end, or `target.framesFailed(error)` if reading them
   * throws: no promise. Call once.
   */
  pump(source: FrameSource, target: FrameTarget): void {
    this.#source = source;
    this.#target = target;
    this.#onFrame = (result) => this.#frame(result);
    this.#onError = (error) => target.framesFailed(error);
    this.#read();
  }

  #read(): void {
    const source = this.#source as FrameSource;
    const target = this.#target as FrameTarget;
    try {
      for (;;) {
        if (this.blocked) {
          this.whenWritable().then((this.#onWritable ??= () => this.#read()), this.#onError);
          return;
        }
        const frame = source.takeFrame();
        if (frame === undefined) break;
        if (target.accepts()) this.push(frame);
      }
      const frames = source.frames;
      const onFrame = this.#onFrame as (result: IteratorResult<string>) => void;
      const onError = this.#onError as (error: unknown) => void;
      if (!tryReadInto(frames, onFrame, onError)) frames.next().then(onFrame, onError);
    } catch (error) {
      target.framesFailed(error);
    }
  }

  #frame(result: IteratorResult<string>): void {
    const target = this.#target as FrameTarget;
    if (result.done === true) {
      target.framesEnded();
      return;
    }
    try {
      if (target.accepts()) this.push(result.value);
    } catch (error) {
      target.framesFailed(error);
      return;
    }
    this.#read();
  }
}
