import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProviderError, StreamAbortedError, isProviderError, isStreamAbortedError, type TokenChunk } from 'tokenrelay';
import { fromGoogle, streamGoogle, type GoogleStreamResponse } from 'tokenrelay/google';
import { googleGenerateContentWire } from '../../src/testing/google-wire.js';
import type { MockRequest, MockScript, WireResponse } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

const API_KEY = 'AIzaSyTESTSECRETKEY000000000000000000';
const MODEL = 'gemini-2.5-flash';
const PARAMS = { model: MODEL, contents: 'Hi' };
const FAST_CHECK_SEED = 20_260_515;

type BodyEnd = 'completed' | 'reset' | 'cancelled' | 'aborted';

interface Harness {
  client: GoogleGenAI;
  requests: MockRequest[];
  urls: URL[];
  /** How each response body ended, as the emulated server saw it. */
  ends: BodyEnd[];
  /** The signal the SDK gave fetch, per request. */
  signals: AbortSignal[];
}

interface HarnessOptions {
  split?: { seed: number };
  edit?: (wire: WireResponse) => WireResponse;
  fail?: Error;
  client?: Partial<ConstructorParameters<typeof GoogleGenAI>[0]>;
  timeout?: number;
}

function createHarness(script: MockScript, options: HarnessOptions = {}): Harness {
  const harness: Harness = { client: undefined as unknown as GoogleGenAI, requests: [], urls: [], ends: [], signals: [] };
  harness.client = new GoogleGenAI({
    apiKey: API_KEY,
    ...options.client,
    httpOptions: {
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      fetch: async (url, init) => {
        if (options.fail !== undefined) throw options.fail;
        const href = new URL(String(url));
        harness.urls.push(href);
        const request: MockRequest = {
          api: 'google-generate-content',
          path: href.pathname,
          headers: Object.fromEntries(new Headers(init?.headers)),
          body: JSON.parse(String(init?.body)) as Record<string, unknown>,
        };
        harness.requests.push(request);
        const signal = init?.signal ?? undefined;
        if (signal) harness.signals.push(signal);
        const wire = googleGenerateContentWire(script, request);
        return wireToResponse(options.edit ? options.edit(wire) : wire, { signal, split: options.split, onEnd: (how) => harness.ends.push(how) });
      },
    },
  });
  return harness;
}

async function collect(source: AsyncIterable<TokenChunk>): Promise<{ chunks: TokenChunk[]; error: unknown }> {
  const chunks: TokenChunk[] = [];
  try {
    for await (const chunk of source) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: undefined };
}

function withoutTimestamps(chunks: TokenChunk[]): Omit<TokenChunk, 'timestamp'>[] {
  let previous = -Infinity;
  return chunks.map(({ timestamp, ...rest }) => {
    expect(timestamp).toBeGreaterThanOrEqual(previous);
    previous = timestamp;
    return rest;
  });
}

const meta = { model: MODEL, provider: 'google' };
const text = (index: number, token: string) => ({ token, index, type: 'text', ...meta });
const final = (index: number, finishReason: TokenChunk['finishReason'], usage?: TokenChunk['usage']) => ({
  token: '',
  index,
  type: 'text',
  finishReason,
  ...(usage === undefined ? {} : { usage }),
  ...meta,
});

async function* fromResponses(responses: unknown[]): AsyncGenerator<GoogleStreamResponse> {
  for (const response of responses) yield response as GoogleStreamResponse;
}

const create = (harness: Harness, signal?: AbortSignal) => streamGoogle(harness.client, PARAMS, signal ? { signal } : {});
const wrapped = async function* (harness: Harness, signal?: AbortSignal): AsyncGenerator<TokenChunk> {
  const stream = await harness.client.models.generateContentStream({ ...PARAMS, config: signal ? { abortSignal: signal } : {} });
  yield* fromGoogle(stream, signal ? { signal } : {});
};
const bothEntries = [
  ['streamGoogle', create],
  ['fromGoogle(generateContentStream)', wrapped],
] as const;

