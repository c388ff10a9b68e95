/**
 * The concurrency benchmark: one server process holding 1,000 / 5,000 / 10,000 concurrent SSE
 * streams (a token every 200 ms for 20 s each, from an in-process timer source), read by clients
 * in separate processes. It reports what each stream costs the server (RSS, heap, CPU time,
 * event-loop delay) and whether the tokens still arrive on time, for tokenrelay's `sendSSE`, its
 * other server adapters, two hand-written endpoints (a timer that writes each frame, and a
 * `for await` over the same source) and other libraries' SSE helpers (Hono `streamSSE`,
 * better-sse, the AI SDK), all measured in the same run, and judges its budgets as ratios
 * between them. A full run also draws the charts (docs/benchmarks/) and runs
 * bench/heap-breakdown.ts. docs/benchmarks.md says how to read it.
 *
 * For investigating only (such runs never write the docs), environment variables narrow a full
 * run and instrument its server: BENCH_SIZES=5000 (comma-separated), BENCH_VARIANTS=tokenrelay,hand-iter
 * (names in bench/lib/concurrency-variants.ts), BENCH_SERVER_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof'
 * (or --trace-gc), BENCH_HEAP_SNAPSHOT=/tmp/snap (heap snapshots of the idle server and after the
 * steady window), BENCH_DEBUG=1 (memory breakdown per run).
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { judgeBudgets, type Budget } from './lib/concurrency-budgets.ts';
import { writeConcurrencyCharts } from './lib/concurrency-charts.ts';
import { measure, type Measures } from './lib/concurrency-measures.ts';
import { assertFileLimit, CONNECT_RATE, runConcurrency, STREAMS_PER_CLIENT, type Run, type StreamPlan } from './lib/concurrency-run.ts';
import { ALL_VARIANTS, isVariant, VARIANTS, type Variant } from './lib/concurrency-variants.ts';
import { environment, markdownTable, parseArgs, writeDocsSection } from './lib/report.ts';

const { quick } = parseArgs();
const streamPlan: StreamPlan = { tokens: quick ? 15 : 100, intervalMs: 200, onTimeMs: 1_000 };
const durationMs = streamPlan.tokens * streamPlan.intervalMs;
let sizes = quick ? [200] : [1_000, 5_000, 10_000];
/** Quick mode (CI) runs the references, the two fetch-style adapters and two peers (one per framing). */
const QUICK_VARIANTS: Variant[] = ['hand', 'hand-iter', 'tokenrelay', 'tokenrelay-hono', 'tokenrelay-web', 'peer-hono', 'peer-ai-sdk'];
const dev = {
  sizes: process.env['BENCH_SIZES'],
  variants: process.env['BENCH_VARIANTS'],
  flags: process.env['BENCH_SERVER_FLAGS'],
  snapshot: process.env['BENCH_HEAP_SNAPSHOT'],
};
if (dev.sizes !== undefined) sizes = dev.sizes.split(',').map(Number);
let variants = quick ? QUICK_VARIANTS : ALL_VARIANTS;
if (dev.variants !== undefined) {
  const named = dev.variants.split(',').filter(Boolean);
  const unknown = named.filter((name) => !isVariant(name));
  if (unknown.length > 0) throw new TypeError(`Unknown BENCH_VARIANTS ${unknown.join(', ')}; expected some of ${ALL_VARIANTS.join(', ')}`);
  variants = named as Variant[];
}
const devRun = Object.values(dev).some((value) => value !== undefined);
const serverFlags = dev.flags?.split(' ').filter(Boolean) ?? [];
assertFileLimit(Math.max(...sizes));

const loadBefore = loadavg()[0] as number;
const began = performance.now();
const runs: Run[] = [];
for (const [i, streams] of sizes.entries()) {
  // The order alternates from size to size, so no variant always runs on a warmer machine.
  const order = i % 2 === 0 ? variants : [...variants].reverse();
  for (const variant of order) {
    const result = await runConcurrency(variant, streams, streamPlan, serverFlags);
    runs.push(result);
    console.log(`  ${streams} streams, ${variant}: done`);
    if (process.env['BENCH_DEBUG'] !== undefined) console.log(JSON.stringify({ idle: result.ready, memory: result.server.memory, spaces: result.server.spaces, lag: result.server.lagTimeline, ramp: result.server.rampMs, outcomes: result.server.outcomes, bytes: result.clients.map((client) => client.bytes) }));
  }
}
const seconds = (performance.now() - began) / 1000;

