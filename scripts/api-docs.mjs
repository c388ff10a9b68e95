// Generates the API reference (docs/api/) from the TSDoc of every public entry point, with
// TypeDoc and typedoc-plugin-markdown, configured by typedoc.json.
//
//   node scripts/api-docs.mjs           regenerate docs/api/
//   node scripts/api-docs.mjs --check   fail if an exported name has no doc comment, a {@link}
//                                       is broken, an entry point is missing from typedoc.json,
//                                       or docs/api/ differs from what the source generates
//
// Each module is named after its import path (`tokenrelay/openai`, not `providers/openai`):
// the entry points are read from tsup.config.ts, whose keys are package.json's subpaths.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as td from 'typedoc';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const check = process.argv.includes('--check');
const outDir = join(root, 'docs/api');

function fail(message) {
  console.error(`api-docs: ${message}`);
  process.exitCode = 1;
}

// --- entry points: typedoc.json must list exactly tsup's entries, which mirror `exports` ---
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8'));
const { entries } = await import(join(root, 'tsup.config.ts'));
const subpathOf = new Map(); // source file -> import path
for (const [key, file] of Object.entries(entries)) {
  const subpath = key === 'index' ? '.' : `./${key}`;
  if (!(subpath in pkg.exports)) fail(`tsup entry ${key} has no package.json export ${subpath}`);
  subpathOf.set(file, key === 'index' ? pkg.name : `${pkg.name}/${key}`);
}
for (const subpath of Object.keys(pkg.exports)) {
  if (subpath === './package.json') continue;
  const key = subpath === '.' ? 'index' : subpath.slice(2);
  if (!(key in entries)) fail(`package.json export ${subpath} has no tsup entry`);
}
const listed = new Set(config.entryPoints);
for (const file of subpathOf.keys()) if (!listed.has(file)) fail(`typedoc.json entryPoints lacks ${file}`);
for (const file of listed) if (!subpathOf.has(file)) fail(`typedoc.json entryPoints has ${file}, which no subpath exports`);
if (process.exitCode) process.exit();

// --- convert, validate, render ---
const out = check ? mkdtempSync(join(tmpdir(), 'tokenrelay-api-')) : outDir;
const started = performance.now();
const app = await td.Application.bootstrapWithPlugins({ options: join(root, 'typedoc.json'), out }, [
  new td.TypeDocReader(),
  new td.TSConfigReader(),
]);
// TypeDoc names a module after its path below src/ ("providers/openai"); users import "tokenrelay/openai".
const moduleName = new Map(
  [...subpathOf].map(([file, name]) => [file.replace(/^src\//, '').replace(/(\/index)?\.ts$/, ''), name]),
);
app.converter.on(td.Converter.EVENT_RESOLVE_BEGIN, (context) => {
  for (const mod of context.project.children ?? []) {
    const name = moduleName.get(mod.name);
    if (name === undefined) fail(`unexpected module ${mod.name}`);
    else mod.name = name;
  }
});

const project = await app.convert();
if (project === undefined) {
  fail('TypeDoc could not convert the project');
  process.exit();
}
// As the typedoc CLI does with treatValidationWarningsAsErrors; any warning of the conversion
// (an unknown tag, a malformed comment) fails too, so the reference stays clean.
app.validate(project);
const undocumented = app.logger.hasErrors() || app.logger.hasWarnings();
if (undocumented) {
  fail(
    'fix the warnings above: an exported name or member without a doc comment, a broken {@link}, ' +
      'or a type the reference shows but no entry point exports',
  );
  if (check) process.exit(); // without --check the reference is still written, to look at
}
await app.generateOutputs(project);
if (app.logger.hasErrors()) {
  fail('TypeDoc failed to render');
  process.exit();
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);

if (!check) {
  console.log(`api-docs: wrote ${relative(root, outDir)}/ in ${seconds} s`);
  if (undocumented) process.exit();
} else {
  // A stale reference fails too: docs/api/ is committed, and it must be what the source says.
  const diff = spawnSync('git', ['diff', '--no-index', '--stat', '--', outDir, out], { encoding: 'utf8' });
  rmSync(out, { recursive: true, force: true });
  if (diff.status !== 0) {
    console.error(diff.stdout || diff.stderr);
    fail('docs/api/ is out of date: run `npm run docs:api` and commit the result');
  } else {
    console.log(`api-docs: every exported name is documented and docs/api/ is up to date (${seconds} s)`);
  }
}
