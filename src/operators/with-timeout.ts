import { StreamTimeoutError, type TimeoutPhase } from '../core/errors.js';
import type { Operator } from '../core/types.js';
import { assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import {
  Interruptible,
  READ_INTO,
  READ_THROUGH,
  SETTLES_ON_RETURN,
  type ErrorHandler,
  type ResultHandler,
} from '../core/kernel.js';

/** Options of {@link withTimeout}. Every limit is in ms; leave it out (or pass `Infinity`) for none. */
export interface WithTimeoutOptions {
  /**
   * Longest wait for the first chunk, counted from the first read.
   * @defaultValue no limit
   */
  firstTokenMs?: number | undefined;
  /**
   * Longest wait for each later chunk, counted from the moment the consumer asks for it, so
   * time the consumer spends between reads never counts: it measures the source, not the reader.
   * @defaultValue no limit
   */
  idleMs?: number | undefined;
  /**
   * Longest duration of the whole stream, counted from the first read (consumer time included).
   * @defaultValue no limit
   */
  totalMs?: number | undefined;
  /**
   * Aborted with the {@link StreamTimeoutError} when a limit expires; pass the controller whose
   * signal the provider request uses, so that request is cancelled too.
   * @defaultValue none
   */
  controller?: AbortController | undefined;
}

/**
 * Fails a stream that is too slow: no first chunk within `firstTokenMs`, no next chunk within
 * `idleMs`, or not finished within `totalMs`. On expiry the pending read rejects at once with a
 * {@link StreamTimeoutError} (`phase`, `timeoutMs`), `controller` is aborted with that error as
 * its reason, and the source is asked to `return()` without waiting for it. A chunk that arrives
 * exactly at its deadline is too late.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const stream = pipe(
 *   streamOpenAI(openai, params, { signal: controller.signal }),
 *   withTimeout({ firstTokenMs: 20_000, idleMs: 10_000, totalMs: 120_000, controller }),
 * );
 * ```
 */
export function withTimeout<T>(options: WithTimeoutOptions = {}): Operator<T, T> {
  const { controller, ...limits } = checkTimeoutOptions(options, 'options', true);
  if (controller !== undefined && typeof (controller as Partial<AbortController> | null)?.abort !== 'function') {
    throw new TypeError(`Expected \`controller\` to be an AbortController, got ${describeValue(controller)}`);
  }
  return timeoutWith(limits, controller as AbortController | undefined);
}

/** @internal The limits of a stream, checked, with `Infinity` for none. */
export interface TimeoutLimits {
  firstTokenMs: number;
  idleMs: number;
  totalMs: number;
}

const LIMIT_KEYS = ['firstTokenMs', 'idleMs', 'totalMs'] as const;

/**
 * @internal Checks timeout options deeply (unknown keys included) and resolves the defaults;
 * `controller` is allowed (and returned as given) only where the caller takes one.
 */
export function checkTimeoutOptions(
  options: unknown,
  name: string,
  withController: boolean,
): TimeoutLimits & { controller?: unknown } {
  assertOptions(name, options, withController ? [...LIMIT_KEYS, 'controller'] : LIMIT_KEYS);
  const given = (options ?? {}) as WithTimeoutOptions;
  for (const key of LIMIT_KEYS) assertOptionalNumber(name === 'options' ? key : `${name}.${key}`, given[key], { allowInfinity: true });
  const { firstTokenMs = Infinity, idleMs = Infinity, totalMs = Infinity } = given;
  return withController ? { firstTokenMs, idleMs, totalMs, controller: given.controller } : { firstTokenMs, idleMs, totalMs };
}

/** @internal The operator for checked limits: what the adapters build per request, with no checks. */
export function timeoutWith<T>(
  limits: TimeoutLimits,
  controller: AbortController | undefined,
): Operator<T, T> {
  const { firstTokenMs, idleMs, totalMs } = limits;
  if (firstTokenMs === Infinity && idleMs === Infinity && totalMs === Infinity) return (source) => source;
  const resolved: Limits = { firstTokenMs, idleMs, totalMs, controller };
  return (source) => ({ [Symbol.asyncIterator]: () => new TimedIterator(source, resolved) });
}

/** @internal The timeout stage of one stream for checked limits, or `undefined` when there are none. */
export function timeoutStageOf<T>(limits: TimeoutLimits, controller: AbortController | undefined): TimeoutStage<T> | undefined {
  const { firstTokenMs, idleMs, totalMs } = limits;
  if (firstTokenMs === Infinity && idleMs === Infinity && totalMs === Infinity) return undefined;
  return new TimeoutStage({ firstTokenMs, idleMs, totalMs, controller });
}

/** @internal Checked limits, and the controller to abort on expiry. */
export type Limits = TimeoutLimits & { controller: AbortController | undefined };

/** What a {@link TimeoutStage} stops when a limit expires. */
export interface TimeoutHost {
  /** Ends the stream: with `error`, the pending read (or else the next) rejects with it. */
  stop(error?: unknown): void;
}

/**
 * `withTimeout` as a stage (its state and hooks, not a reader): `startRead()` when a read of the
 * source begins, `result` sees what it delivers, `close` when the source is done with. One timer
 * per stream, re-armed lazily: deadlines only move forward, so a timer that fires early re-checks
 * and re-arms instead of being cleared and created again on every chunk. Each chunk's arrival
 * time is checked too, which makes the boundaries exact. The standalone operator runs it in an
 * {@link Interruptible}; the adapters' fused pipeline runs it on its reads of the provider.
 */
export class TimeoutStage<T> {
  readonly #limits: Limits;
  host: TimeoutHost | undefined;
  #started = false;
  #gotChunk = false;
  #reading = false;
  #totalAt = Infinity;
  #deadline = Infinity;
  #phase: TimeoutPhase = 'total';
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  /** Arms the deadline of the read that starts now. */
  startRead(): void {
    const phaseMs = this.#gotChunk ? this.#limits.idleMs : this.#limits.firstTokenMs;
    const now = this.#started && phaseMs === Infinity ? 0 : performance.now();
    if (!this.#started) {
      this.#started = true;
      this.#totalAt = now + this.#limits.totalMs;
    }
    const phaseAt = now + phaseMs;
    if (phaseAt === Infinity && this.#totalAt === Infinity && this.#gotChunk) {
      this.close(); // only firstTokenMs was set: nothing left to time
      this.#deadline = Infinity;
      return;
    }
    this.#reading = true;
    const total = phaseAt > this.#totalAt;
    this.#deadline = total ? this.#totalAt : phaseAt;
    this.#phase = total ? 'total' : this.#gotChunk ? 'idle' : 'first-token';
    if (this.#deadline < this.#timerAt) this.#arm(this.#deadline);
  }

  // Runs inside the read (as an observer), so a chunk costs no promise of its own. A chunk past
  // its deadline fails that read (the host is stopped and later reads are done).
  result(result: IteratorResult<T>): IteratorResult<T> {
    this.#reading = false;
    if (result.done === true) return result;
    this.#gotChunk = true;
    if (this.#deadline !== Infinity && performance.now() >= this.#deadline) {
      throw this.#expire(this.#phase, false);
    }
    return result;
  }

  /** Clears the timer: the source is done with. */
  close(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const at = this.#reading ? this.#deadline : this.#totalAt;
    if (performance.now() >= at) this.#expire(this.#reading ? this.#phase : 'total', true);
    else if (at !== Infinity) this.#arm(at);
  };

  #expire(phase: TimeoutPhase, stopWithError: boolean): StreamTimeoutError {
    const { firstTokenMs, idleMs, totalMs, controller } = this.#limits;
    const ms = phase === 'total' ? totalMs : phase === 'idle' ? idleMs : firstTokenMs;
    const error = new StreamTimeoutError(phase, ms);
    this.host?.stop(stopWithError ? error : undefined);
    controller?.abort(error);
    return error;
  }

  #arm(at: number): void {
    this.close();
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }
}

