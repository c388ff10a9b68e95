import { readFileSync } from 'node:fs';
import { APICallError, jsonSchema, stepCountIs, streamText, tool, type LanguageModelUsage } from 'ai';
import { MockLanguageModelV4, convertArrayToReadableStream } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { isProviderError, isStreamAbortedError, type ProviderError, type StreamAbortedError, type TokenChunk } from 'tokenrelay';
import { fromAISDK, type AISDKStreamPart } from 'tokenrelay/ai-sdk';

type ModelPart = Record<string, unknown> & { type: string };

const MODEL = 'mock-model-1';

const modelUsage = (input: number, output: number, cacheRead?: number, reasoning?: number) => ({
  inputTokens: { total: input, noCache: input - (cacheRead ?? 0), cacheRead, cacheWrite: undefined },
  outputTokens: { total: output, text: output - (reasoning ?? 0), reasoning },
});

const finishPart = (unified = 'stop', usage: unknown = modelUsage(10, 3)) => ({
  type: 'finish',
  usage,
  finishReason: { unified, raw: unified },
});

const meta = { type: 'response-metadata', id: 'resp-1', modelId: MODEL, timestamp: new Date(0) };
const textParts = (...deltas: string[]) => [
  { type: 'text-start', id: 't1' },
  ...deltas.map((delta) => ({ type: 'text-delta', id: 't1', delta })),
  { type: 'text-end', id: 't1' },
];

/** A real AI SDK model whose provider stream is the given parts, one list per step. */
function mockModel(...steps: ModelPart[][]): MockLanguageModelV4 {
  let step = 0;
  return new MockLanguageModelV4({
    doStream: async () => ({
      stream: convertArrayToReadableStream([{ type: 'stream-start', warnings: [] }, ...(steps[step++] ?? [])] as never[]),
    }),
  });
}

function run(model: MockLanguageModelV4, extra: Record<string, unknown> = {}) {
  return streamText({ model, prompt: 'Hi', maxRetries: 0, onError: () => {}, ...extra });
}

async function collect(stream: AsyncIterable<TokenChunk>): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  expectInvariants(chunks);
  return chunks;
}

async function collectUntilError(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    expect(chunks.every((chunk) => chunk.finishReason === undefined)).toBe(true);
    return { chunks, error };
  }
  throw new Error(`Expected the stream to fail, it ended with ${chunks.length} chunks`);
}

/** The TokenChunk invariants: gap-free indexes, string tokens, exactly one terminal chunk, the last. */
function expectInvariants(chunks: TokenChunk[]): void {
  expect(chunks.map((chunk) => chunk.index)).toStrictEqual(chunks.map((_, index) => index));
  for (const chunk of chunks) expect(typeof chunk.token).toBe('string');
  expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toHaveLength(1);
  expect(chunks.at(-1)?.finishReason).toBeDefined();
}

function strip(chunks: TokenChunk[]) {
  return chunks.map(({ timestamp, index, provider, ...rest }) => {
    expect(typeof timestamp).toBe('number');
    expect(provider).toBe('ai-sdk');
    return rest;
  });
}

function textOf(chunks: TokenChunk[], type: TokenChunk['type'] = 'text'): string {
  return chunks.filter((chunk) => chunk.type === type).map((chunk) => chunk.token).join('');
}

/** Each call's concatenated argument fragments, by id. */
function callsOf(chunks: TokenChunk[]): Map<string, { name: string; index: number; args: string; providerExecuted: boolean }> {
  const calls = new Map<string, { name: string; index: number; args: string; providerExecuted: boolean }>();
  for (const chunk of chunks) {
    if (chunk.type !== 'tool-call' || chunk.toolCall === undefined) continue;
    const { id, name, index, providerExecuted } = chunk.toolCall;
    const call = calls.get(id) ?? { name, index, args: '', providerExecuted: providerExecuted === true };
    call.args += chunk.token;
    calls.set(id, call);
  }
  return calls;
}

/** What tokenrelay should report for the AI SDK's own usage numbers. */
function expectedUsage(usage: LanguageModelUsage) {
  const result: Record<string, number> = { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 };
  if (usage.inputTokenDetails.cacheReadTokens !== undefined) result['cachedInputTokens'] = usage.inputTokenDetails.cacheReadTokens;
  if (usage.outputTokenDetails.reasoningTokens !== undefined) result['reasoningTokens'] = usage.outputTokenDetails.reasoningTokens;
  return result;
}

const weather = tool({ inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) });

