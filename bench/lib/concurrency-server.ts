/**
 * The server process of the concurrency benchmark (started by bench/concurrency.bench.ts, one
 * fresh process per run so one run's heap cannot tilt the next). Each request gets a stream of
 * `tokens` tokens, one every `intervalMs`, from an in-process timer source; each token's text is
 * its scheduled emit time (ms since the epoch), so the client can tell how late it arrived.
 *
 * The variants (concurrency-variants.ts) attach their request handling to its `node:http` server:
 * the references in concurrency-baselines.ts, tokenrelay's adapters in concurrency-adapters.ts,
 * other libraries in concurrency-peers.ts; only the one module a run needs is loaded, before the
 * idle baseline is taken.
 *
 * It measures what only the server can: RSS and heap, event-loop delay and CPU time, over the
 * steady window in which every stream is open and none has finished.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { setTimeout as benchTimeout } from 'node:timers';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import type { TokenChunk } from '../../src/core/types.ts';
import type { AttachVariant, StreamContext } from './concurrency-baselines.ts';
import { createHistogram, record, type ServerPlan, type ServerReady, type ServerResult, type Variant } from './concurrency-shared.ts';

// The library's timers, counted: it calls the global functions, the benchmark's own code (the
// sources' tickers included) calls node:timers directly, so only the library's calls count here.
const armed = { timeouts: 0, immediates: 0 };
const { setTimeout: globalTimeout, setImmediate: globalImmediate } = globalThis;
globalThis.setTimeout = Object.assign((...args: Parameters<typeof globalTimeout>) => {
  armed.timeouts++;
  return globalTimeout(...args);
}, globalTimeout);
globalThis.setImmediate = Object.assign((...args: Parameters<typeof globalImmediate>) => {
  armed.immediates++;
  return globalImmediate(...args);
}, globalImmediate);

/** Time this process spent runnable but waiting for a CPU (Linux), in ms: what a busy machine costs it. */
function runQueueWaitMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return NaN;
  }
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const send = (message: ServerReady | ServerResult, sent: () => void = () => undefined) => process.send?.(message, undefined, undefined, sent);

const server = http.createServer();
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
const { port } = server.address() as { port: number };

// Never outlives the benchmark that started it.
process.once('disconnect', () => process.exit(0));
const plan = await new Promise<ServerPlan>((resolve) => process.once('message', (message) => resolve(message as ServerPlan)));
const durationMs = plan.tokens * plan.intervalMs;
const SETTLE_MS = Math.min(1_000, durationMs * 0.15);

const emitLag = createHistogram();
const outcomes: Record<string, number> = {};
let opened = 0;
let active = 0;
let tokensEmitted = 0;
let firstAt = 0;
let resolveAllDone!: () => void;
const allDone = new Promise<void>((resolve) => (resolveAllDone = resolve));

/** Records how late a source's timer fired; the timeline keeps the worst per half second of the run. */
const lagTimeline: number[] = [];
function lagged(ms: number): void {
  record(emitLag, ms);
  tokensEmitted++;
  const slot = Math.floor((performance.now() - firstAt) / 500);
  if (!((lagTimeline[slot] ?? 0) >= ms)) lagTimeline[slot] = Math.round(ms);
}

/** Loads only the module of the variant that runs. */
async function attachFor(variant: Variant): Promise<AttachVariant> {
  switch (variant) {
    case 'hand':
      return (await import('./concurrency-baselines.ts')).attachHand;
    case 'hand-iter':
      return (await import('./concurrency-baselines.ts')).attachHandIter;
    case 'tokenrelay':
      return (await import('./concurrency-baselines.ts')).attachTokenrelay;
    case 'tokenrelay-hono':
      return (await import('./concurrency-adapters.ts')).attachHono;
    case 'tokenrelay-web':
      return (await import('./concurrency-adapters.ts')).attachWeb;
    case 'tokenrelay-express':
      return (await import('./concurrency-adapters.ts')).attachExpress;
    case 'tokenrelay-fastify':
      return (await import('./concurrency-adapters.ts')).attachFastify;
    case 'tokenrelay-koa':
      return (await import('./concurrency-adapters.ts')).attachKoa;
    case 'peer-hono':
      return (await import('./concurrency-peers.ts')).attachHonoStreamSSE;
    case 'peer-better-sse':
      return (await import('./concurrency-peers.ts')).attachBetterSSE;
    case 'peer-ai-sdk':
      return (await import('./concurrency-peers.ts')).attachAiSdk;
  }
}

const sleep = (ms: number) => new Promise((resolve) => benchTimeout(resolve, Math.max(0, ms)));

/** The provider stand-in: a token every `intervalMs`, on a schedule that does not drift. */
async function* timerSource(epoch: number): AsyncGenerator<TokenChunk, void, undefined> {
  const start = performance.now();
  for (let index = 0; index < plan.tokens; index++) {
    const due = start + (index + 1) * plan.intervalMs;
    await sleep(due - performance.now());
    lagged(performance.now() - due);
    yield { token: String(epoch + (index + 1) * plan.intervalMs), index, timestamp: performance.now(), type: 'text' };
  }
}

