/**
 * Server CPU per token over loopback (issue 8, benchmark 2): real HTTP servers streaming a fast
 * provider's answer to concurrent clients — (a) a hand-written endpoint, (b) tokenrelay's
 * `sendSSE`, (c) the AI SDK's `pipeUIMessageStreamToResponse`, and (b0) tokenrelay's `sendSSE`
 * fed chunks already parsed (an in-process source, no provider bytes) — measured by the server
 * process's CPU time per delivered token, with the latency of every token from the provider's
 * write to the client's read. The servers run in this process; the provider and the clients in
 * a child process (bench/lib/load-process.ts). Budgets: b/a ≤ 1.2× and c/b0 ≥ 5× (full runs;
 * quick mode shows them without judging). docs/benchmarks.md says how to read it.
 */
import type { Child } from './lib/child-process.ts';
import { forkChild } from './lib/child-process.ts';
import type { LoadApi } from './lib/load-process.ts';
import { median } from './lib/percentiles.ts';
import { relayedParsed, type PacedChunks } from './lib/parsed-source.ts';
import { environment, markdownTable, parseArgs, summarize, writeDocsSection, type Summary } from './lib/report.ts';
import { aiSdk, createOpenAI, handWritten, relayedNode, startHttpServer, type Listening, type NodeHandler } from './lib/servers.ts';

const { quick } = parseArgs();
// 4 streams × 3,000 tokens/s = 12,000 tokens/s: the most this 2-core target relays with every
// variant below one busy core (the AI SDK's costs ~55 µs/token), so latencies measure the
// relaying, not a queue. 20 streams (60,000 tokens/s) saturate the server with any variant.
const plan = quick
  ? { clients: 4, rate: 3000, seconds: 0.4, warmupSeconds: 0.2, rounds: 3 }
  : { clients: 4, rate: 3000, seconds: 2, warmupSeconds: 1, rounds: 10 };
const tokensPerStream = Math.round(plan.rate * plan.seconds);
/** What (b0)'s in-process source streams; set before each run, as the provider is configured. */
const parsed: PacedChunks = { tokensPerStream, rate: plan.rate };

interface Variant {
  key: string;
  label: string;
  handler: NodeHandler;
  /** Whether it reads the fast provider (every variant but b0, whose source is in-process). */
  provider: boolean;
}

/** tokenrelay / hand-written (b/a), at most; the AI SDK / tokenrelay without parsing (c/b0), at least. */
const BUDGET = { 'b/a': 1.2, 'c/b0': 5 } as const;
type Ratio = 'b/a' | 'c/b' | 'c/a' | 'c/b0' | 'b/b0';

interface Run {
  cpuUsPerToken: number;
  /** Server CPU time over wall time: 1 is one core busy all the time. */
  load: number;
  p50: number;
  p99: number;
  max: number;
  bytesPerToken: number;
  /** Tokens per second per stream the provider actually wrote. */
  rate: number;
  /** The load process's CPU time over wall time. */
  clientLoad: number;
}

const began = performance.now();
/** Budgets missed in a full run: the benchmark fails after writing its section. */
const missed: string[] = [];
const load = await forkChild<LoadApi>(new URL('./lib/load-process.ts', import.meta.url));
const servers: Listening[] = [];
try {
  const baseURL = await load.call('startFastProvider', [{ kind: 'paced', tokensPerStream, rate: plan.rate }]);
  const openai = createOpenAI(baseURL);
  const variants: Variant[] = [
    { key: 'a', label: '(a) hand-written: res.write per token', handler: handWritten(openai), provider: true },
    { key: 'b', label: '(b) tokenrelay: sendSSE(req, res, (signal) => streamOpenAI(…))', handler: relayedNode(openai), provider: true },
    { key: 'c', label: '(c) AI SDK: streamText → pipeUIMessageStreamToResponse', handler: aiSdk(openai), provider: true },
    { key: 'b0', label: '(b0) tokenrelay without parsing: sendSSE fed TokenChunks in process', handler: relayedParsed(parsed), provider: false },
  ];
  for (const variant of variants) servers.push(await startHttpServer(variant.handler));

  // Warm-up, which also proves every variant delivers every token of every stream.
  for (const [i, variant] of variants.entries()) {
    await measure(load, servers[i] as Listening, Math.round(plan.rate * plan.warmupSeconds), variant);
  }
  const runs = new Map<string, Run[]>(variants.map((variant) => [variant.key, []]));
  const ratios: Record<Ratio, number[]> = { 'b/a': [], 'c/b': [], 'c/a': [], 'c/b0': [], 'b/b0': [] };
  for (let round = 0; round < plan.rounds; round++) {
    const cpu = new Map<string, number>();
    for (let i = 0; i < variants.length; i++) {
      const index = (round + i) % variants.length;
      const variant = variants[index] as Variant;
      const run = await measure(load, servers[index] as Listening, tokensPerStream, variant);
      runs.get(variant.key)?.push(run);
      cpu.set(variant.key, run.cpuUsPerToken);
    }
    const of = (key: string) => cpu.get(key) as number;
    ratios['b/a'].push(of('b') / of('a'));
    ratios['c/b'].push(of('c') / of('b'));
    ratios['c/a'].push(of('c') / of('a'));
    ratios['c/b0'].push(of('c') / of('b0'));
    ratios['b/b0'].push(of('b') / of('b0'));
  }
  report(variants, runs, ratios);
} finally {
  await Promise.all(servers.map((server) => server.close()));
  await load.close();
}

