/**
 * The in-process per-chunk benchmark: what tokenrelay's pipeline costs on top of a hand-written
 * endpoint, and next to the Vercel AI SDK, on one 20,000-token OpenAI Chat Completions stream;
 * and what each protocol's encoder costs per chunk, next to tokenrelay's own SSE. Run it through `npm run bench` (docs/benchmarks.md says how to read it): the ratios are the
 * result, not the times.
 */
import { simulateReadableStream, streamText } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { StreamMetrics } from '../src/operators/monitored.ts';
import { checkSSEOptions } from '../src/operators/to-sse.ts';
import { protocolNamed } from '../src/protocols/index.ts';
import type { Protocol } from '../src/protocols/protocol.ts';
import type { TokenChunk } from '../src/core/types.ts';
import { fromOpenAI } from '../src/providers/openai.ts';
import { openChunkStream, openResponseStream } from '../src/servers/internal/response-stream.ts';
import { planChunkStream, planResponse } from '../src/servers/internal/options.ts';
import { toResponse } from '../src/servers/web.ts';
import { openaiChatWire } from '../src/testing/openai-wire.ts';
import { createRandom, wireToResponse } from '../src/testing/wire-stream.ts';
import { countPromises, sample, type Sample } from './lib/measure.ts';
import { environment, markdownTable, parseArgs, summarize, writeDocsSection, type Summary } from './lib/report.ts';

const TOKENS = 20_000;
const { quick } = parseArgs();
// Rounds run until `rounds` or `maxMs`, whichever comes first, but at least `minRounds`.
const plan = quick
  ? { warmup: 1, minRounds: 3, rounds: 3, maxMs: 0 }
  : { warmup: 3, minRounds: 10, rounds: 40, maxMs: 60_000 };

// --- the fixture: one realistic answer, as OpenAI's bytes and as the AI SDK's model parts ----

const tokens = fixtureTokens(TOKENS, 42);
const params: ChatCompletionCreateParamsStreaming = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Tell me a long story.' }],
  stream: true,
  stream_options: { include_usage: true },
};
const wire = openaiChatWire(
  { tokens, usage: { inputTokens: 12, outputTokens: TOKENS } },
  { api: 'openai-chat', path: '/v1/chat/completions', headers: {}, body: { ...params } },
);
const openai = new OpenAI({
  apiKey: 'sk-bench',
  baseURL: 'http://provider.invalid/v1',
  maxRetries: 0,
  fetch: async (_url, init) => wireToResponse(wire, { signal: init?.signal ?? undefined }),
});

type ModelStream = Awaited<ReturnType<MockLanguageModelV4['doStream']>>['stream'];
type ModelPart = ModelStream extends ReadableStream<infer Part> ? Part : never;
const modelParts: ModelPart[] = [
  { type: 'stream-start', warnings: [] },
  { type: 'response-metadata', id: 'chatcmpl-bench', modelId: 'gpt-4o-mini', timestamp: new Date(0) },
  { type: 'text-start', id: 'text-0' },
  ...tokens.map((delta): ModelPart => ({ type: 'text-delta', id: 'text-0', delta })),
  { type: 'text-end', id: 'text-0' },
  {
    type: 'finish',
    finishReason: { unified: 'stop', raw: 'stop' },
    usage: {
      inputTokens: { total: 12, noCache: 12, cacheRead: undefined, cacheWrite: undefined },
      outputTokens: { total: TOKENS, text: TOKENS, reasoning: undefined },
    },
  },
];

// The same SDK chunks, parsed once and replayed from memory: only for the diagnostic rows that
// show what the relaying costs without the SDK's own parsing (which (c) does not pay either).
type SdkChunk = ChatCompletionChunk;
const recorded: SdkChunk[] = [];
for await (const chunk of await openai.chat.completions.create(params)) recorded.push(chunk);
async function* replay(): AsyncGenerator<SdkChunk, void, undefined> {
  for (const chunk of recorded) yield chunk;
}
type StreamSource = (signal?: AbortSignal) => Promise<AsyncIterable<SdkChunk>>;
const sdkStream: StreamSource = async (signal) => openai.chat.completions.create(params, signal === undefined ? {} : { signal });
const replayedStream: StreamSource = async () => replay();

// --- the variants: each answers with a Response, read to the end by the measuring loop ------

const encoder = new TextEncoder();