/** The standalone operator: the stage over an {@link Interruptible} of the source. */
class TimedIterator<T> implements AsyncIterableIterator<T> {
  readonly #stage: TimeoutStage<T>;
  readonly #inner: Interruptible<T>;

  constructor(source: AsyncIterable<T>, limits: Limits) {
    const stage = new TimeoutStage<T>(limits);
    this.#stage = stage;
    this.#inner = new Interruptible(source, () => stage.close(), stage);
    stage.host = this.#inner;
  }

  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    const inner = this.#inner;
    if (inner.closed) return inner.next();
    this.#stage.startRead();
    return inner.next();
  }

  [READ_THROUGH]<R>(onResult: ResultHandler<T, R>, onError: ErrorHandler<R>): Promise<R> | undefined {
    const inner = this.#inner;
    if (inner.busy) return undefined;
    this.#stage.startRead();
    return inner[READ_THROUGH](onResult, onError);
  }

  [READ_INTO](onResult: ResultHandler<T, unknown>, onError: ErrorHandler<unknown>): boolean {
    const inner = this.#inner;
    if (inner.busy) return false;
    this.#stage.startRead();
    return inner[READ_INTO](onResult, onError);
  }

  return(): Promise<IteratorResult<T>> {
    return this.#inner.return();
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    return this.#inner.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
