/**
 * What the concurrency benchmark's processes tell each other over their IPC channels, and the
 * small fixed-bucket histogram they report latencies in (cheap to fill at 50,000 tokens/s and
 * to merge across client processes).
 */

import type { Framing, Variant } from './concurrency-variants.ts';

export type { Variant } from './concurrency-variants.ts';

/** Sent by the orchestrator to the server process once it is up. */
export interface ServerPlan {
  type: 'plan';
  variant: Variant;
  streams: number;
  tokens: number;
  intervalMs: number;
  /** How long opening every connection should take at the planned connect rate. */
  rampMs: number;
}

/** Sent by the orchestrator to each client process. */
export interface ClientPlan {
  type: 'plan';
  port: number;
  streams: number;
  /** New connections per second, for this process. */
  connectRate: number;
  /** A token counts as on time when it arrives at most this long after its scheduled emit time. */
  onTimeMs: number;
  /** Give up (and report what came) this long after the first connection. */
  deadlineMs: number;
  /** Where the tokens and the end are in the variant's frames. */
  framing: Framing;
}

export interface ServerReady {
  type: 'ready';
  port: number;
  /** RSS of the idle, listening server after a full GC. */
  idleRss: number;
  idleHeap: number;
}

export interface ServerResult {
  type: 'result';
  /** From the first request to the moment all streams were open (NaN if the first ended before). */
  rampMs: number;
  /** The steady window: every stream open (unless the server fell behind), none finished yet. */
  windowMs: number;
  rssSamples: number[];
  heapSamples: number[];
  /** Streams open at each sample. */
  openSamples: number[];
  /** After a full GC at the end of the steady window: live objects only. */
  heapAfterGc: number;
  rssAfterGc: number;
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** Process CPU time (user + system) in the steady window. */
  cpuUs: number;
  /** Tokens the sources emitted in the steady window. */
  windowTokens: number;
  /** `setTimeout` and `setImmediate` calls by the library (not the sources) in the steady window. */
  timeoutsArmed: number;
  immediatesArmed: number;
  /** Time the server was runnable but waited for a CPU in the steady window (Linux; NaN elsewhere). */
  runQueueMs: number;
  /** How late the sources' timers fired (ms after each token's scheduled time). */
  emitLag: number[];
  outcomes: Record<string, number>;
  opened: number;
  /** Diagnostics: one `process.memoryUsage()` from the middle of the window, V8's heap spaces (MiB) at its end. */
  memory?: NodeJS.MemoryUsage | undefined;
  spaces?: Record<string, number> | undefined;
  /** GC pauses (ms) in the steady window: scavenges (minor) and the rest. */
  gcPauses: { minor: number[]; major: number[] };
  /** The worst timer lag (ms) in each half second of the run. */
  lagTimeline?: number[] | undefined;
}

export interface ClientResult {
  type: 'result';
  connected: number;
  errors: number;
  /** Streams that got their `done` frame and the end of the response. */
  finished: number;
  tokens: number;
  onTime: number;
  bytes: number;
  /** Arrival minus scheduled emit time, per token. */
  latency: number[];
  cpuUs: number;
  loopP99Ms: number;
  elapsedMs: number;
}

/** Buckets of `width` ms from 0 to `width * (count - 1)`; the last bucket holds everything above. */
export const HISTOGRAM = { width: 2, count: 2501 } as const;

export function createHistogram(): number[] {
  return new Array<number>(HISTOGRAM.count).fill(0);
}

export function record(histogram: number[], ms: number): void {
  const bucket = ms <= 0 ? 0 : Math.min(HISTOGRAM.count - 1, Math.floor(ms / HISTOGRAM.width));
  histogram[bucket] = (histogram[bucket] as number) + 1;
}

export function mergeHistograms(histograms: readonly number[][]): number[] {
  const merged = createHistogram();
  for (const histogram of histograms) {
    for (let i = 0; i < merged.length; i++) merged[i] = (merged[i] as number) + (histogram[i] ?? 0);
  }
  return merged;
}

/** The upper edge of the bucket that holds quantile `q` (so it never understates). */
export function histogramQuantile(histogram: readonly number[], q: number): number {
  const total = histogram.reduce((sum, count) => sum + count, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] as number;
    if (seen >= rank) return i === histogram.length - 1 ? Infinity : (i + 1) * HISTOGRAM.width;
  }
  return Infinity;
}

/** The command that starts a benchmark process with the open-files limit raised first. */
export function withFileLimit(args: readonly string[]): string[] {
  const quoted = args.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ');
  // Raising the soft limit past the hard one needs privileges: fall back to the hard limit.
  return ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${quoted}`];
}