/** Only reads the SDK chunks: the floor every OpenAI variant stands on. */
async function sdkOnly(): Promise<number> {
  let count = 0;
  for await (const chunk of await sdkStream()) if (chunk.choices[0]?.delta.content) count++;
  return count;
}

/**
 * (a) What a hand-rolled endpoint does: loop over the SDK chunks, write each delta as an SSE
 * frame, encode it, enqueue it. Its frames carry the same JSON fields as tokenrelay's (stamped
 * the same way), so the ratio measures the machinery, not a different payload.
 */
async function handRolled(open: StreamSource = sdkStream): Promise<Response> {
  const request = new AbortController();
  const stream = await open(request.signal);
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      let index = 0;
      let finishReason: string | undefined;
      let usage: unknown;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const token = choice?.delta.content;
        if (token) {
          const data = JSON.stringify({ token, index, timestamp: performance.now(), type: 'text', model: chunk.model, provider: 'openai' });
          controller.enqueue(encoder.encode(`id: ${index}\nevent: token\ndata: ${data}\n\n`));
          index++;
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
      }
      const done = JSON.stringify({ finishReason, index, usage, model: params.model, provider: 'openai' });
      controller.enqueue(encoder.encode(`id: ${index}\nevent: done\ndata: ${done}\n\n`));
      controller.close();
    },
  });
  return new Response(body);
}

let lastMetrics: StreamMetrics | undefined;

/**
 * (b) tokenrelay as an endpoint uses it: `fromOpenAI` → `toResponse`, which runs withAbort,
 * withTimeout (idle and total limits, aborting the request), withBackpressure, monitored (with
 * an `onFinish` hook) and toSSE, and encodes the frames into the body.
 */
async function tokenrelay(open: StreamSource = sdkStream): Promise<Response> {
  const request = new AbortController();
  const stream = await open(request.signal);
  return toResponse(fromOpenAI(stream, { signal: request.signal }), {
    request,
    timeout: { idleMs: 30_000, totalMs: 600_000 },
    monitor: { onFinish: (metrics) => void (lastMetrics = metrics) },
  });
}

/** (c) The Vercel AI SDK: streamText over its mock model fed the same deltas → UI message stream Response. */
async function aiSdk(): Promise<Response> {
  const model = new MockLanguageModelV4({
    doStream: async () => ({
      stream: simulateReadableStream({ chunks: modelParts, initialDelayInMs: null, chunkDelayInMs: null }),
    }),
  });
  const result = streamText({ model, prompt: 'Tell me a long story.' });
  return result.toUIMessageStreamResponse();
}

/** Reads a body to the end, as a client would; keeps the text only for the checks. */
async function readBody(response: Response, keep = false): Promise<string> {
  const decoder = new TextDecoder();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    if (keep) text += decoder.decode(value, { stream: true });
  }
}

// --- measuring -----------------------------------------------------------------------------

interface Variant {
  key: string;
  label: string;
  run: () => Promise<unknown>;
}

const variants: Variant[] = [
  { key: 'a', label: '(a) hand-written loop → SSE → Response', run: async () => readBody(await handRolled()) },
  { key: 'b', label: '(b) tokenrelay: fromOpenAI → toResponse', run: async () => readBody(await tokenrelay()) },
  { key: 'c', label: '(c) AI SDK: streamText → toUIMessageStreamResponse', run: async () => readBody(await aiSdk()) },
  { key: 'sdk', label: 'floor: only read the SDK chunks', run: sdkOnly },
  { key: 'a0', label: '(a0) = (a), SDK chunks replayed from memory', run: async () => readBody(await handRolled(replayedStream)) },
  { key: 'b0', label: '(b0) = (b), SDK chunks replayed from memory', run: async () => readBody(await tokenrelay(replayedStream)) },
];

interface Ratio {
  key: string;
  label: string;
  over: string;
  under: string;
  /** `max`: the ratio must stay at or below `value`, else at or above it. `quick`: the loose bound of quick mode. */
  budget?: { value: number; max: boolean; quick: number } | undefined;
}

// Quick mode (CI) runs three rounds on a shared machine: it fails only far beyond that noise.
const ratios: Ratio[] = [
  { key: 'b/a', label: 'b/a: tokenrelay / hand-written', over: 'b', under: 'a', budget: { value: 1.2, max: true, quick: 1.8 } },
  { key: 'c/b', label: 'c/b: AI SDK / tokenrelay', over: 'c', under: 'b' },
  { key: 'b0/a0', label: 'b0/a0: relaying only (SDK chunks replayed)', over: 'b0', under: 'a0' },
  { key: 'c/b0', label: 'c/b0: AI SDK / tokenrelay, neither parsing provider bytes', over: 'c', under: 'b0', budget: { value: 5, max: false, quick: 1 } },
  // The most any relaying code can reach here.
  { key: 'c/a0', label: 'c/a0: AI SDK / hand-written, neither parsing provider bytes', over: 'c', under: 'a0' },
];