// --- reporting -----------------------------------------------------------------------------

const results = runs.map((run) => ({ run, m: measure(run, streamPlan) }));
const find = (variant: Variant, streams: number): Measures | undefined => results.find(({ run }) => run.variant === variant && run.streams === streams)?.m;

const kib = (value: number) => value.toFixed(1);
// Latencies beyond the histogram's last bucket are Infinity; a measure not taken is NaN.
const ms = (value: number) => (Number.isNaN(value) ? '—' : Number.isFinite(value) ? value.toFixed(1) : '> 5000');
const pct = (value: number) => `${(value * 100).toFixed(value >= 0.9995 && value < 1 ? 3 : 2)}%`;
const x = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '—');
const label = (variant: Variant) => VARIANTS[variant].label;

const runRows = results.map(({ run, m }) => [
  run.streams.toLocaleString('en-US'),
  label(run.variant),
  `${kib(m.rssKiB)} (${kib(m.rssSpread[0])}–${kib(m.rssSpread[1])})`,
  kib(m.heapKiB),
  `${ms(m.loopP99Ms)} (${ms(m.loopMaxMs)})`,
  `${(m.cpuShare * 100).toFixed(0)}% (${m.cpuUsPerToken.toFixed(1)} µs)`,
  `${m.delivered.toLocaleString('en-US')} / ${m.expected.toLocaleString('en-US')}`,
  pct(m.onTimeShare),
  ms(m.latencyP99Ms),
]);

const diagnosticRows = results.map(({ run, m }) => [
  run.streams.toLocaleString('en-US'),
  label(run.variant),
  `${Number.isNaN(run.server.rampMs) ? '—' : (run.server.rampMs / 1000).toFixed(1)} / ${(run.server.windowMs / 1000).toFixed(1)}`,
  m.openMin === run.streams ? 'all' : `${m.openMin.toLocaleString('en-US')} (fell behind)`,
  Number.isFinite(m.waitShare) ? `${(m.waitShare * 100).toFixed(0)}%` : '—',
  `${(m.gcShare * 100).toFixed(1)}%`,
  `${ms(m.scavengeMaxMs)} / ${ms(m.majorGcMaxMs)}`,
  `${m.timeoutsPerK.toFixed(1)} / ${m.immediatesPerK.toFixed(0)}`,
  ms(m.emitLagP99Ms),
  `${(m.clientCpuShare * 100).toFixed(0)}% (${ms(m.clientLoopP99Ms)})`,
]);

// Every variant against tokenrelay's `sendSSE` at the same size: above 1× costs more.
const ratioRows = sizes.flatMap((streams) => {
  const relay = find('tokenrelay', streams);
  if (relay === undefined) return [];
  return variants.flatMap((variant) => {
    const other = find(variant, streams);
    if (variant === 'tokenrelay' || other === undefined) return [];
    return [[
      streams.toLocaleString('en-US'),
      `${label(variant)} / tokenrelay \`sendSSE\``,
      x(other.rssKiB / relay.rssKiB),
      x(other.heapKiB / relay.heapKiB),
      x(other.cpuUsPerToken / relay.cpuUsPerToken),
      x(other.loopP99Ms / relay.loopP99Ms),
      `${((other.onTimeShare - relay.onTimeShare) * 100).toFixed(2)} pp`,
    ]];
  });
});

const budgets: Budget[] = judgeBudgets({ find, sizes, variants, quick, devRun });
const budgetRows = budgets.map((budget) => [budget.label, budget.value, budget.bound, budget.status, budget.reference]);