function opening(): void {
  opened++;
  active++;
  if (opened === 1) {
    firstAt = performance.now();
    // A server that cannot keep up never has every stream open at once: measure it anyway.
    benchTimeout(() => void measureSteadyWindow(), plan.rampMs + 2_000 + SETTLE_MS).unref();
  }
  if (opened === plan.streams) {
    rampMs = performance.now() - firstAt;
    benchTimeout(() => void measureSteadyWindow(), SETTLE_MS).unref();
  }
}

function closing(outcome: string): void {
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  active--;
  if (active === 0 && opened === plan.streams) resolveAllDone();
}

const context: StreamContext = { tokens: plan.tokens, intervalMs: plan.intervalMs, opening, closing, lagged, timerSource };
await (await attachFor(plan.variant))(server, context);

// The idle baseline: everything imported and listening, garbage collected.
gc();
gc();
await new Promise((resolve) => benchTimeout(resolve, 100));
gc();
const idle = process.memoryUsage();
const snapshot = process.env['BENCH_HEAP_SNAPSHOT'];
// The idle server's heap, for what the streams add (bench/heap-breakdown.ts); after the baseline, so it does not tilt it.
if (snapshot !== undefined) writeHeapSnapshot(`${snapshot}-${plan.variant}-${plan.streams}-idle.heapsnapshot`);
send({ type: 'ready', port, idleRss: idle.rss, idleHeap: idle.heapUsed });

let rampMs = NaN;
let windowStarted = false;
const openSamples: number[] = [];
let windowMs = 0;
const rssSamples: number[] = [];
const heapSamples: number[] = [];
const memorySamples: NodeJS.MemoryUsage[] = [];
let spaces: Record<string, number> = {};
let heapAfterGc = NaN;
let rssAfterGc = NaN;
let loop = { p50: NaN, p99: NaN, max: NaN };
let cpuUs = 0;
const gcPauses = { minor: [] as number[], major: [] as number[] };
let windowTokens = 0;
let timeoutsArmed = 0;
let immediatesArmed = 0;
let runQueueMs = NaN;

// The histogram records the time between its timer's runs: the delay is what exceeds the period.
const LOOP_RESOLUTION_MS = 10;
const loopDelay = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);

/**
 * From a settle time after the last stream opened (or after the planned ramp, if the server
 * fell behind) until just before the first stream ends.
 */
async function measureSteadyWindow(): Promise<void> {
  if (windowStarted) return;
  windowStarted = true;
  const endAt = firstAt + durationMs - Math.min(500, durationMs * 0.1);
  if (performance.now() + 500 >= endAt) return; // no steady window left
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  histogram.enable();
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = entry as PerformanceEntry & { detail?: { kind?: number } };
      const minor = detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR;
      (minor ? gcPauses.minor : gcPauses.major).push(entry.duration);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const cpu = process.cpuUsage();
  const tokensBefore = tokensEmitted;
  const armedBefore = { ...armed };
  const waitBefore = runQueueWaitMs();
  const from = performance.now();
  while (performance.now() + 250 < endAt) {
    await sleep(250);
    const memory = process.memoryUsage();
    rssSamples.push(memory.rss);
    heapSamples.push(memory.heapUsed);
    openSamples.push(active);
    memorySamples.push(memory);
  }
  spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, Math.round(space.space_size / 1024 / 1024)]));
  histogram.disable();
  gcObserver.disconnect();
  const used = process.cpuUsage(cpu);
  windowMs = performance.now() - from;
  cpuUs = used.user + used.system;
  windowTokens = tokensEmitted - tokensBefore;
  timeoutsArmed = armed.timeouts - armedBefore.timeouts;
  immediatesArmed = armed.immediates - armedBefore.immediates;
  runQueueMs = runQueueWaitMs() - waitBefore;
  loop = { p50: loopDelay(histogram.percentile(50)), p99: loopDelay(histogram.percentile(99)), max: loopDelay(histogram.max) };
  gc();
  const memory = process.memoryUsage();
  heapAfterGc = memory.heapUsed;
  if (snapshot !== undefined) writeHeapSnapshot(`${snapshot}-${plan.variant}-${plan.streams}.heapsnapshot`);
  rssAfterGc = memory.rss;
}

// Bounded: report whatever came once every stream ended, or well past the planned end.
const deadline = benchTimeout(resolveAllDone, durationMs + 60_000);
await allDone;
clearTimeout(deadline);
server.closeAllConnections();
server.close();
// Exits by itself once the result is out (not killed), so a `--cpu-prof` profile gets written.
send({
  type: 'result',
  rampMs,
  windowMs,
  rssSamples,
  heapSamples,
  openSamples,
  heapAfterGc,
  rssAfterGc,
  loopP50Ms: loop.p50,
  loopP99Ms: loop.p99,
  loopMaxMs: loop.max,
  cpuUs,
  windowTokens,
  timeoutsArmed,
  immediatesArmed,
  runQueueMs,
  emitLag,
  outcomes,
  opened,
  memory: memorySamples[Math.floor(memorySamples.length / 2)],
  gcPauses,
  lagTimeline: Array.from(lagTimeline, (ms) => ms ?? 0),
  spaces,
}, () => process.exit(0));
