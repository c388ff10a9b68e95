import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { isProviderError, isStreamAbortedError, type ProviderError, type TokenChunk } from 'tokenrelay';
import { fromOpenAI, streamOpenAI } from 'tokenrelay/openai';
import { openaiChatWire, openaiResponsesWire } from '../../src/testing/openai-wire.js';
import type { MockRequest, MockScript, WireResponse } from '../../src/testing/script.js';
import { structuralFrame } from '../../src/testing/wire-format.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

const API_KEY = 'sk-test-SECRET';
const MODEL = 'gpt-4o-mini';
const messages = [{ role: 'user' as const, content: 'Hi' }];

type BodyEnd = 'completed' | 'reset' | 'cancelled' | 'aborted';

interface MockOpenAI {
  client: OpenAI;
  requests: MockRequest[];
  /** How each response body ended, in order. */
  ends: BodyEnd[];
}

interface MockOptions {
  split?: { seed: number };
  baseURL?: string;
  maxRetries?: number;
}

/** A real OpenAI client whose HTTP layer is the wire emulator. */
function mockOpenAI(answer: (request: MockRequest) => WireResponse, options: MockOptions = {}): MockOpenAI {
  const requests: MockRequest[] = [];
  const ends: BodyEnd[] = [];
  const client = new OpenAI({
    apiKey: API_KEY,
    baseURL: options.baseURL ?? 'https://api.openai.com/v1',
    maxRetries: options.maxRetries ?? 0,
    fetch: async (url, init) => {
      const request = toMockRequest(String(url), init);
      requests.push(request);
      return wireToResponse(answer(request), {
        signal: init?.signal ?? undefined,
        split: options.split,
        onEnd: (how) => ends.push(how),
      });
    },
  });
  return { client, requests, ends };
}

function toMockRequest(url: string, init: RequestInit | undefined): MockRequest {
  const path = new URL(url).pathname;
  const headers: Record<string, string> = {};
  new Headers(init?.headers).forEach((value, name) => (headers[name] = value));
  const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
  return { api: path.endsWith('/responses') ? 'openai-responses' : 'openai-chat', path, headers, body };
}

const chat = (script: MockScript) => (request: MockRequest) => openaiChatWire(script, request);
const responses = (script: MockScript) => (request: MockRequest) => openaiResponsesWire(script, request);

/** A hand-written stream, for events the script cannot express (compatible servers, failures). */
function customWire(events: unknown[], options: { named?: boolean; end?: WireResponse['end'] } = {}): () => WireResponse {
  const frames = events.map((event) =>
    structuralFrame(event, options.named === true && typeof event === 'object' ? String((event as { type: string }).type) : undefined),
  );
  return () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, frames, end: options.end ?? 'close' });
}

function chatChunk(delta: Record<string, unknown>, finishReason: string | null = null, index = 0, model = MODEL) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices: [{ index, delta, logprobs: null, finish_reason: finishReason }],
  };
}

async function collect(stream: AsyncIterable<TokenChunk>): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Chunks and the error that ended the stream, if any. */
async function collectUntilError(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  throw new Error(`Expected the stream to fail, it ended with ${chunks.length} chunks`);
}

/** Timestamps are checked for shape and order, then left out of the exact comparison. */
function withoutTimestamps(chunks: TokenChunk[]): Array<Omit<TokenChunk, 'timestamp'>> {
  let previous = -Infinity;
  return chunks.map(({ timestamp, ...rest }) => {
    expect(typeof timestamp).toBe('number');
    expect(timestamp).toBeGreaterThanOrEqual(previous);
    previous = timestamp;
    return rest;
  });
}

