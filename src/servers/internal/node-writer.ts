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
 * stream would hold the frames otherwise).
 */
export function nodeSink(res: WritableResponse): FrameSink {
  const flushes = typeof (res as { flush?: unknown }).flush === 'function';
  return {
    write(text) {
      const ok = res.write(text);
      if (flushes) (res as unknown as { flush(): void }).flush();
      return ok;
    },
    watch: (onWritable) => res.on('drain', onWritable),
    unwatch: (onWritable) => res.off('drain', onWritable),
    end: (text) => res.end(text),
    destroy: () => res.destroy(),
  };
}
