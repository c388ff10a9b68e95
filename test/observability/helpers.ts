import type { TokenChunk } from 'tokenrelay';

export function chunk(token: string, fields: Partial<TokenChunk> = {}): TokenChunk {
  return { token, index: 0, timestamp: 0, type: 'text', ...fields };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A source that yields (or throws) each step after its delay, then waits forever if `stall`; counts cleanups. */
export function scripted(steps: Array<[delayMs: number, item: TokenChunk | Error]>, { stall = false } = {}) {
  const state = { finallyRan: 0 };
  async function* source(): AsyncGenerator<TokenChunk> {
    try {
      for (const [delayMs, item] of steps) {
        if (delayMs > 0) await sleep(delayMs);
        if (item instanceof Error) throw item;
        yield item;
      }
      if (stall) await new Promise<never>(() => {});
    } finally {
      state.finallyRan++;
    }
  }
  return { state, source: source() };
}

/** Reads a stream to its end, or until `stopAfter` chunks when given; never throws. */
export async function consume(stream: AsyncIterable<TokenChunk>, stopAfter = Infinity): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const item of stream) {
      chunks.push(item);
      if (chunks.length >= stopAfter) break;
    }
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

/** The samples of a Prometheus text exposition, keyed `name{label="value",…}` with labels sorted. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`Not a sample line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map(([, name, value]) => `${name}="${value}"`);
    samples.set(`${match[1]}{${labels.sort().join(',')}}`, Number(match[3]));
  }
  return samples;
}

/** `name{…}` with the labels sorted, as {@link parseExposition} keys them. */
export function key(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.entries(labels).map(([label, value]) => `${label}="${value}"`).sort().join(',')}}`;
}