/** Builds the expected chunks of one stream: indexes count up, model and provider are stamped. */
function expected(model = MODEL, provider = 'openai') {
  let index = 0;
  const meta = { model, provider };
  return {
    text: (token: string) => ({ token, index: index++, type: 'text' as const, ...meta }),
    reasoning: (token: string) => ({ token, index: index++, type: 'reasoning' as const, ...meta }),
    toolCall: (token: string, toolCall: { id: string; name: string; index: number }) => ({
      token,
      index: index++,
      type: 'tool-call' as const,
      toolCall,
      ...meta,
    }),
    finish: (finishReason: string, usage?: Record<string, number>) => ({
      token: '',
      index: index++,
      type: 'text' as const,
      finishReason,
      ...(usage === undefined ? {} : { usage }),
      ...meta,
    }),
  };
}

function expectProviderError(error: unknown): ProviderError {
  expect(isProviderError(error)).toBe(true);
  const providerError = error as ProviderError;
  expect(providerError.message).not.toContain(API_KEY);
  expect(String(providerError)).not.toContain(API_KEY);
  expect(JSON.stringify(providerError)).not.toContain(API_KEY);
  return providerError;
}

const defaultUsage = (outputTokens: number) => ({ inputTokens: 12, outputTokens, cachedInputTokens: 0, reasoningTokens: 0 });

describe('streamOpenAI with Chat Completions', () => {
  it('relays text deltas and ends with the finish reason and the usage', async () => {
    const { client, requests, ends } = mockOpenAI(chat({ tokens: ['Hel', 'lo', '!'] }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('Hel'), e.text('lo'), e.text('!'), e.finish('stop', defaultUsage(3))]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.path).toBe('/v1/chat/completions');
    expect(requests[0]?.body).toMatchObject({ model: MODEL, stream: true, stream_options: { include_usage: true } });
    // The SDK stops reading at `data: [DONE]` and cancels the rest of the body.
    expect(ends).toEqual(['cancelled']);
  });

  it.each([1, 2, 3, 7, 42])('keeps multibyte text intact when the bytes arrive in random pieces (seed %i)', async (seed) => {
    const tokens = ['こんにちは', '、世界', ' 🙂👍🏽', ' naïve café', ' 𝄞'];
    const { client } = mockOpenAI(chat({ tokens }), { split: { seed } });
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([...tokens.map((token) => e.text(token)), e.finish('stop', defaultUsage(5))]);
  });

  it('relays two parallel tool calls with their id, name and index', async () => {
    const toolCalls = [
      { name: 'get_weather', arguments: ['{"city"', ':"Paris"}'] },
      { id: 'call_custom', name: 'get_time', arguments: ['{"tz":', '"CET"}'] },
    ];
    const { client } = mockOpenAI(chat({ tokens: [], toolCalls }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    const e = expected();
    const weather = { id: 'call_1', name: 'get_weather', index: 0 };
    const time = { id: 'call_custom', name: 'get_time', index: 1 };
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.toolCall('{"city"', weather),
      e.toolCall(':"Paris"}', weather),
      e.toolCall('{"tz":', time),
      e.toolCall('"CET"}', time),
      e.finish('tool-calls', defaultUsage(4)),
    ]);
  });

  it('relays a refusal as text and finishes with content-filter', async () => {
    const { client } = mockOpenAI(chat({ tokens: [], refusal: ["I'm sorry,", ' I cannot help with that.'] }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.text("I'm sorry,"),
      e.text(' I cannot help with that.'),
      e.finish('content-filter', defaultUsage(2)),
    ]);
  });

  it('reports cached and reasoning tokens from the include_usage chunk', async () => {
    const usage = { inputTokens: 2048, outputTokens: 300, cachedInputTokens: 1024, reasoningTokens: 256 };
    const { client } = mockOpenAI(chat({ tokens: ['Done.'], usage }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'stop', usage });
    expect(chunks.at(-1)?.usage).toStrictEqual(usage);
  });

  it('leaves the usage out when the caller turned include_usage off', async () => {
    const { client, requests } = mockOpenAI(chat({ tokens: ['Hi'] }));
    const chunks = await collect(
      streamOpenAI(client, { model: MODEL, messages, stream_options: { include_usage: false } }),
    );
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('Hi'), e.finish('stop')]);
    expect(requests[0]?.body['stream_options']).toEqual({ include_usage: false });
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'content-filter'],
  ] as const)('maps the script finish reason %s to %s', async (scripted, finishReason) => {
    const { client } = mockOpenAI(chat({ tokens: ['x'], finishReason: scripted }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.at(-1)).toMatchObject({ finishReason, token: '', index: 1 });
  });

  it.each([
    ['function_call', 'tool-calls'],
    ['eos', 'other'],
    ['insufficient_system_resource', 'other'],
  ])('maps the wire finish_reason %s to %s', async (wireReason, finishReason) => {
    const { client } = mockOpenAI(customWire([chatChunk({ content: 'x' }), chatChunk({}, wireReason), '[DONE]']));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.at(-1)).toMatchObject({ finishReason, index: 1 });
  });

  it('relays reasoning_content and reasoning from an OpenAI-compatible server under its provider name', async () => {
    const model = 'qwen3:8b';
    const { client, requests } = mockOpenAI(
      customWire([
        chatChunk({ role: 'assistant', content: '' }, null, 0, model),
        chatChunk({ reasoning_content: 'Let me ' }, null, 0, model),
        chatChunk({ reasoning: 'think.', content: null }, null, 0, model),
        chatChunk({ reasoning_content: '' }, null, 0, model),
        chatChunk({ content: 'Hi!' }, null, 0, model),
        chatChunk({}, 'stop', 0, model),
        '[DONE]',
      ]),
      { baseURL: 'http://localhost:11434/v1' },
    );
    const chunks = await collect(streamOpenAI(client, { model, messages }, { provider: 'ollama' }));
    const e = expected(model, 'ollama');
    expect(withoutTimestamps(chunks)).toStrictEqual([e.reasoning('Let me '), e.reasoning('think.'), e.text('Hi!'), e.finish('stop')]);
    expect(requests[0]?.path).toBe('/v1/chat/completions');
  });

  it('relays only the first choice', async () => {
    const { client } = mockOpenAI(
      customWire([
        chatChunk({ content: 'A' }, null, 0),
        chatChunk({ content: 'B' }, null, 1),
        chatChunk({}, 'stop', 1),
        chatChunk({ content: 'C' }, null, 0),
        chatChunk({}, 'length', 0),
        '[DONE]',
      ]),
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages, n: 2 }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('A'), e.text('C'), e.finish('length')]);
  });

  it('throws a retryable error when the stream ends without a finish reason', async () => {
    const { client } = mockOpenAI(customWire([chatChunk({ content: 'Hel' }), '[DONE]']));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['Hel']);
    const providerError = expectProviderError(error);
    expect(providerError.message).toBe('The stream ended before the provider finished');
    expect(providerError.retryable).toBe(true);
    expect(providerError.status).toBeUndefined();
  });
});

