// Checks what is published, not the source: packs the package from a clean copy of the sources
// (no dist/, as in a fresh clone: `prepack` must build it), lints the tarball (publint,
// @arethetypeswrong/cli), then imports and requires every subpath from the packed files on the
// system Node (>= 20, what users may run) and on the toolchain Node, loads `tokenrelay/testing`
// in a project without msw (its optional peer), and serves and reads a stream with the web
// adapter and the client on Bun, Deno and Cloudflare Workers (workerd).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp', 'package-check');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');

/** Names each subpath must export: the smoke test fails if a build drops one. */
const expected = {
  '.': ['pipe', 'tokens', 'fromAsyncIterable', 'TokenRelayError', 'ProviderError', 'StreamAbortedError',
    'StreamTimeoutError', 'BackpressureError', 'InvalidJSONError', 'isTokenRelayError', 'withAbort', 'withTimeout',
    'withBackpressure', 'withRate', 'withHeartbeat', 'monitored', 'composeMonitors', 'estimateCost', 'toSSE', 'partialJSON',
    'partialToolCalls', 'tap', 'map', 'collectText'],
  './openai': ['fromOpenAI', 'streamOpenAI'],
  './anthropic': ['fromAnthropic', 'streamAnthropic'],
  './node': ['sendSSE', 'closeAllStreams'],
  './express': ['sse', 'sendSSE', 'closeAllStreams'],
  './hono': ['sse', 'sendSSE', 'closeAllStreams'],
  './web': ['toResponse', 'closeAllStreams'],
  './ws': ['sendOverWebSocket', 'closeAllStreams'],
  './client': ['streamTokens', 'streamEvents'],
  './redis': ['redisStore'],
  './store': ['isStreamId', 'STREAM_ID_PATTERN'],
  './relay': ['createRelay', 'memoryStore', 'limitStreams', 'limitRate', 'idempotencyKey', 'parseCursor', 'resumeCursor',
    'StreamNotFoundError', 'ProducerLostError', 'InvalidCursorError', 'StreamLimitError', 'StoreUnavailableError',
    'BudgetExceededError', 'isStreamNotFoundError', 'isProducerLostError', 'isInvalidCursorError', 'isStreamLimitError',
    'isStoreUnavailableError', 'isBudgetExceededError'],
  './protocols': ['readRunAgentInput', 'readChatCompletionRequest', 'InvalidRequestError', 'isInvalidRequestError'],
  './sse': ['encodeSSEFrame', 'sseHeaders'],
  './prometheus': ['prometheusMonitor'],
  './otel': ['otelMonitor'],
  './testing': ['startMockProvider', 'openaiHandlers', 'anthropicHandlers', 'openaiScenarios', 'anthropicScenarios',
    'googleHandlers', 'googleGenerateContentWire', 'googleScenarios', 'bedrockHandlers', 'bedrockConverseWire',
    'bedrockEventFrame', 'mistralHandlers', 'mistralChatWire', 'mistralScenarios'],
  './google': ['fromGoogle', 'streamGoogle'],
  './bedrock': ['fromBedrock', 'streamBedrock'],
  './mistral': ['fromMistral', 'streamMistral'],
  './ai-sdk': ['fromAISDK'],
  './langchain': ['fromLangChain'],
  './fastify': ['sse', 'sendSSE', 'closeAllStreams'],
  './koa': ['sse', 'sendSSE', 'closeAllStreams'],
  './nestjs': ['sseObservable', 'sendSSE', 'closeAllStreams'],
};

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}${options.cwd ? `   (in ${options.cwd})` : ''}`);
  return execFileSync(command, args, { cwd: options.cwd ?? root, stdio: options.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// Pack what a fresh clone has (the sources, the build config, the files shipped as they are; no
// dist/), with the installed node_modules linked in: the tarball has a dist/ only if `prepack`
// builds it. Everything below checks this tarball.
const clean = join(work, 'clean');
mkdirSync(clean);
for (const entry of ['package.json', 'tsconfig.json', 'tsup.config.ts', 'src', ...pkg.files.filter((file) => file !== 'dist')]) {
  cpSync(join(root, entry), join(clean, entry), { recursive: true });
}
symlinkSync(join(root, 'node_modules'), join(clean, 'node_modules'), 'dir');
const packOutput = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: clean, capture: true });
const jsonStart = packOutput.search(/^\[$/m); // after the output of prepack's build
process.stdout.write(packOutput.slice(0, jsonStart));
const packed = JSON.parse(packOutput.slice(jsonStart))[0];
const tarball = join(work, packed.filename);
const shipped = new Set(packed.files.map((file) => file.path));
const exported = JSON.stringify(pkg.exports).match(/"\.\/dist\/[^"]+"/g).map((path) => path.slice(3, -1));
const missing = exported.filter((file) => !shipped.has(file));
if (missing.length > 0) throw new Error(`npm pack from a clean checkout ships ${shipped.size} files, without ${missing.join(', ')}: is \`prepack\` building dist/?`);
console.log(`  ok: npm pack from a clean checkout ran prepack; the tarball has ${shipped.size} files, the ${exported.length} that exports names among them`);
run('npx', ['publint', '--strict'], { cwd: clean });
run('npx', ['attw', tarball, '--profile', 'node16']);