// The encoders measured on their own, after the variants (see measureEncoders).
interface Encoder {
  key: string;
  label: string;
  protocol: Protocol;
}

const encoders: Encoder[] = [
  { key: 'tokenrelay', label: "`'tokenrelay'` SSE (the default)", protocol: checkSSEOptions({}, true).protocol },
  { key: 'ai-sdk', label: "`'ai-sdk'` UI message stream", protocol: protocolNamed('ai-sdk', {}) as Protocol },
  { key: 'ag-ui', label: "`'ag-ui'` events over SSE", protocol: protocolNamed('ag-ui', {}) as Protocol },
  { key: 'openai', label: "`'openai'` Chat Completions chunks", protocol: protocolNamed('openai', {}) as Protocol },
  { key: 'ndjson', label: "`'ndjson'` lines", protocol: protocolNamed('ndjson', {}) as Protocol },
];
// Each sample encodes the stream this many times: one pass (20,001 chunks) is a few ms, too short to time alone.
const ENCODER_PASSES = 5;

await checkSameWork();

const began = performance.now();
for (let round = 0; round < plan.warmup; round++) {
  for (const variant of variants) await variant.run();
}
const wall = new Map<string, number[]>(variants.map((variant) => [variant.key, []]));
const cpu = new Map<string, number[]>(variants.map((variant) => [variant.key, []]));
const ratioWall = new Map<string, number[]>(ratios.map((ratio) => [ratio.key, []]));
const ratioCpu = new Map<string, number[]>(ratios.map((ratio) => [ratio.key, []]));
let rounds = 0;
const measuring = performance.now();
while (rounds < plan.minRounds || (rounds < plan.rounds && performance.now() - measuring < plan.maxMs)) {
  // Rotate the order each round, so no variant always runs first (or right after the slowest one).
  const round = new Map<string, Sample>();
  for (let i = 0; i < variants.length; i++) {
    const variant = variants[(rounds + i) % variants.length] as Variant;
    const result = await sample(variant.run);
    round.set(variant.key, result);
    wall.get(variant.key)?.push(result.wallUs / TOKENS);
    cpu.get(variant.key)?.push(result.cpuUs / TOKENS);
  }
  for (const ratio of ratios) {
    const over = round.get(ratio.over) as Sample;
    const under = round.get(ratio.under) as Sample;
    ratioWall.get(ratio.key)?.push(over.wallUs / under.wallUs);
    ratioCpu.get(ratio.key)?.push(over.cpuUs / under.cpuUs);
  }
  rounds++;
}
const promises = new Map<string, number>();
for (const variant of variants) promises.set(variant.key, (await countPromises(variant.run)) / TOKENS);
const encoding = await measureEncoders();
// Counted, never timed, and deterministic: the full run only, to keep the quick one short.
const layers = quick ? undefined : await countLayers();
const seconds = (performance.now() - began) / 1000;

// --- reporting -----------------------------------------------------------------------------

const us = (value: number) => value.toFixed(2);
const x = (value: number) => `${value.toFixed(2)}×`;
const spread = (s: Summary, format: (value: number) => string) => `${format(s.p25)}–${format(s.p75)}`;
const summaryOf = (map: Map<string, number[]>, key: string) => summarize(map.get(key) ?? []);

const timeRows = variants.map((variant) => {
  const w = summaryOf(wall, variant.key);
  return [variant.label, us(w.median), spread(w, us), us(summaryOf(cpu, variant.key).median), (promises.get(variant.key) ?? NaN).toFixed(1)];
});
const within = (budget: NonNullable<Ratio['budget']>, value: number, limit = budget.value) =>
  budget.max ? value <= limit : value >= limit;
