import { Mistral } from '@mistralai/mistralai';
import { HTTPClient } from '@mistralai/mistralai/lib/http.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProviderError, isStreamAbortedError, type ProviderError, type TokenChunk } from 'tokenrelay';
import { fromMistral, streamMistral } from 'tokenrelay/mistral';
import { mistralScenarios, type MistralScenarioName } from '../../src/testing/mistral-scenarios.js';
import { mistralChatWire } from '../../src/testing/mistral-wire.js';
import type { MockRequest, MockScript, WireResponse } from '../../src/testing/script.js';
import { structuralFrame } from '../../src/testing/wire-format.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

const API_KEY = 'mistral-test-SECRET-key';
const MODEL = 'mistral-small-latest';
const messages = [{ role: 'user' as const, content: 'Salut' }];
const FAST_CHECK_SEED = 20_260_515;

type BodyEnd = 'completed' | 'reset' | 'cancelled' | 'aborted';

interface MockMistral {
  client: Mistral;
  requests: MockRequest[];
  ends: BodyEnd[];
}

/** A real Mistral client whose HTTP layer is the wire emulator. */
function mockMistral(answer: (request: MockRequest) => WireResponse, options: { split?: { seed: number }; timeoutMs?: number } = {}): MockMistral {
  const requests: MockRequest[] = [];
  const ends: BodyEnd[] = [];
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => (headers[name] = value));
    const body = JSON.parse((await request.text()) || '{}') as Record<string, unknown>;
    const mock: MockRequest = { api: 'mistral-chat', path: new URL(request.url).pathname, headers, body };
    requests.push(mock);
    return wireToResponse(answer(mock), { signal: request.signal, split: options.split, onEnd: (how) => ends.push(how) });
  };
  const client = new Mistral({
    apiKey: API_KEY,
    httpClient: new HTTPClient({ fetcher }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  return { client, requests, ends };
}

/** A client whose fetch never answers until its signal aborts (or throws what `fail` gives). */
function hangingMistral(onFetch: (signal: AbortSignal) => void = () => undefined, timeoutMs?: number): Mistral {
  const fetcher = (input: RequestInfo | URL, init?: RequestInit) =>
    new Promise<Response>((_resolve, reject) => {
      const { signal } = new Request(input, init);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      onFetch(signal);
    });
  return new Mistral({ apiKey: API_KEY, httpClient: new HTTPClient({ fetcher }), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

const scripted = (script: MockScript) => (request: MockRequest) => mistralChatWire(script, request);
const scenario = (name: MistralScenarioName, extra: MockScript = {}) => scripted({ ...mistralScenarios[name], ...extra });

/** Hand-written Mistral chunks, for shapes the script cannot express. */
function customWire(events: unknown[]): () => WireResponse {
  return () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, frames: events.map((event) => structuralFrame(event)), end: 'close' });
}

function wireChunk(delta: Record<string, unknown>, finishReason: string | null = null, extra: Record<string, unknown> = {}, index = 0) {
  return { id: 'cmpl-1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index, delta, finish_reason: finishReason }], ...extra };
}

async function collect(stream: AsyncIterable<TokenChunk>): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function collectUntilError(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  throw new Error(`Expected the stream to fail, it ended with ${chunks.length} chunks`);
}

/** Timestamps checked for shape and order, then left out of the exact comparison. */
function withoutTimestamps(chunks: TokenChunk[]): Array<Omit<TokenChunk, 'timestamp'>> {
  let previous = -Infinity;
  return chunks.map(({ timestamp, ...rest }) => {
    expect(timestamp).toBeGreaterThanOrEqual(previous);
    previous = timestamp;
    return rest;
  });
}

function expected(model = MODEL, provider = 'mistral') {
  let index = 0;
  const meta = { model, provider };
  return {
    text: (token: string) => ({ token, index: index++, type: 'text' as const, ...meta }),
    reasoning: (token: string) => ({ token, index: index++, type: 'reasoning' as const, ...meta }),
    toolCall: (token: string, toolCall: { id: string; name: string; index: number }) => ({ token, index: index++, type: 'tool-call' as const, toolCall, ...meta }),
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
  expect(JSON.stringify(providerError)).not.toContain(API_KEY);
  return providerError;
}

const defaultUsage = (outputTokens: number) => ({ inputTokens: 12, outputTokens, cachedInputTokens: 0 });

describe('streamMistral', () => {
  it('relays text deltas and ends with the finish reason and the usage', async () => {
    const { client, requests, ends } = mockMistral(scripted({ tokens: ['Bon', 'jour', ' !'] }));
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('Bon'), e.text('jour'), e.text(' !'), e.finish('stop', defaultUsage(3))]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.path).toBe('/v1/chat/completions');
    expect(requests[0]?.body).toStrictEqual({ model: MODEL, messages, stream: true });
    expect(requests[0]?.headers['authorization']).toBe(`Bearer ${API_KEY}`);
    // The SDK stops reading at `data: [DONE]` and cancels the rest of the body.
    expect(ends).toEqual(['cancelled']);
  });

  it('keeps multibyte text, reasoning and tool arguments intact whatever the network splits', async () => {
    const piece = fc.oneof(
      fc.constantFrom('こんにちは', '、世界', ' 🙂👍🏽', ' naïve café', ' 𝄞', '\n', ' "quoted"', 'Zürich', '🧑‍💻'),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { minLength: 1, maxLength: 8 }),
        fc.array(piece, { maxLength: 3 }),
        fc.array(piece, { maxLength: 3 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        async (tokens, reasoning, fragments, seed) => {
          const toolCalls = fragments.length === 0 ? [] : [{ id: 'Xy7pQ2rT9', name: 'note', arguments: fragments }];
          const { client } = mockMistral(scripted({ tokens, reasoning, toolCalls, finishReason: 'stop' }), { split: { seed } });
          const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
          const e = expected();
          const call = { id: 'Xy7pQ2rT9', name: 'note', index: 0 };
          expect(withoutTimestamps(chunks)).toStrictEqual([
            ...reasoning.map((token) => e.reasoning(token)),
            ...tokens.map((token) => e.text(token)),
            ...fragments.map((token) => e.toolCall(token, call)),
            e.finish('stop', defaultUsage(tokens.length + reasoning.length + fragments.length)),
          ]);
        },
      ),
      { seed: FAST_CHECK_SEED, numRuns: 25 },
    );
  });

  it('relays thinking parts as reasoning and text parts as text', async () => {
    const { client } = mockMistral(scripted({ reasoning: ['Réfléchir', ' 🤔'], tokens: ['Voilà', ' la réponse'] }));
    const chunks = await collect(streamMistral(client, { model: 'magistral-medium-latest', messages }));
    const e = expected('magistral-medium-latest');
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.reasoning('Réfléchir'),
      e.reasoning(' 🤔'),
      e.text('Voilà'),
      e.text(' la réponse'),
      e.finish('stop', defaultUsage(4)),
    ]);
  });

  it('ignores reference parts and relays text parts that share a chunk (magistral scenario)', async () => {
    const { client } = mockMistral(scenario('thinking-parts'));
    const chunks = await collect(streamMistral(client, { model: 'magistral-small-latest', messages }));
    const e = expected('magistral-small-latest');
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.reasoning("L'utilisateur"),
      e.reasoning(' dit bonjour 👋.'),
      e.text('Bonjour'),
      e.text(' à'),
      e.text(' vous'),
      e.text(' ! 日本語も'),
      e.finish('stop', { inputTokens: 2048, outputTokens: 64, cachedInputTokens: 1536 }),
    ]);
  });

  it('keeps the id of a call whose follow-up deltas the SDK gives the id "null"', async () => {
    const toolCalls = [
      { id: 'D681PevKs', name: 'get_weather', arguments: ['{"city"', ': "Paris"}'] },
      { name: 'get_time', arguments: ['{"tz":', ' "CET"}'] },
    ];
    const answer = scripted({ tokens: [], toolCalls });
    // The quirk itself: the SDK fills in the string "null" for the id a follow-up delta does not have.
    const raw = mockMistral(answer).client;
    const ids: string[] = [];
    for await (const event of await raw.chat.stream({ model: MODEL, messages })) {
      for (const call of event.data.choices[0]?.delta.toolCalls ?? []) ids.push(String(call.id));
    }
    const second = mockMistral(answer);
    const chunks = await collect(streamMistral(second.client, { model: MODEL, messages }));
    const secondId = ids[2] as string;
    expect(ids).toEqual(['D681PevKs', 'null', secondId, 'null']);
    expect(secondId).toMatch(/^[A-Za-z0-9]{9}$/);
    const e = expected();
    const weather = { id: 'D681PevKs', name: 'get_weather', index: 0 };
    const time = { id: secondId, name: 'get_time', index: 1 };
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.toolCall('{"city"', weather),
      e.toolCall(': "Paris"}', weather),
      e.toolCall('{"tz":', time),
      e.toolCall(' "CET"}', time),
      e.finish('tool-calls', defaultUsage(4)),
    ]);
  });

  it('relays tool calls sent whole in one delta, on the chunk with the finish reason', async () => {
    const { client } = mockMistral(scenario('whole-tool-calls'));
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.map(({ token, type, toolCall }) => ({ token, type, name: toolCall?.name, index: toolCall?.index }))).toStrictEqual([
      { token: '{"city": "Zürich"}', type: 'tool-call', name: 'get_weather', index: 0 },
      { token: '{"tz": "Asia/Tokyo"}', type: 'tool-call', name: 'get_time', index: 1 },
      { token: '', type: 'text', name: undefined, index: undefined },
    ]);
    expect(chunks[0]?.toolCall?.id).not.toBe(chunks[1]?.toolCall?.id);
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'tool-calls', usage: { inputTokens: 2048, outputTokens: 64, cachedInputTokens: 1536 } });
  });

  it('starts a new call for a new id at an index already used, and sends object arguments as JSON', async () => {
    const call = (id: string | undefined, name: string, args: unknown) => ({ ...(id === undefined ? {} : { id }), function: { name, arguments: args }, index: 0 });
    const { client } = mockMistral(
      customWire([
        wireChunk({ role: 'assistant', content: '' }),
        wireChunk({ tool_calls: [call('aaaaaaaa1', 'first', '{"a":')] }),
        wireChunk({ tool_calls: [call(undefined, '', '1}')] }),
        wireChunk({ tool_calls: [call('bbbbbbbb2', 'second', { b: 2 })] }),
        wireChunk({ content: '' }, 'tool_calls'),
        '[DONE]',
      ]),
    );
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    const e = expected();
    const first = { id: 'aaaaaaaa1', name: 'first', index: 0 };
    expect(withoutTimestamps(chunks)).toStrictEqual([
      e.toolCall('{"a":', first),
      e.toolCall('1}', first),
      e.toolCall('{"b":2}', { id: 'bbbbbbbb2', name: 'second', index: 1 }),
      e.finish('tool-calls'),
    ]);
  });

  it('reads the cached prompt tokens the SDK leaves in snake_case', async () => {
    const usage = { inputTokens: 4096, outputTokens: 20, cachedInputTokens: 3072 };
    const answer = scripted({ tokens: ['ok'], usage });
    const raw = mockMistral(answer).client;
    const usages: unknown[] = [];
    for await (const event of await raw.chat.stream({ model: MODEL, messages })) if (event.data.usage) usages.push(event.data.usage);
    expect(usages).toEqual([{ promptTokens: 4096, completionTokens: 20, totalTokens: 4116, prompt_tokens_details: { cached_tokens: 3072 } }]);
    const { client } = mockMistral(answer);
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.at(-1)?.usage).toStrictEqual(usage);
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'stop'],
  ] as const)('maps the script finish reason %s to %s', async (finishReason, relayed) => {
    const { client } = mockMistral(scripted({ tokens: ['x'], finishReason }));
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.at(-1)).toMatchObject({ finishReason: relayed, token: '', index: 1 });
  });

  it.each([
    ['model-length', ['Il était', ' une fois…'], 'length'],
    ['finish-error', ['Partial'], 'error'],
  ] as const)('maps the %s scenario (tokens %j) to the finish reason %s', async (name, tokens, finishReason) => {
    const { client } = mockMistral(scenario(name));
    const chunks = await collect(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual([...tokens, '']);
    expect(chunks.at(-1)?.finishReason).toBe(finishReason);
  });

  it('maps a finish reason it does not know to other, and relays only the first choice', async () => {
    const { client } = mockMistral(
      customWire([
        wireChunk({ content: 'A' }),
        wireChunk({ content: 'B' }, null, {}, 1),
        wireChunk({ content: 'C' }, 'something_new'),
        '[DONE]',
      ]),
    );
    const chunks = await collect(streamMistral(client, { model: MODEL, messages, n: 2 }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('A'), e.text('C'), e.finish('other')]);
  });

  it('throws a retryable error when the stream ends without a finish reason', async () => {
    const { client } = mockMistral(customWire([wireChunk({ content: 'Hel' }), '[DONE]']));
    const { chunks, error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['Hel']);
    expect(expectProviderError(error)).toMatchObject({ message: 'The stream ended before the provider finished', retryable: true, provider: 'mistral' });
  });
});