describe('streamOpenAI with the Responses API', () => {
  it('relays output text and the usage of response.completed', async () => {
    const { client, requests, ends } = mockOpenAI(responses({ tokens: ['Hel', 'lo'] }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('Hel'), e.text('lo'), e.finish('stop', defaultUsage(2))]);
    expect(requests[0]?.path).toBe('/v1/responses');
    expect(requests[0]?.body).toStrictEqual({ model: MODEL, input: 'Hi', stream: true });
    expect(ends).toEqual(['completed']);
  });

  it.each([5, 11, 99])('keeps multibyte text intact when the bytes arrive in random pieces (seed %i)', async (seed) => {
    const tokens = ['日本語', 'の', '🧑‍💻 ', 'テキスト'];
    const { client } = mockOpenAI(responses({ reasoning: ['思考'], tokens }), { split: { seed } });
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.reasoning('思考'),
      ...tokens.map((token) => e.text(token)),
      e.finish('stop', defaultUsage(5)),
    ]);
  });

  it('relays reasoning summary deltas before the text, with cached and reasoning tokens', async () => {
    const usage = { inputTokens: 40, outputTokens: 90, cachedInputTokens: 32, reasoningTokens: 64 };
    const { client } = mockOpenAI(responses({ reasoning: ['**Plan**', ' greet'], tokens: ['Hello'], usage, model: 'o4-mini' }));
    const chunks = await collect(streamOpenAI(client, { model: 'o4-mini', input: 'Hi', reasoning: { summary: 'auto' } }));
    const e = expected('o4-mini');
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.reasoning('**Plan**'),
      e.reasoning(' greet'),
      e.text('Hello'),
      e.finish('stop', usage),
    ]);
  });

  it('relays function call arguments with call_id, name and 0-based call index', async () => {
    const toolCalls = [
      { id: 'call_weather', name: 'get_weather', arguments: ['{"city":', '"Oslo"}'] },
      { name: 'get_time', arguments: ['{}'] },
    ];
    const { client } = mockOpenAI(responses({ tokens: ['Checking.'], toolCalls }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Weather?' }));
    const e = expected();
    const weather = { id: 'call_weather', name: 'get_weather', index: 0 };
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.text('Checking.'),
      e.toolCall('{"city":', weather),
      e.toolCall('"Oslo"}', weather),
      e.toolCall('{}', { id: 'call_2', name: 'get_time', index: 1 }),
      e.finish('tool-calls', defaultUsage(4)),
    ]);
  });

  it('relays a refusal as text and finishes with content-filter', async () => {
    const { client } = mockOpenAI(responses({ tokens: [], refusal: ['No', ', sorry.'] }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('No'), e.text(', sorry.'), e.finish('content-filter', defaultUsage(2))]);
  });

  it.each([
    ['length', 'length'],
    ['content-filter', 'content-filter'],
  ] as const)('maps response.incomplete for %s to %s, with the usage', async (scripted, finishReason) => {
    const { client } = mockOpenAI(responses({ tokens: ['Par', 'tial'], finishReason: scripted }));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('Par'), e.text('tial'), e.finish(finishReason, defaultUsage(2))]);
  });

  it('maps an unknown incomplete reason to other and relays reasoning_text deltas', async () => {
    const response = { id: 'resp_1', object: 'response', model: 'gpt-oss-20b', output: [] };
    const { client } = mockOpenAI(
      customWire(
        [
          { type: 'response.created', sequence_number: 0, response: { ...response, status: 'in_progress' } },
          { type: 'response.reasoning_text.delta', sequence_number: 1, item_id: 'rs_1', output_index: 0, content_index: 0, delta: 'Hmm' },
          {
            type: 'response.incomplete',
            sequence_number: 2,
            response: { ...response, status: 'incomplete', incomplete_details: { reason: 'interrupted' }, usage: null },
          },
        ],
        { named: true },
      ),
    );
    const chunks = await collect(streamOpenAI(client, { model: 'gpt-oss-20b', input: 'Hi' }, { provider: 'vllm' }));
    const e = expected('gpt-oss-20b', 'vllm');
    expect(withoutTimestamps(chunks)).toStrictEqual([e.reasoning('Hmm'), e.finish('other')]);
  });

  it.each([
    ['server_error', true],
    ['rate_limit_exceeded', true],
    ['invalid_prompt', false],
  ])('throws a ProviderError on response.failed with code %s (retryable: %s)', async (code, retryable) => {
    const response = { id: 'resp_1', object: 'response', model: MODEL, output: [] };
    const { client, ends } = mockOpenAI(
      customWire(
        [
          { type: 'response.created', sequence_number: 0, response: { ...response, status: 'in_progress' } },
          { type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hi' },
          {
            type: 'response.failed',
            sequence_number: 2,
            response: { ...response, status: 'failed', error: { code, message: `Failed with ${code}.` } },
          },
        ],
        { named: true },
      ),
    );
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['Hi']);
    const providerError = expectProviderError(error);
    expect(providerError.message).toBe(`OpenAI response failed: Failed with ${code}.`);
    expect(providerError).toMatchObject({ retryable, providerType: code, status: undefined, provider: 'openai' });
    expect(ends).toEqual(['cancelled']);
  });

  it('throws a retryable ProviderError on an error event mid-stream', async () => {
    const { client, ends } = mockOpenAI(responses({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['a', 'b']);
    const providerError = expectProviderError(error);
    expect(providerError.message).toBe(
      'OpenAI stream failed: The server had an error while processing your request. Sorry about that!',
    );
    expect(providerError).toMatchObject({ retryable: true, providerType: 'server_error', status: undefined });
    expect(ends).toHaveLength(1);
  });

  it('marks an error event with a client-side code as not retryable', async () => {
    const fault = { kind: 'error-event', afterTokens: 0, type: 'invalid_prompt', message: 'Bad prompt.' } as const;
    const { client } = mockOpenAI(responses({ tokens: ['a'], fault }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(chunks).toEqual([]);
    expect(expectProviderError(error)).toMatchObject({ retryable: false, providerType: 'invalid_prompt', message: 'OpenAI stream failed: Bad prompt.' });
  });
});

describe('fromOpenAI', () => {
  it('relays a Chat Completions stream created by the caller', async () => {
    const { client } = mockOpenAI(chat({ tokens: ['A', 'B'] }));
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    const chunks = await collect(fromOpenAI(stream));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('A'), e.text('B'), e.finish('stop')]);
  });

  it('relays the ChatCompletionStream helper', async () => {
    const { client } = mockOpenAI(chat({ tokens: ['A'], toolCalls: [{ name: 'f', arguments: ['{}'] }] }));
    const stream = client.chat.completions.stream({ model: MODEL, messages, stream_options: { include_usage: true } });
    const chunks = await collect(fromOpenAI(stream));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.text('A'),
      e.toolCall('{}', { id: 'call_1', name: 'f', index: 0 }),
      e.finish('tool-calls', defaultUsage(2)),
    ]);
  });

  it('relays the ResponseStream helper', async () => {
    const { client } = mockOpenAI(responses({ reasoning: ['R'], tokens: ['T'] }));
    const stream = client.responses.stream({ model: MODEL, input: 'Hi' });
    const chunks = await collect(fromOpenAI(stream, { provider: 'azure-openai' }));
    const e = expected(MODEL, 'azure-openai');
    expect(withoutTimestamps(chunks)).toStrictEqual([e.reasoning('R'), e.text('T'), e.finish('stop', defaultUsage(2))]);
  });

  it('rejects a stream that was not awaited at once, with a TypeError that says so', async () => {
    const { client } = mockOpenAI(chat({ tokens: ['A'] }));
    const pending = client.chat.completions.create({ model: MODEL, messages, stream: true });
    expect(() => fromOpenAI(pending as never)).toThrow(
      new TypeError('Expected `stream` to be an OpenAI stream (an async iterable), got a Promise (did you forget `await`?)'),
    );
    (await pending).controller.abort();
  });

  it('rejects missing params of streamOpenAI at once, with a TypeError', () => {
    const { client, requests } = mockOpenAI(chat({}));
    expect(() => streamOpenAI(client, null as never)).toThrow(new TypeError('Expected `params` to be the request parameters object, got null'));
    expect(requests).toHaveLength(0);
  });

  it('reports an abort through the stream controller as StreamAbortedError', async () => {
    const { client } = mockOpenAI(chat({ tokens: ['A', 'B', 'C'] }));
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    const relayed = fromOpenAI(stream);
    const first = await relayed.next();
    expect(first.value).toMatchObject({ token: 'A' });
    stream.controller.abort();
    const { error } = await collectUntilError(relayed);
    expect(isStreamAbortedError(error)).toBe(true);
  });
});