const bound = (budget: NonNullable<Ratio['budget']>, limit = budget.value) => `${budget.max ? '≤' : '≥'} ${limit}`;
// A budget is met only if both the wall-clock and the CPU-time medians meet it.
const verdicts = ratios.map((ratio) => {
  const s = summaryOf(ratioWall, ratio.key);
  const byCpu = summaryOf(ratioCpu, ratio.key).median;
  const { budget } = ratio;
  const met = budget === undefined ? undefined : within(budget, s.median) && within(budget, byCpu);
  return { ratio, s, byCpu, met };
});
const ratioRows = verdicts.map(({ ratio, s, byCpu, met }) => [
  ratio.label,
  x(s.median),
  spread(s, x),
  x(byCpu),
  ratio.budget === undefined ? '—' : bound(ratio.budget),
  met === undefined ? '—' : met ? 'ok' : '**MISSED**',
]);

const markdown = [
  '### Latest run',
  '',
  `${environment()}. ${TOKENS.toLocaleString('en-US')} tokens per stream; ${rounds} rounds after ${plan.warmup} warm-up, the variants alternated within each round (${seconds.toFixed(0)} s${quick ? ', quick mode' : ''}).`,
  '',
  markdownTable(['variant', 'µs/chunk (median)', 'p25–p75', 'CPU µs/chunk', 'promises/chunk'], timeRows),
  '',
  markdownTable(['ratio (per round, then the median)', 'median', 'p25–p75', 'by CPU time', 'budget', 'status'], ratioRows),
  ...(layers === undefined ? [] : ['', layersMarkdown(layers)]),
  '',
  encodersMarkdown(encoding),
].join('\n');

console.log(`\n${markdown}\n`);
if (!quick) {
  writeDocsSection('operators', markdown);
  console.log('Wrote the operators section of docs/benchmarks.md');
}

