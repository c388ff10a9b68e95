/**
 * The concurrency benchmark: one server process holding 1,000 / 5,000 / 10,000 concurrent SSE
 * streams (a token every 200 ms for 20 s each, from an in-process timer source), read by clients
 * in separate processes. It reports what each stream costs the server (RSS, CPU time, event-loop
 * delay) and whether the tokens still arrive on time, for tokenrelay's `sendSSE` with its full
 * pipeline and for two hand-written endpoints side by side (a timer that writes each frame, and a
 * `for await` over the same source). docs/benchmarks.md says how to read it.
 *
 * For investigating only (such runs never write the docs), environment variables narrow a full
 * run and instrument its server: BENCH_SIZES=5000 (comma-separated), BENCH_VARIANTS=tokenrelay,
 * BENCH_SERVER_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (or --trace-gc), BENCH_HEAP_SNAPSHOT=/tmp/snap
 * (a heap snapshot after the steady window), BENCH_DEBUG=1 (memory breakdown per run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  histogramQuantile,
  mergeHistograms,
  withFileLimit,
  type ClientPlan,
  type ClientResult,
  type ServerPlan,
  type ServerReady,
  type ServerResult,
  type Variant,
} from './lib/concurrency-shared.ts';
import { environment, markdownTable, parseArgs, summarize, writeDocsSection } from './lib/report.ts';

const { quick } = parseArgs();
const INTERVAL_MS = 200;
const ON_TIME_MS = 1_000;
const plan = quick
  ? { sizes: [200], tokens: 15 }
  : { sizes: [1_000, 5_000, 10_000], tokens: 100 };
const dev = {
  sizes: process.env['BENCH_SIZES'],
  variants: process.env['BENCH_VARIANTS'],
  flags: process.env['BENCH_SERVER_FLAGS'],
  snapshot: process.env['BENCH_HEAP_SNAPSHOT'],
};
if (dev.sizes !== undefined) plan.sizes = dev.sizes.split(',').map(Number);
const durationMs = plan.tokens * INTERVAL_MS;
/** New connections per second, all client processes together. */
const CONNECT_RATE = 4_000;
/** One client process reads up to this many streams; more streams get a second process. */
const STREAMS_PER_CLIENT = 5_000;
const BUDGET = { streams: 10_000, rssKiB: 25, loopP99Ms: 50, onTime: 0.999 };
// Quick mode (CI, 200 streams on a shared machine) fails only on what no noise explains.
const QUICK_BOUND = { loopP99Ms: 250, onTime: 0.99 };

const root = fileURLToPath(new URL('..', import.meta.url));
const fromSource = `${root}scripts/run-from-source.mjs`;
const serverScript = `${root}bench/lib/concurrency-server.ts`;
const clientScript = `${root}bench/lib/concurrency-client.ts`;

const fileLimit = Number(spawnSync('bash', withFileLimit(['bash', '-c', 'ulimit -n']), { encoding: 'utf8' }).stdout.trim());
const largest = Math.max(...plan.sizes);
// The server holds one descriptor per stream, each client process up to STREAMS_PER_CLIENT.
if (Number.isFinite(fileLimit) && fileLimit < largest + 256) {
  throw new Error(`The open-files limit is ${fileLimit}; ${largest} streams need more (raise the hard limit: ulimit -Hn)`);
}

interface Run {
  variant: Variant;
  streams: number;
  ready: ServerReady;
  server: ServerResult;
  clients: ClientResult[];
}

function start(args: readonly string[]): ChildProcess {
  return spawn('bash', withFileLimit([process.execPath, ...args]), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The next message of a child, or a rejection if it exits first. */
function nextMessage<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`The ${what} exited (${signal ?? `code ${code}`}) before reporting`));
    child.once('exit', onExit);
    child.once('message', (message) => {
      child.off('exit', onExit);
      resolve(message as T);
    });
  });
}