describe('googleGenerateContentWire', () => {
  const request: MockRequest = { api: 'google-generate-content', path: `/v1/models/${MODEL}:streamGenerateContent`, headers: {}, body: {} };

  it('writes the events exactly as the Gemini API sends them', () => {
    const wire = googleGenerateContentWire({ tokens: ['Hi'], usage: { inputTokens: 4, outputTokens: 1 } }, request);
    expect(wire.status).toBe(200);
    expect(wire.headers['content-type']).toBe('text/event-stream');
    expect(wire.frames?.map((frame) => frame.text).join('')).toBe(
      `data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1,"totalTokenCount":5,"promptTokensDetails":[{"modality":"TEXT","tokenCount":4}]},"modelVersion":"${MODEL}","responseId":"tRlYaPmOcKgEmInIrEsPoNsE"}\r\n\r\n` +
        `data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1,"totalTokenCount":5,"promptTokensDetails":[{"modality":"TEXT","tokenCount":4}]},"modelVersion":"${MODEL}","responseId":"tRlYaPmOcKgEmInIrEsPoNsE"}\r\n\r\n`,
    );
  });

  it("answers an http-error fault with Google's pretty-printed error and RetryInfo", () => {
    const wire = googleGenerateContentWire({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '37' } } }, request);
    expect(wire.status).toBe(429);
    expect(JSON.parse(wire.body ?? '')).toStrictEqual({
      error: {
        code: 429,
        message: 'Resource has been exhausted (e.g. check quota).',
        status: 'RESOURCE_EXHAUSTED',
        details: [
          { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '37s' },
        ],
      },
    });
    expect(wire.body).toContain('\n  "error": {\n');
  });

  it('speaks Vertex AI on /publishers/ paths: createTime, trafficType, no candidate index', () => {
    const wire = googleGenerateContentWire({ tokens: ['Hi'] }, { ...request, path: `/v1beta1/publishers/google/models/${MODEL}:streamGenerateContent` });
    const first = JSON.parse(wire.frames?.[0]?.text.slice('data: '.length) ?? '') as Record<string, unknown>;
    expect(first).toMatchObject({ createTime: '2026-01-01T00:00:00.000000Z', usageMetadata: { trafficType: 'ON_DEMAND' } });
    expect((first['candidates'] as Record<string, unknown>[])[0]).not.toHaveProperty('index');
  });
});