// A missed budget is always reported. The full run fails on it; the quick run only when the
// CPU-time median (the measure that a busy CI machine disturbs least) is past the loose bound.
const failures: string[] = [];
for (const { ratio, s, byCpu, met } of verdicts) {
  const { budget } = ratio;
  if (budget === undefined || met === true) continue;
  const found = `${ratio.key} = ${x(s.median)} (by CPU time ${x(byCpu)})`;
  console.error(`BUDGET MISSED: ${found}, budget ${bound(budget)}`);
  if (!quick) failures.push(`${found}, budget ${bound(budget)}`);
  else if (!within(budget, byCpu, budget.quick)) failures.push(`${found}, quick-mode bound ${bound(budget, budget.quick)}`);
}
if (failures.length > 0) {
  console.error(`operators benchmark failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}

// --- the encoders: each protocol's chunk → frames, side by side --------------------------------


interface Encoding {
  rounds: number;
  /** Per encoder: CPU µs per chunk of each round, output bytes per chunk. */
  cpu: Map<string, number[]>;
  bytes: Map<string, number>;
  /** Per encoder: its CPU time over tokenrelay SSE's, in each round. */
  ratios: Map<string, number[]>;
}

/** The TokenChunks of the fixture, as `fromOpenAI` yields them: what every encoder is fed. */
async function fixtureChunks(): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  for await (const chunk of fromOpenAI(replay())) chunks.push(chunk);
  return chunks;
}

/** One stream through one encoder, as an adapter drives it: a fresh encoder, `open()`, then `chunk()` per chunk. */
function encodeStream(protocol: Protocol, chunks: readonly TokenChunk[], frames?: string[]): number {
  const encoder = protocol.encoder({ exposeErrors: false });
  let bytes = encoder.open().length;
  for (const chunk of chunks) {
    const frame = encoder.chunk(chunk);
    bytes += frame.length;
    frames?.push(frame);
  }
  return bytes;
}

/**
 * Per-chunk CPU of every encoder over the same chunks, alternated within each round like the
 * variants above; a ratio per round against tokenrelay SSE, then the median.
 */
async function measureEncoders(): Promise<Encoding> {
  const chunks = await fixtureChunks();
  const text = chunks.filter((chunk) => chunk.type === 'text' && chunk.token !== '').length;
  if (text !== TOKENS) throw new Error(`The benchmark variants do not do the same work: fromOpenAI gave ${text} text chunks, not ${TOKENS}`);
  const bytes = new Map<string, number>();
  for (const { key, protocol } of encoders) {
    // Same work: every text chunk gives a frame that carries its token, and the last chunk ends the stream.
    const frames: string[] = [];
    bytes.set(key, encodeStream(protocol, chunks, frames) / chunks.length);
    chunks.forEach((chunk, i) => {
      const frame = frames[i] as string;
      if (chunk.token !== '' && !frame.includes(JSON.stringify(chunk.token).slice(1, -1))) {
        throw new Error(`The benchmark variants do not do the same work: the ${key} encoder lost token ${i}`);
      }
    });
    if (frames.at(-1) === '') throw new Error(`The benchmark variants do not do the same work: the ${key} encoder did not end the stream`);
  }
  const run = (protocol: Protocol) => async () => {
    for (let pass = 0; pass < ENCODER_PASSES; pass++) encodeStream(protocol, chunks);
  };
  const rounds = quick ? 3 : 30;
  for (let round = 0; round < 2; round++) for (const { protocol } of encoders) await run(protocol)();
  const cpu = new Map<string, number[]>(encoders.map(({ key }) => [key, []]));
  const ratios = new Map<string, number[]>(encoders.map(({ key }) => [key, []]));
  const perChunk = ENCODER_PASSES * chunks.length;
  for (let round = 0; round < rounds; round++) {
    const times = new Map<string, number>();
    for (let i = 0; i < encoders.length; i++) {
      const { key, protocol } = encoders[(round + i) % encoders.length] as Encoder;
      const { cpuUs } = await sample(run(protocol));
      times.set(key, cpuUs);
      cpu.get(key)?.push(cpuUs / perChunk);
    }
    const base = times.get('tokenrelay') as number;
    for (const { key } of encoders) ratios.get(key)?.push((times.get(key) as number) / base);
  }
  return { rounds, cpu, bytes, ratios };
}

function encodersMarkdown({ rounds, cpu, bytes, ratios }: Encoding): string {
  const rows = encoders.map(({ key, label }) => {
    const c = summarize(cpu.get(key) ?? []);
    const r = summarize(ratios.get(key) ?? []);
    return [label, c.median.toFixed(3), `${c.p25.toFixed(3)}–${c.p75.toFixed(3)}`, (bytes.get(key) ?? NaN).toFixed(0), x(r.median), spread(r, x)];
  });
  return [
    `Encoders alone (chunk → frames, no I/O): the ${TOKENS.toLocaleString('en-US')} text chunks and the finish chunk of (b), ` +
      `${ENCODER_PASSES} streams per sample, a fresh encoder per stream; ${rounds} rounds, the encoders alternated within each round.`,
    '',
    markdownTable(['protocol', 'CPU µs/chunk (median)', 'p25–p75', 'bytes/chunk', 'CPU / tokenrelay SSE (per round, median)', 'p25–p75'], rows),
  ].join('\n');
}

// --- diagnostics: where (b)'s promises come from ------------------------------------------

interface Layers {
  rows: { label: string; promises: number }[];
  /** SSE frames per body chunk, i.e. per `reader.read()` of the client: > 1 when frames were joined. */
  framesPerRead: { b: number; b0: number };
}

/**
 * (b) read after each layer of its pipeline, with the same options, so the difference between
 * two rows is what that layer adds per chunk; and how many frames each body chunk carries.
 */
async function countLayers(): Promise<Layers> {
  const options = { timeout: { idleMs: 30_000, totalMs: 600_000 }, monitor: { onFinish() {} } };
  const relayed = async () => {
    const request = new AbortController();
    return fromOpenAI(await sdkStream(request.signal), { signal: request.signal });
  };
  const count = async (run: () => Promise<unknown>) => (await countPromises(run)) / TOKENS;
  const rows = [
    { label: 'the OpenAI SDK chunks alone (the floor)', promises: promises.get('sdk') ?? NaN },
    {
      label: '+ `fromOpenAI`',
      promises: await count(async () => {
        for await (const _chunk of await relayed());
      }),
    },
    {
      label: '+ `withTimeout`, `withBackpressure`, `withAbort`, `monitored`',
      promises: await count(async () => {
        for await (const _chunk of openChunkStream(await relayed(), planChunkStream(options)).chunks);
      }),
    },
    {
      label: '+ `toSSE`',
      promises: await count(async () => {
        const stream = openResponseStream(await relayed(), planResponse(options));
        await stream.begin();
        while ((await stream.frames.next()).done !== true);
      }),
    },
    { label: '+ the `toResponse` body, read to the end: (b)', promises: promises.get('b') ?? NaN },
  ];
  // `slow`: the client takes a turn of the event loop between reads (as a socket write does),
  // so the replayed chunks are read ahead meanwhile.
  const framesPerRead = async (open: StreamSource, slow: boolean) => {
    const reader = ((await tokenrelay(open)).body as ReadableStream<Uint8Array>).getReader();
    let reads = 0;
    while (!(await reader.read()).done) {
      reads++;
      if (slow) await new Promise((resolve) => setImmediate(resolve));
    }
    return (TOKENS + 1) / reads;
  };
  return { rows, framesPerRead: { b: await framesPerRead(sdkStream, false), b0: await framesPerRead(replayedStream, true) } };
}

function layersMarkdown({ rows, framesPerRead }: Layers): string {
  const table = markdownTable(
    ['(b), layer by layer', 'promises/chunk', 'added by the layer'],
    rows.map((row, i) => {
      const before = rows[i - 1]?.promises;
      return [row.label, row.promises.toFixed(1), before === undefined ? '—' : `+${(row.promises - before).toFixed(1)}`];
    }),
  );
  const frames = (value: number) => value.toFixed(1);
  return [
    table,
    '',
    `SSE frames per body chunk: ${frames(framesPerRead.b)} in (b), where each frame waits on a provider read, and ` +
      `${frames(framesPerRead.b0)} in (b0) read by a client that takes a turn of the event loop between reads: ` +
      'the frames read ahead meanwhile are joined into one chunk.',
  ].join('\n');
}

// --- helpers -------------------------------------------------------------------------------

/**
 * Proves the variants do the same work before timing them: every delta reaches each body, the
 * tokenrelay streams complete with all their chunks, and (a) and (b) write the same frames.
 */
async function checkSameWork(): Promise<void> {
  const fail = (what: string): never => {
    throw new Error(`The benchmark variants do not do the same work: ${what}`);
  };
  const payloads = (body: string) =>
    [...body.matchAll(/^data: (\{.*)$/gm)].map((match) => JSON.parse(match[1] as string) as Record<string, unknown>);
  const expected = tokens.join('');
  const checkSSE = (body: string, name: string) => {
    if (body.split('\nevent: token\n').length - 1 !== TOKENS) fail(`${name}: not ${TOKENS} token frames`);
    if (body.split('\nevent: done\n').length - 1 !== 1) fail(`${name}: not one done frame`);
    if (payloads(body).map((data) => data['token'] ?? '').join('') !== expected) fail(`${name}: the text differs`);
    return body;
  };
  const relayed = async (name: string, open: StreamSource | undefined) => {
    lastMetrics = undefined;
    const body = checkSSE(await readBody(await tokenrelay(open), true), name);
    const metrics = lastMetrics as StreamMetrics | undefined;
    if (metrics?.outcome !== 'completed' || metrics.chunks !== TOKENS + 1) fail(`${name}: metrics ${JSON.stringify(metrics)}`);
    return body;
  };
  const hand = checkSSE(await readBody(await handRolled(), true), '(a)');
  checkSSE(await readBody(await handRolled(replayedStream), true), '(a0)');
  const relay = await relayed('(b)', undefined);
  await relayed('(b0)', replayedStream);
  const bytes = (body: string) => Buffer.byteLength(body);
  if (Math.abs(bytes(hand) - bytes(relay)) > bytes(relay) * 0.02) fail(`(a) and (b) write ${bytes(hand)} and ${bytes(relay)} bytes`);
  const ui = payloads(await readBody(await aiSdk(), true));
  if (ui.filter((data) => data['type'] === 'text-delta').map((data) => data['delta']).join('') !== expected) fail('(c): the text differs');
  if ((await sdkOnly()) !== TOKENS) fail('floor: not every delta was read');
}

/** Deterministic, realistic deltas: word pieces with spaces, punctuation, line breaks, quotes and some non-ASCII. */
function fixtureTokens(count: number, seed: number): string[] {
  const words = [
    ' the', ' of', ' and', ' to', ' a', ' in', ' is', ' that', ' for', ' it', ' as', ' was', ' with', ' be',
    ' stream', ' token', 'ization', ' model', ' server', ' client', ' request', ' response', ' back', 'pressure',
    ' latency', ' provider', ' answer', ' question', ' quickly', ' however', ' because', ' every', ' though',
    ' café', ' naïve', ' 東京', ' 🙂', ' "quoted"', ' `code`', ' {json}', ' 42', ' 3.14', ' e.g.', ' —',
  ];
  const punctuation = ['.', ',', ';', ':', '!', '?', '\n\n', '\n- ', ' (', ')'];
  const random = createRandom(seed);
  const out: string[] = ['Once'];
  while (out.length < count) {
    out.push(random() < 0.12 ? (punctuation[Math.floor(random() * punctuation.length)] as string) : (words[Math.floor(random() * words.length)] as string));
  }
  return out;
}
