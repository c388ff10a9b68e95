// The Node end of the pump: a `node:http` or `node:http2` compat response as a FrameSink.
import type { FrameSink } from './pump.js';

/** The parts of a `node:http` or `node:http2` compat response the sink uses. */
export interface WritableResponse {
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/**
 * A Node response as a {@link FrameSink}: `write() === false` means full until `drain`, and
 * `res.flush()` is called after each write where compression middleware added it (its zlib
 * stream would hold the frames otherwise). A base class, so the object that serves the response
 * is its sink too (one object per stream, methods on the prototype); `stalled()` is the server's.
 */
export abstract class NodeSink<R extends WritableResponse = WritableResponse> implements FrameSink {
  /** The response written to. */
  protected readonly res: R;
  readonly #flushes: boolean;

  constructor(res: R) {
    this.res = res;
    this.#flushes = typeof (res as { flush?: unknown }).flush === 'function';
  }

  /** FrameSink: `res.write`, then `res.flush()` where compression middleware added it. */
  write(text: string): boolean {
    const res = this.res;
    const ok = res.write(text);
    if (this.#flushes) (res as unknown as { flush(): void }).flush();
    return ok;
  }

  /** FrameSink: `onWritable` runs on `drain`. */
  watch(onWritable: () => void): void {
    this.res.on('drain', onWritable);
  }

  /** FrameSink. */
  unwatch(onWritable: () => void): void {
    this.res.off('drain', onWritable);
  }

  /** FrameSink: `res.end(text)`. */
  end(text: string): void {
    this.res.end(text);
  }

  /** FrameSink: `res.destroy()`. */
  destroy(): void {
    this.res.destroy();
  }

  /** FrameSink: the response stayed full for the write timeout. */
  abstract stalled(): void;
}