describe('fromGoogle / streamGoogle with the real @google/genai SDK', () => {
  it.each(bothEntries)('normalizes a text answer from POST /v1/models/…:streamGenerateContent (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['Hello', ',', ' world'], usage: { inputTokens: 12, outputTokens: 3 } });
    const { chunks, error } = await collect(start(harness));
    expect(error).toBeUndefined();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      text(0, 'Hello'),
      text(1, ','),
      text(2, ' world'),
      final(3, 'stop', { inputTokens: 12, outputTokens: 3 }),
    ]);
    expect(harness.urls[0]?.pathname).toBe(`/v1/models/${MODEL}:streamGenerateContent`);
    expect(harness.urls[0]?.searchParams.get('alt')).toBe('sse');
    expect(harness.requests[0]?.headers['x-goog-api-key']).toBe(API_KEY);
    expect(harness.requests[0]?.body).toMatchObject({ contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
    expect(harness.ends).toStrictEqual(['completed']);
  });

  it.each([
    ['Gemini API, apiVersion v1beta', { apiVersion: 'v1beta' }, `/v1beta/models/${MODEL}:streamGenerateContent`],
    ['Vertex AI express (API key)', { vertexai: true }, `/v1beta1/publishers/google/models/${MODEL}:streamGenerateContent`],
    ['Vertex AI, apiVersion v1', { vertexai: true, apiVersion: 'v1' }, `/v1/publishers/google/models/${MODEL}:streamGenerateContent`],
  ])('answers the %s route', async (_name, client, path) => {
    const harness = createHarness({ tokens: ['Bon', 'jour ☀️'], usage: { inputTokens: 3, outputTokens: 2 } }, { client });
    const { chunks, error } = await collect(create(harness));
    expect(error).toBeUndefined();
    expect(harness.urls[0]?.pathname).toBe(path);
    expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'Bon'), text(1, 'jour ☀️'), final(2, 'stop', { inputTokens: 3, outputTokens: 2 })]);
  });

  it('answers Vertex AI with a project and location (OAuth route)', async () => {
    const authClient = { getRequestHeaders: async () => new Headers({ authorization: 'Bearer ya29.mock' }) };
    const harness = createHarness(
      { tokens: ['ok'] },
      { client: { apiKey: undefined as never, vertexai: true, project: 'demo', location: 'us-central1', googleAuthOptions: { authClient } as never } },
    );
    const { chunks, error } = await collect(create(harness));
    expect(error).toBeUndefined();
    expect(harness.urls[0]?.href).toMatch(
      new RegExp(`^https://us-central1-aiplatform\\.googleapis\\.com/v1beta1/projects/demo/locations/us-central1/publishers/google/models/${MODEL}:streamGenerateContent\\?alt=sse$`),
    );
    expect(chunks.map((chunk) => chunk.token).join('')).toBe('ok');
  });

  it('keeps multibyte text, reasoning, calls and usage whole under random network splits', async () => {
    const script: MockScript = {
      reasoning: ['Réfléchis… ', '🤔'],
      tokens: ['Hé', '🙂🚀', '漢字', 'テスト', ' 👩‍👩‍👧', ' ½ €'],
      toolCalls: [{ name: 'météo', arguments: ['{"ville":', '"Zürich 🇨🇭"}'] }, { id: 'fc_2', name: 'heure', arguments: [] }],
      usage: { inputTokens: 40, outputTokens: 30, cachedInputTokens: 32, reasoningTokens: 12 },
    };
    const call = (index: number, id: string, name: string, token: string) => ({ token, index, type: 'tool-call', toolCall: { id, name, index: index - 8 }, ...meta });
    const expected = [
      { token: 'Réfléchis… ', index: 0, type: 'reasoning', ...meta },
      { token: '🤔', index: 1, type: 'reasoning', ...meta },
      ...['Hé', '🙂🚀', '漢字', 'テスト', ' 👩‍👩‍👧', ' ½ €'].map((token, index) => text(index + 2, token)),
      call(8, 'call_tRlYaPmOcKgEmInIrEsPoNsE_0', 'météo', '{"ville":"Zürich 🇨🇭"}'),
      call(9, 'fc_2', 'heure', '{}'),
      final(10, 'tool-calls', { inputTokens: 40, outputTokens: 30, cachedInputTokens: 32, reasoningTokens: 12 }),
    ];
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(...bothEntries), async (seed, [, start]) => {
        const harness = createHarness(script, { split: { seed } });
        const { chunks, error } = await collect(start(harness));
        expect(error).toBeUndefined();
        expect(withoutTimestamps(chunks)).toStrictEqual(expected);
      }),
      { seed: FAST_CHECK_SEED, numRuns: 12 },
    );
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'content-filter'],
  ] as const)('maps the emulated finish reason for %s back to %s', async (scripted, expected) => {
    const script: MockScript = { tokens: ['x'], finishReason: scripted, ...(scripted === 'tool-calls' ? { toolCalls: [{ name: 'f', arguments: ['{}'] }] } : {}) };
    const { chunks, error } = await collect(create(createHarness(script)));
    expect(error).toBeUndefined();
    expect(chunks.at(-1)?.finishReason).toBe(expected);
    expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toHaveLength(1);
  });

  it.each([
    [400, 'INVALID_ARGUMENT', false],
    [403, 'PERMISSION_DENIED', false],
    [429, 'RESOURCE_EXHAUSTED', true],
    [500, 'INTERNAL', true],
    [503, 'UNAVAILABLE', true],
  ] as const)('maps HTTP %i to a ProviderError (%s, retryable %s)', async (status, providerType, retryable) => {
    const harness = createHarness({ fault: { kind: 'http-error', status } });
    const { chunks, error } = await collect(create(harness));
    expect(chunks).toStrictEqual([]);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'provider', status, providerType, retryable, provider: 'google' });
    expect((error as Error).message).toMatch(new RegExp(`^Google request failed with status ${status}: \\S`));
    expect((error as Error).cause).toBeInstanceOf(ApiError);
    expect(harness.requests).toHaveLength(1);
  });

  it('reads retryAfterMs from the RetryInfo detail of a 429', async () => {
    const harness = createHarness({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '1.5' } } });
    const { error } = await collect(create(harness));
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 1500 });
  });

  it.each(bothEntries)('relays an error object mid-stream as a retryable ProviderError after the tokens before it (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b', 'c', 'd'], fault: { kind: 'error-event', afterTokens: 2 } });
    const { chunks, error } = await collect(start(harness));
    expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a'), text(1, 'b')]);
    expect(error).toMatchObject({
      name: 'ProviderError',
      message: 'Google stream failed with UNAVAILABLE: The model is overloaded. Please try again later.',
      status: undefined,
      retryable: true,
      providerType: 'UNAVAILABLE',
    });
    expect(harness.requests).toHaveLength(1);
  });

  it('treats an INVALID_ARGUMENT error object in the stream as not retryable', async () => {
    const harness = createHarness({ tokens: ['a'], fault: { kind: 'error-event', afterTokens: 0, type: 'INVALID_ARGUMENT', message: 'bad' } });
    const { chunks, error } = await collect(create(harness));
    expect(chunks).toStrictEqual([]);
    expect(error).toMatchObject({ retryable: false, providerType: 'INVALID_ARGUMENT', message: 'Google stream failed with INVALID_ARGUMENT: bad' });
  });

  it.each(bothEntries)('maps a reset mid-stream to a retryable ProviderError, without a hidden retry (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 1 } });
    const { chunks, error } = await collect(start(harness));
    expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a')]);
    expect(error).toMatchObject({ name: 'ProviderError', message: 'The connection to Google was lost', retryable: true, status: undefined });
    expect(harness.ends).toStrictEqual(['reset']);
    expect(harness.requests).toHaveLength(1);
  });

  it('maps a failed connection to a retryable ProviderError', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const { error } = await collect(create(createHarness({}, { fail: refused })));
    expect(error).toMatchObject({ name: 'ProviderError', retryable: true, status: undefined });
    expect((error as Error).cause).toBe(refused);
  });

  it.each(bothEntries)('fails a stream that closes before its finish reason (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b'] }, { edit: (wire) => ({ ...wire, frames: wire.frames?.slice(0, -1) }) });
    const { chunks, error } = await collect(start(harness));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', 'b']);
    expect(error).toMatchObject({ name: 'ProviderError', message: 'The stream ended before the provider finished', retryable: true });
  });

  it.each(bothEntries)('stops on abort mid-stream with StreamAbortedError and closes the request (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], fault: { kind: 'stall', afterTokens: 2 } });
    const controller = new AbortController();
    const reason = new Error('client went away');
    const chunks: TokenChunk[] = [];
    let error: unknown;
    try {
      for await (const chunk of start(harness, controller.signal)) {
        chunks.push(chunk);
        if (chunk.index === 1) setTimeout(() => controller.abort(reason), 5);
      }
    } catch (caught) {
      error = caught;
    }
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', 'b']);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
    expect(harness.ends).toStrictEqual(['aborted']);
    expect(harness.signals[0]?.aborted).toBe(true);
  });

  it('does not send the request when the signal has already fired', async () => {
    const harness = createHarness({ tokens: ['a'] });
    const controller = new AbortController();
    controller.abort('gone');
    const { error } = await collect(create(harness, controller.signal));
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect((error as Error).cause).toBe('gone');
    expect(harness.requests).toHaveLength(0);
  });

  it('cancels the HTTP request when the consumer breaks, which the SDK alone does not do', async () => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], delayMs: 1 });
    for await (const chunk of create(harness)) {
      expect(chunk.token).toBe('a');
      break;
    }
    // The request's own signal: fetch closes the connection (google-servers.test.ts sees it on the wire).
    expect(harness.signals[0]?.aborted).toBe(true);
  });

  it('links the signal and a config.abortSignal to the request, and leaves no listener on either', async () => {
    const added: string[] = [];
    const removed: string[] = [];
    const track = (name: string, signal: AbortSignal) => {
      const add = signal.addEventListener.bind(signal);
      const remove = signal.removeEventListener.bind(signal);
      signal.addEventListener = ((...args: Parameters<typeof add>) => (added.push(name), add(...args))) as typeof add;
      signal.removeEventListener = ((...args: Parameters<typeof remove>) => (removed.push(name), remove(...args))) as typeof remove;
      return signal;
    };
    const harness = createHarness({ tokens: ['a', 'b'], delayMs: 1 });
    const options = track('options', new AbortController().signal);
    const config = new AbortController();
    track('config', config.signal);
    const stream = streamGoogle(harness.client, { ...PARAMS, config: { abortSignal: config.signal, temperature: 0.2 } }, { signal: options });
    const first = await stream.next();
    expect(first.value).toMatchObject({ token: 'a' });
    expect(harness.requests[0]?.body).toMatchObject({ generationConfig: { temperature: 0.2 } });
    expect(harness.signals[0]).not.toBe(options);
    config.abort(new Error('config'));
    const { error } = await collect(stream);
    expect(isStreamAbortedError(error)).toBe(true);
    expect(harness.signals[0]?.aborted).toBe(true);
    expect(added.sort()).toStrictEqual(['config', 'options']);
    expect(removed.sort()).toStrictEqual(['config', 'options']);
  });

  it("reports the SDK's httpOptions.timeout as a retryable ProviderError, not as an abort", async () => {
    const harness = createHarness({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 1 } }, { timeout: 50 });
    const { chunks, error } = await collect(create(harness, new AbortController().signal));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a']);
    expect(error).toMatchObject({ name: 'ProviderError', message: 'Google request timed out', retryable: true });
  });

  it('never puts the API key in an error message, even when the provider echoes it', async () => {
    const faults: MockScript[] = [
      { fault: { kind: 'http-error', status: 400, message: `API key not valid: ${API_KEY}` } },
      { fault: { kind: 'http-error', status: 403, message: `https://x.example/?key=${API_KEY}&alt=sse` } },
      { tokens: ['a'], fault: { kind: 'error-event', afterTokens: 0, message: `leak ${API_KEY}` } },
    ];
    for (const script of faults) {
      const { error } = await collect(create(createHarness(script)));
      expect(isProviderError(error)).toBe(true);
      expect((error as Error).message).not.toContain('SECRET');
      expect(String((error as Error).stack)).not.toContain('SECRET');
      expect(JSON.stringify({ ...(error as object), cause: undefined })).not.toContain('SECRET');
    }
  });
});