async function measure(child: Child<LoadApi>, server: Listening, tokens: number, { label, provider }: Variant): Promise<Run> {
  await child.call('configureFastProvider', [{ kind: 'paced', tokensPerStream: tokens, rate: plan.rate }]);
  parsed.tokensPerStream = tokens;
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await child.call('readStreams', [
    { url: `${server.url}/chat`, clients: plan.clients, tokensPerStream: tokens, maxMs: 30_000 + (tokens / plan.rate) * 5000 },
  ]);
  const wallMs = performance.now() - start;
  const { user, system } = process.cpuUsage(cpu);
  const streams = await child.call('takeProviderStreams', []);
  const expected = plan.clients * tokens;
  const requests = provider ? plan.clients : 0;
  if (result.completed !== plan.clients || result.tokens !== expected || streams.length !== requests) {
    throw new Error(
      `${label}: ${result.completed} of ${plan.clients} streams complete, ${result.tokens} of ${expected} tokens received, ` +
        `${streams.length} provider requests (expected ${requests})`,
    );
  }
  const rates = streams.map((stream) => ((stream.tokens - 1) * 1000) / Math.max(1e-3, stream.lastTokenAt - stream.startedAt));
  return {
    cpuUsPerToken: (user + system) / result.tokens,
    load: (user + system) / 1000 / wallMs,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    bytesPerToken: result.bytes / result.tokens,
    rate: rates.length > 0 ? median(rates) : NaN,
    clientLoad: result.clientLoad,
  };
}

function report(variants: Variant[], runs: Map<string, Run[]>, ratios: Record<Ratio, number[]>): void {
  const of = (key: string, pick: (run: Run) => number): Summary => summarize((runs.get(key) ?? []).map(pick));
  const us = (value: number) => value.toFixed(2);
  const ms = (value: number) => value.toFixed(2);
  const x = (value: number) => `${value.toFixed(2)}×`;
  const rows = variants.map(({ key, label }) => {
    const cpu = of(key, (run) => run.cpuUsPerToken);
    return [
      label,
      us(cpu.median),
      `${us(cpu.p25)}–${us(cpu.p75)}`,
      `${(of(key, (run) => run.load).median * 100).toFixed(0)} %`,
      ms(of(key, (run) => run.p50).median),
      ms(of(key, (run) => run.p99).median),
      ms(of(key, (run) => run.max).max),
      of(key, (run) => run.bytesPerToken).median.toFixed(0),
    ];
  });
  const ratioRows = (
    [
      ['b/a', 'b/a: tokenrelay / hand-written'],
      ['c/b', 'c/b: AI SDK / tokenrelay'],
      ['c/a', 'c/a: AI SDK / hand-written'],
      ['c/b0', 'c/b0: AI SDK / tokenrelay without parsing'],
      ['b/b0', 'b/b0: tokenrelay / tokenrelay without parsing (what parsing the provider costs it)'],
    ] as const
  ).map(([key, label]) => {
    const s = summarize(ratios[key]);
    return [label, x(s.median), `${x(s.p25)}–${x(s.p75)}`];
  });
  const budgetRows = (Object.keys(BUDGET) as (keyof typeof BUDGET)[]).map((key) => {
    const value = summarize(ratios[key]).median;
    const atMost = key === 'b/a';
    const met = atMost ? value <= BUDGET[key] : value >= BUDGET[key];
    if (!met && !quick) missed.push(`${key} = ${x(value)}, budget ${atMost ? '≤' : '≥'} ${x(BUDGET[key])}`);
    const label = atMost ? 'b/a: tokenrelay / hand-written' : 'c/b0: AI SDK / tokenrelay without parsing';
    return [label, x(value), `${atMost ? '≤' : '≥'} ${x(BUDGET[key])}`, quick ? `${met ? 'ok' : 'missed'} (not judged: quick mode)` : met ? 'ok' : '**MISSED**'];
  });
  const allRuns = [...runs.values()].flat();
  const allRates = allRuns.map((run) => run.rate).filter((rate) => Number.isFinite(rate));
  const clientLoad = Math.max(...allRuns.map((run) => run.clientLoad));
  const seconds = (performance.now() - began) / 1000;
  const markdown = [
    '### Latest run',
    '',
    `${environment()}. ${plan.clients} concurrent streams of ${tokensPerStream.toLocaleString('en-US')} tokens, the provider ` +
      `pacing each at ${plan.rate.toLocaleString('en-US')} tokens/s (measured: median ${median(allRates).toFixed(0)} tokens/s per stream; ` +
      `the provider and client process used at most ${(clientLoad * 100).toFixed(0)} % of a core); ` +
      `${plan.rounds} rounds after one warm-up run each, the variants alternated within each round (${seconds.toFixed(0)} s${quick ? ', quick mode' : ''}).`,
    '',
    markdownTable(
      ['variant', 'server CPU µs/token (median)', 'p25–p75', 'server CPU load', 'latency p50 ms', 'p99 ms', 'max ms', 'bytes/token'],
      rows,
    ),
    '',
    markdownTable(['ratio of CPU per token (per round, then the median)', 'median', 'p25–p75'], ratioRows),
    '',
    markdownTable(['budget (median ratio of CPU per token)', 'measured', 'budget', 'status'], budgetRows),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  if (!quick) {
    writeDocsSection('server-cpu', markdown);
    console.log('Wrote the server-cpu section of docs/benchmarks.md');
  }
  if (missed.length > 0) {
    console.error(`server-cpu: budget missed: ${missed.join('; ')}`);
    process.exitCode = 1;
  }
}
