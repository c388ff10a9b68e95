import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** The command line every benchmark takes: `--quick` for the short CI run that rewrites no docs. */
export interface BenchArgs {
  quick: boolean;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  for (const arg of argv) {
    if (arg !== '--quick') throw new TypeError(`Unknown argument ${JSON.stringify(arg)}; expected only \`--quick\``);
  }
  return { quick: argv.includes('--quick') };
}

export interface Summary {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('Cannot summarize no samples');
  const sorted = [...values].sort((x, y) => x - y);
  return {
    median: quantile(sorted, 0.5),
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/** Linear interpolation between closest ranks, on sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const low = sorted[below] as number;
  const high = sorted[Math.min(below + 1, sorted.length - 1)] as number;
  return low + (high - low) * (position - below);
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Where and when a table was measured: it means little without the machine. */
export function environment(): string {
  const cpu = cpus();
  const model = cpu[0]?.model.trim() ?? 'unknown CPU';
  const date = new Date().toISOString().slice(0, 10);
  return `Node ${process.version}, ${model} (${cpu.length} cores), ${process.platform}/${process.arch}, ${date}`;
}

const DOCS = new URL('../../docs/benchmarks.md', import.meta.url);

/**
 * Replaces the section of `docs/benchmarks.md` between `<!-- bench:<name>:start -->` and
 * `<!-- bench:<name>:end -->`, or appends one when the markers are missing. Nothing else in the
 * file changes, so each benchmark owns its section only.
 */
export function writeDocsSection(name: string, markdown: string): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  let text: string;
  try {
    text = readFileSync(DOCS, 'utf8');
  } catch {
    text = '# Benchmarks\n';
  }
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text = from !== -1 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(DOCS, text);
}