describe('fromAISDK with streamText and the mock model', () => {
  it('relays text and reasoning, then one final chunk with the finish reason, usage and model', async () => {
    const model = mockModel([
      meta,
      { type: 'reasoning-start', id: 'r1' },
      { type: 'reasoning-delta', id: 'r1', delta: 'Think' },
      { type: 'reasoning-delta', id: 'r1', delta: 'ing.' },
      { type: 'reasoning-end', id: 'r1' },
      ...textParts('Hel', 'lo', ' 🙂 wörld'),
      finishPart('stop', modelUsage(2048, 300, 1024, 256)),
    ]);
    const result = run(model);
    const chunks = await collect(fromAISDK(result));
    expect(strip(chunks)).toStrictEqual([
      { token: 'Think', type: 'reasoning' },
      { token: 'ing.', type: 'reasoning' },
      { token: 'Hel', type: 'text' },
      { token: 'lo', type: 'text' },
      { token: ' 🙂 wörld', type: 'text' },
      {
        token: '',
        type: 'text',
        finishReason: 'stop',
        usage: { inputTokens: 2048, outputTokens: 300, cachedInputTokens: 1024, reasoningTokens: 256 },
        model: MODEL,
      },
    ]);
    // Differential: the AI SDK's own accumulation of the same stream.
    expect(textOf(chunks)).toBe(await result.text);
    expect(textOf(chunks, 'reasoning')).toBe(await result.reasoningText);
    expect(chunks.at(-1)?.usage).toStrictEqual(expectedUsage(await result.usage));
    expect(chunks.at(-1)?.finishReason).toBe(await result.finishReason);
  });

  it('relays streamed tool input as it comes and a call that arrives whole once, never twice', async () => {
    const model = mockModel([
      meta,
      { type: 'tool-input-start', id: 'call_1', toolName: 'weather' },
      { type: 'tool-input-delta', id: 'call_1', delta: '{"city"' },
      { type: 'tool-input-delta', id: 'call_1', delta: ':"Paris"}' },
      { type: 'tool-input-end', id: 'call_1' },
      { type: 'tool-call', toolCallId: 'call_1', toolName: 'weather', input: '{"city":"Paris"}' },
      { type: 'tool-call', toolCallId: 'call_2', toolName: 'weather', input: '{"city":"Rome"}' },
      finishPart('tool-calls', modelUsage(20, 12)),
    ]);
    const result = run(model, { tools: { weather } });
    const chunks = await collect(fromAISDK(result));
    const paris = { id: 'call_1', name: 'weather', index: 0 };
    const rome = { id: 'call_2', name: 'weather', index: 1 };
    expect(strip(chunks)).toStrictEqual([
      { token: '{"city"', type: 'tool-call', toolCall: paris },
      { token: ':"Paris"}', type: 'tool-call', toolCall: paris },
      { token: '{"city":"Rome"}', type: 'tool-call', toolCall: rome },
      { token: '', type: 'text', finishReason: 'tool-calls', usage: { inputTokens: 20, outputTokens: 12 }, model: MODEL },
    ]);
    const sdkCalls = await result.toolCalls;
    const calls = callsOf(chunks);
    expect([...calls.keys()]).toStrictEqual(sdkCalls.map((call) => call.toolCallId));
    for (const call of sdkCalls) {
      expect(calls.get(call.toolCallId)?.name).toBe(call.toolName);
      expect(JSON.parse(calls.get(call.toolCallId)?.args ?? '')).toStrictEqual(call.input);
    }
    expect(chunks.at(-1)?.finishReason).toBe(await result.finishReason);
  });

  it('relays text-encoded tool input only whole, so tool-call tokens stay JSON', async () => {
    const model = mockModel([
      { type: 'tool-input-start', id: 'call_1', toolName: 'shell', inputEncoding: 'text' },
      { type: 'tool-input-delta', id: 'call_1', delta: 'ls -la' },
      { type: 'tool-input-end', id: 'call_1' },
      { type: 'tool-call', toolCallId: 'call_1', toolName: 'shell', input: '{"command":"ls -la"}' },
      finishPart('tool-calls'),
    ]);
    const chunks = await collect(fromAISDK(run(model, { tools: { shell: tool({ inputSchema: jsonSchema({ type: 'object' }) }) } })));
    expect(chunks.filter((chunk) => chunk.type === 'tool-call').map((chunk) => chunk.token)).toStrictEqual(['{"command":"ls -la"}']);
  });

  it('marks calls the provider executed itself and does not relay tool results', async () => {
    const model = mockModel([
      { type: 'tool-input-start', id: 'ws_1', toolName: 'web_search', providerExecuted: true },
      { type: 'tool-input-delta', id: 'ws_1', delta: '{"query":"tokenrelay"}' },
      { type: 'tool-input-end', id: 'ws_1' },
      { type: 'tool-call', toolCallId: 'ws_1', toolName: 'web_search', input: '{"query":"tokenrelay"}', providerExecuted: true },
      { type: 'tool-result', toolCallId: 'ws_1', toolName: 'web_search', result: [{ url: 'https://example.com' }] },
      ...textParts('Found it.'),
      finishPart('stop'),
    ]);
    const providerTool = tool({ type: 'provider', id: 'mock.web_search', args: {}, inputSchema: jsonSchema({ type: 'object' }) } as never);
    const chunks = await collect(fromAISDK(run(model, { tools: { web_search: providerTool } })));
    expect(strip(chunks).slice(0, 2)).toStrictEqual([
      { token: '{"query":"tokenrelay"}', type: 'tool-call', toolCall: { id: 'ws_1', name: 'web_search', index: 0, providerExecuted: true } },
      { token: 'Found it.', type: 'text' },
    ]);
    expect(chunks).toHaveLength(3);
  });

  it('relays every step of a multi-step run: the calls the AI SDK executed, then the answer, with the total usage', async () => {
    const model = mockModel(
      [
        meta,
        { type: 'tool-call', toolCallId: 'call_1', toolName: 'add', input: '{"a":1,"b":2}' },
        { type: 'tool-call', toolCallId: 'call_2', toolName: 'fail', input: '{}' },
        finishPart('tool-calls', modelUsage(10, 5)),
      ],
      [meta, ...textParts('It is ', '3.'), finishPart('stop', modelUsage(30, 4))],
    );
    const result = run(model, {
      stopWhen: stepCountIs(3),
      tools: {
        add: tool({ inputSchema: jsonSchema<{ a: number; b: number }>({ type: 'object' }), execute: async ({ a, b }) => a + b }),
        fail: tool({
          inputSchema: jsonSchema<Record<string, never>>({ type: 'object' }),
          execute: async (): Promise<string> => {
            throw new Error('tool broke');
          },
        }),
      },
    });
    const chunks = await collect(fromAISDK(result));
    expect(strip(chunks)).toStrictEqual([
      { token: '{"a":1,"b":2}', type: 'tool-call', toolCall: { id: 'call_1', name: 'add', index: 0 } },
      { token: '{}', type: 'tool-call', toolCall: { id: 'call_2', name: 'fail', index: 1 } },
      { token: 'It is ', type: 'text', model: MODEL },
      { token: '3.', type: 'text', model: MODEL },
      { token: '', type: 'text', finishReason: 'stop', usage: { inputTokens: 40, outputTokens: 9 }, model: MODEL },
    ]);
    const steps = await result.steps;
    expect(textOf(chunks)).toBe(steps.map((step) => step.text).join(''));
    expect([...callsOf(chunks).keys()]).toStrictEqual(steps.flatMap((step) => step.toolCalls.map((call) => call.toolCallId)));
    expect(chunks.at(-1)?.usage).toStrictEqual(expectedUsage(await result.totalUsage));
  });

  it('relays url and document sources and the citations of a text block, each once', async () => {
    const model = mockModel([
      { type: 'source', sourceType: 'url', id: 's1', url: 'https://example.com/a', title: 'A' },
      { type: 'source', sourceType: 'document', id: 's2', mediaType: 'application/pdf', title: 'Report.pdf' },
      { type: 'source', sourceType: 'document', id: 's3', mediaType: 'text/plain', title: '', filename: 'notes.txt' },
      { type: 'text-start', id: 't1' },
      { type: 'text-delta', id: 't1', delta: 'Cited.' },
      {
        type: 'text-end',
        id: 't1',
        citations: [
          { source: { type: 'source', sourceType: 'url', id: 's1', url: 'https://example.com/a', title: 'A' }, citedText: 'the passage' },
          { source: { type: 'source', sourceType: 'url', id: 's1', url: 'https://example.com/a', title: 'A' } },
        ],
      },
      finishPart('stop'),
    ]);
    const chunks = await collect(fromAISDK(run(model)));
    expect(chunks.filter((chunk) => chunk.type === 'source').map((chunk) => [chunk.token, chunk.source])).toStrictEqual([
      ['', { url: 'https://example.com/a', title: 'A' }],
      ['', { title: 'Report.pdf' }],
      ['', { title: 'notes.txt' }],
      ['', { url: 'https://example.com/a', title: 'A', citedText: 'the passage' }],
    ]);
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'content-filter'],
    ['error', 'error'],
    ['other', 'other'],
    ['interrupted', 'other'],
  ])('maps the finish reason %s to %s', async (unified, expectedReason) => {
    const result = run(mockModel([...textParts('x'), finishPart(unified)]));
    const chunks = await collect(fromAISDK(result));
    expect(chunks.at(-1)).toMatchObject({ token: '', finishReason: expectedReason, index: 1 });
  });

  it('leaves the usage out when the provider reported no token counts', async () => {
    const usage = { inputTokens: { total: undefined }, outputTokens: { total: undefined } };
    const chunks = await collect(fromAISDK(run(mockModel([...textParts('x'), finishPart('stop', usage)]))));
    expect(chunks.at(-1)).not.toHaveProperty('usage');
  });

  it('reads the fullStream itself, as well as the result', async () => {
    const result = run(mockModel([...textParts('a', 'b'), finishPart('stop')]));
    const chunks = await collect(fromAISDK(result.fullStream, { provider: 'openai' }));
    expect(chunks.map((chunk) => [chunk.token, chunk.provider])).toStrictEqual([
      ['a', 'openai'],
      ['b', 'openai'],
      ['', 'openai'],
    ]);
  });
});

