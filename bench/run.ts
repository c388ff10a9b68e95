/**
 * Runs every `bench/*.bench.ts`, each in a child process of its own (a fresh heap and JIT, so one
 * benchmark cannot tilt the next), in name order, and passes its arguments (`--quick`) through.
 * Exits non-zero if any benchmark failed, after running them all.
 *
 * `node bench/run.ts [--quick] [name…]`: names select benchmarks (`operators` runs operators.bench.ts).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
// Runs the benchmarks straight from src/ (the `.js` imports there resolve to their `.ts` files).
const fromSource = fileURLToPath(new URL('../scripts/run-from-source.mjs', import.meta.url));
const args = process.argv.slice(2);
const flags = args.filter((arg) => arg.startsWith('--'));
const names = args.filter((arg) => !arg.startsWith('--'));

const files = readdirSync(dir)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => names.length === 0 || names.includes(file.slice(0, -'.bench.ts'.length)))
  .sort();
if (files.length === 0) {
  console.error(`No benchmark matches ${names.join(', ')}`);
  process.exit(1);
}

const failed: string[] = [];
for (const file of files) {
  console.log(`\n▶ ${file} ${flags.join(' ')}`.trimEnd());
  const started = performance.now();
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', fromSource, `${dir}${file}`, ...flags], {
    stdio: 'inherit',
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (child.status === 0) {
    console.log(`✔ ${file} (${seconds} s)`);
  } else {
    console.log(`✘ ${file} failed (${child.signal ?? `exit code ${child.status}`}, ${seconds} s)`);
    failed.push(file);
  }
}
if (failed.length > 0) {
  console.error(`\n${failed.length} of ${files.length} benchmarks failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