describe('streamOpenAI errors', () => {
  it('maps a 401 to a non-retryable ProviderError without the key', async () => {
    const { client } = mockOpenAI(chat({ fault: { kind: 'http-error', status: 401 } }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks).toEqual([]);
    const providerError = expectProviderError(error);
    expect(providerError.message).toBe(
      'OpenAI request failed with status 401: Incorrect API key provided: sk-[redacted]. You can find your API key at https://platform.openai.com/account/api-keys.',
    );
    expect(providerError).toMatchObject({
      code: 'provider',
      status: 401,
      retryable: false,
      providerType: 'invalid_request_error',
      retryAfterMs: undefined,
      provider: 'openai',
    });
    expect((providerError.cause as Error).constructor.name).toBe('AuthenticationError');
    expect((providerError.cause as Error).message).toContain('sk-test***CRET');
  });

  it('redacts the key when a compatible server echoes it', async () => {
    const fault = { kind: 'http-error', status: 401, message: `Invalid key ${API_KEY} (Bearer ${API_KEY})` } as const;
    const { client } = mockOpenAI(chat({ fault }), { baseURL: 'http://localhost:8000/v1' });
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }, { provider: 'vllm' }));
    expect(expectProviderError(error).message).toBe(
      'vllm request failed with status 401: Invalid key [redacted] (Bearer [redacted])',
    );
  });

  it.each([
    [{ 'retry-after': '2' }, 2000],
    [{ 'retry-after-ms': '1500', 'retry-after': '9' }, 1500],
    [{ 'retry-after': 'soon' }, undefined],
  ])('maps a 429 with %o to a retryable error with retryAfterMs %s', async (headers, retryAfterMs) => {
    const { client } = mockOpenAI(chat({ fault: { kind: 'http-error', status: 429, headers } }));
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({
      message: 'OpenAI request failed with status 429: Rate limit reached for requests. Please try again later.',
      status: 429,
      retryable: true,
      providerType: 'requests',
      retryAfterMs,
    });
  });

  it('reads retry-after given as an HTTP date', async () => {
    const date = new Date(Date.now() + 30_000).toUTCString();
    const { client } = mockOpenAI(chat({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': date } } }));
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    const { retryAfterMs } = expectProviderError(error);
    expect(retryAfterMs).toBeGreaterThan(25_000);
    expect(retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('marks insufficient_quota as not retryable despite the 429', async () => {
    const fault = { kind: 'http-error', status: 429, type: 'insufficient_quota', message: 'You exceeded your current quota.' } as const;
    const { client } = mockOpenAI(chat({ fault }));
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({ status: 429, retryable: false, providerType: 'insufficient_quota' });
  });

  it('maps a 500 to a retryable ProviderError', async () => {
    const { client } = mockOpenAI(responses({ fault: { kind: 'http-error', status: 500 } }));
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(expectProviderError(error)).toMatchObject({
      message: 'OpenAI request failed with status 500: The server had an error while processing your request. Sorry about that!',
      status: 500,
      retryable: true,
      providerType: 'server_error',
    });
  });

  it('follows x-should-retry over the status', async () => {
    const { client } = mockOpenAI(chat({ fault: { kind: 'http-error', status: 503, headers: { 'x-should-retry': 'false' } } }));
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({ status: 503, retryable: false });
  });

  it('lets the SDK retry a 500 and relays the retried stream', async () => {
    let attempt = 0;
    const { client, requests } = mockOpenAI(
      (request) =>
        openaiChatWire(
          attempt++ === 0 ? { fault: { kind: 'http-error', status: 500, headers: { 'retry-after-ms': '1' } } } : { tokens: ['ok'] },
          request,
        ),
      { maxRetries: 1 },
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['ok', '']);
    expect(requests).toHaveLength(2);
  });

  it('maps an in-band error frame to a retryable ProviderError after the text sent so far', async () => {
    const { client } = mockOpenAI(chat({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('a'), e.text('b')]);
    expect(expectProviderError(error)).toMatchObject({
      message: 'OpenAI stream failed: The server had an error while processing your request. Sorry about that!',
      status: undefined,
      retryable: true,
      providerType: 'server_error',
    });
  });

  it('maps a connection reset mid-stream to a retryable ProviderError', async () => {
    const { client, ends } = mockOpenAI(chat({ tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['a', 'b']);
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({ message: 'OpenAI connection failed', status: undefined, retryable: true });
    expect(providerError.cause).toBeInstanceOf(TypeError);
    expect(ends).toEqual(['reset']);
  });

  it('maps a failed connection to a retryable ProviderError', async () => {
    const client = new OpenAI({
      apiKey: API_KEY,
      maxRetries: 0,
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
      },
    });
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({ message: 'OpenAI connection failed', status: undefined, retryable: true });
  });

  it('maps an SDK timeout to a retryable ProviderError', async () => {
    const client = new OpenAI({
      apiKey: API_KEY,
      maxRetries: 0,
      timeout: 20,
      fetch: (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
        }),
    });
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({ message: 'OpenAI request timed out', retryable: true });
  });

  it('names the compatible provider in HTTP errors', async () => {
    const { client, requests } = mockOpenAI(chat({ fault: { kind: 'http-error', status: 404 } }), {
      baseURL: 'http://localhost:11434/v1',
    });
    const { error } = await collectUntilError(streamOpenAI(client, { model: 'llama3.2', messages }, { provider: 'ollama' }));
    expect(expectProviderError(error)).toMatchObject({
      message: 'ollama request failed with status 404: The model `llama3.2` does not exist or you do not have access to it.',
      provider: 'ollama',
      providerType: 'invalid_request_error',
      retryable: false,
    });
    expect(new URL(`http://localhost:11434${requests[0]?.path}`).pathname).toBe('/v1/chat/completions');
  });
});

describe('streamOpenAI cancellation', () => {
  it('throws StreamAbortedError with the signal reason when aborted mid-stream, and stops the body', async () => {
    const { client, ends } = mockOpenAI(chat({ tokens: ['a', 'b', 'c', 'd'] }));
    const controller = new AbortController();
    const reason = new Error('client went away');
    const chunks: TokenChunk[] = [];
    let caught: unknown;
    try {
      for await (const chunk of streamOpenAI(client, { model: MODEL, messages }, { signal: controller.signal })) {
        chunks.push(chunk);
        if (chunks.length === 2) controller.abort(reason);
      }
    } catch (error) {
      caught = error;
    }
    expect(chunks.map((chunk) => chunk.token)).toEqual(['a', 'b']);
    expect(isStreamAbortedError(caught)).toBe(true);
    expect((caught as Error).cause).toBe(reason);
    // The SDK cancels the body on abort; the emulator may see the abort first. Either way it stopped.
    expect(ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(ends[0]);
  });

  it('aborts a stalled stream', async () => {
    const { client, ends } = mockOpenAI(chat({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 1 } }));
    const controller = new AbortController();
    const relayed = streamOpenAI(client, { model: MODEL, messages }, { signal: controller.signal });
    expect((await relayed.next()).value).toMatchObject({ token: 'a' });
    const pending = relayed.next();
    controller.abort('timeout');
    await expect(pending).rejects.toSatisfy((error: unknown) => isStreamAbortedError(error) && (error as Error).cause === 'timeout');
    // The SDK cancels the body on abort; the emulator may see the abort first. Either way it stopped.
    expect(ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(ends[0]);
  });

  it('throws StreamAbortedError while the request is pending', async () => {
    const controller = new AbortController();
    const client = new OpenAI({
      apiKey: API_KEY,
      maxRetries: 0,
      fetch: (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
          controller.abort('gone');
        }),
    });
    const { error } = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }, { signal: controller.signal }));
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe('gone');
  });

  it('sends no request when the signal is already aborted', async () => {
    const { client, requests } = mockOpenAI(chat({ tokens: ['a'] }));
    const { error } = await collectUntilError(
      streamOpenAI(client, { model: MODEL, messages }, { signal: AbortSignal.abort('early') }),
    );
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe('early');
    expect(requests).toHaveLength(0);
  });

  it('cancels the response body when the consumer breaks', async () => {
    const { client, ends } = mockOpenAI(chat({ tokens: ['a', 'b', 'c', 'd'] }));
    const tokens: string[] = [];
    for await (const chunk of streamOpenAI(client, { model: MODEL, messages })) {
      tokens.push(chunk.token);
      if (tokens.length === 2) break;
    }
    expect(tokens).toEqual(['a', 'b']);
    await expect.poll(() => ends).toEqual(['cancelled']);
  });

  it('cancels a Responses body when the consumer breaks', async () => {
    const { client, ends } = mockOpenAI(responses({ tokens: ['a', 'b', 'c'] }));
    for await (const chunk of streamOpenAI(client, { model: MODEL, input: 'Hi' })) {
      expect(chunk.token).toBe('a');
      break;
    }
    await expect.poll(() => ends).toEqual(['cancelled']);
  });
});

describe('argument checks', () => {
  const { client } = mockOpenAI(chat({}));

  it.each([
    [undefined, 'Expected `client` to be an OpenAI client, got undefined'],
    [null, 'Expected `client` to be an OpenAI client, got null'],
    ['sk-key', 'Expected `client` to be an OpenAI client, got "sk-key"'],
  ])('streamOpenAI rejects the client %s with a TypeError that names it', (value, message) => {
    expect(() => streamOpenAI(value as never, { model: MODEL, messages })).toThrow(new TypeError(message));
  });

  it('streamOpenAI rejects a client without the method the params need', () => {
    const chatOnly = { chat: { completions: { create: async () => [] } } };
    expect(() => streamOpenAI(chatOnly as never, { model: MODEL, input: 'Hi' })).toThrow(
      new TypeError('Expected `client` to be an OpenAI client with `responses.create`, got an object without it'),
    );
    expect(() => streamOpenAI({ responses: client.responses } as never, { model: MODEL, messages })).toThrow(
      new TypeError('Expected `client` to be an OpenAI client with `chat.completions.create`, got an object without it'),
    );
  });

  it.each([
    [undefined, 'undefined'],
    [[{ role: 'user', content: 'Hi' }], 'an array'],
    ['Hi', '"Hi"'],
  ])('streamOpenAI rejects the params %j with a TypeError', (value, got) => {
    expect(() => streamOpenAI(client, value as never)).toThrow(new TypeError(`Expected \`params\` to be the request parameters object, got ${got}`));
  });

  it.each([
    [{ signl: AbortSignal.abort() }, 'Unknown option `signl` in `options`; did you mean `signal`?'],
    [{ providerName: 'x' }, 'Unknown option `providerName` in `options`; known options: `provider`, `signal`'],
    [null, 'Expected `options` to be an object, got null'],
    [{ signal: 'stop' }, 'Expected `options.signal` to be an AbortSignal, got "stop"'],
    [{ provider: '' }, 'Expected `options.provider` to be a non-empty string, got ""'],
    [{ provider: 3 }, 'Expected `options.provider` to be a non-empty string, got 3'],
  ])('streamOpenAI and fromOpenAI reject the options %j with a TypeError', async (options, message) => {
    expect(() => streamOpenAI(client, { model: MODEL, messages }, options as never)).toThrow(new TypeError(message));
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    expect(() => fromOpenAI(stream, options as never)).toThrow(new TypeError(message));
    stream.controller.abort();
  });

  it('fromOpenAI rejects what is not a stream at once', () => {
    expect(() => fromOpenAI(undefined as never)).toThrow(new TypeError('Expected `stream` to be an OpenAI stream (an async iterable), got undefined'));
    expect(() => fromOpenAI({} as never)).toThrow(new TypeError('Expected `stream` to be an OpenAI stream (an async iterable), got an object'));
  });
});
