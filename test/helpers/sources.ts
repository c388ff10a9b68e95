// Sources and sinks the operator tests share.

/** Reads a stream to the end. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

/**
 * A source that yields `items`, then never settles until `state.release()` is called; counts
 * how often its `finally` ran, to prove a stop reached it.
 */
export function stalled<T>(items: T[]): { state: { finallyRan: number; release(): void }; source: AsyncGenerator<T> } {
  const state = { finallyRan: 0, release: () => {} };
  const gate = new Promise<void>((resolve) => (state.release = resolve));
  async function* source(): AsyncGenerator<T> {
    try {
      yield* items;
      await gate;
    } finally {
      state.finallyRan++;
    }
  }
  return { state, source: source() };
}
