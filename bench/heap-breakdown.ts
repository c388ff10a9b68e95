/**
 * What one stream holds on the server's heap, by constructor: runs the concurrency benchmark's
 * server with N streams of a variant and of the hand-written `for await` endpoint, takes heap
 * snapshots of each idle server and in the steady window (after a full GC), and tables the
 * difference per stream: count and self size per constructor (or V8 type), the top 25, beside
 * the hand-written endpoint's.
 *
 * `node bench/heap-breakdown.ts [--variant tokenrelay] [--against hand-iter] [--streams 2000] [--write]`
 * prints the table; `--write` also puts it in docs/benchmarks.md (a full `npm run bench` does).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runConcurrency } from './lib/concurrency-run.ts';
import { isVariant, VARIANTS, type Variant } from './lib/concurrency-variants.ts';
import { perStream, readHeapGroups, type HeapGroup } from './lib/heap-snapshot.ts';
import { environment, markdownTable, writeDocsSection } from './lib/report.ts';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'tokenrelay' },
    against: { type: 'string', default: 'hand-iter' },
    streams: { type: 'string', default: '2000' },
    write: { type: 'boolean', default: false },
  },
});
const streams = Number(values.streams);
if (!Number.isInteger(streams) || streams < 1) throw new TypeError(`Expected \`--streams\` to be a positive integer, got ${values.streams}`);
for (const name of [values.variant, values.against]) {
  if (!isVariant(name)) throw new TypeError(`Expected a variant of bench/lib/concurrency-variants.ts, got ${JSON.stringify(name)}`);
}
const variant = values.variant as Variant;
const against = values.against as Variant;
/** Long enough for a steady window after the ramp; the snapshot is taken at its end, every stream still open. */
const plan = { tokens: 40, intervalMs: 200, onTimeMs: 1_000 };
const TOP = 25;

const dir = mkdtempSync(join(tmpdir(), 'heap-breakdown-'));
const prefix = join(dir, 'snap');
let groups: Record<'variant' | 'against', Map<string, HeapGroup>>;
try {
  process.env['BENCH_HEAP_SNAPSHOT'] = prefix;
  const measured = async (name: Variant) => {
    const run = await runConcurrency(name, streams, plan);
    const open = run.server.openSamples[run.server.openSamples.length - 1] ?? 0;
    if (open !== streams) throw new Error(`${name}: ${open} of ${streams} streams were open at the snapshot (outcomes: ${JSON.stringify(run.server.outcomes)}, window ${run.server.windowMs} ms)`);
    console.log(`  ${streams} streams, ${name}: snapshots taken`);
    const groups = perStream(
      readHeapGroups(`${prefix}-${name}-${streams}-idle.heapsnapshot`),
      readHeapGroups(`${prefix}-${name}-${streams}.heapsnapshot`),
      streams,
    );
    // Compiled code is what the JIT added while serving, a fixed cost, not a stream's.
    groups.delete('(code)');
    return groups;
  };
  groups = { against: await measured(against), variant: await measured(variant) };
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const none: HeapGroup = { count: 0, bytes: 0 };
const total = (map: Map<string, HeapGroup>) => [...map.values()].reduce((sum, group) => sum + group.bytes, 0);
const top = [...groups.variant.entries()].sort(([, a], [, b]) => b.bytes - a.bytes).slice(0, TOP);
const count = (value: number) => value.toFixed(1);
const bytes = (value: number) => value.toFixed(0);
const signed = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(0)}`;
const rows = top.map(([name, group]) => {
  const other = groups.against.get(name) ?? none;
  return [`\`${name}\``, count(group.count), bytes(group.bytes), count(other.count), bytes(other.bytes), signed(group.bytes - other.bytes)];
});
const rest = (map: Map<string, HeapGroup>) => total(map) - top.reduce((sum, [name]) => sum + (map.get(name) ?? none).bytes, 0);
rows.push(['everything else', '', bytes(rest(groups.variant)), '', bytes(rest(groups.against)), signed(rest(groups.variant) - rest(groups.against))]);
rows.push(['**total**', '', `**${bytes(total(groups.variant))}**`, '', `**${bytes(total(groups.against))}**`, `**${signed(total(groups.variant) - total(groups.against))}**`]);

const markdown = [
  '### Latest run',
  '',
  `${environment()}. ${streams.toLocaleString('en-US')} streams of ${plan.tokens} tokens, one every ${plan.intervalMs} ms; a heap snapshot of the idle server and one at the end of the steady window (after a full GC, every stream open), per variant; per stream = (loaded − idle) / streams, self sizes in bytes, compiled code left out (the JIT's, not a stream's). The ${TOP} largest groups of ${VARIANTS[variant].label}, beside ${VARIANTS[against].label}.`,
  '',
  markdownTable(
    ['constructor or V8 type', 'count/stream', 'bytes/stream', `count/stream, ${against}`, `bytes/stream, ${against}`, 'difference, bytes'],
    rows,
  ),
].join('\n');
console.log(`\n${markdown}\n`);
if (values.write) {
  writeDocsSection('heap-breakdown', markdown);
  console.log('Wrote the heap-breakdown section of docs/benchmarks.md');
}