function exited(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function run(variant: Variant, streams: number): Promise<Run> {
  const flags = dev.flags?.split(' ').filter(Boolean) ?? [];
  const server = start(['--expose-gc', ...flags, '--import', fromSource, serverScript]);
  const children = [server];
  try {
    const serverPlan: ServerPlan = {
      type: 'plan',
      variant,
      streams,
      tokens: plan.tokens,
      intervalMs: INTERVAL_MS,
      rampMs: (streams / CONNECT_RATE) * 1000,
    };
    const ready = nextMessage<ServerReady>(server, 'server');
    server.send(serverPlan);
    const { port } = await ready;
    const count = Math.ceil(streams / STREAMS_PER_CLIENT);
    const clients = Array.from({ length: count }, () => start([clientScript]));
    children.push(...clients);
    const serverResult = nextMessage<ServerResult>(server, 'server');
    const clientResults = clients.map((client, i) => {
      const share = Math.floor(streams / count) + (i < streams % count ? 1 : 0);
      const result = nextMessage<ClientResult>(client, 'client');
      const clientPlan: ClientPlan = {
        type: 'plan',
        port,
        streams: share,
        connectRate: CONNECT_RATE / count,
        onTimeMs: ON_TIME_MS,
        deadlineMs: (streams / CONNECT_RATE) * 1000 + durationMs + 30_000,
      };
      client.send(clientPlan);
      return result;
    });
    const [serverDone, clientsDone] = await Promise.all([serverResult, Promise.all(clientResults)]);
    return { variant, streams, ready: await ready, server: serverDone, clients: clientsDone };
  } finally {
    // The processes exit by themselves once they reported; only a stuck one is killed.
    await Promise.all(children.map((child) => exited(child, 10_000)));
  }
}

const loadBefore = loadavg()[0] as number;
const began = performance.now();
const runs: Run[] = [];
for (const [i, streams] of plan.sizes.entries()) {
  // The order alternates from size to size, so neither variant always runs on a warmer machine.
  const order: Variant[] = i % 2 === 0 ? ['hand', 'hand-iter', 'tokenrelay'] : ['tokenrelay', 'hand-iter', 'hand'];
  for (const variant of order) {
    if (dev.variants !== undefined && !dev.variants.split(',').includes(variant)) continue;
    const result = await run(variant, streams);
    runs.push(result);
    console.log(`  ${streams} streams, ${variant}: done`);
    if (process.env['BENCH_DEBUG'] !== undefined) console.log(JSON.stringify({ idle: result.ready, memory: result.server.memory, spaces: result.server.spaces, lag: result.server.lagTimeline, ramp: result.server.rampMs, outcomes: result.server.outcomes, bytes: result.clients.map((client) => client.bytes) }));
  }
}
const seconds = (performance.now() - began) / 1000;

// --- reporting -----------------------------------------------------------------------------

interface Measures {
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

function measures({ streams, ready, server, clients }: Run): Measures {
  // Per stream open at the time of each sample: all of them, unless the server fell behind.
  const open = server.openSamples.length > 0 ? server.openSamples : [streams];
  const perStream = server.rssSamples.map((rss, i) => (rss - ready.idleRss) / (open[i] ?? streams) / 1024);
  const rss = summarize(perStream.length > 0 ? perStream : [NaN]);
  const openAtEnd = open[open.length - 1] ?? streams;
  const delivered = clients.reduce((sum, client) => sum + client.tokens, 0);
  const onTime = clients.reduce((sum, client) => sum + client.onTime, 0);
  return {
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
    expected: streams * plan.tokens,
    delivered,
    onTime,
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
}

const results = runs.map((run) => ({ run, m: measures(run) }));
// JSON has no NaN: a measure the server could not take arrives as null.
for (const { m } of results) for (const key of Object.keys(m) as (keyof Measures)[]) if (m[key] === null) (m as unknown as Record<string, number>)[key] = NaN;
const find = (variant: Variant, streams: number) => results.find(({ run }) => run.variant === variant && run.streams === streams)?.m;

const kib = (value: number) => value.toFixed(1);
// Latencies beyond the histogram's last bucket are Infinity; a measure not taken is NaN.
const ms = (value: number) => (Number.isNaN(value) ? '—' : Number.isFinite(value) ? value.toFixed(1) : '> 5000');
const pct = (value: number) => `${(value * 100).toFixed(value >= 0.9995 && value < 1 ? 3 : 2)}%`;
const x = (value: number) => `${value.toFixed(2)}×`;
const LABELS: Record<Variant, string> = {
  hand: 'hand-written: a timer writes each frame',
  'hand-iter': 'hand-written: `for await` over the source',
  tokenrelay: 'tokenrelay `sendSSE`',
};
const label = (variant: Variant) => LABELS[variant];

const runRows = results.map(({ run, m }) => [
  run.streams.toLocaleString('en-US'),
  label(run.variant),
  `${kib(m.rssKiB)} (${kib(m.rssSpread[0])}–${kib(m.rssSpread[1])})`,
  kib(m.heapKiB),
  `${ms(m.loopP99Ms)} (${ms(m.loopMaxMs)})`,
  `${(m.cpuShare * 100).toFixed(0)}% (${m.cpuUsPerToken.toFixed(1)} µs)`,
  `${m.delivered.toLocaleString('en-US')} / ${m.expected.toLocaleString('en-US')}`,
  pct(m.onTime / m.expected),
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

const ratioRows = plan.sizes.flatMap((streams) => {
  const relay = find('tokenrelay', streams);
  if (relay === undefined) return [];
  return (['hand', 'hand-iter'] as const).flatMap((variant) => {
    const hand = find(variant, streams);
    if (hand === undefined) return [];
    return [[
      streams.toLocaleString('en-US'),
      `tokenrelay / ${label(variant)}`,
      x(relay.rssKiB / hand.rssKiB),
      x(relay.heapKiB / hand.heapKiB),
      x(relay.cpuUsPerToken / hand.cpuUsPerToken),
      x(relay.loopP99Ms / hand.loopP99Ms),
    ]];
  });
});

// The budgets hold at 10,000 streams; quick mode checks them at its own size (where the RSS per
// stream is dominated by the heap's fixed growth, so it is shown but not judged).
const budgetStreams = quick ? (plan.sizes[0] as number) : BUDGET.streams;
const relay = find('tokenrelay', budgetStreams);
// The same measures of the hand-written endpoints, beside each budget: what the machine allows.
const handAt = find('hand', budgetStreams);
const handIterAt = find('hand-iter', budgetStreams);
const budgets = relay === undefined ? [] : [
  {
    label: `RSS per stream at ${budgetStreams.toLocaleString('en-US')} streams`,
    value: `${kib(relay.rssKiB)} KiB`,
    hand: (m: Measures) => `${kib(m.rssKiB)} KiB`,
    bound: `≤ ${BUDGET.rssKiB} KiB`,
    met: quick ? undefined : relay.rssKiB <= BUDGET.rssKiB,
    fails: !quick,
  },
  {
    label: `event-loop delay p99 at ${budgetStreams.toLocaleString('en-US')} streams`,
    value: `${ms(relay.loopP99Ms)} ms`,
    hand: (m: Measures) => `${ms(m.loopP99Ms)} ms`,
    bound: `< ${BUDGET.loopP99Ms} ms`,
    met: relay.loopP99Ms < BUDGET.loopP99Ms,
    fails: quick ? !(relay.loopP99Ms < QUICK_BOUND.loopP99Ms) : true,
  },
  {
    label: `tokens delivered on time (≤ ${ON_TIME_MS} ms late) at ${budgetStreams.toLocaleString('en-US')} streams`,
    value: pct(relay.onTime / relay.expected),
    hand: (m: Measures) => pct(m.onTime / m.expected),
    bound: `≥ ${pct(BUDGET.onTime)}`,
    met: relay.onTime / relay.expected >= BUDGET.onTime,
    fails: quick ? !(relay.onTime / relay.expected >= QUICK_BOUND.onTime) : true,
  },
];
const budgetRows = budgets.map((budget) => [
  budget.label,
  budget.value,
  budget.bound,
  budget.met === undefined ? '— (quick mode)' : budget.met ? 'ok' : '**MISSED**',
  handAt === undefined ? '—' : budget.hand(handAt),
  handIterAt === undefined ? '—' : budget.hand(handIterAt),
]);

const markdown = [
  '### Latest run',
  '',
  `${environment()}. Each stream: ${plan.tokens} tokens, one every ${INTERVAL_MS} ms (${durationMs / 1000} s); connections opened at ${CONNECT_RATE.toLocaleString('en-US')}/s by ${STREAMS_PER_CLIENT.toLocaleString('en-US')} streams per client process; one fresh server process per run, the variants alternated (${seconds.toFixed(0)} s${quick ? ', quick mode' : ''}; 1-minute load average ${loadBefore.toFixed(1)} before the runs, ${(loadavg()[0] as number).toFixed(1)} after).`,
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
      `on time (≤ ${ON_TIME_MS / 1000} s)`,
      'latency p99 ms',
    ],
    runRows,
  ),
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
  '',
  markdownTable(['streams', 'ratio', 'RSS/stream', 'heap/stream', 'CPU per token', 'loop delay p99'], ratioRows),
  '',
  markdownTable(
    ['budget (tokenrelay)', 'measured', 'budget', 'status', `the same, ${label('hand')}`, `the same, ${label('hand-iter')}`],
    budgetRows,
  ),
].join('\n');

console.log(`\n${markdown}\n`);

const failures: string[] = [];
// Same work in both variants: the same frames (only the timestamps' digits may differ).
for (const streams of plan.sizes) {
  const relay = find('tokenrelay', streams);
  for (const variant of ['hand', 'hand-iter'] as const) {
    const hand = find(variant, streams);
    if (relay === undefined || hand === undefined || relay.delivered !== relay.expected || hand.delivered !== hand.expected) continue;
    const difference = Math.abs(relay.bytes - hand.bytes) / hand.bytes;
    if (difference > 0.03) failures.push(`${streams} streams: tokenrelay sent ${relay.bytes} bytes and ${variant} ${hand.bytes}, not the same work`);
  }
}
for (const { run, m } of results) {
  if (m.errors > 0) console.error(`${run.streams} ${run.variant}: ${m.errors} client connection errors`);
  if (m.completed !== run.streams) failures.push(`${run.streams} ${run.variant}: ${m.completed} of ${run.streams} streams completed`);
  if (m.delivered !== m.expected) failures.push(`${run.streams} ${run.variant}: ${m.delivered} of ${m.expected} tokens delivered`);
  if (run.server.windowMs === 0) failures.push(`${run.streams} ${run.variant}: no steady window (the ramp took too long)`);
}
for (const budget of budgets) {
  if (budget.met !== false) continue;
  console.error(`BUDGET MISSED: ${budget.label} = ${budget.value}, budget ${budget.bound}`);
  if (budget.fails) failures.push(`${budget.label} = ${budget.value}`);
}
if (!quick && Object.values(dev).every((value) => value === undefined)) {
  writeDocsSection('concurrency', markdown);
  console.log('Wrote the concurrency section of docs/benchmarks.md');
}
if (failures.length > 0) {
  console.error(`concurrency benchmark failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
