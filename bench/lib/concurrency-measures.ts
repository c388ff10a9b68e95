/**
 * What the concurrency benchmark's tables and budgets read from one run: per-stream memory, CPU
 * per token, loop delay, delivery, and the diagnostics. docs/benchmarks.md says how each is taken.
 */
import { histogramQuantile, mergeHistograms } from './concurrency-shared.ts';
import type { Run, StreamPlan } from './concurrency-run.ts';
import { summarize } from './report.ts';

/** One run's figures: per stream in KiB, per token in µs, shares from 0 to 1, times in ms. */
export interface Measures {
  rssKiB: number;
  rssSpread: [number, number];
  heapKiB: number;
  loopP99Ms: number;
  loopMaxMs: number;
  cpuShare: number;
  cpuUsPerToken: number;
  expected: number;
  delivered: number;
  onTime: number;
  /** `onTime / expected`. */
  onTimeShare: number;
  latencyP99Ms: number;
  emitLagP99Ms: number;
  completed: number;
  errors: number;
  clientCpuShare: number;
  clientLoopP99Ms: number;
  bytes: number;
  gcShare: number;
  openMin: number;
  waitShare: number;
  timeoutsPerK: number;
  immediatesPerK: number;
  scavengeMaxMs: number;
  majorGcMaxMs: number;
}

/** The figures of `run`, whose streams followed `plan`; a measure the server could not take is NaN. */
export function measure({ streams, ready, server, clients }: Run, plan: StreamPlan): Measures {
  // Per stream open at the time of each sample: all of them, unless the server fell behind.
  const open = server.openSamples.length > 0 ? server.openSamples : [streams];
  const perStream = server.rssSamples.map((rss, i) => (rss - ready.idleRss) / (open[i] ?? streams) / 1024);
  const rss = summarize(perStream.length > 0 ? perStream : [NaN]);
  const openAtEnd = open[open.length - 1] ?? streams;
  const delivered = clients.reduce((sum, client) => sum + client.tokens, 0);
  const onTime = clients.reduce((sum, client) => sum + client.onTime, 0);
  const expected = streams * plan.tokens;
  const m: Measures = {
    rssKiB: rss.median,
    rssSpread: [rss.p25, rss.p75],
    heapKiB: (server.heapAfterGc - ready.idleHeap) / openAtEnd / 1024,
    openMin: Math.min(...open),
    waitShare: server.runQueueMs / server.windowMs,
    timeoutsPerK: (server.timeoutsArmed / server.windowTokens) * 1000,
    immediatesPerK: (server.immediatesArmed / server.windowTokens) * 1000,
    loopP99Ms: server.loopP99Ms,
    loopMaxMs: server.loopMaxMs,
    cpuShare: server.cpuUs / 1000 / server.windowMs,
    cpuUsPerToken: server.cpuUs / server.windowTokens,
    expected,
    delivered,
    onTime,
    onTimeShare: onTime / expected,
    latencyP99Ms: histogramQuantile(mergeHistograms(clients.map((client) => client.latency)), 0.99),
    emitLagP99Ms: histogramQuantile(server.emitLag, 0.99),
    completed: server.outcomes['completed'] ?? 0,
    errors: clients.reduce((sum, client) => sum + client.errors, 0),
    clientCpuShare: clients.reduce((sum, client) => sum + client.cpuUs / 1000 / client.elapsedMs, 0),
    clientLoopP99Ms: Math.max(...clients.map((client) => client.loopP99Ms)),
    bytes: clients.reduce((sum, client) => sum + client.bytes, 0),
    gcShare: [...server.gcPauses.minor, ...server.gcPauses.major].reduce((sum, pause) => sum + pause, 0) / server.windowMs,
    scavengeMaxMs: Math.max(0, ...server.gcPauses.minor),
    majorGcMaxMs: Math.max(0, ...server.gcPauses.major),
  };
  // JSON has no NaN: a measure the server could not take arrives as null.
  for (const key of Object.keys(m) as (keyof Measures)[]) if (m[key] === null) (m as unknown as Record<string, number>)[key] = NaN;
  return m;
}
