/**
 * Server CPU per SSE frame with write combining on and off (tokenrelay/node `sendSSE`): the
 * frames of one tick go out in one `res.write`, or each in its own. The server runs in this
 * process and the clients in a child process (bench/lib/load-process.ts), so
 * `process.cpuUsage()` counts the server only. Each stream's source is in process, paced like a
 * fast provider: `rate` tokens/s, delivered on 1 ms timer ticks, i.e. a few tokens per tick as
 * they come off a provider's socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokens } from '../src/index.ts';
import { setWriteCombining } from '../src/servers/internal/pump.ts';
import { sendSSE } from '../src/servers/node.ts';
import { forkChild } from './lib/child-process.ts';
import type { LoadApi } from './lib/load-process.ts';
import { environment, markdownTable, parseArgs, summarize, writeDocsSection } from './lib/report.ts';
import { startHttpServer } from './lib/servers.ts';

const { quick } = parseArgs();
const plan = quick ? { clients: 8, rate: 3000, seconds: 0.3, rounds: 2 } : { clients: 8, rate: 3000, seconds: 2, rounds: 6 };
const tokensPerStream = Math.round(plan.rate * plan.seconds);

interface Mode {
  key: string;
  label: string;
  combine: boolean;
  /** `res.write` does nothing: what the source, the pipeline and the timers cost without socket I/O. */
  stubWrites: boolean;
}

const modes: Mode[] = [
  { key: 'on', label: 'combining on (default)', combine: true, stubWrites: false },
  { key: 'off', label: 'combining off: one res.write per frame', combine: false, stubWrites: false },
  { key: 'stub', label: 'baseline: res.write stubbed (no socket I/O)', combine: true, stubWrites: true },
];

interface Run {
  frames: number;
  writes: number;
  cpuUsPerFrame: number;
}

const began = performance.now();
const load = await forkChild<LoadApi>(new URL('./lib/load-process.ts', import.meta.url));
const runs = new Map<string, Run[]>(modes.map((mode) => [mode.key, []]));
const saved: number[] = [];
try {
  await measure(modes[0] as Mode); // warm-up
  for (let round = 0; round < plan.rounds; round++) {
    const cpu = new Map<string, number>();
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(round + i) % modes.length] as Mode;
      const run = await measure(mode);
      runs.get(mode.key)?.push(run);
      cpu.set(mode.key, run.cpuUsPerFrame);
    }
    saved.push((cpu.get('off') as number) / (cpu.get('on') as number));
  }
} finally {
  await load.close();
}
report();

async function measure(mode: Mode): Promise<Run> {
  let writes = 0;
  const results: Promise<unknown>[] = [];
  const server = await startHttpServer(async (req: IncomingMessage, res: ServerResponse) => {
    const { write, end } = res;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      writes++;
      return mode.stubWrites || (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      return (end as (...args: unknown[]) => ServerResponse).call(this, mode.stubWrites ? undefined : chunk, ...rest);
    } as typeof res.end;
    req.resume();
    const result = sendSSE(req, res, tokens(paced(tokensPerStream)), { statusWindowMs: 0 });
    results.push(result);
    return result;
  });
  setWriteCombining(mode.combine);
  try {
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const received = await load.call('readStreams', [
      { url: `${server.url}/chat`, clients: plan.clients, tokensPerStream: 0, maxMs: 30_000 + plan.seconds * 5000 },
    ]);
    await Promise.all(results);
    const { user, system } = process.cpuUsage(cpu);
    if (received.completed !== plan.clients) throw new Error(`${mode.label}: ${received.completed} of ${plan.clients} streams completed`);
    const frames = plan.clients * (tokensPerStream + 1); // every token, and the done frame
    return { frames, writes, cpuUsPerFrame: (user + system) / frames };
  } finally {
    setWriteCombining(true);
    await server.close();
  }
}

/** `total` tokens at `plan.rate` per second: each 1 ms timer tick yields the tokens that are due. */
async function* paced(total: number): AsyncGenerator<string, void, undefined> {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * plan.rate) / 1000));
    for (; sent < due; sent++) yield ` tok${sent}`;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function report(): void {
  const us = (value: number) => value.toFixed(2);
  const rows = modes.map(({ key, label }) => {
    const list = runs.get(key) ?? [];
    const cpu = summarize(list.map((run) => run.cpuUsPerFrame));
    const frames = list[0]?.frames ?? 0;
    const writes = Math.round(summarize(list.map((run) => run.writes)).median);
    return [label, frames.toLocaleString('en-US'), writes.toLocaleString('en-US'), (frames / writes).toFixed(1), us(cpu.median), `${us(cpu.p25)}–${us(cpu.p75)}`];
  });
  const ratio = summarize(saved);
  const markdown = [
    '### Latest run',
    '',
    `${environment()}. ${plan.clients} concurrent streams × ${plan.rate.toLocaleString('en-US')} tokens/s for ${plan.seconds} s over loopback; ` +
      `${plan.rounds} rounds after one warm-up run, the modes alternated within each round ` +
      `(${((performance.now() - began) / 1000).toFixed(0)} s${quick ? ', quick mode' : ''}).`,
    '',
    markdownTable(['mode', 'frames', 'res.write calls', 'frames per write', 'server CPU µs/frame (median)', 'p25–p75'], rows),
    '',
    markdownTable(
      ['ratio of CPU per frame (per round, then the median)', 'median', 'p25–p75'],
      [['off/on: one write per frame / combined', `${ratio.median.toFixed(2)}×`, `${ratio.p25.toFixed(2)}×–${ratio.p75.toFixed(2)}×`]],
    ),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  if (!quick) {
    writeDocsSection('write-combining', markdown);
    console.log('Wrote the write-combining section of docs/benchmarks.md');
  }
}
