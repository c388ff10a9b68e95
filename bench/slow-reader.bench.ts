/**
 * A slow reader (issue 8, benchmark 4): one client sends its request and never reads, while the
 * provider writes up to 1,000,000 tokens as fast as the server takes them. What does that cost
 * the server in memory, and does the stream end? Each variant's server runs in a fresh process
 * (bench/lib/server-process.ts) that samples its RSS every 50 ms; the provider and the client
 * run here. docs/benchmarks.md says how to read it.
 */
import { forkChild } from './lib/child-process.ts';
import { startFastProvider, type ProviderStream } from './lib/fast-provider.ts';
import { median } from './lib/percentiles.ts';
import { environment, markdownTable, parseArgs, writeDocsSection } from './lib/report.ts';
import type { MemoryReport, ServerApi, ServerVariant } from './lib/server-process.ts';
import { readStreams, startSlowReader } from './lib/stream-clients.ts';

const { quick } = parseArgs();
const MAX_TOKENS = 1_000_000;
// Runs stop after `maxMs`; tokenrelay's, which end by themselves, may take `graceMs` more, so
// a slow CI machine still sees its write timeout fire in quick mode.
const plan = quick
  ? { rounds: 1, maxMs: 1_200, graceMs: 3_000, writeTimeoutMs: 300, warmupTokens: 5_000 }
  : { rounds: 3, maxMs: 10_000, graceMs: 0, writeTimeoutMs: 3_000, warmupTokens: 20_000 };
// The budget tokenrelay is held to: its stream ends by the write timeout, the provider request
// is closed, and the server's RSS grows by less than this. A miss fails the full run; the quick
// run (a short time bound on a shared CI machine) fails only past the loose RSS bound.
const RSS_BUDGET_MB = 16;
const QUICK_RSS_BOUND_MB = 64;

interface Variant {
  key: ServerVariant;
  label: string;
}

const variants: Variant[] = [
  { key: 'hand-written', label: '(a) hand-written: res.write per token, return value ignored' },
  { key: 'tokenrelay', label: `(b) tokenrelay: sendSSE, writeTimeoutMs ${plan.writeTimeoutMs.toLocaleString('en-US')}` },
  { key: 'ai-sdk', label: '(c) AI SDK: pipeUIMessageStreamToResponse' },
];

interface Run {
  memory: MemoryReport;
  provider: ProviderStream | undefined;
}

const began = performance.now();
const provider = await startFastProvider();
const runs = new Map<ServerVariant, Run[]>(variants.map((variant) => [variant.key, []]));
try {
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length] as Variant;
      runs.get(variant.key)?.push(await run(variant.key));
    }
  }
} finally {
  await provider.close();
}
report();

async function run(variant: ServerVariant): Promise<Run> {
  provider.clear();
  const server = await forkChild<ServerApi>(new URL('./lib/server-process.ts', import.meta.url));
  try {
    const port = await server.call('start', [{ variant, baseURL: provider.openaiBaseURL, writeTimeoutMs: plan.writeTimeoutMs }]);
    // One normal answer to a client that reads first, so the baseline already holds the
    // compiled code and the heap a server has after its first requests.
    provider.configure({ kind: 'flood', maxTokens: plan.warmupTokens, maxMs: 30_000 });
    await readStreams({ url: `http://127.0.0.1:${port}/chat`, clients: 1, tokensPerStream: 0, maxMs: 30_000 });
    provider.clear();
    provider.configure({ kind: 'flood', maxTokens: MAX_TOKENS, maxMs: plan.maxMs });
    await server.call('startSampling', []);
    const started = performance.now();
    const client = await startSlowReader(port);
    // Until the time bound, or until both the provider request and the response have ended.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const progress = await server.call('report', []);
      const upstream = provider.streams[0];
      const limit = plan.maxMs + (variant === 'tokenrelay' ? plan.graceMs : 0);
      const over = performance.now() - started >= limit;
      const providerDone = upstream !== undefined && (upstream.end !== 'open' || upstream.tokens >= MAX_TOKENS);
      if (over || (providerDone && progress.responses.every((end) => end.outcome !== 'open'))) break;
    }
    const memory = await server.call('report', [true]);
    client.close();
    const upstream = provider.streams[0];
    await server.call('stop', []);
    return { memory, provider: upstream === undefined ? undefined : { ...upstream } };
  } finally {
    await server.close();
  }
}

