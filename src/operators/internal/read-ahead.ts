import { BackpressureError } from '../../core/errors.js';
import { IdleTimer, type IdleHost } from '../../core/idle-timer.js';
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
import type { TimeoutHost, TimeoutStage } from '../with-timeout.js';
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
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The read-ahead host: reads the source into a bounded buffer ahead of a slow consumer (the
 * boundary between the source's side and the consumer's), with at most one source read and
 * one consumer read pending. On the source's side it runs the timeout stage; at the buffer's
 * exit the pacing ({@link Pacer}), monitor and output (encoding) stages, and the keep-alive of
 * a read that waits; an abort drops the buffer and fails the read at once.
 */
export class ReadAhead<T = TokenChunk>
  extends PendingRead<T>
  implements AsyncIterableIterator<T, undefined>, TimeoutHost, StageHost, IdleHost
{
  readonly #config: ReadAheadConfig;
  readonly #source: AsyncIterator<TokenChunk>;
  readonly #buffer = new ChunkBuffer();
  // withRate's stage, run at the consumer's end of the buffer; only with `rate`.
  readonly #pacer: Pacer | undefined;
  readonly #timeout: TimeoutStage<TokenChunk> | undefined;
  readonly #monitor: MonitorStage | undefined;
  readonly #output: ReadStage<TokenChunk, T>;
  readonly #idle: IdleTimer | undefined;
  readonly #keepAlive: IteratorYieldResult<T> | undefined;
  readonly #ahead: boolean;
  // Ends the stream when it aborts; its listener goes in #release.
  readonly #signal: AbortSignal | undefined;
  // The output's opening result (an encoder's first frame), handed out before anything else.
  #opening: T | undefined;
  #started = false;
  #pulling = false;
  #sourceDone = false;
  // Nothing more will enter the buffer; #failure (if any) follows the buffered chunks.
  #ended = false;
  #failure: { error: unknown } | undefined;
  // The consumer has had the last result (or left): later reads are done.
  #closed = false;
  // peek(): its promise, its settle functions while the first chunk is awaited, and that chunk.
  #peek: Promise<ChunkResult> | undefined;
  #peeking: { resolve: (result: ChunkResult) => void; reject: (error: unknown) => void } | undefined;
  #peeked: TokenChunk | undefined;

  constructor(source: AsyncIterable<TokenChunk>, config: ReadAheadConfig, stages: ReadAheadStages<T> = {}) {
    super();
    this.#config = config;
    this.#source = source[Symbol.asyncIterator]();
    this.#pacer = config.rate === undefined ? undefined : new Pacer({ rate: config.rate, burst: config.burst }, () => this.#onPaced());
    const { signal, timeout, monitor, ahead = true, output, keepAlive } = stages;
    this.#timeout = timeout;
    this.#monitor = monitor;
    this.#ahead = ahead;
    this.#output = output ?? (PASS_THROUGH as ReadStage<TokenChunk, T>);
    this.#opening = this.#output.open();
    const beats = keepAlive !== undefined && keepAlive.idleMs > 0;
    this.#idle = beats ? new IdleTimer(keepAlive.idleMs, this) : undefined;
    this.#keepAlive = beats ? { done: false, value: keepAlive.value } : undefined;
    if (timeout !== undefined) timeout.host = this;
    this.#signal = signal;
    if (signal === undefined) return;
    if (signal.aborted) this.handleEvent();
    else signal.addEventListener('abort', this, { once: true });
  }

  /**
   * The signal's abort (this object is its listener, so a stream needs no closure for it):
   * whatever is buffered is dropped, the pending read (or else the next one) rejects now.
   */
  handleEvent(): void {
    this.#buffer.clear();
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

  throw(error?: unknown): Promise<IteratorResult<T, undefined>> {
    this.#leave();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
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
   * at how a stream begins before it commits to an HTTP status.
   */
  peek(): Promise<ChunkResult> {
    if (this.#peek !== undefined) return this.#peek;
    this.#start();
    if (this.#closed || (this.#ended && this.#failure === undefined && this.#buffer.length === 0)) {
      return (this.#peek = Promise.resolve(DONE));
    }
    if (this.#buffer.length > 0) {
      this.#peek = Promise.resolve(this.#takePeeked(this.#buffer.shift()));
      this.#pull();
      return this.#peek;
    }
    const failure = this.#failure;
    if (this.#ended && failure !== undefined) {
      this.#monitor?.error(failure.error);
      return (this.#peek = Promise.reject(failure.error));
    }
    this.#peek = new Promise<ChunkResult>((resolve, reject) => (this.#peeking = { resolve, reject }));
    this.#pull();
    return this.#peek;
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

  isWaiting(): boolean {
    return this.pending;
  }

  onIdle(): void {
    this.settleRead(this.#keepAlive, false);
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
    this.#idle?.wait();
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
  readonly #onResult = (result: ChunkResult): void => {
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
  };

  readonly #onError = (error: unknown): void => {
    this.#pulling = false;
    if (this.#ended) return;
    this.#sourceDone = true;
    this.#timeout?.close();
    this.#end({ error });
  };

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
    buffer.push(chunk, size);
    if (overflow === 'coalesce' && buffer.length >= highWaterMark) buffer.coalesce();
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
    this.#signal?.removeEventListener('abort', this);
    this.#ended = true;
    this.#failure = undefined;
    this.#stopSource();
    this.#pacer?.clear();
    this.#idle?.clear();
    this.#buffer.clear();
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

