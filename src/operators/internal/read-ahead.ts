import { BackpressureError } from '../../core/errors.js';
import type { TokenChunk } from '../../core/types.js';
import {
  PendingRead,
  READ_INTO,
  READ_THROUGH,
  returnQuietly,
  SETTLES_ON_RETURN,
  TAKE_READY,
  type ErrorHandler,
  type ResultHandler,
  tryReadInto,
  tryReadThrough,
} from '../../core/kernel.js';
import { PASS_THROUGH, type ReadStage, type StageHost } from '../../core/staged-read.js';
import type { MonitorStage } from '../monitored.js';
import { abortErrorOf } from '../with-abort.js';
import { Pacer } from '../with-rate.js';
import type { TimeoutClock, TimeoutHost, TimeoutStage } from '../with-timeout.js';
import { ChunkBuffer, utf8Length } from './coalesce.js';

/** `withBackpressure`'s options, checked, with the defaults resolved. */
export interface ReadAheadConfig {
  highWaterMark: number;
  maxBufferedBytes: number;
  overflow: 'wait' | 'coalesce' | 'error';
  rate: number | undefined;
  burst: number;
}

/**
 * The stages a {@link ReadAhead} runs besides its buffer, so that one object per stream runs
 * the adapters' whole pipeline (fused): what each operator does is defined once, as a stage,
 * and its standalone form runs the same stage in a reader of its own.
 */
export interface ReadAheadStages<T> {
  /** Ends the stream when it aborts (`withAbort`'s part): buffered chunks are dropped. */
  signal?: AbortSignal | undefined;
  /**
   * `true`: the host calls {@link ReadAhead.handleEvent} itself when `signal` aborts (the signal
   * is its own controller's), so the stream adds no listener to it.
   */
  toldOfAbort?: boolean | undefined;
  /** `withTimeout`'s stage, on the reads of the source. */
  timeout?: TimeoutStage<TokenChunk> | undefined;
  /** `monitored`'s stage, where chunks leave the buffer for the consumer. */
  monitor?: MonitorStage | undefined;
  /** `false`: read the source only while the consumer waits (no read-ahead, `backpressure: false`). */
  ahead?: boolean | undefined;
  /** What the consumer receives: the chunks as they are (the default), or an encoder's frames. */
  output?: ReadStage<TokenChunk, T> | undefined;
  /** `withHeartbeat`'s part: what a read gets when it has waited `idleMs` (`0` for none). */
  keepAlive?: { idleMs: number; value: T } | undefined;
}

type ChunkResult = IteratorResult<TokenChunk, undefined>;
// The bits of ReadAhead's #flags.
const AHEAD = 1;
const STARTED = 2;
const PULLING = 4;
const SOURCE_DONE = 8;
const ENDED = 16;
const CLOSED = 32;
const PEEK_CALLED = 64;
// A listener of the signal was added (not `toldOfAbort`) and not removed yet.
const LISTENING = 128;

// The buffer of every stream with nothing buffered, never written: a chunk that must wait makes one.
const EMPTY_BUFFER = new ChunkBuffer();
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The read-ahead host: reads the source into a bounded buffer ahead of a slow consumer (the
 * boundary between the source's side and the consumer's), with at most one source read and
 * one consumer read pending. On the source's side it runs the timeout stage; at the buffer's
 * exit the pacing ({@link Pacer}), monitor and output (encoding) stages, and the keep-alive of
 * a read that waits; an abort drops the buffer and fails the read at once. One timer serves the
 * keep-alive and the timeout stage's deadlines (the stage runs on it as its {@link TimeoutClock}).
 */