function report(): void {
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const failures: string[] = [];
  const rows = variants.map(({ key, label }) => {
    const list = runs.get(key) ?? [];
    const growth = list.map((r) => r.memory.peakRss - r.memory.baselineRss);
    const tokens = list.map((r) => r.provider?.tokens ?? 0);
    const queued = list.map((r) => r.memory.peakQueued);
    const held = list.map((r) => (r.memory.held ?? r.memory.baselineHeld) - r.memory.baselineHeld);
    const endings = describeEnds(list);
    let status = '—';
    if (key === 'tokenrelay') {
      const ended = list.every((r) => r.memory.responses[0]?.outcome === 'write-timeout' && r.provider?.end === 'client-closed');
      const bounded = growth.every((bytes) => bytes < RSS_BUDGET_MB * 1024 * 1024);
      status = ended && bounded ? 'ok' : '**MISSED**';
      if (!(ended && bounded)) {
        const found = `tokenrelay: ${endings}; peak RSS growth ${growth.map(mb).join(', ')} MB`;
        console.error(`BUDGET MISSED: ${found}; budget: ended by the write timeout, provider aborted, < ${RSS_BUDGET_MB} MB`);
        if (!quick) failures.push(found);
        else if (!growth.every((bytes) => bytes < QUICK_RSS_BOUND_MB * 1024 * 1024)) failures.push(`${found} (quick-mode bound ${QUICK_RSS_BOUND_MB} MB)`);
      }
    }
    return [
      label,
      median(tokens).toLocaleString('en-US'),
      `${mb(median(growth))} (${mb(Math.min(...growth))}–${mb(Math.max(...growth))})`,
      mb(median(queued)),
      mb(median(held)),
      endings,
      status,
    ];
  });
  const markdown = [
    '### Latest run',
    '',
    `${environment()}. One client that never reads; the provider writes up to ${MAX_TOKENS.toLocaleString('en-US')} tokens as fast ` +
      `as the server takes them; each run stops after ${seconds(plan.maxMs)}` +
      `${plan.graceMs > 0 ? ` (tokenrelay's up to ${seconds(plan.graceMs)} later, to let its write timeout fire)` : ''}, ` +
      `or once the provider request and the response have both ended. ` +
      `${plan.rounds} round${plan.rounds === 1 ? '' : 's'}, each variant's server in a fresh process, RSS sampled every 50 ms; medians, with the range over rounds ` +
      `(${((performance.now() - began) / 1000).toFixed(0)} s${quick ? ', quick mode' : ''}).`,
    '',
    markdownTable(
      ['variant', 'tokens the provider wrote', 'peak RSS growth, MB', 'peak bytes queued in the response, MB', 'heap held at the end, MB', 'how it ended', `budget: ends, < ${RSS_BUDGET_MB} MB`],
      rows,
    ),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  if (!quick) {
    writeDocsSection('slow-reader', markdown);
    console.log('Wrote the slow-reader section of docs/benchmarks.md');
  }
  if (failures.length > 0) {
    console.error(`slow-reader benchmark failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
}

/**
 * How the runs ended, from the response's and the provider request's side: runs that ended the
 * same way are merged, with the range of their times.
 */
function describeEnds(list: readonly Run[]): string {
  const groups = new Map<string, number[]>();
  for (const run of list) {
    const response = run.memory.responses[0];
    const upstream = run.provider;
    const side =
      response === undefined
        ? 'no response'
        : response.outcome === 'open'
          ? `response still open at ${(plan.maxMs / 1000).toFixed(1)} s`
          : `response ${response.outcome === 'write-timeout' ? 'ended by the write timeout' : response.outcome}`;
    const up =
      upstream === undefined
        ? 'no provider request'
        : upstream.end === 'client-closed'
          ? 'provider request aborted'
          : upstream.end === 'completed' || upstream.tokens >= MAX_TOKENS
            ? 'provider finished'
            : 'provider request open';
    const key = `${side}, ${up}`;
    const times = groups.get(key) ?? [];
    if (response?.atMs !== undefined) times.push(response.atMs / 1000);
    groups.set(key, times);
  }
  return [...groups]
    .map(([key, times]) => {
      if (times.length === 0) return key;
      const low = Math.min(...times).toFixed(1);
      const high = Math.max(...times).toFixed(1);
      const [side, ...rest] = key.split(', ');
      return `${side} at ${low === high ? low : `${low}–${high}`} s, ${rest.join(', ')}`;
    })
    .join('; ');
}
