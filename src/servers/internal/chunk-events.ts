import { StreamAbortedError } from '../../core/errors.js';
import { describeError, type SSEDonePayload, type SSEErrorPayload } from '../../sse/encoder.js';
import type { TokenChunk, Usage } from '../../core/types.js';
import { trackStream, type LiveStream, type ShutdownNotice } from './registry.js';
import type { ChunkStream } from './response-stream.js';

/** One event of a chunk stream, before any framing: what a framework that frames SSE itself takes. */
export type ChunkEvent =
  | { readonly type: 'token'; readonly id: string; readonly data: TokenChunk }
  | { readonly type: 'done'; readonly id: string; readonly data: SSEDonePayload }
  | { readonly type: 'error'; readonly id: string; readonly data: SSEErrorPayload }
  | { readonly type: 'shutdown'; readonly id: string; readonly retry: number; readonly data: { retryMs: number; message: string } };

/** Where the events go: an rxjs `Subscriber` has this shape. */
export interface ChunkEventSink {
  next(event: ChunkEvent): void;
  complete(): void;
}

// A stopped stream is read a few more times, so the abort reaches `monitored` (it rejects the
// read at once) and the outcome is `aborted`, not `cancelled`.
const READS_AFTER_STOP = 3;

/**
 * Reads a chunk stream as it comes and hands each chunk to `sink` as a `token` event, then one
 * `done` or `error` event, then completes. `stop()` (the subscriber went away) aborts the
 * provider request. Ids are the chunk indexes (the `done` and `error` events carry the last
 * one, or `''` before any), so a framework that numbers events without an id never does.
 */
export class ChunkEventPump implements LiveStream {
  readonly #stream: ChunkStream;
  readonly #sink: ChunkEventSink;
  readonly #exposeErrors: boolean;
  readonly #untrack: () => void;
  #last: TokenChunk | undefined;
  #usage: Usage | undefined;
  #over = false;

  constructor(stream: ChunkStream, sink: ChunkEventSink, exposeErrors: boolean) {
    this.#stream = stream;
    this.#sink = sink;
    this.#exposeErrors = exposeErrors;
    this.#untrack = trackStream(this);
    void this.#pump();
  }

  /** The subscriber left before the end: the provider request is aborted. */
  stop(): void {
    if (this.#over) return;
    this.#over = true;
    this.#untrack();
    this.#stream.controller.abort(new StreamAbortedError('The client closed the connection'));
  }

  shutdown({ retryMs, message, reason }: ShutdownNotice): Promise<void> {
    if (!this.#over) {
      this.#over = true;
      this.#untrack();
      this.#stream.controller.abort(reason);
      this.#sink.next({ type: 'shutdown', id: this.#id(), retry: retryMs, data: { retryMs, message } });
      this.#sink.complete();
    }
    return Promise.resolve();
  }

  async #pump(): Promise<void> {
    const chunks = this.#stream.chunks;
    try {
      for (;;) {
        const result = await chunks.next();
        if (this.#over) break;
        if (result.done === true) {
          this.#end(undefined);
          return;
        }
        if (this.#chunk(result.value)) {
          void chunks.return?.().catch(() => undefined);
          return;
        }
      }
    } catch (error) {
      if (!this.#over) {
        this.#fail(error);
        return;
      }
    }
    // Stopped: let the abort settle the pipeline, then release the source.
    for (let reads = 0; reads < READS_AFTER_STOP; reads++) {
      const result = await chunks.next().catch(() => undefined);
      if (result === undefined || result.done === true) break;
    }
    await chunks.return?.().catch(() => undefined);
  }

  /** Sends one chunk; `true` when it was the last (it carries a `finishReason`). */
  #chunk(chunk: TokenChunk): boolean {
    this.#last = chunk;
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason === undefined) {
      this.#sink.next({ type: 'token', id: String(chunk.index), data: chunk });
      return false;
    }
    if (chunk.token !== '') {
      const { finishReason: _reason, usage: _usage, ...text } = chunk;
      this.#sink.next({ type: 'token', id: String(chunk.index), data: text });
      // The subscriber may have left on that event.
      if (this.#over) return true;
    }
    this.#end(chunk);
    return true;
  }

  #end(finishing: TokenChunk | undefined): void {
    const last = finishing ?? this.#last;
    const done: SSEDonePayload = { finishReason: finishing?.finishReason ?? 'stop' };
    if (last !== undefined) done.index = last.index;
    const usage = finishing?.usage ?? this.#usage;
    if (usage !== undefined) done.usage = usage;
    if (last?.model !== undefined) done.model = last.model;
    if (last?.provider !== undefined) done.provider = last.provider;
    this.#close({ type: 'done', id: this.#id(), data: done });
  }

  #fail(error: unknown): void {
    this.#close({ type: 'error', id: this.#id(), data: describeError(error, this.#exposeErrors) });
  }

  #close(event: ChunkEvent): void {
    this.#over = true;
    this.#untrack();
    this.#sink.next(event);
    this.#sink.complete();
  }

  /** The last chunk's index: `Last-Event-ID` stays the resume cursor; `''` resets it before any chunk. */
  #id(): string {
    return this.#last === undefined ? '' : String(this.#last.index);
  }
}