export class ReadAhead<T = TokenChunk>
  extends PendingRead<T>
  implements AsyncIterableIterator<T, undefined>, TimeoutHost, TimeoutClock, StageHost
{
  readonly #config: ReadAheadConfig;
  readonly #source: AsyncIterator<TokenChunk>;
  // EMPTY_BUFFER until a chunk has to wait in it: a stream whose consumer keeps up holds none.
  #buffer = EMPTY_BUFFER;
  // withRate's stage, run at the consumer's end of the buffer; only with `rate`.
  readonly #pacer: Pacer | undefined;
  readonly #timeout: TimeoutStage<TokenChunk> | undefined;
  readonly #monitor: MonitorStage | undefined;
  readonly #output: ReadStage<TokenChunk, T>;
  // The keep-alive: how long a read may wait for it (0 for none), and what it gets then.
  readonly #idleMs: number;
  readonly #keepAlive: T | undefined;
  // When the current wait began, and when the keep-alive's check is due (re-armed lazily from
  // #since, like IdleTimer's: one check per interval, not one per read); 0 for none. Whole ms,
  // rounded up (a keep-alive is never early), so they stay small integers, not heap numbers.
  #since = 0;
  #idleAt = 0;
  // The one timer, for the earliest of #idleAt and the timeout stage's time; #timerAt its time
  // rounded up, 0 for none.
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  // The source's and the timer's callbacks, made in the constructor so they share one context.
  readonly #onResult: (result: ChunkResult) => void;
  readonly #onError: (error: unknown) => void;
  readonly #onTimer: () => void;
  // The stream's yes/no state, as bits of one field (see the accessors below).
  #flags = 0;
  // Ends the stream when it aborts; its listener goes in #release.
  readonly #signal: AbortSignal | undefined;
  // The output's opening result (an encoder's first frame), handed out before anything else.
  #opening: T | undefined;
  #failure: { error: unknown } | undefined;
  // peek()'s settle functions while the first chunk is awaited, and that chunk.
  #peeking: { resolve: (result: ChunkResult) => void; reject: (error: unknown) => void } | undefined;
  #peeked: TokenChunk | undefined;

  constructor(source: AsyncIterable<TokenChunk>, config: ReadAheadConfig, stages: ReadAheadStages<T> = {}) {
    super();
    this.#onResult = (result) => this.#result(result);
    this.#onError = (error) => this.#error(error);
    this.#onTimer = () => this.#fire();
    this.#config = config;
    this.#source = source[Symbol.asyncIterator]();
    this.#pacer = config.rate === undefined ? undefined : new Pacer({ rate: config.rate, burst: config.burst }, () => this.#onPaced());
    const { signal, toldOfAbort = false, timeout, monitor, ahead = true, output, keepAlive } = stages;
    this.#timeout = timeout;
    this.#monitor = monitor;
    this.#ahead = ahead;
    this.#output = output ?? (PASS_THROUGH as ReadStage<TokenChunk, T>);
    this.#opening = this.#output.open();
    const beats = keepAlive !== undefined && keepAlive.idleMs > 0;
    this.#idleMs = beats ? keepAlive.idleMs : 0;
    this.#keepAlive = beats ? keepAlive.value : undefined;
    if (timeout !== undefined) {
      timeout.host = this;
      timeout.clock = this;
    }
    this.#signal = signal;
    if (signal === undefined) return;
    if (signal.aborted) this.handleEvent();
    else if (!toldOfAbort) {
      signal.addEventListener('abort', this, { once: true });
      this.#flags |= LISTENING;
    }
  }

  // Read ahead of the consumer (`false`: only while it waits, `backpressure: false`).
  get #ahead(): boolean {
    return (this.#flags & AHEAD) !== 0;
  }

  set #ahead(on: boolean) {
    this.#flags = on ? this.#flags | AHEAD : this.#flags & ~AHEAD;
  }

  get #started(): boolean {
    return (this.#flags & STARTED) !== 0;
  }

  set #started(on: boolean) {
    this.#flags = on ? this.#flags | STARTED : this.#flags & ~STARTED;
  }

  get #pulling(): boolean {
    return (this.#flags & PULLING) !== 0;
  }

  set #pulling(on: boolean) {
    this.#flags = on ? this.#flags | PULLING : this.#flags & ~PULLING;
  }

  get #sourceDone(): boolean {
    return (this.#flags & SOURCE_DONE) !== 0;
  }

  set #sourceDone(on: boolean) {
    this.#flags = on ? this.#flags | SOURCE_DONE : this.#flags & ~SOURCE_DONE;
  }

  // Nothing more will enter the buffer; #failure (if any) follows the buffered chunks.
  get #ended(): boolean {
    return (this.#flags & ENDED) !== 0;
  }

  set #ended(on: boolean) {
    this.#flags = on ? this.#flags | ENDED : this.#flags & ~ENDED;
  }

  // The consumer has had the last result (or left): later reads are done.
  get #closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  set #closed(on: boolean) {
    this.#flags = on ? this.#flags | CLOSED : this.#flags & ~CLOSED;
  }

  // peek() was called (its promise is not kept: a stream holds it no longer than its caller does).
  get #peekCalled(): boolean {
    return (this.#flags & PEEK_CALLED) !== 0;
  }

  set #peekCalled(on: boolean) {
    this.#flags = on ? this.#flags | PEEK_CALLED : this.#flags & ~PEEK_CALLED;
  }

  /**
   * The signal's abort (this object is its listener, so a stream needs no closure for it; or
   * the host calls it, with `toldOfAbort`): whatever is buffered is dropped, the pending read (or
   * else the next one) rejects now.
   */
  handleEvent(): void {
    this.#buffer = EMPTY_BUFFER;
    this.#stopSource();
    this.#end({ error: abortErrorOf(this.#signal as AbortSignal) });
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.pending) return this.afterPending(() => this.next());
    let ready: IteratorResult<T, undefined> | undefined;
    try {
      ready = this.#ready();
    } catch (error) {
      return Promise.reject(error);
    }
    if (ready !== undefined) return Promise.resolve(ready);
    const read = this.openRead() as Promise<IteratorResult<T, undefined>>;
    this.#wait();
    return read;
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.#leave();
    return Promise.resolve(DONE);
  }

  // return() resolves a pending read at once.
  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  // Taken only when the read has to wait for the source: the reader's promise is the only one.
  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    if (!this.#mustWait()) return undefined;
    const read = this.openThrough(onResult, onError);
    this.#wait();
    return read;
  }

  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    if (!this.#mustWait()) return false;
    this.openInto(onResult, onError);
    this.#wait();
    return true;
  }

  // What is there goes out without a promise (paced chunks only when the bucket allows); the
  // end of the stream is left to the next read.
  [TAKE_READY](): IteratorYieldResult<T> | undefined {
    if (this.pending || this.#closed) return undefined;
    this.#start();
    if (this.#opening === undefined && this.#peeked === undefined && this.#buffer.length === 0) return undefined;
    return this.#ready() as IteratorYieldResult<T> | undefined;
  }

  get buffered(): { chunks: number; bytes: number } {
    return { chunks: this.#buffer.length, bytes: this.#buffer.bytes };
  }

  /**
   * The stream's first chunk (or end, or error), before the consumer reads it: it starts the
   * stream, the monitor sees it now, and the consumer then gets it first. A server adapter looks
   * at how a stream begins before it commits to an HTTP status. Called once per stream: a second
   * call rejects with a `TypeError`.
   */
  peek(): Promise<ChunkResult> {
    if (this.#peekCalled) return Promise.reject(new TypeError('peek() takes the first chunk of a stream once'));
    this.#peekCalled = true;
    this.#start();
    if (this.#closed || (this.#ended && this.#failure === undefined && this.#buffer.length === 0)) {
      return Promise.resolve(DONE);
    }
    if (this.#buffer.length > 0) {
      const peeked = Promise.resolve(this.#takePeeked(this.#buffer.shift()));
      this.#pull();
      return peeked;
    }
    const failure = this.#failure;
    if (this.#ended && failure !== undefined) {
      this.#monitor?.error(failure.error);
      return Promise.reject(failure.error);
    }
    const peeked = new Promise<ChunkResult>((resolve, reject) => (this.#peeking = { resolve, reject }));
    this.#pull();
    return peeked;
  }

  /**
   * Ends the stream for the timeout stage: with `error`, at once (the buffer follows the abort
   * that comes with it); without, only returns the source, and the read that expired fails.
   */
  stop(error?: unknown): void {
    if (error === undefined) return this.#returnSource();
    this.#stopSource();
    this.#end({ error });
  }

  /** Ends the stream for the output stage, after the result it is making (an encoder's final frame). */
  end(): void {
    this.#monitor?.cancel();
    this.#closed = true;
    this.#release();
  }

  armStage(at: number): void {
    this.#armAt(at);
  }

  clearStage(): void {
    if (this.#idleAt === 0) this.#clearTimer();
  }

  /** A read starts waiting now: its keep-alive is due `idleMs` from now. */
  #waitIdle(): void {
    if (this.#idleMs === 0) return;
    const now = Math.ceil(performance.now());
    this.#since = now;
    if (this.#idleAt !== 0) return;
    this.#idleAt = now + this.#idleMs;
    this.#armAt(this.#idleAt);
  }

  /** No read waits any more for good (the stream ended): the keep-alive is off. */
  #clearIdle(): void {
    this.#idleAt = 0;
    if ((this.#timeout?.timerAt ?? Infinity) === Infinity) this.#clearTimer();
  }

  /** The timer fires at `at` at the latest. */
  #armAt(at: number): void {
    const timerAt = this.#timerAt;
    if (timerAt !== 0 && at >= timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = Math.ceil(at);
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = 0;
  }

  // The keep-alive first, then the timeout stage; then the timer is armed for what is left.
  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = 0;
    const idleAt = this.#idleAt;
    if (idleAt !== 0 && performance.now() >= idleAt) {
      this.#idleAt = 0;
      // With no read waiting there is nothing to send: the keep-alive stays off until the next wait.
      if (this.pending) {
        if (performance.now() - this.#since < this.#idleMs) this.#idleAt = this.#since + this.#idleMs;
        else this.settleRead({ done: false, value: this.#keepAlive }, false);
      }
    }
    const timeout = this.#timeout;
    if (timeout !== undefined && timeout.timerAt !== Infinity && performance.now() >= timeout.timerAt) timeout.onTimer();
    const stageAt = timeout?.timerAt ?? Infinity;
    const next = this.#idleAt === 0 ? stageAt : Math.min(this.#idleAt, stageAt);
    if (next !== Infinity) this.#armAt(next);
  }

  #start(): void {
    this.#monitor?.start();
    this.#started = true;
  }

  /** Nothing can be handed over now: a read has to wait. */
  #mustWait(): boolean {
    if (this.pending || this.#closed || this.#ended || this.#opening !== undefined || this.#peeked !== undefined) return false;
    if (this.#buffer.length > 0) return false;
    this.#start();
    return true;
  }

  /** What a read gets now, if anything: a result, or a failure thrown; `undefined` when it has to wait. */
  #ready(): IteratorResult<T, undefined> | undefined {
    if (this.#closed) return DONE;
    this.#start();
    const opening = this.#opening;
    if (opening !== undefined) {
      this.#opening = undefined;
      return { done: false, value: opening };
    }
    const peeked = this.#peeked;
    if (peeked !== undefined) {
      this.#peeked = undefined;
      return this.#out({ done: false, value: peeked }, false);
    }
    if (this.#buffer.length > 0) {
      if (this.#pacer !== undefined && !this.#pacer.take()) return undefined;
      return this.#out(this.#take(), true);
    }
    return this.#ended ? this.#last() : undefined;
  }

  /** A chunk on its way to the consumer: seen by the monitor, then made into the output. */
  #out(result: IteratorYieldResult<TokenChunk>, observe: boolean): IteratorResult<T, undefined> {
    if (observe) this.#monitor?.result(result);
    try {
      return this.#output.chunk(result, this) as IteratorResult<T, undefined>;
    } catch (error) {
      this.end();
      return this.#output.error(error) as IteratorResult<T, undefined>;
    }
  }

  /** The stream's last result: the source's end or failure, as the output makes it. */
  #last(): IteratorResult<T, undefined> {
    const failure = this.#failure;
    this.#closed = true;
    this.#release();
    if (failure === undefined) {
      this.#monitor?.result(DONE);
      return this.#output.done() as IteratorResult<T, undefined>;
    }
    this.#monitor?.error(failure.error);
    return this.#output.error(failure.error) as IteratorResult<T, undefined>;
  }

  /** A read waits: for its keep-alive, for the pacing, or for the source. */
  #wait(): void {
    this.#waitIdle();
    if (this.#buffer.length > 0) this.#pacer?.wait();
    else this.#pull();
  }

  /** Settles the pending read with what is there now, if anything. */
  #serve(): void {
    let ready: IteratorResult<T, undefined> | undefined;
    try {
      ready = this.#ready();
    } catch (error) {
      this.settleRead(error, true);
      return;
    }
    if (ready !== undefined) this.settleRead(ready, false);
  }

  #pull(): void {
    if (this.#pulling || this.#ended || !this.#started) return;
    const { overflow, highWaterMark, maxBufferedBytes } = this.#config;
    const buffer = this.#buffer;
    if (!this.#ahead) {
      if ((!this.pending && this.#peeking === undefined) || buffer.length > 0) return;
    } else if (overflow !== 'error' && (buffer.length >= highWaterMark || buffer.bytes >= maxBufferedBytes)) return;
    this.#pulling = true;
    this.#timeout?.startRead();
    try {
      if (!tryReadInto(this.#source, this.#onResult, this.#onError) && tryReadThrough(this.#source, this.#onResult, this.#onError) === undefined) {
        this.#source.next().then(this.#onResult, this.#onError);
      }
    } catch (error) {
      this.#onError(error);
    }
  }

  // Settled reads of a source that was stopped meanwhile are dropped (and their errors handled).
  #result(result: ChunkResult): void {
    this.#pulling = false;
    if (this.#ended) return;
    const timeout = this.#timeout;
    if (timeout !== undefined) {
      try {
        timeout.result(result);
      } catch (error) {
        this.#onError(error);
        return;
      }
    }
    if (result.done === true) {
      this.#sourceDone = true;
      timeout?.close();
      this.#end(undefined);
    } else {
      this.#accept(result.value);
      this.#pull();
    }
  }

  #error(error: unknown): void {
    this.#pulling = false;
    if (this.#ended) return;
    this.#sourceDone = true;
    this.#timeout?.close();
    this.#end({ error });
  }

  #accept(chunk: TokenChunk): void {
    if (this.#peeking !== undefined) {
      const { resolve } = this.#peeking;
      this.#peeking = undefined;
      resolve(this.#takePeeked(chunk));
      if (this.pending) this.#serve();
      return;
    }
    const buffer = this.#buffer;
    const waiting = this.pending;
    if (waiting && buffer.length === 0 && (this.#pacer === undefined || this.#pacer.take())) {
      this.settleRead(this.#out({ done: false, value: chunk }, true), false);
      return;
    }
    const size = utf8Length(chunk.token);
    const { overflow, highWaterMark, maxBufferedBytes } = this.#config;
    if (overflow === 'error') {
      const bound =
        buffer.length >= highWaterMark
          ? 'highWaterMark'
          : buffer.length > 0 && buffer.bytes + size > maxBufferedBytes
            ? 'maxBufferedBytes'
            : undefined;
      if (bound !== undefined) {
        this.#stopSource();
        this.#end({ error: overflowError(bound, this.#config) });
        return;
      }
    }
    const target = buffer === EMPTY_BUFFER ? (this.#buffer = new ChunkBuffer()) : buffer;
    target.push(chunk, size);
    if (overflow === 'coalesce' && target.length >= highWaterMark) target.coalesce();
    if (waiting) this.#pacer?.wait();
  }

  /** The first chunk, taken for peek(): the monitor sees it now, the consumer gets it first. */
  #takePeeked(chunk: TokenChunk): ChunkResult {
    const result: IteratorYieldResult<TokenChunk> = { done: false, value: chunk };
    this.#monitor?.result(result);
    this.#peeked = chunk;
    return result;
  }

  #end(failure: { error: unknown } | undefined): void {
    this.#ended = true;
    this.#failure = failure;
    const peeking = this.#peeking;
    if (peeking !== undefined) {
      this.#peeking = undefined;
      if (failure === undefined) peeking.resolve(DONE);
      else {
        // The monitor sees how the stream began now (an adapter may answer with an HTTP error
        // and never read on); the consumer still gets the failure.
        this.#monitor?.error(failure.error);
        peeking.reject(failure.error);
      }
    }
    if (this.pending && this.#buffer.length === 0) this.#serve();
  }

  #take(): IteratorYieldResult<TokenChunk> {
    const chunk = this.#buffer.shift();
    this.#pull();
    return { done: false, value: chunk };
  }

  // A token is due for the chunk the pending read waits for.
  #onPaced(): void {
    if (!this.pending || this.#buffer.length === 0) return;
    this.#serve();
    if (this.pending && this.#buffer.length > 0) this.#pacer?.wait();
  }

  /** The consumer left: a pending read (and a pending peek) resolves as done. */
  #leave(): void {
    this.#monitor?.cancel();
    this.#closed = true;
    this.#peeked = undefined;
    this.#release();
    const peeking = this.#peeking;
    this.#peeking = undefined;
    peeking?.resolve(DONE);
    this.settleRead(DONE, false);
  }

  /** Releases everything: the signal's listener, the source, the timers, the buffer. */
  #release(): void {
    if ((this.#flags & LISTENING) !== 0) {
      this.#flags &= ~LISTENING;
      this.#signal?.removeEventListener('abort', this);
    }
    this.#ended = true;
    this.#failure = undefined;
    this.#stopSource();
    this.#pacer?.clear();
    this.#clearIdle();
    this.#buffer = EMPTY_BUFFER;
  }

  // Not awaited: while a read is pending, a generator's return() waits for that read to settle.
  // Ended first: a source that settles its pending read from return() (SETTLES_ON_RETURN:
  // withTimeout, monitored, …) settles it as done, synchronously, and that read must be dropped,
  // not taken for the source's own end (a disconnect would then be reported as 'completed').
  #stopSource(): void {
    this.#ended = true;
    this.#returnSource();
  }

  #returnSource(): void {
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    this.#timeout?.close();
    returnQuietly(this.#source);
  }
}

/** The error of `overflow: 'error'`, naming the bound that was crossed. */
function overflowError(bound: 'highWaterMark' | 'maxBufferedBytes', config: ReadAheadConfig): BackpressureError {
  const limit = bound === 'highWaterMark' ? `${config.highWaterMark} chunks` : `${config.maxBufferedBytes} bytes`;
  return new BackpressureError(`The consumer fell more than ${limit} behind the source (\`${bound}\`)`);
}

