// Checks what is published, not the source: packs the package, lints the tarball (publint,
// @arethetypeswrong/cli), then imports and requires every subpath from the packed files on the
// system Node (>= 20, what users may run) and on the toolchain Node, and serves and reads a
// stream with the web adapter and the client on Bun, Deno and Cloudflare Workers (workerd).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp', 'package-check');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');

/** Names each subpath must export: the smoke test fails if a build drops one. */
const expected = {
  '.': ['pipe', 'tokens', 'fromAsyncIterable', 'ProviderError', 'isTokenRelayError', 'withAbort', 'withTimeout',
    'withBackpressure', 'monitored', 'toSSE', 'partialJSON', 'createRelay', 'memoryStore', 'limitStreams'],
  './openai': ['fromOpenAI', 'streamOpenAI'],
  './anthropic': ['fromAnthropic', 'streamAnthropic'],
  './node': ['sendSSE', 'closeAllStreams'],
  './express': ['sse', 'closeAllStreams'],
  './hono': ['streamTokens', 'closeAllStreams'],
  './web': ['toResponse', 'closeAllStreams'],
  './ws': ['sendOverWebSocket', 'closeAllStreams'],
  './client': ['streamTokens', 'streamEvents'],
  './redis': ['redisStore'],
  './prometheus': ['prometheusMonitor'],
  './otel': ['otelMonitor'],
  './testing': ['startMockProvider', 'openaiHandlers', 'anthropicHandlers'],
};

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`);
  return execFileSync(command, args, { cwd: root, stdio: options.capture ? 'pipe' : 'inherit', encoding: 'utf8' });
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const tarball = join(work, run('npm', ['pack', '--silent', '--pack-destination', work], { capture: true }).trim().split('\n').pop());
run('npx', ['publint', '--strict']);
run('npx', ['attw', tarball, '--profile', 'node16']);

// The root entry must stay runtime-neutral: nothing it loads may import a `node:` module.
assertNoNodeImports(join(root, 'dist', 'index.js'));
assertNoNodeImports(join(root, 'dist', 'index.cjs'));

// Unpack inside the repo so the peers installed in ./node_modules resolve as a user's would.
const app = join(work, 'app');
mkdirSync(join(app, 'node_modules', 'tokenrelay'), { recursive: true });
execFileSync('tar', ['-xzf', tarball, '-C', join(app, 'node_modules', 'tokenrelay'), '--strip-components=1']);
writeFileSync(join(app, 'package.json'), '{ "private": true }\n');
writeFileSync(join(app, 'expected.json'), JSON.stringify(expected));
writeFileSync(join(app, 'smoke.mjs'), smokeSource('esm'));
writeFileSync(join(app, 'smoke.cjs'), smokeSource('cjs'));

const nodes = new Map([[process.execPath, 'toolchain']]);
const systemNode = findSystemNode();
if (systemNode === undefined) throw new Error('No system node found on PATH outside node_modules');
nodes.set(systemNode, 'system');
for (const [node, label] of nodes) {
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  for (const file of ['smoke.mjs', 'smoke.cjs']) {
    console.log(`$ node ${file}   (${label} Node ${version})`);
    execFileSync(node, [file], { cwd: app, stdio: 'inherit' });
  }
}
// The web adapter and the client on the other runtimes they are written for, from the same files.
copyFileSync(join(root, 'scripts', 'runtime-smoke.mjs'), join(app, 'runtime-smoke.mjs'));
const runtimes = [
  ['bun', ['runtime-smoke.mjs']],
  ['deno', ['run', '--allow-net=127.0.0.1', '--allow-read', 'runtime-smoke.mjs']],
];
const checked = [];
for (const [name, args] of runtimes) {
  const binary = findBinary(name);
  if (binary === undefined) {
    // Bun is a dev dependency; Deno's and Miniflare's npm packages cannot be locked for every
    // platform from this registry, so CI installs them (`npm install --no-save`) and requires them.
    const hint = `${name} not found (node_modules/.bin or PATH): \`npm install --no-save ${name}\` to check it`;
    if (process.env.TOKENRELAY_REQUIRE_RUNTIMES === '1') throw new Error(hint);
    console.log(`  skipped: ${hint}`);
    continue;
  }
  console.log(`$ ${name} ${args.join(' ')}`);
  execFileSync(binary, args, { cwd: app, stdio: 'inherit', timeout: 60_000 });
  checked.push(name === 'bun' ? 'Bun' : 'Deno');
}
// Cloudflare Workers: the same adapter and client bundled as a Worker, in workerd via Miniflare.
if (existsSync(join(root, 'node_modules', 'miniflare', 'package.json'))) {
  for (const file of ['workers-smoke.mjs', 'workers-entry.mjs']) copyFileSync(join(root, 'scripts', file), join(app, file));
  console.log('$ node workers-smoke.mjs');
  execFileSync(process.execPath, ['workers-smoke.mjs'], { cwd: app, stdio: 'inherit', timeout: 120_000 });
  checked.push('Workers');
} else {
  const hint = 'miniflare not found in node_modules: `npm install --no-save miniflare@4.20260426.0` to check Workers';
  if (process.env.TOKENRELAY_REQUIRE_RUNTIMES === '1') throw new Error(hint);
  console.log(`  skipped: ${hint}`);
}
console.log(
  `package check passed: ${subpaths.length} subpaths, ESM and CJS, on ${[...nodes.values()].join(' and ')} Node` +
    (checked.length > 0 ? `; the web adapter and the client on ${checked.join(', ')}` : ''),
);