// The root entry must stay runtime-neutral: nothing it loads may import a `node:` module.
assertNoNodeImports(join(clean, 'dist', 'index.js'));
assertNoNodeImports(join(clean, 'dist', 'index.cjs'));

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
// `tokenrelay/testing` where msw (its optional peer) is not installed: a project outside the repo
// with only the tarball and its dependencies. The entry loads and startMockProvider serves; only
// the msw handlers fail, with an error that names msw.
const bare = mkdtempSync(join(tmpdir(), 'tokenrelay-without-msw-'));
try {
  mkdirSync(join(bare, 'node_modules', 'tokenrelay'), { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', join(bare, 'node_modules', 'tokenrelay'), '--strip-components=1']);
  for (const dependency of Object.keys(pkg.dependencies ?? {})) {
    symlinkSync(join(root, 'node_modules', dependency), join(bare, 'node_modules', dependency), 'dir');
  }
  writeFileSync(join(bare, 'package.json'), '{ "private": true }\n');
  writeFileSync(join(bare, 'testing.mjs'), withoutMswSource('esm'));
  writeFileSync(join(bare, 'testing.cjs'), withoutMswSource('cjs'));
  let resolvable = true;
  try {
    createRequire(join(bare, 'package.json')).resolve('msw');
  } catch {
    resolvable = false;
  }
  if (resolvable) throw new Error(`msw resolves from ${bare}: the check without msw would prove nothing`);
  for (const [node, label] of nodes) {
    for (const file of ['testing.mjs', 'testing.cjs']) {
      console.log(`$ node ${file}   (${label} Node, no msw installed)`);
      execFileSync(node, [file], { cwd: bare, stdio: 'inherit', timeout: 60_000 });
    }
  }
} finally {
  rmSync(bare, { recursive: true, force: true });
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
  // One class per error whichever entry exports it: the relay's and the protocols' errors extend
  // the root's TokenRelayError (the build put errors.ts in one shared chunk), and what they throw
  // is an instance of the class each entry exports.
  const core = await load('tokenrelay');
  for (const moved of ['createRelay', 'memoryStore', 'StreamNotFoundError', 'readChatCompletionRequest', 'InvalidRequestError', 'encodeSSEFrame']) {
    if (core[moved] !== undefined) throw new Error('the root entry exports ' + moved + ', which lives behind its subpath');
  }
  const relayEntry = await load('tokenrelay/relay');
  const protocolsEntry = await load('tokenrelay/protocols');
  const relay = relayEntry.createRelay();
  const started = await relay.start(() => tokens(['x']), { id: 'smoke-1' });
  let replayed = '';
  for await (const chunk of relay.subscribe(started.id)) replayed += chunk.token;
  if (started.id !== 'smoke-1' || replayed !== 'x') throw new Error('relay gave ' + JSON.stringify([started.id, replayed]));
  const notFound = await relay.subscribe('no-such-stream').next().then(() => undefined, (error) => error);
  await relay.close();
  if (!(notFound instanceof relayEntry.StreamNotFoundError) || !(notFound instanceof core.TokenRelayError)) {
    throw new Error('tokenrelay/relay threw ' + notFound + ', not a StreamNotFoundError of the root TokenRelayError');
  }
  let invalid;
  try {
    protocolsEntry.readChatCompletionRequest({});
  } catch (error) {
    invalid = error;
  }
  if (!(invalid instanceof protocolsEntry.InvalidRequestError) || !(invalid instanceof core.TokenRelayError)) {
    throw new Error('tokenrelay/protocols threw ' + invalid + ', not an InvalidRequestError of the root TokenRelayError');
  }
  // A real response over loopback, through the published Node adapter and the web adapter.
  const { createServer } = await load('node:http');
  const { sendSSE } = await load('tokenrelay/node');
  const { toResponse } = await load('tokenrelay/web');
  const server = createServer((req, res) => void sendSSE(req, res, () => tokens(['a', 'b'])));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const body = await (await fetch('http://127.0.0.1:' + server.address().port)).text();
  server.close();
  if (!body.includes('event: done') || !body.includes('"token":"b"')) throw new Error('sendSSE gave ' + body);
  // msw is installed here: the handlers require it on first use, from this file's own location.
  const { openaiHandlers } = await load('tokenrelay/testing');
  if (openaiHandlers().length !== 2) throw new Error('openaiHandlers gave no msw handlers');
  const web = await (await toResponse(() => tokens(['c']))).text();
  if (!web.includes('"token":"c"') || !web.includes('event: done')) throw new Error('toResponse gave ' + web);
  console.log('  ok: ${kind} on Node ' + process.version);
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

function withoutMswSource(kind) {
  const load = kind === 'esm' ? "await import('tokenrelay/testing')" : "require('tokenrelay/testing')";
  return `
(async () => {
  const { startMockProvider, openaiHandlers, anthropicHandlers } = ${load};
  const provider = await startMockProvider({ script: { tokens: ['Hel', 'lo'] } });
  try {
    const response = await fetch(provider.openaiBaseURL + '/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-x', stream: true, messages: [] }),
    });
    const text = await response.text();
    if (!text.includes('"content":"lo"') || !text.includes('[DONE]')) throw new Error('startMockProvider gave ' + text);
  } finally {
    await provider.close();
  }
  for (const [name, handlers] of [['openaiHandlers', openaiHandlers], ['anthropicHandlers', anthropicHandlers]]) {
    let message = 'no error';
    try {
      handlers();
    } catch (error) {
      message = error.message;
    }
    if (!message.startsWith('\`' + name + '\` needs msw') || !message.includes('npm install --save-dev msw')) {
      throw new Error(name + ' without msw: expected an error naming msw, got: ' + message);
    }
  }
  console.log('  ok: tokenrelay/testing without msw (${kind}) on Node ' + process.version + ': startMockProvider serves, the msw handlers name msw');
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
