/**
 * The concurrency benchmark's charts, written by full runs next to docs/benchmarks.md: CPU per
 * token, heap per stream and tokens on time against the number of streams, one line per variant.
 */
import { mkdirSync } from 'node:fs';
import { writeLineChart, type ChartPoint } from './charts.ts';
import type { Measures } from './concurrency-measures.ts';
import type { Run } from './concurrency-run.ts';
import { ALL_VARIANTS, VARIANTS } from './concurrency-variants.ts';

const DIR = new URL('../../docs/benchmarks/', import.meta.url);

/**
 * Writes the three charts to docs/benchmarks/`files` (CPU, heap, on time, in that order) and
 * resolves with the paths written, relative to the repository.
 */
export async function writeConcurrencyCharts(
  results: readonly { run: Run; m: Measures }[],
  files: readonly [cpu: string, heap: string, onTime: string],
): Promise<string[]> {
  mkdirSync(DIR, { recursive: true });
  const points = (pick: (m: Measures) => number): ChartPoint[] =>
    results
      .map(({ run, m }) => ({ series: VARIANTS[run.variant].short, x: run.streams, y: pick(m) }))
      .filter((point) => Number.isFinite(point.y))
      .sort((a, b) => a.x - b.x);
  const seriesOrder = ALL_VARIANTS.map((variant) => VARIANTS[variant].short);
  const [cpu, heap, onTime] = files;
  await writeLineChart(new URL(cpu, DIR), {
    title: 'Server CPU per token',
    xTitle: 'concurrent streams',
    yTitle: 'CPU µs per token',
    points: points((m) => Number(m.cpuUsPerToken.toFixed(2))),
    seriesOrder,
  });
  await writeLineChart(new URL(heap, DIR), {
    title: 'Live heap per stream (after a full GC)',
    xTitle: 'concurrent streams',
    yTitle: 'KiB per stream',
    points: points((m) => Number(m.heapKiB.toFixed(2))),
    seriesOrder,
  });
  await writeLineChart(new URL(onTime, DIR), {
    title: 'Tokens delivered on time (≤ 1 s late)',
    xTitle: 'concurrent streams',
    yTitle: 'share of all tokens',
    points: points((m) => Number(m.onTimeShare.toFixed(5))),
    seriesOrder,
    yFormat: '.1%',
    // Not from zero: the differences that matter are tenths of a percent near 100 %.
    yMin: Math.min(...results.map(({ m }) => m.onTimeShare).filter(Number.isFinite), 0.99),
  });
  return files.map((file) => `docs/benchmarks/${file}`);
}