function findBinary(name) {
  const local = join(root, 'node_modules', '.bin', name);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function smokeSource(kind) {
  const load = kind === 'esm' ? '(name) => import(name)' : '(name) => Promise.resolve(require(name))';
  return `
const expected = ${JSON.stringify(expected)};
const load = ${load};
(async () => {
  for (const [subpath, names] of Object.entries(expected)) {
    const name = subpath === '.' ? 'tokenrelay' : 'tokenrelay' + subpath.slice(1);
    const mod = await load(name);
    for (const exported of names) {
      if (mod[exported] === undefined) throw new Error(name + ' does not export ' + exported + ' (${kind})');
    }
  }
  const { pipe, tokens } = await load('tokenrelay');
  let text = '';
  for await (const chunk of pipe(tokens(['Hel', 'lo']))) text += chunk.token;
  if (text !== 'Hello') throw new Error('pipeline gave ' + JSON.stringify(text));
  // A real response over loopback, through the published Node adapter and the web adapter.
  const { createServer } = await load('node:http');
  const { sendSSE } = await load('tokenrelay/node');
  const { toResponse } = await load('tokenrelay/web');
  const server = createServer((req, res) => void sendSSE(req, res, () => tokens(['a', 'b'])));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const body = await (await fetch('http://127.0.0.1:' + server.address().port)).text();
  server.close();
  if (!body.includes('event: done') || !body.includes('"token":"b"')) throw new Error('sendSSE gave ' + body);
  const web = await (await toResponse(() => tokens(['c']))).text();
  if (!web.includes('"token":"c"') || !web.includes('event: done')) throw new Error('toResponse gave ' + web);
  console.log('  ok: ${kind} on Node ' + process.version);
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

function findSystemNode() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir.includes('node_modules')) continue;
    const candidate = join(dir, 'node');
    if (existsSync(candidate) && resolve(candidate) !== process.execPath) return candidate;
  }
  return undefined;
}

function assertNoNodeImports(entry, seen = new Set()) {
  if (seen.has(entry)) return;
  seen.add(entry);
  const source = readFileSync(entry, 'utf8');
  const specifiers = [...source.matchAll(/(?:from\s*|import\s*\(\s*|require\(\s*|import\s+)["']([^"']+)["']/g)].map((m) => m[1]);
  for (const specifier of specifiers) {
    if (specifier.startsWith('node:')) throw new Error(`${entry} imports ${specifier}: the root entry must be runtime-neutral`);
    if (specifier.startsWith('.')) assertNoNodeImports(resolve(dirname(entry), specifier), seen);
  }
}
