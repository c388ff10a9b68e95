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

/**
 * @internal The timeout stage of one stream for checked limits (shared, not copied: a plan's), or
 * `undefined` when there are none.
 */
export function timeoutStageOf<T>(limits: TimeoutLimits, controller: AbortController | undefined): TimeoutStage<T> | undefined {
  const { firstTokenMs, idleMs, totalMs } = limits;
  if (firstTokenMs === Infinity && idleMs === Infinity && totalMs === Infinity) return undefined;
  return new TimeoutStage(limits, controller);
}

/** @internal Checked limits, and the controller to abort on expiry. */
export type Limits = TimeoutLimits & { controller: AbortController | undefined };

/** What a {@link TimeoutStage} stops when a limit expires. */
export interface TimeoutHost {
  /** Ends the stream: with `error`, the pending read (or else the next) rejects with it. */
  stop(error?: unknown): void;
}

/**
 * A host's own timer, lent to a {@link TimeoutStage} so that one timer per stream serves every
 * deadline it has (the fused pipeline's heartbeat and timeouts): the host calls the stage's
 * {@link TimeoutStage.onTimer} at (or after) the time the stage asked for.
 */
export interface TimeoutClock {
  /** Call `onTimer()` at `at` (a `performance.now()` time); replaces the stage's earlier request. */
  armStage(at: number): void;
  /** The stage's request is withdrawn. */
  clearStage(): void;
}

/**
 * `withTimeout` as a stage (its state and hooks, not a reader): `startRead()` when a read of the
 * source begins, `result` sees what it delivers, `close` when the source is done with. One timer
 * per stream, re-armed lazily: deadlines only move forward, so a timer that fires early re-checks
 * and re-arms instead of being cleared and created again on every chunk. Each chunk's arrival
 * time is checked too, which makes the boundaries exact. The standalone operator runs it in an
 * {@link Interruptible}; the adapters' fused pipeline runs it on its reads of the provider, with
 * the host's timer ({@link TimeoutClock}) instead of one of its own.
 */
export class TimeoutStage<T> {
  readonly #limits: TimeoutLimits;
  readonly #controller: AbortController | undefined;
  host: TimeoutHost | undefined;
  /** The host's timer, if it lends one; else the stage makes its own ({@link StageTimer}) when it first arms. */
  clock: TimeoutClock | undefined;
  // #started, #gotChunk and #reading, as bits of one field.
  #flags = 0;
  // The end of the total, the current read's deadline and the timer's time, stored as whole ms
  // (rounded up: a deadline is never early) with NEVER for none, so they stay small integers,
  // not heap numbers; read and written through the accessors below, as times or Infinity.
  #totalMs = NEVER;
  #deadlineMs = NEVER;
  #phase: TimeoutPhase = 'total';
  #timerMs = NEVER;

  /** `limits` are read, never written: one object may serve every stream of a plan. */
  constructor(limits: TimeoutLimits, controller: AbortController | undefined) {
    this.#limits = limits;
    this.#controller = controller;
  }

  // The first read has begun (and with it the total).
  get #started(): boolean {
    return (this.#flags & STARTED) !== 0;
  }

  set #started(on: boolean) {
    this.#flags = on ? this.#flags | STARTED : this.#flags & ~STARTED;
  }

  get #gotChunk(): boolean {
    return (this.#flags & GOT_CHUNK) !== 0;
  }

  set #gotChunk(on: boolean) {
    this.#flags = on ? this.#flags | GOT_CHUNK : this.#flags & ~GOT_CHUNK;
  }

  // A read of the source is pending.
  get #reading(): boolean {
    return (this.#flags & READING) !== 0;
  }

  set #reading(on: boolean) {
    this.#flags = on ? this.#flags | READING : this.#flags & ~READING;
  }

  get #totalAt(): number {
    return timeOf(this.#totalMs);
  }

  set #totalAt(at: number) {
    this.#totalMs = fieldOf(at);
  }

  get #deadline(): number {
    return timeOf(this.#deadlineMs);
  }

  set #deadline(at: number) {
    this.#deadlineMs = fieldOf(at);
  }

  get #timerAt(): number {
    return timeOf(this.#timerMs);
  }

  set #timerAt(at: number) {
    this.#timerMs = fieldOf(at);
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
    if (this.#timerAt === Infinity) return;
    this.#timerAt = Infinity;
    this.clock?.clearStage();
  }

  /** The time the stage's timer was armed for (`performance.now()`), or `Infinity` for none. */
  get timerAt(): number {
    return this.#timerAt;
  }

  /** The timer fired: a deadline that passed expires, else the timer is armed again for it. */
  onTimer(): void {
    this.#timerAt = Infinity;
    const at = this.#reading ? this.#deadline : this.#totalAt;
    if (performance.now() >= at) this.#expire(this.#reading ? this.#phase : 'total', true);
    else if (at !== Infinity) this.#arm(at);
  }

  #expire(phase: TimeoutPhase, stopWithError: boolean): StreamTimeoutError {
    const { firstTokenMs, idleMs, totalMs } = this.#limits;
    const controller = this.#controller;
    const ms = phase === 'total' ? totalMs : phase === 'idle' ? idleMs : firstTokenMs;
    const error = new StreamTimeoutError(phase, ms);
    this.host?.stop(stopWithError ? error : undefined);
    controller?.abort(error);
    return error;
  }

  #arm(at: number): void {
    this.close();
    this.#timerAt = at;
    (this.clock ??= new StageTimer(this)).armStage(at);
  }
}

// A time field of TimeoutStage that holds no time (Infinity).
const NEVER = -1;

function fieldOf(at: number): number {
  return at === Infinity ? NEVER : Math.ceil(at);
}

function timeOf(field: number): number {
  return field === NEVER ? Infinity : field;
}

// The bits of TimeoutStage's #flags.
const STARTED = 1;
const GOT_CHUNK = 2;
const READING = 4;

/** The timer of a {@link TimeoutStage} whose host lends none (the standalone operator's). */
class StageTimer implements TimeoutClock {
  readonly #stage: TimeoutStage<unknown>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#stage.onTimer();
  };

  constructor(stage: TimeoutStage<unknown>) {
    this.#stage = stage;
  }

  armStage(at: number): void {
    this.clearStage();
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(at - performance.now())));
  }

  clearStage(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The standalone operator: the stage over an {@link Interruptible} of the source. */
class TimedIterator<T> implements AsyncIterableIterator<T> {
  readonly #stage: TimeoutStage<T>;
  readonly #inner: Interruptible<T>;

  constructor(source: AsyncIterable<T>, limits: Limits) {
    const stage = new TimeoutStage<T>(limits, limits.controller);
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
