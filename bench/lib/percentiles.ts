/** Latency figures of one set of samples, in the samples' unit (ms in the server benchmarks). */
export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * p50, p99 and max of `values` (linear interpolation between closest ranks). Sorts `values` in
 * place: pass a copy if the order matters.
 */
export function percentiles(values: Float64Array | number[]): Percentiles {
  const sorted = values instanceof Float64Array ? values.sort() : values.sort((x, y) => x - y);
  if (sorted.length === 0) return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  return { count: sorted.length, p50: at(sorted, 0.5), p99: at(sorted, 0.99), max: sorted[sorted.length - 1] as number };
}

function at(sorted: ArrayLike<number>, q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const low = sorted[below] as number;
  const high = sorted[Math.min(below + 1, sorted.length - 1)] as number;
  return low + (high - low) * (position - below);
}

/** The median of a few numbers (per-round figures), without touching the input. */
export function median(values: readonly number[]): number {
  return percentiles([...values]).p50;
}