describe('fromGoogle response mapping', () => {
  const candidate = (fields: Record<string, unknown>) => ({ candidates: [{ index: 0, ...fields }], modelVersion: MODEL });

  it.each([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content-filter'],
    ['RECITATION', 'content-filter'],
    ['BLOCKLIST', 'content-filter'],
    ['PROHIBITED_CONTENT', 'content-filter'],
    ['SPII', 'content-filter'],
    ['MALFORMED_FUNCTION_CALL', 'other'],
    ['LANGUAGE', 'other'],
    ['OTHER', 'other'],
    ['FINISH_REASON_UNSPECIFIED', 'other'],
    ['SOMETHING_NEW', 'other'],
  ])('maps finishReason %s to %s', async (finishReason, expected) => {
    const { chunks } = await collect(fromGoogle(fromResponses([candidate({ finishReason })])));
    expect(withoutTimestamps(chunks)).toStrictEqual([final(0, expected as TokenChunk['finishReason'])]);
  });

  it('maps a blocked prompt without candidates to content-filter, with its usage', async () => {
    const { chunks } = await collect(
      fromGoogle(fromResponses([{ promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 }, modelVersion: MODEL }])),
    );
    expect(withoutTimestamps(chunks)).toStrictEqual([final(0, 'content-filter', { inputTokens: 7, outputTokens: 0 })]);
  });

  it('maps usageMetadata: thoughts count in the output, tool-use prompts and the cache in the input', async () => {
    const usageMetadata = {
      promptTokenCount: 1000,
      cachedContentTokenCount: 800,
      candidatesTokenCount: 50,
      thoughtsTokenCount: 120,
      toolUsePromptTokenCount: 30,
      totalTokenCount: 1200,
    };
    const { chunks } = await collect(fromGoogle(fromResponses([candidate({ finishReason: 'STOP' }), { usageMetadata }])));
    expect(chunks.at(-1)?.usage).toStrictEqual({ inputTokens: 1030, outputTokens: 170, cachedInputTokens: 800, reasoningTokens: 120 });
  });

  it('relays thought parts as reasoning, ignores signatures, inline data and code results, and only candidate 0', async () => {
    const { chunks } = await collect(
      fromGoogle(
        fromResponses([
          candidate({ content: { role: 'model', parts: [{ text: 'Plan.', thought: true }, { text: '', thoughtSignature: 'sig' }] } }),
          { candidates: [{ index: 1, content: { parts: [{ text: 'other candidate' }] } }, { index: 0, content: { parts: [{ text: 'Hi' }] } }] },
          candidate({ content: { parts: [{ inlineData: { mimeType: 'image/png', data: 'iVBOR' } }, { codeExecutionResult: { outcome: 'OUTCOME_OK', output: '1' } }] } }),
          candidate({ finishReason: 'STOP' }),
        ]),
      ),
    );
    expect(withoutTimestamps(chunks)).toStrictEqual([
      { token: 'Plan.', index: 0, type: 'reasoning', ...meta },
      text(1, 'Hi'),
      final(2, 'stop'),
    ]);
  });

  it('gives calls without an id a stable one from the response id, and relays server tool calls as providerExecuted', async () => {
    const responses = [
      { ...candidate({ content: { parts: [{ functionCall: { name: 'a', args: { x: 1 } } }, { toolCall: { id: 'tc_1', toolType: 'GOOGLE_SEARCH_WEB', args: { q: 'x' } } }] } }), responseId: 'resp9' },
      candidate({ content: { parts: [{ functionCall: { name: 'b', args: {} } }] }, finishReason: 'STOP' }),
    ];
    const first = await collect(fromGoogle(fromResponses(responses)));
    const again = await collect(fromGoogle(fromResponses(responses)));
    expect(withoutTimestamps(first.chunks)).toStrictEqual(withoutTimestamps(again.chunks));
    expect(withoutTimestamps(first.chunks)).toStrictEqual([
      { token: '{"x":1}', index: 0, type: 'tool-call', toolCall: { id: 'call_resp9_0', name: 'a', index: 0 }, ...meta },
      { token: '{"q":"x"}', index: 1, type: 'tool-call', toolCall: { id: 'tc_1', name: 'google_search_web', index: 1, providerExecuted: true }, ...meta },
      { token: '{}', index: 2, type: 'tool-call', toolCall: { id: 'call_resp9_2', name: 'b', index: 2 }, ...meta },
      final(3, 'tool-calls'),
    ]);
  });

  it('ends with stop when only provider-executed tools ran', async () => {
    const { chunks } = await collect(
      fromGoogle(fromResponses([candidate({ content: { parts: [{ executableCode: { language: 'PYTHON', code: '1' } }] }, finishReason: 'STOP' })])),
    );
    expect(chunks.at(-1)?.finishReason).toBe('stop');
  });

  it('turns grounding chunks and citations into source chunks, each source once', async () => {
    const { chunks } = await collect(
      fromGoogle(
        fromResponses([
          candidate({
            content: { parts: [{ text: 'Tides.' }] },
            groundingMetadata: { groundingChunks: [{ web: { uri: 'https://a.example', title: 'a.example' } }, { maps: { uri: 'https://maps.example/p', title: 'Port' } }] },
          }),
          candidate({
            finishReason: 'STOP',
            groundingMetadata: { groundingChunks: [{ web: { uri: 'https://a.example', title: 'a.example' } }, { image: { sourceUri: 'https://img.example', title: 'Img' } }] },
            citationMetadata: { citations: [{ uri: 'https://c.example', title: 'C', startIndex: 0, endIndex: 5 }] },
          }),
        ]),
      ),
    );
    expect(withoutTimestamps(chunks).map((chunk) => chunk.source ?? chunk.token)).toStrictEqual([
      'Tides.',
      { url: 'https://a.example', title: 'a.example' },
      { url: 'https://maps.example/p', title: 'Port' },
      { url: 'https://img.example', title: 'Img' },
      { url: 'https://c.example', title: 'C' },
      '',
    ]);
  });

  it('calls return() on the source when the consumer breaks', async () => {
    let finished = false;
    async function* source(): AsyncGenerator<GoogleStreamResponse> {
      try {
        yield candidate({ content: { parts: [{ text: 'a' }] } }) as GoogleStreamResponse;
        await new Promise(() => {});
      } finally {
        finished = true;
      }
    }
    for await (const chunk of fromGoogle(source())) {
      expect(chunk.token).toBe('a');
      break;
    }
    expect(finished).toBe(true);
  });

  it('accepts the SDK response class as it is (getters are never read)', async () => {
    const response = Object.assign(Object.create({ get text() { throw new Error('getter read'); } }) as GenerateContentResponse, candidate({ finishReason: 'STOP' }));
    const { error } = await collect(fromGoogle(fromResponses([response])));
    expect(error).toBeUndefined();
  });
});

