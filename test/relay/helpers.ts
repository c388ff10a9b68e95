import { getEventListeners } from 'node:events';
import type { FinishReason, TokenChunk, TokenSourceFactory } from 'tokenrelay';

type Item = { chunk: TokenChunk } | { error: unknown } | { end: true };

/**
 * A producer the test drives by hand: `push` a token, `finish`, or `fail`. It records the signal
 * it was given and whether its `finally` ran.
 */
export function controlledSource() {
  const queue: Item[] = [];
  let wake: (() => void) | undefined;
  let index = 0;
  const state = {
    signal: undefined as AbortSignal | undefined,
    calls: 0,
    finallyRuns: 0,
  };
  const put = (item: Item): void => {
    queue.push(item);
    wake?.();
  };
  // Like a provider SDK: a wait ends when the request's signal aborts.
  async function* run(signal: AbortSignal): AsyncGenerator<TokenChunk, void, undefined> {
    try {
      for (;;) {
        const item = queue.shift();
        if (item === undefined) {
          if (signal.aborted) throw signal.reason;
          await new Promise<void>((resolve) => {
            const done = (): void => {
              signal.removeEventListener('abort', done);
              resolve();
            };
            wake = done;
            signal.addEventListener('abort', done, { once: true });
          });
          wake = undefined;
          continue;
        }
        if ('error' in item) throw item.error;
        if ('end' in item) return;
        yield item.chunk;
      }
    } finally {
      state.finallyRuns++;
    }
  }
  const factory: TokenSourceFactory = (signal) => {
    state.calls++;
    state.signal = signal;
    return run(signal);
  };
  return {
    state,
    factory,
    push(token: string): void {
      put({ chunk: { token, index: index++, timestamp: performance.now(), type: 'text' } });
    },
    finish(finishReason: FinishReason = 'stop'): void {
      put({ chunk: { token: '', index: index++, timestamp: performance.now(), type: 'text', finishReason } });
      put({ end: true });
    },
    fail(error: unknown): void {
      put({ error });
    },
  };
}

/** A source of fixed tokens, ending with a terminal chunk. */
export function tokenSource(tokens: readonly string[]): TokenSourceFactory {
  return async function* () {
    let index = 0;
    for (const token of tokens) yield { token, index: index++, timestamp: 0, type: 'text' };
    yield { token: '', index, timestamp: 0, type: 'text', finishReason: 'stop' };
  };
}

/** Reads a stream to its end; resolves with the chunks, or with `{ chunks, error }` when it threw. */
export async function drain(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error?: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
    return { chunks };
  } catch (error) {
    return { chunks, error };
  }
}

/** Reads `count` chunks then stops (the consumer `break`s). */
export async function take(stream: AsyncIterable<TokenChunk>, count: number): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  if (count <= 0) {
    await stream[Symbol.asyncIterator]().return?.();
    return chunks;
  }
  for await (const chunk of stream) {
    chunks.push(chunk);
    if (chunks.length >= count) break;
  }
  return chunks;
}

export function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

/** Lets pending promise callbacks run (several rounds: store calls are chained). */
export async function settle(rounds = 20): Promise<void> {
  for (let round = 0; round < rounds; round++) await Promise.resolve();
}