describe('fromAISDK failures', () => {
  it('throws a ProviderError with status, retryable and retryAfterMs for an APICallError', async () => {
    const apiError = new APICallError({
      message: 'Rate limit exceeded for key sk-abcdefghijklmnop',
      url: 'https://api.example.com/v1/chat',
      requestBodyValues: {},
      statusCode: 429,
      responseHeaders: { 'retry-after': '2' },
      isRetryable: true,
    });
    const model = new MockLanguageModelV4({
      doStream: async () => {
        throw apiError;
      },
    });
    const { chunks, error } = await collectUntilError(fromAISDK(run(model)));
    expect(chunks).toStrictEqual([]);
    expect(isProviderError(error)).toBe(true);
    const providerError = error as ProviderError;
    expect(providerError).toMatchObject({ status: 429, retryable: true, retryAfterMs: 2000, provider: 'ai-sdk', cause: apiError });
    expect(providerError.message).not.toContain('sk-abcdefghijklmnop');
  });

  it('relays what came before an in-band error part, then throws it as a ProviderError', async () => {
    const model = mockModel([...textParts('Partial'), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]);
    const { chunks, error } = await collectUntilError(fromAISDK(run(model)));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['Partial']);
    expect(isProviderError(error)).toBe(true);
    expect(error).toMatchObject({ retryable: true, providerType: 'overloaded_error' });
    expect((error as ProviderError).message).toContain('Overloaded');
  });

  it('throws a non-retryable ProviderError for a provider error that says so', async () => {
    const model = mockModel([{ type: 'error', error: { message: 'Invalid request', type: 'invalid_request_error', isRetryable: false } }]);
    const { error } = await collectUntilError(fromAISDK(run(model)));
    expect(error).toMatchObject({ name: 'ProviderError', retryable: false, providerType: 'invalid_request_error' });
  });

  it('throws a retryable ProviderError when the provider stream breaks', async () => {
    const broken = new TypeError('terminated');
    let pulls = 0;
    const model = new MockLanguageModelV4({
      doStream: async () => ({
        stream: new ReadableStream({
          pull(controller) {
            if (pulls++ > 0) return controller.error(broken);
            controller.enqueue({ type: 'text-start', id: 't1' });
            controller.enqueue({ type: 'text-delta', id: 't1', delta: 'A' });
          },
        }),
      }),
    });
    const { chunks, error } = await collectUntilError(fromAISDK(run(model)));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['A']);
    expect(error).toMatchObject({ name: 'ProviderError', retryable: true, cause: broken });
  });

  it('throws StreamAbortedError with the signal reason when the abortSignal fires mid-stream', async () => {
    const controller = new AbortController();
    const reason = new Error('client went away');
    let cancelled = false;
    const model = new MockLanguageModelV4({
      doStream: async ({ abortSignal }) => ({
        stream: new ReadableStream({
          start(stream) {
            stream.enqueue({ type: 'stream-start', warnings: [] });
            stream.enqueue({ type: 'text-start', id: 't1' });
            stream.enqueue({ type: 'text-delta', id: 't1', delta: 'Hello' });
            abortSignal?.addEventListener('abort', () => {
              cancelled = true;
              stream.error(abortSignal.reason);
            });
          },
        }),
      }),
    });
    const chunks: TokenChunk[] = [];
    let error: unknown;
    try {
      for await (const chunk of fromAISDK(run(model, { abortSignal: controller.signal }), { signal: controller.signal })) {
        chunks.push(chunk);
        controller.abort(reason);
      }
    } catch (caught) {
      error = caught;
    }
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['Hello']);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as StreamAbortedError).cause).toBe(reason);
    expect(cancelled).toBe(true);
  });

  it('throws StreamAbortedError for an abort part even without the signal option', async () => {
    const parts = [{ type: 'start' }, { type: 'text-delta', id: 't1', text: 'Hi' }, { type: 'abort', reason: 'stopped' }] as AISDKStreamPart[];
    const { chunks, error } = await collectUntilError(fromAISDK(source(parts)));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['Hi']);
    expect(error).toMatchObject({ name: 'StreamAbortedError', cause: 'stopped' });
  });

  it('throws a retryable ProviderError when the stream ends without a finish part', async () => {
    const { chunks, error } = await collectUntilError(fromAISDK(source([{ type: 'text-delta', id: 't1', text: 'Hi' }] as AISDKStreamPart[])));
    expect(chunks).toHaveLength(1);
    expect(error).toMatchObject({ name: 'ProviderError', retryable: true });
  });

  it('reports an early end as an abort once the signal fired', async () => {
    const controller = new AbortController();
    controller.abort('gone');
    const { error } = await collectUntilError(fromAISDK(source([{ type: 'text-delta', id: 't1', text: 'Hi' }] as AISDKStreamPart[]), { signal: controller.signal }));
    expect(error).toMatchObject({ name: 'StreamAbortedError', cause: 'gone' });
  });

  it('stops reading at the finish part and closes the source when the consumer breaks', async () => {
    const closed: string[] = [];
    const parts = [{ type: 'text-delta', id: 't1', text: 'a' }, { type: 'finish', finishReason: 'stop', totalUsage: {} }, { type: 'text-delta', id: 't1', text: 'late' }];
    const chunks = await collect(fromAISDK(source(parts as AISDKStreamPart[], closed)));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', '']);
    expect(closed).toStrictEqual(['closed']);

    const early: string[] = [];
    for await (const chunk of fromAISDK(source(parts as AISDKStreamPart[], early))) if (chunk.token === 'a') break;
    expect(early).toStrictEqual(['closed']);
  });
});