describe('argument checks', () => {
  const client = createHarness({}).client;

  it('rejects what is not a stream or a client', () => {
    expect(() => fromGoogle(null as never)).toThrow(new TypeError('Expected `stream` to be a Gemini stream (an async iterable), got null'));
    expect(() => fromGoogle(Promise.resolve() as never)).toThrow(/got a Promise \(did you forget `await`\?\)/);
    expect(() => streamGoogle(undefined as never, PARAMS)).toThrow(new TypeError('Expected `client` to be a GoogleGenAI client, got undefined'));
    expect(() => streamGoogle({} as never, PARAMS)).toThrow(
      new TypeError('Expected `client` to be a GoogleGenAI client with `models.generateContentStream`, got an object without it'),
    );
    expect(() => streamGoogle(client, 'hi' as never)).toThrow(new TypeError('Expected `params` to be the request parameters object, got "hi"'));
  });

  it('rejects unknown option keys and bad option values', () => {
    expect(() => streamGoogle(client, PARAMS, { signl: new AbortController().signal } as never)).toThrow(
      new TypeError('Unknown option `signl` in `options`; did you mean `signal`?'),
    );
    expect(() => fromGoogle(fromResponses([]), { signal: {} } as never)).toThrow(/`options.signal` to be an AbortSignal/);
    expect(() => fromGoogle(fromResponses([]), { provider: '' })).toThrow(/`options.provider` to be a non-empty string/);
  });

  it('lets errors the SDK raises for bad params through untouched', async () => {
    const { error } = await collect(streamGoogle(client, { model: '', contents: 'x' }));
    expect(isProviderError(error)).toBe(false);
    expect((error as Error).message).toBe('model is required and must be a string');
  });
});
