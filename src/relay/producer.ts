import {
  isStoreUnavailableError,
  StoreUnavailableError,
  StreamAbortedError,
  StreamLimitError,
  StreamNotFoundError,
} from '../core/errors.js';
import { withAbort } from '../operators/with-abort.js';
import type { TokenChunk, TokenSourceFactory } from '../core/types.js';
import { MAX_ATTEMPTS, OutageClock, pause, retryDelay, within } from './outage.js';
import { serializeError, type ProducerStatus, type RelayStore, type StoredEnd, type StoreEvent } from './store.js';

/**
 * How a relayed stream's producer ended: it `'completed'`; it was `'cancelled'` (`relay.cancel`,
 * or `relay.close`); it was `'abandoned'` (no subscriber for `graceMs`); or it `'failed'` (the
 * source threw, `maxChunks` or the store's bounds were reached, the stream expired, the store
 * did not answer for `livenessMs`: a `StoreUnavailableError`).
 */
export type ProducerOutcome = 'completed' | 'cancelled' | 'abandoned' | 'failed';

/** What `done` of a started stream resolves with, once, when the producer has ended and its end is stored. */
export interface ProducerResult {
  /** How the producer ended: `'completed'`, `'cancelled'`, `'abandoned'` or `'failed'` ({@link ProducerOutcome}). */
  outcome: ProducerOutcome;
  /** Chunks written to the store. */
  chunks: number;
  /** Why it did not complete. */
  error?: unknown;
}

/** @internal */
export interface ProducerConfig {
  store: RelayStore;
  id: string;
  factory: TokenSourceFactory;
  graceMs: number;
  livenessMs: number;
  maxChunks: number;
  /** Called after each heartbeat the store answered while the stream lives (refreshes its `key` pointer). */
  onBeat?: (() => void) | undefined;
}

// After a heartbeat the store did not answer, the next one comes sooner: a short outage must not
// let the heartbeat key expire once the store is back.
const HEARTBEAT_RETRY_MS = 200;

/**
 * Runs one stream's source detached from any response, writes each chunk to the store, and
 * stops it when it is cancelled, abandoned (grace), lost its stream, or the store has not
 * answered for `livenessMs` (a write that fails as unavailable is retried, in order, until then).
 * Its heartbeat tells subscribers it is alive and brings back presence and cancels announced by
 * no event.
 * @internal
 */
export class Producer {
  readonly controller = new AbortController();
  readonly done: Promise<ProducerResult>;
  readonly #config: ProducerConfig;
  #stop: { error: unknown; outcome: ProducerOutcome } | undefined;
  #subscribers = 0;
  // Bumped by every presence event, so a heartbeat answer that crossed an event is not trusted.
  #version = 0;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #graceCheck = false;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #unwatch: () => void = () => undefined;
  #finished = false;
  readonly #outage: OutageClock;
  // When the write and the heartbeat in flight were sent; a beat that finds one unanswered counts it as missed.
  #writeStarted: number | undefined;
  #beatStarted: number | undefined;
  #beatFailed = false;
  // Rejects the write in flight when the producer stops: a store that hangs must not hold it.
  #interrupt: ((error: unknown) => void) | undefined;
  readonly #resolve: (result: ProducerResult) => void;

  constructor(config: ProducerConfig) {
    this.#config = config;
    this.#outage = new OutageClock(config.livenessMs, (error) => this.#abort(error, 'failed'));
    let resolve!: (result: ProducerResult) => void;
    this.done = new Promise((settle) => (resolve = settle));
    this.#resolve = resolve;
  }

  /** Starts producing. `unwatch` and `status` come from the watch and heartbeat taken before. */
  begin(unwatch: () => void, status: ProducerStatus): void {
    this.#unwatch = unwatch;
    this.#apply(status, this.#version);
    this.#scheduleHeartbeat();
    void this.#run().then(this.#resolve);
  }

  /** Hears the store's announcements for this stream. */
  readonly onEvent = (event: StoreEvent): void => {
    if (event.type === 'cancel') {
      this.cancel();
      return;
    }
    this.#version++;
    this.#subscribers = event.subscribers;
    this.#updateGrace();
  };

  cancel(message = 'The stream was cancelled'): void {
    this.#abort(new StreamAbortedError(message), 'cancelled');
  }

  #abort(error: unknown, outcome: ProducerOutcome): void {
    if (this.#stop !== undefined || this.#finished) return;
    this.#stop = { error, outcome };
    this.controller.abort(error);
    this.#interrupt?.(error);
  }