describe('streamMistral errors', () => {
  it('maps a 401 to a non-retryable ProviderError', async () => {
    const { client } = mockMistral(scripted({ fault: { kind: 'http-error', status: 401 } }));
    const { chunks, error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(chunks).toEqual([]);
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({
      message: 'Mistral request failed with status 401: Unauthorized',
      code: 'provider',
      status: 401,
      retryable: false,
      provider: 'mistral',
      retryAfterMs: undefined,
    });
    expect((providerError.cause as Error).name).toBe('SDKError');
  });

  it('redacts the key when the provider echoes it', async () => {
    const fault = { kind: 'http-error', status: 400, message: `Bad key ${API_KEY}` } as const;
    const { client } = mockMistral(scripted({ fault }));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(expectProviderError(error).message).toBe('Mistral request failed with status 400: Bad key [redacted]');
  });

  it.each([
    [{ 'retry-after': '2' }, 2000],
    [{ 'retry-after': 'soon' }, undefined],
  ])('maps a 429 with %o to a retryable error with retryAfterMs %s', async (headers, retryAfterMs) => {
    const { client } = mockMistral(scripted({ fault: { kind: 'http-error', status: 429, headers } }));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({
      message: 'Mistral request failed with status 429: Rate limit exceeded',
      status: 429,
      retryable: true,
      providerType: 'rate_limited',
      retryAfterMs,
    });
  });

  it.each([500, 503])('maps a %i to a retryable ProviderError', async (status) => {
    const { client } = mockMistral(scripted({ fault: { kind: 'http-error', status } }));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(expectProviderError(error)).toMatchObject({ status, retryable: true, providerType: 'internal_server_error' });
  });

  it("maps a 422 (the SDK's HTTPValidationError) with its validation details", async () => {
    const body = { object: 'error', message: { detail: [{ type: 'missing', loc: ['body', 'model'], msg: 'Field required' }] }, type: 'invalid_request_error', param: null, code: null };
    const { client } = mockMistral(() => ({ status: 422, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({
      message: 'Mistral request failed with status 422: Field required',
      status: 422,
      retryable: false,
      providerType: 'invalid_request_error',
    });
    expect((providerError.cause as Error).name).toBe('HTTPValidationError');
  });

  it('maps an error object inside the stream to a retryable ProviderError after the text sent so far', async () => {
    const { client, ends } = mockMistral(scripted({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.text('a'), e.text('b')]);
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({
      message: 'Mistral stream failed: the SDK could not read an event (the provider may have reported an error)',
      status: undefined,
      retryable: true,
    });
    expect((providerError.cause as Error).name).toBe('ZodError');
    expect(ends).toHaveLength(1);
  });

  it('maps a connection reset mid-stream to a retryable ProviderError', async () => {
    const { client, ends } = mockMistral(scripted({ tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    expect(chunks.map((chunk) => chunk.token)).toEqual(['a', 'b']);
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({ message: 'Mistral connection failed', status: undefined, retryable: true });
    expect(providerError.cause).toBeInstanceOf(TypeError);
    expect(ends).toEqual(['reset']);
  });

  it('maps a refused connection to a retryable ProviderError', async () => {
    const client = new Mistral({
      apiKey: API_KEY,
      httpClient: new HTTPClient({
        fetcher: async () => {
          throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
        },
      }),
    });
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({ message: 'Mistral connection failed', retryable: true });
    expect((providerError.cause as Error).name).toBe('ConnectionError');
  });

  it("maps the SDK's own timeout (timeoutMs) to a retryable ProviderError", async () => {
    const client = hangingMistral(undefined, 20);
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }));
    const providerError = expectProviderError(error);
    expect(providerError).toMatchObject({ message: 'Mistral request timed out', retryable: true });
    expect((providerError.cause as Error).name).toBe('RequestTimeoutError');
  });

  it('names the provider given in options', async () => {
    const { client } = mockMistral(scripted({ fault: { kind: 'http-error', status: 404 } }));
    const { error } = await collectUntilError(streamMistral(client, { model: 'nope', messages }, { provider: 'mistral-eu' }));
    expect(expectProviderError(error)).toMatchObject({ message: 'mistral-eu request failed with status 404: Invalid model', provider: 'mistral-eu', retryable: false });
  });
});

describe('streamMistral cancellation', () => {
  it('throws StreamAbortedError with the signal reason when aborted mid-stream, and stops the body', async () => {
    const { client, ends } = mockMistral(scripted({ tokens: ['a', 'b', 'c', 'd'] }));
    const controller = new AbortController();
    const reason = new Error('client went away');
    const chunks: TokenChunk[] = [];
    let caught: unknown;
    try {
      for await (const chunk of streamMistral(client, { model: MODEL, messages }, { signal: controller.signal })) {
        chunks.push(chunk);
        if (chunks.length === 2) controller.abort(reason);
      }
    } catch (error) {
      caught = error;
    }
    expect(chunks.map((chunk) => chunk.token)).toEqual(['a', 'b']);
    expect(isStreamAbortedError(caught)).toBe(true);
    expect((caught as Error).cause).toBe(reason);
    expect(ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(ends[0]);
  });

  it('aborts a stalled stream', async () => {
    const { client, ends } = mockMistral(scripted({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 1 } }));
    const controller = new AbortController();
    const relayed = streamMistral(client, { model: MODEL, messages }, { signal: controller.signal });
    expect((await relayed.next()).value).toMatchObject({ token: 'a' });
    const pending = relayed.next();
    controller.abort('timeout');
    await expect(pending).rejects.toSatisfy((error: unknown) => isStreamAbortedError(error) && (error as Error).cause === 'timeout');
    expect(ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(ends[0]);
  });

  it('throws StreamAbortedError while the request is pending', async () => {
    const controller = new AbortController();
    const client = hangingMistral(() => controller.abort('gone'));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }, { signal: controller.signal }));
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe('gone');
  });

  it('sends no request when the signal is already aborted', async () => {
    const { client, requests } = mockMistral(scripted({ tokens: ['a'] }));
    const { error } = await collectUntilError(streamMistral(client, { model: MODEL, messages }, { signal: AbortSignal.abort('early') }));
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe('early');
    expect(requests).toHaveLength(0);
  });

  it('sends nothing before the first next(), and cancels the body when the consumer breaks', async () => {
    const { client, requests, ends } = mockMistral(scripted({ tokens: ['a', 'b', 'c', 'd'] }));
    const stream = streamMistral(client, { model: MODEL, messages });
    await Promise.resolve();
    expect(requests).toHaveLength(0);
    const tokens: string[] = [];
    for await (const chunk of stream) {
      tokens.push(chunk.token);
      if (tokens.length === 2) break;
    }
    expect(tokens).toEqual(['a', 'b']);
    await expect.poll(() => ends).toEqual(['cancelled']);
  });
});

describe('fromMistral', () => {
  it('relays a stream created by the caller, with the signal passed to the SDK', async () => {
    const { client } = mockMistral(scripted({ reasoning: ['R'], tokens: ['A', 'B'] }));
    const controller = new AbortController();
    const stream = await client.chat.stream({ model: MODEL, messages }, { signal: controller.signal });
    const chunks = await collect(fromMistral(stream, { signal: controller.signal }));
    const e = expected();
    expect(withoutTimestamps(chunks)).toStrictEqual([e.reasoning('R'), e.text('A'), e.text('B'), e.finish('stop', defaultUsage(3))]);
  });

  it('reads completion chunks that were parsed by hand (wire snake_case)', async () => {
    async function* chunks() {
      yield wireChunk({ content: [{ type: 'thinking', thinking: [{ text: 'hm' }] }] });
      yield wireChunk({ tool_calls: [{ id: 'abcdefgh1', function: { name: 'f', arguments: '{}' }, index: 0 }] });
      yield wireChunk({}, 'model_length', { usage: { prompt_tokens: 3, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 1 } } });
    }
    const relayed = await collect(fromMistral(chunks() as never, { provider: 'mistral-local' }));
    const e = expected(MODEL, 'mistral-local');
    expect(withoutTimestamps(relayed)).toStrictEqual([
      e.reasoning('hm'),
      e.toolCall('{}', { id: 'abcdefgh1', name: 'f', index: 0 }),
      e.finish('length', { inputTokens: 3, outputTokens: 2, cachedInputTokens: 1 }),
    ]);
  });

  it('reports an abort through the signal as StreamAbortedError', async () => {
    const { client } = mockMistral(scripted({ tokens: ['A', 'B', 'C'], delayMs: 5 }));
    const controller = new AbortController();
    const stream = await client.chat.stream({ model: MODEL, messages }, { signal: controller.signal });
    const relayed = fromMistral(stream, { signal: controller.signal });
    expect((await relayed.next()).value).toMatchObject({ token: 'A' });
    controller.abort('stop');
    const { error } = await collectUntilError(relayed);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe('stop');
  });

  it('rejects a stream that was not awaited, with a TypeError that says so', async () => {
    const { client } = mockMistral(scripted({ tokens: ['A'] }));
    const pending = client.chat.stream({ model: MODEL, messages });
    expect(() => fromMistral(pending as never)).toThrow(
      new TypeError('Expected `stream` to be a Mistral stream (an async iterable), got a Promise (did you forget `await`?)'),
    );
    await (await pending).cancel();
  });

  it('rejects what is not a stream at once', () => {
    expect(() => fromMistral(undefined as never)).toThrow(new TypeError('Expected `stream` to be a Mistral stream (an async iterable), got undefined'));
    expect(() => fromMistral({} as never)).toThrow(new TypeError('Expected `stream` to be a Mistral stream (an async iterable), got an object'));
  });
});

describe('argument checks', () => {
  const { client, requests } = mockMistral(scripted({}));

  it.each([
    [undefined, 'Expected `client` to be a Mistral client, got undefined'],
    [null, 'Expected `client` to be a Mistral client, got null'],
    ['key', 'Expected `client` to be a Mistral client, got "key"'],
    [{ chat: {} }, 'Expected `client` to be a Mistral client with `chat.stream`, got an object without it'],
  ])('streamMistral rejects the client %j with a TypeError that names it', (value, message) => {
    expect(() => streamMistral(value as never, { model: MODEL, messages })).toThrow(new TypeError(message));
  });

  it.each([
    [undefined, 'undefined'],
    [[{ role: 'user', content: 'Hi' }], 'an array'],
    ['Hi', '"Hi"'],
  ])('streamMistral rejects the params %j with a TypeError', (value, got) => {
    expect(() => streamMistral(client, value as never)).toThrow(new TypeError(`Expected \`params\` to be the request parameters object, got ${got}`));
  });

  it.each([
    [{ signl: AbortSignal.abort() }, 'Unknown option `signl` in `options`; did you mean `signal`?'],
    [{ timeoutMs: 5 }, 'Unknown option `timeoutMs` in `options`; known options: `provider`, `signal`'],
    [null, 'Expected `options` to be an object, got null'],
    [{ signal: 'stop' }, 'Expected `options.signal` to be an AbortSignal, got "stop"'],
    [{ provider: '' }, 'Expected `options.provider` to be a non-empty string, got ""'],
  ])('streamMistral and fromMistral reject the options %j with a TypeError', async (options, message) => {
    expect(() => streamMistral(client, { model: MODEL, messages }, options as never)).toThrow(new TypeError(message));
    async function* empty() {}
    expect(() => fromMistral(empty(), options as never)).toThrow(new TypeError(message));
    expect(requests).toHaveLength(0);
  });
});
