/**
 * Abort latency (issue 8, benchmark 5): a client disconnects mid-answer; how long until the
 * provider sees its request closed? For every tokenrelay server adapter — node `sendSSE`,
 * express `sse`, hono `sendSSE` and web `toResponse` on `@hono/node-server`, ws
 * `sendOverWebSocket` — serving the real `openai` SDK; and every other provider adapter (issue 15) —
 * `streamGoogle`, `streamBedrock`, `streamMistral` with their real SDKs — behind node `sendSSE`.
 * The servers run in this process; the
 * clients and the testing kit's `startMockProvider` together in a child process
 * (bench/lib/load-process.ts), so the disconnect and the provider's `endedAt` are read on one
 * clock. docs/benchmarks.md says how to read it.
 */
import { forkChild } from './lib/child-process.ts';
import type { LoadApi } from './lib/load-process.ts';
import { percentiles } from './lib/percentiles.ts';
import { PROVIDERS, startProviderServer, type ProviderKind } from './lib/provider-servers.ts';
import { environment, markdownTable, parseArgs, writeDocsSection } from './lib/report.ts';
import { ADAPTERS, createOpenAI, startAdapter, type AdapterKind, type Listening } from './lib/servers.ts';

/** What one row measures: a server adapter (serving OpenAI), or a provider adapter behind node `sendSSE`. */
type Target = AdapterKind | ProviderKind;
const TARGETS: readonly Target[] = [...ADAPTERS, ...PROVIDERS];

const { quick } = parseArgs();
const plan = quick ? { perAdapter: 50, rounds: 2, warmup: 10 } : { perAdapter: 1000, rounds: 10, warmup: 20 };
const CONCURRENCY = 10;
// Each client disconnects after its first token plus a random delay in [0, MAX_DELAY_MS).
const MAX_DELAY_MS = 100;
// The provider answers 200 tokens 5 ms apart (a fast model, 200 tokens/s; 1 s, so it is always
// still streaming when the client leaves). Not longer: the mock builds the whole answer when the
// request arrives, and that work would delay the other streams' events.
const SCRIPT = { tokens: Array.from({ length: 200 }, (_, i) => ` tok${i}`), delayMs: 5 };
const GIVE_UP_MS = 2000;
const BUDGET_P99_MS = 20;
// Quick mode (CI, a shared machine, 50 disconnects, so p99 is nearly the max): fails only when
// the median is far beyond scheduling noise, or a provider request is never closed.
const QUICK_BOUND_P50_MS = 100;

interface Tally {
  latencies: number[];
  neverClosed: number;
  failed: string[];
}

const began = performance.now();
const load = await forkChild<LoadApi>(new URL('./lib/load-process.ts', import.meta.url));
const servers = new Map<Target, Listening>();
const tallies = new Map<Target, Tally>(TARGETS.map((kind) => [kind, { latencies: [], neverClosed: 0, failed: [] }]));
try {
  const openai = createOpenAI(await load.call('startMockProvider', [SCRIPT]));
  const urls = await load.call('mockProviderURLs', []);
  for (const kind of ADAPTERS) servers.set(kind, await startAdapter(kind, openai));
  for (const kind of PROVIDERS) servers.set(kind, await startProviderServer(kind, urls));
  const disconnect = (kind: Target, count: number, seed: number) =>
    load.call('abortClients', [
      {
        url: (servers.get(kind) as Listening).url,
        kind,
        count,
        concurrency: CONCURRENCY,
        maxDelayMs: MAX_DELAY_MS,
        seed,
        giveUpMs: GIVE_UP_MS,
      },
    ]);
  for (const kind of TARGETS) await disconnect(kind, plan.warmup, 1);
  const perRound = Math.ceil(plan.perAdapter / plan.rounds);
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < TARGETS.length; i++) {
      const kind = TARGETS[(round + i) % TARGETS.length] as Target;
      const result = await disconnect(kind, perRound, 1000 + round * TARGETS.length + i);
      const tally = tallies.get(kind) as Tally;
      tally.latencies.push(...result.latencies);
      tally.neverClosed += result.neverClosed;
      tally.failed.push(...result.failed);
    }
  }
} finally {
  await Promise.all([...servers.values()].map((server) => server.close()));
  await load.close();
}
report();

function report(): void {
  const ms = (value: number) => value.toFixed(2);
  const failures: string[] = [];
  const rows = TARGETS.map((kind) => {
    const tally = tallies.get(kind) as Tally;
    const { count, p50, p99, max } = percentiles([...tally.latencies]);
    const met = count > 0 && p99 < BUDGET_P99_MS && tally.neverClosed === 0;
    if (!met) {
      const found = `${kind}: p99 ${ms(p99)} ms over ${count} disconnects, ${tally.neverClosed} never closed`;
      console.error(`BUDGET MISSED: ${found}; budget p99 < ${BUDGET_P99_MS} ms, every provider request closed`);
      if (!quick) failures.push(found);
      else if (!(p50 < QUICK_BOUND_P50_MS) || tally.neverClosed > 0) {
        failures.push(`${found}, p50 ${ms(p50)} ms (quick-mode bound: p50 < ${QUICK_BOUND_P50_MS} ms, every provider request closed)`);
      }
    }
    if (tally.failed.length > 0) console.error(`${kind}: ${tally.failed.length} clients could not disconnect mid-stream: ${[...new Set(tally.failed)].join('; ')}`);
    return [label(kind), String(count), ms(p50), ms(p99), ms(max), String(tally.neverClosed), met ? 'ok' : '**MISSED**'];
  });
  const markdown = [
    '### Latest run',
    '',
    `${environment()}. ${plan.perAdapter.toLocaleString('en-US')} disconnects per row, ${CONCURRENCY} at a time, each after the first token ` +
      `plus a random 0–${MAX_DELAY_MS} ms; the rows alternated over ${plan.rounds} rounds after ${plan.warmup} warm-up disconnects each ` +
      `(${((performance.now() - began) / 1000).toFixed(0)} s${quick ? ', quick mode' : ''}).`,
    '',
    markdownTable(
      ['adapter (provider)', 'disconnects', 'p50 ms', 'p99 ms', 'max ms', `provider still open after ${GIVE_UP_MS / 1000} s`, `budget: p99 < ${BUDGET_P99_MS} ms`],
      rows,
    ),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  if (!quick) {
    writeDocsSection('abort-latency', markdown);
    console.log('Wrote the abort-latency section of docs/benchmarks.md');
  }
  if (failures.length > 0) {
    console.error(`abort-latency benchmark failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
}

function label(kind: Target): string {
  switch (kind) {
    case 'node':
      return 'node: `sendSSE` on `node:http` (OpenAI)';
    case 'express':
      return 'express: `sse()` on Express 5 (OpenAI)';
    case 'hono':
      return 'hono: `sendSSE` on `@hono/node-server` (OpenAI)';
    case 'web':
      return 'web: `toResponse` on `@hono/node-server` (OpenAI)';
    case 'ws':
      return 'ws: `sendOverWebSocket` on `ws` (OpenAI)';
    case 'google':
      return 'node: `sendSSE` (Gemini: `streamGoogle`, `@google/genai`)';
    case 'bedrock':
      return 'node: `sendSSE` (Bedrock: `streamBedrock`, `@aws-sdk/client-bedrock-runtime`)';
    case 'mistral':
      return 'node: `sendSSE` (Mistral: `streamMistral`, `@mistralai/mistralai`)';
  }
}