const charts = [
  ['CPU per token', 'concurrency-cpu.svg'],
  ['heap per stream', 'concurrency-heap.svg'],
  ['tokens on time', 'concurrency-on-time.svg'],
] as const;
const markdown = [
  '### Latest run',
  '',
  `${environment()}. Each stream: ${streamPlan.tokens} tokens, one every ${streamPlan.intervalMs} ms (${durationMs / 1000} s); connections opened at ${CONNECT_RATE.toLocaleString('en-US')}/s by ${STREAMS_PER_CLIENT.toLocaleString('en-US')} streams per client process; one fresh server process per run, the variants' order reversed from size to size (${seconds.toFixed(0)} s${quick ? ', quick mode' : ''}; 1-minute load average ${loadBefore.toFixed(1)} before the runs, ${(loadavg()[0] as number).toFixed(1)} after).`,
  '',
  markdownTable(
    ['budget', 'measured', 'bound', 'status', 'compared with (same run)'],
    budgetRows,
  ),
  '',
  charts.map(([title, file]) => `![${title} against the number of streams, one line per variant](benchmarks/${file})`).join('\n'),
  '',
  markdownTable(
    [
      'streams',
      'variant',
      'RSS/stream KiB (p25–p75)',
      'heap/stream KiB after GC',
      'loop delay p99 ms (max)',
      'server CPU, one core (per token)',
      'tokens delivered / expected',
      `on time (≤ ${streamPlan.onTimeMs / 1000} s)`,
      'latency p99 ms',
    ],
    runRows,
  ),
  '',
  markdownTable(['streams', 'ratio', 'RSS/stream', 'heap/stream', 'CPU per token', 'loop delay p99', 'on time, difference'], ratioRows),
  '',
  markdownTable(
    [
      'streams',
      'variant',
      'ramp / steady window s',
      'streams open in the window',
      'waiting for a CPU',
      'GC share of the window',
      'longest GC pause ms: scavenge / other',
      'library timers per 1,000 tokens: setTimeout / setImmediate',
      'source timer lag p99 ms',
      'client CPU (client loop delay p99 ms)',
    ],
    diagnosticRows,
  ),
].join('\n');

console.log(`\n${markdown}\n`);

const failures: string[] = [];
// The same work: a variant with tokenrelay's frames sends the same bytes (only the timestamps' digits differ; see `bytesTolerance`).
for (const streams of sizes) {
  const reference = find('tokenrelay', streams) ?? find('hand', streams);
  for (const variant of variants) {
    const m = find(variant, streams);
    const tolerance = VARIANTS[variant].bytesTolerance;
    if (reference === undefined || m === undefined || m === reference || !Number.isFinite(tolerance)) continue;
    if (reference.delivered !== reference.expected || m.delivered !== m.expected) continue;
    const difference = Math.abs(m.bytes - reference.bytes) / reference.bytes;
    if (difference > tolerance) failures.push(`${streams} streams: ${variant} sent ${m.bytes} bytes and the reference ${reference.bytes}, not the same work`);
  }
}
for (const { run, m } of results) {
  if (m.errors > 0) console.error(`${run.streams} ${run.variant}: ${m.errors} client connection errors`);
  // A peer that cannot keep up is a result, not a broken benchmark: the tables show it.
  const judged = VARIANTS[run.variant].group !== 'peer';
  const problems = [
    m.completed !== run.streams ? `${m.completed} of ${run.streams} streams completed` : undefined,
    m.delivered !== m.expected ? `${m.delivered} of ${m.expected} tokens delivered` : undefined,
    run.server.windowMs === 0 ? 'no steady window (the ramp took too long)' : undefined,
  ].filter((problem) => problem !== undefined);
  for (const problem of problems) {
    if (judged) failures.push(`${run.streams} ${run.variant}: ${problem}`);
    else console.error(`${run.streams} ${run.variant}: ${problem}`);
  }
}
for (const budget of budgets) {
  if (budget.met !== false) continue;
  console.error(`BUDGET MISSED: ${budget.label} = ${budget.value}, budget ${budget.bound}`);
  if (budget.fails) failures.push(`${budget.label} = ${budget.value}`);
}
if (!quick && !devRun) {
  writeDocsSection('concurrency', markdown);
  console.log('Wrote the concurrency section of docs/benchmarks.md');
  const written = await writeConcurrencyCharts(results, [charts[0][1], charts[1][1], charts[2][1]]);
  console.log(`Wrote ${written.join(', ')}`);
  // What one stream holds, from heap snapshots: a section of its own.
  const breakdown = spawnSync(process.execPath, [fileURLToPath(new URL('./heap-breakdown.ts', import.meta.url)), '--write'], { stdio: 'inherit' });
  if (breakdown.status !== 0) failures.push(`bench/heap-breakdown.ts failed (${breakdown.signal ?? `exit code ${breakdown.status}`})`);
}
if (failures.length > 0) {
  console.error(`concurrency benchmark failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