  async #run(): Promise<ProducerResult> {
    const { factory, maxChunks } = this.#config;
    const { signal } = this.controller;
    let index = 0;
    let failure: { error: unknown } | undefined;
    try {
      for await (const chunk of withAbort<TokenChunk>(signal)(startSource(factory, signal))) {
        if (index >= maxChunks) {
          this.#abort(new StreamLimitError(`The stream reached maxChunks (${maxChunks})`, { limit: 'chunks' }), 'failed');
          break;
        }
        await this.#append({ ...chunk, index });
        index++;
      }
    } catch (error) {
      failure = { error };
    }
    // The reason the relay stopped the source is the story, not the abort error it caused.
    if (this.#stop !== undefined) failure = { error: this.#stop.error };
    else if (failure !== undefined) this.#abort(failure.error, 'failed');
    const end: StoredEnd = failure === undefined ? { type: 'completed' } : { type: 'failed', error: serializeError(failure.error) };
    await this.#end(end);
    this.#finish();
    if (failure === undefined) return { outcome: 'completed', chunks: index };
    return { outcome: this.#stop?.outcome ?? 'failed', chunks: index, error: failure.error };
  }

  /** Stores one chunk, again after each `StoreUnavailableError`, until it is stored or the producer stops. */
  async #append(chunk: TokenChunk): Promise<void> {
    const { store, id } = this.#config;
    const { signal } = this.controller;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Stopped between the chunk and its write: a write now could wait on a store that hangs.
      if (signal.aborted) throw signal.reason;
      const started = performance.now();
      this.#writeStarted = started;
      try {
        await this.#interruptible(() => store.append(id, chunk));
        this.#outage.answered();
        return;
      } catch (error) {
        if (signal.aborted || !isStoreUnavailableError(error)) throw error;
        this.#outage.missed(started);
      } finally {
        this.#writeStarted = undefined;
      }
      await pause(retryDelay(attempt), signal);
    }
    throw new StoreUnavailableError('The relay store kept failing');
  }

  #interruptible(call: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#interrupt = reject;
      call().then(resolve, reject);
    });
  }

  /**
   * Stores the end, again after each `StoreUnavailableError`, for at most `livenessMs`. When it
   * cannot be stored, subscribers learn of the end from the heartbeats that stop
   * (`ProducerLostError`) or from their own view of the store (`StoreUnavailableError`).
   */
  async #end(end: StoredEnd): Promise<void> {
    const { store, id, livenessMs } = this.#config;
    const deadline = performance.now() + livenessMs;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      try {
        await within(Promise.resolve().then(() => store.end(id, end)), left, 'the end of the stream');
        return;
      } catch (error) {
        if (!isStoreUnavailableError(error)) return;
      }
      await pause(Math.min(retryDelay(attempt), Math.max(0, deadline - performance.now())));
    }
  }

  #finish(): void {
    this.#finished = true;
    this.#outage.stop();
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#graceTimer = undefined;
    this.#heartbeatTimer = undefined;
    this.#unwatch();
  }

  #scheduleHeartbeat(delayMs = this.#config.livenessMs / 3): void {
    if (this.#finished) return;
    this.#heartbeatTimer = setTimeout(this.#beat, delayMs);
  }

  /** A heartbeat, unless the last one is still unanswered: then it, like a write still in flight, counts as missed. */
  readonly #beat = (): void => {
    if (this.#writeStarted !== undefined) this.#outage.missed(this.#writeStarted);
    if (this.#beatStarted !== undefined) {
      this.#outage.missed(this.#beatStarted);
      this.#scheduleHeartbeat();
      return;
    }
    void this.#check().then(() =>
      this.#scheduleHeartbeat(this.#beatFailed ? Math.min(HEARTBEAT_RETRY_MS, this.#config.livenessMs / 3) : undefined),
    );
  };

  /** One heartbeat; resolves `true` when the stream is still alone (no subscriber). */
  async #check(): Promise<boolean> {
    const version = this.#version;
    const started = performance.now();
    this.#beatStarted ??= started;
    let status: ProducerStatus | undefined;
    try {
      status = await this.#config.store.heartbeat(this.#config.id, this.#config.livenessMs);
      this.#outage.answered();
      this.#beatFailed = false;
    } catch (error) {
      if (isStoreUnavailableError(error)) this.#outage.missed(started);
      else this.#outage.answered();
      this.#beatFailed = true;
      return false;
    } finally {
      if (this.#beatStarted === started) this.#beatStarted = undefined;
    }
    if (this.#finished) return false;
    if (status === undefined) {
      this.#abort(new StreamNotFoundError('The stream expired while it was produced'), 'failed');
      return false;
    }
    this.#config.onBeat?.();
    return this.#apply(status, version);
  }

  #apply(status: ProducerStatus, version: number): boolean {
    if (status.cancelled) {
      this.cancel();
      return false;
    }
    if (version !== this.#version) return false;
    this.#subscribers = status.subscribers;
    this.#updateGrace();
    return status.subscribers === 0;
  }

  #updateGrace(): void {
    if (this.#finished || this.#graceCheck) return;
    if (this.#subscribers > 0 || !Number.isFinite(this.#config.graceMs)) {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    } else if (this.#graceTimer === undefined) {
      this.#graceTimer = setTimeout(() => void this.#graceExpired(), this.#config.graceMs);
    }
  }

  /** The window ran out as far as events tell; the store has the last word before the abort. */
  async #graceExpired(): Promise<void> {
    this.#graceTimer = undefined;
    this.#graceCheck = true;
    const alone = await this.#check();
    this.#graceCheck = false;
    if (alone) {
      const message = `The stream was abandoned: no subscriber for ${this.#config.graceMs} ms`;
      this.#abort(new StreamAbortedError(message), 'abandoned');
    } else {
      this.#updateGrace();
    }
  }
}

/** Calls the factory on the first read, so a factory that throws fails like a stream. */
async function* startSource(factory: TokenSourceFactory, signal: AbortSignal): AsyncGenerator<TokenChunk, void, undefined> {
  yield* factory(signal);
}