describe('fromAISDK arguments', () => {
  it.each([
    [null, /Expected `source` to be a streamText result or its fullStream, got null/],
    ['text', /got "text"/],
    [Promise.resolve({}), /got a Promise/],
    [{ text: 'no stream' }, /\(an async iterable\), got an object/],
    [{ fullStream: 42 }, /\(an async iterable\), got an object/],
  ])('rejects %o as the source', (value, message) => {
    expect(() => fromAISDK(value as never)).toThrow(TypeError);
    expect(() => fromAISDK(value as never)).toThrow(message);
  });

  it('rejects unknown options and bad option values', () => {
    const parts = source([]);
    expect(() => fromAISDK(parts, { signl: new AbortController().signal } as never)).toThrow('Unknown option `signl` in `options`; did you mean `signal`?');
    expect(() => fromAISDK(parts, { signal: 'now' } as never)).toThrow('Expected `options.signal` to be an AbortSignal, got "now"');
    expect(() => fromAISDK(parts, { provider: '' })).toThrow('Expected `options.provider` to be a non-empty string, got ""');
  });

  it('imports the ai package only as types, so the subpath loads without it', () => {
    for (const file of ['ai-sdk.ts', 'ai-sdk-parts.ts', 'source-errors.ts', 'openai-errors.ts', 'retry-after.ts']) {
      const text = readFileSync(new URL(`../../src/providers/${file}`, import.meta.url), 'utf8');
      for (const line of text.split('\n').filter((candidate) => /^import\b.*from '(ai|@ai-sdk\/[^']+|openai[^']*)'/.test(candidate))) {
        expect(line).toMatch(/^import type /);
      }
    }
  });
});

/** A hand-written `fullStream`, for shapes `streamText` does not produce; records when it is closed. */
async function* source(parts: AISDKStreamPart[], closed: string[] = []): AsyncGenerator<AISDKStreamPart> {
  try {
    for (const part of parts) yield part;
  } finally {
    closed.push('closed');
  }
}
