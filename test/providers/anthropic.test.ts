import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { ProviderError, StreamAbortedError, isProviderError, isStreamAbortedError, type TokenChunk } from 'tokenrelay';
import { fromAnthropic, streamAnthropic, type AnthropicStreamEvent } from 'tokenrelay/anthropic';
import { anthropicMessagesWire } from '../../src/testing/anthropic-wire.js';
import type { MockRequest, MockScript, WireResponse } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

const API_KEY = 'sk-ant-test-SECRET';
const MODEL = 'claude-haiku-4-5-20251001';
const PARAMS = { model: MODEL, max_tokens: 256, messages: [{ role: 'user' as const, content: 'Hi' }] };

type BodyEnd = 'completed' | 'reset' | 'cancelled' | 'aborted';

interface Harness {
  client: Anthropic;
  requests: MockRequest[];
  /** How each response body ended, as the emulated server saw it. */
  ends: BodyEnd[];
  /** The signal the SDK gave fetch, per request. */
  signals: AbortSignal[];
}

function createHarness(
  script: MockScript,
  options: { split?: { seed: number }; edit?: (wire: WireResponse) => WireResponse; fail?: Error } = {},
): Harness {
  const harness: Harness = { client: undefined as unknown as Anthropic, requests: [], ends: [], signals: [] };
  harness.client = new Anthropic({
    apiKey: API_KEY,
    maxRetries: 0,
    fetch: async (url, init) => {
      if (options.fail !== undefined) throw options.fail;
      const request = toMockRequest(url, init);
      harness.requests.push(request);
      const signal = init?.signal ?? undefined;
      if (signal) harness.signals.push(signal);
      const wire = anthropicMessagesWire(script, request);
      return wireToResponse(options.edit ? options.edit(wire) : wire, {
        signal,
        split: options.split,
        onEnd: (how) => harness.ends.push(how),
      });
    },
  });
  return harness;
}

function toMockRequest(url: string | URL | Request, init: RequestInit | undefined): MockRequest {
  const href = typeof url === 'string' ? url : url instanceof URL ? url.href : url.url;
  const headers = Object.fromEntries(new Headers(init?.headers));
  return {
    api: 'anthropic-messages',
    path: new URL(href).pathname,
    headers,
    body: JSON.parse(String(init?.body)) as Record<string, unknown>,
  };
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

/**
 * Checks the timestamps (non-decreasing numbers) and the early usage of the first chunk (the
 * input known at `message_start`, never more than the final chunk's), then drops both so the rest
 * compares exactly. The early usage itself is asserted exactly in its own test.
 */
function withoutTimestamps(chunks: TokenChunk[]): Omit<TokenChunk, 'timestamp'>[] {
  let previous = -Infinity;
  const last = chunks.at(-1);
  return chunks.map(({ timestamp, ...rest }) => {
    expect(typeof timestamp).toBe('number');
    expect(timestamp).toBeGreaterThanOrEqual(previous);
    previous = timestamp;
    if (rest.index === 0 && rest.finishReason === undefined && rest.usage !== undefined) {
      if (last?.usage !== undefined) {
        // Counts only grow: newer API versions also report input in message_delta.
        expect(rest.usage.inputTokens).toBeLessThanOrEqual(last.usage.inputTokens);
        expect(rest.usage.outputTokens).toBeLessThanOrEqual(last.usage.outputTokens);
      }
      const { usage: _early, ...withoutUsage } = rest;
      return withoutUsage;
    }
    return rest;
  });
}

const meta = { model: MODEL, provider: 'anthropic' };

function text(index: number, token: string): Omit<TokenChunk, 'timestamp'> {
  return { token, index, type: 'text', ...meta };
}

function final(index: number, finishReason: TokenChunk['finishReason'], usage: TokenChunk['usage']) {
  return { token: '', index, type: 'text', finishReason, usage, ...meta };
}

async function* fromEvents(events: unknown[]): AsyncGenerator<AnthropicStreamEvent> {
  for (const event of events) yield event as AnthropicStreamEvent;
}

function messageStart(usage: Record<string, number>) {
  return { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: MODEL, content: [], usage } };
}

const streamCreate = (harness: Harness, signal = new AbortController().signal) =>
  streamAnthropic(harness.client, PARAMS, { signal });

const messageStream = (harness: Harness, signal?: AbortSignal) =>
  fromAnthropic(harness.client.messages.stream(PARAMS, signal ? { signal } : {}), signal ? { signal } : {});

const bothApis = [
  ['messages.create({ stream: true })', streamCreate],
  ['messages.stream()', (harness: Harness, signal?: AbortSignal) => messageStream(harness, signal)],
] as const;

describe('anthropicMessagesWire', () => {
  it('writes the frames exactly as the API sends them', () => {
    const wire = anthropicMessagesWire(
      { tokens: ['Hi'], usage: { inputTokens: 10, outputTokens: 2 } },
      { api: 'anthropic-messages', path: '/v1/messages', headers: {}, body: { model: MODEL, stream: true } },
    );
    expect(wire.status).toBe(200);
    expect(wire.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(wire.end).toBe('close');
    expect(wire.frames?.map((frame) => frame.text).join('')).toBe(
      'event: message_start\n' +
        `data: {"type":"message_start","message":{"id":"msg_01TokenRelayMockMessage000","type":"message","role":"assistant","model":"${MODEL}","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n` +
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
        'event: ping\ndata: {"type": "ping"}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n' +
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}\n\n' +
        'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });

  it('answers an http-error fault with the API error body and no frames', () => {
    const wire = anthropicMessagesWire(
      { fault: { kind: 'http-error', status: 529 } },
      { api: 'anthropic-messages', path: '/v1/messages', headers: {}, body: { model: MODEL, stream: true } },
    );
    expect(wire).toStrictEqual({
      status: 529,
      headers: { 'content-type': 'application/json', 'request-id': 'req_01TokenRelayMockRequest000' },
      body: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_01TokenRelayMockRequest000"}',
    });
  });
});

describe('fromAnthropic / streamAnthropic with the real SDK', () => {
  it.each(bothApis)('normalizes a text answer (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['Hello', ',', ' world'], usage: { inputTokens: 12, outputTokens: 3 } });
    const { chunks, error } = await collect(start(harness));
    expect(error).toBeUndefined();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      text(0, 'Hello'),
      text(1, ','),
      text(2, ' world'),
      final(3, 'stop', { inputTokens: 12, outputTokens: 3 }),
    ]);
    expect(harness.requests).toHaveLength(1);
    expect(harness.requests[0]?.path).toBe('/v1/messages');
    expect(harness.requests[0]?.body).toMatchObject({ ...PARAMS, stream: true });
    expect(harness.ends).toStrictEqual(['completed']);
  });

  it('puts the usage known at message_start on the first chunk, so a stream cut short keeps its input tokens', async () => {
    const harness = createHarness({
      tokens: ['Hel', 'lo', '!'],
      usage: { inputTokens: 1200, outputTokens: 3, cachedInputTokens: 1000 },
    });
    const chunks: TokenChunk[] = [];
    for await (const chunk of streamAnthropic(harness.client, PARAMS, { signal: new AbortController().signal })) {
      chunks.push(chunk);
      if (chunks.length === 2) break;
    }
    expect(chunks[0]?.usage).toStrictEqual({ inputTokens: 1200, outputTokens: 1, cachedInputTokens: 1000 });
    expect(chunks[1]?.usage).toBeUndefined();
  });

  it('accepts the Stream of messages.create({ stream: true }) directly', async () => {
    const harness = createHarness({ tokens: ['A', 'B'] });
    const stream = await harness.client.messages.create({ ...PARAMS, stream: true });
    const { chunks, error } = await collect(fromAnthropic(stream, { provider: 'claude' }));
    expect(error).toBeUndefined();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      { token: 'A', index: 0, type: 'text', model: MODEL, provider: 'claude' },
      { token: 'B', index: 1, type: 'text', model: MODEL, provider: 'claude' },
      { token: '', index: 2, type: 'text', finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 2 }, model: MODEL, provider: 'claude' },
    ]);
  });

  it('leaves a MessageStream complete, so finalMessage() still resolves', async () => {
    const harness = createHarness({ tokens: ['Hel', 'lo'] });
    const stream = harness.client.messages.stream(PARAMS);
    const { chunks } = await collect(fromAnthropic(stream));
    expect(chunks.map((chunk) => chunk.token).join('')).toBe('Hello');
    const message = await stream.finalMessage();
    expect(message.content).toStrictEqual([{ type: 'text', text: 'Hello' }]);
    expect(stream.aborted).toBe(false);
  });

  const multibyte = ['Hé', '🙂🚀', '漢字', 'テスト', ' 👩‍👩‍👧', ' ½ €'];
  for (const seed of [1, 2, 3, 42, 2024]) {
    it.each(bothApis)(`keeps multibyte text whole when bytes are split at random (seed ${seed}, %s)`, async (_name, start) => {
      const harness = createHarness({ tokens: multibyte }, { split: { seed } });
      const { chunks, error } = await collect(start(harness));
      expect(error).toBeUndefined();
      expect(withoutTimestamps(chunks)).toStrictEqual([
        ...multibyte.map((token, index) => text(index, token)),
        final(multibyte.length, 'stop', { inputTokens: 12, outputTokens: multibyte.length }),
      ]);
    });
  }

  it.each(bothApis)('turns thinking into reasoning chunks and ignores the signature (%s)', async (_name, start) => {
    const harness = createHarness({
      reasoning: ['Let me', ' think.'],
      tokens: ['42'],
      usage: { inputTokens: 20, outputTokens: 9, reasoningTokens: 6 },
    });
    const { chunks, error } = await collect(start(harness));
    expect(error).toBeUndefined();
    expect(withoutTimestamps(chunks)).toStrictEqual([
      { token: 'Let me', index: 0, type: 'reasoning', ...meta },
      { token: ' think.', index: 1, type: 'reasoning', ...meta },
      text(2, '42'),
      final(3, 'stop', { inputTokens: 20, outputTokens: 9, reasoningTokens: 6 }),
    ]);
  });

  it.each(bothApis)('streams two tool calls with their input_json_delta fragments (%s)', async (_name, start) => {
    const harness = createHarness({
      tokens: ['Checking.'],
      toolCalls: [
        { name: 'get_weather', arguments: ['', '{"city":', ' "Paris"}'] },
        { id: 'toolu_01Custom', name: 'get_time', arguments: ['{"tz"', ':"CET"}'] },
      ],
    });
    const { chunks, error } = await collect(start(harness));
    expect(error).toBeUndefined();
    const weather = { id: 'toolu_0', name: 'get_weather', index: 0 };
    const time = { id: 'toolu_01Custom', name: 'get_time', index: 1 };
    expect(withoutTimestamps(chunks)).toStrictEqual([
      text(0, 'Checking.'),
      { token: '', index: 1, type: 'tool-call', toolCall: weather, ...meta },
      { token: '{"city":', index: 2, type: 'tool-call', toolCall: weather, ...meta },
      { token: ' "Paris"}', index: 3, type: 'tool-call', toolCall: weather, ...meta },
      { token: '{"tz"', index: 4, type: 'tool-call', toolCall: time, ...meta },
      { token: ':"CET"}', index: 5, type: 'tool-call', toolCall: time, ...meta },
      final(6, 'tool-calls', { inputTokens: 12, outputTokens: 6 }),
    ]);
  });

  it.each(bothApis)('counts cache reads into inputTokens and reports them as cachedInputTokens (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['ok'], usage: { inputTokens: 1000, outputTokens: 4, cachedInputTokens: 900 } });
    const { chunks } = await collect(start(harness));
    expect(harness.requests).toHaveLength(1);
    expect(withoutTimestamps(chunks).at(-1)).toStrictEqual(
      final(1, 'stop', { inputTokens: 1000, outputTokens: 4, cachedInputTokens: 900 }),
    );
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'content-filter'],
  ] as const)('maps the emulated stop reason for %s back to %s', async (scripted, expected) => {
    const harness = createHarness({ tokens: ['x'], finishReason: scripted });
    const { chunks, error } = await collect(streamCreate(harness));
    expect(error).toBeUndefined();
    expect(chunks.at(-1)?.finishReason).toBe(expected);
    expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toHaveLength(1);
  });

  it.each(bothApis)('relays an overloaded error event mid-stream as a retryable ProviderError (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b', 'c', 'd'], fault: { kind: 'error-event', afterTokens: 2 } });
    const { chunks, error } = await collect(start(harness));
    expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a'), text(1, 'b')]);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({
      code: 'provider',
      message: 'Anthropic stream failed with overloaded_error: Overloaded',
      retryable: true,
      providerType: 'overloaded_error',
      status: undefined,
      provider: 'anthropic',
    });
    expect((error as Error).cause).toBeInstanceOf(Anthropic.APIError);
  });

  it('treats an invalid_request_error event as not retryable', async () => {
    const harness = createHarness({
      tokens: ['a'],
      fault: { kind: 'error-event', afterTokens: 0, type: 'invalid_request_error', message: 'bad' },
    });
    const { chunks, error } = await collect(streamCreate(harness));
    expect(chunks).toStrictEqual([]);
    expect(error).toMatchObject({ retryable: false, providerType: 'invalid_request_error' });
  });

  it.each(bothApis)('maps HTTP 401 to a non-retryable ProviderError (%s)', async (_name, start) => {
    const harness = createHarness({ fault: { kind: 'http-error', status: 401 } });
    const { chunks, error } = await collect(start(harness));
    expect(chunks).toStrictEqual([]);
    expect(isProviderError(error)).toBe(true);
    expect(error).toMatchObject({
      message: 'Anthropic request failed with status 401: invalid x-api-key',
      status: 401,
      retryable: false,
      providerType: 'authentication_error',
      retryAfterMs: undefined,
    });
    expect((error as Error).cause).toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it.each(bothApis)('maps HTTP 429 with retry-after to a retryable ProviderError with retryAfterMs (%s)', async (_name, start) => {
    const harness = createHarness({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '2' } } });
    const { error } = await collect(start(harness));
    expect(error).toMatchObject({
      status: 429,
      retryable: true,
      providerType: 'rate_limit_error',
      retryAfterMs: 2000,
    });
    expect(harness.requests).toHaveLength(1);
  });

  it('prefers retry-after-ms and reads retry-after as an HTTP date', async () => {
    const inMs = createHarness({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': '9' } } });
    expect((await collect(streamCreate(inMs))).error).toMatchObject({ retryAfterMs: 1500 });
    const date = new Date(Date.now() + 60_000).toUTCString();
    const asDate = createHarness({ fault: { kind: 'http-error', status: 503, headers: { 'retry-after': date } } });
    const { error } = await collect(streamCreate(asDate));
    expect((error as ProviderError).retryAfterMs).toBeGreaterThan(55_000);
    expect((error as ProviderError).retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('maps HTTP 529 to a retryable overloaded ProviderError', async () => {
    const harness = createHarness({ fault: { kind: 'http-error', status: 529 } });
    const { error } = await collect(streamCreate(harness));
    expect(error).toMatchObject({
      message: 'Anthropic request failed with status 529: Overloaded',
      status: 529,
      retryable: true,
      providerType: 'overloaded_error',
    });
  });

  it('lets x-should-retry override the status', async () => {
    const harness = createHarness({ fault: { kind: 'http-error', status: 500, headers: { 'x-should-retry': 'false' } } });
    const { error } = await collect(streamCreate(harness));
    expect(error).toMatchObject({ status: 500, retryable: false, providerType: 'api_error' });
  });

  it('maps a failed connection to a retryable ProviderError without status', async () => {
    const harness = createHarness({}, { fail: new TypeError('fetch failed') });
    const { error } = await collect(streamCreate(harness));
    expect(error).toMatchObject({ message: 'Could not connect to Anthropic', retryable: true, status: undefined });
    expect((error as Error).cause).toBeInstanceOf(Anthropic.APIConnectionError);
  });

  it.each([
    ['before the first read', { fault: { kind: 'http-error', status: 529 } }, [], { status: 529, providerType: 'overloaded_error' }],
    ['between reads', { tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1 } }, ['a'], { providerType: 'overloaded_error' }],
  ] as const)('reports a MessageStream failure that happened %s', async (_when, script, tokens, expected) => {
    const harness = createHarness(script as MockScript);
    const stream = harness.client.messages.stream(PARAMS);
    const chunks = fromAnthropic(stream);
    const seen: string[] = [];
    let error: unknown;
    try {
      for (;;) {
        // A slow consumer: the MessageStream fails while nothing awaits its iterator.
        await new Promise((resolve) => setTimeout(resolve, 20));
        const next = await chunks.next();
        if (next.done) break;
        seen.push(next.value.token);
      }
    } catch (caught) {
      error = caught;
    }
    expect(stream.errored).toBe(true);
    expect(seen).toStrictEqual(tokens);
    expect(error).toMatchObject({ name: 'ProviderError', retryable: true, ...expected });
  });

  it.each(bothApis)('maps a reset mid-stream to a retryable ProviderError (%s)', async (_name, start) => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 1 } });
    const { chunks, error } = await collect(start(harness));
    expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a')]);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ message: 'The connection to Anthropic was lost', retryable: true, status: undefined });
    expect(harness.ends).toStrictEqual(['reset']);
  });

  it.each(bothApis)('fails a stream that closes before message_stop (%s)', async (_name, start) => {
    const harness = createHarness(
      { tokens: ['a', 'b'] },
      { edit: (wire) => ({ ...wire, frames: wire.frames?.slice(0, -2) }) },
    );
    const { chunks, error } = await collect(start(harness));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', 'b']);
    expect(error).toMatchObject({
      name: 'ProviderError',
      message: 'The stream ended before the provider finished',
      retryable: true,
    });
  });

  it.each(bothApis)('stops on abort mid-stream with StreamAbortedError and cancels the body (%s)', async (_name, start) => {
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
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
    expect(harness.ends).toStrictEqual(['aborted']);
    expect(harness.signals[0]?.aborted).toBe(true);
  });

  it('stops on abort during a pause between deltas', async () => {
    const harness = createHarness({ tokens: ['a', 'b'], delayMs: 10_000, firstTokenDelayMs: 0 });
    const controller = new AbortController();
    const stream = streamCreate(harness, controller.signal);
    const first = await stream.next();
    expect(first.value).toMatchObject({ token: 'a' });
    setTimeout(() => controller.abort(), 5);
    await expect(stream.next()).rejects.toBeInstanceOf(StreamAbortedError);
    expect(harness.ends).toStrictEqual(['aborted']);
  });

  it('does not send the request when the signal has already fired', async () => {
    const harness = createHarness({ tokens: ['a'] });
    const controller = new AbortController();
    controller.abort('gone');
    const { error } = await collect(streamCreate(harness, controller.signal));
    expect(error).toBeInstanceOf(StreamAbortedError);
    expect((error as Error).cause).toBe('gone');
    expect(harness.requests).toHaveLength(0);
  });

  it('cancels the SDK request when the consumer breaks (messages.create)', async () => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], delayMs: 1 });
    const seen: string[] = [];
    for await (const chunk of streamCreate(harness)) {
      seen.push(chunk.token);
      break;
    }
    expect(seen).toStrictEqual(['a']);
    expect(harness.signals[0]?.aborted).toBe(true);
    expect(harness.ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(harness.ends[0]);
  });

  it('aborts the MessageStream when the consumer breaks', async () => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], delayMs: 1 });
    const stream = harness.client.messages.stream(PARAMS);
    for await (const chunk of fromAnthropic(stream)) {
      expect(chunk.token).toBe('a');
      break;
    }
    await expect(stream.done()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    expect(stream.aborted).toBe(true);
    expect(harness.signals[0]?.aborted).toBe(true);
    expect(harness.ends).toHaveLength(1);
    expect(['cancelled', 'aborted']).toContain(harness.ends[0]);
  });

  it('never puts the API key in an error message, even when the provider echoes it', async () => {
    const faults: MockScript[] = [
      { fault: { kind: 'http-error', status: 401, message: `invalid x-api-key: ${API_KEY}` } },
      { fault: { kind: 'http-error', status: 400, message: `bad key ${API_KEY} in request` } },
      { tokens: ['a'], fault: { kind: 'error-event', afterTokens: 0, message: `leak ${API_KEY}` } },
      { tokens: ['a'], fault: { kind: 'reset', afterTokens: 1 } },
    ];
    for (const script of faults) {
      for (const [, start] of bothApis) {
        const harness = createHarness(script);
        const { error } = await collect(start(harness));
        expect(isProviderError(error)).toBe(true);
        expect(JSON.stringify(harness.requests[0]?.headers)).toContain(API_KEY);
        expect((error as Error).message).not.toContain('SECRET');
        expect(String((error as Error).stack)).not.toContain('SECRET');
        expect(JSON.stringify({ ...(error as object), cause: undefined })).not.toContain('SECRET');
      }
    }
  });
});

describe('fromAnthropic event mapping', () => {
  const start = messageStart({ input_tokens: 5, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool-calls'],
    ['refusal', 'content-filter'],
    ['pause_turn', 'other'],
    ['something_new', 'other'],
  ])('maps stop_reason %s to %s', async (stopReason, expected) => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start,
          { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 3 } },
          { type: 'message_stop' },
        ]),
      ),
    );
    expect(withoutTimestamps(chunks)).toStrictEqual([final(0, expected as TokenChunk['finishReason'], { inputTokens: 5, outputTokens: 3 })]);
  });

  it('ignores ping, signature and unknown citation deltas, and takes cumulative usage from message_delta', async () => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start,
          { type: 'ping' },
          { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
          { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'hm' } },
          { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } },
          { type: 'content_block_stop', index: 0 },
          { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
          { type: 'content_block_delta', index: 1, delta: { type: 'citations_delta', citation: {} } },
          { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Hi' } },
          { type: 'ping' },
          { type: 'content_block_stop', index: 1 },
          {
            type: 'message_delta',
            delta: { stop_reason: 'end_turn', stop_sequence: null },
            usage: { input_tokens: 7, cache_read_input_tokens: 30, cache_creation_input_tokens: 3, output_tokens: 11 },
          },
          { type: 'message_stop' },
        ]),
      ),
    );
    expect(withoutTimestamps(chunks)).toStrictEqual([
      { token: 'hm', index: 0, type: 'reasoning', ...meta },
      text(1, 'Hi'),
      final(2, 'stop', { inputTokens: 40, outputTokens: 11, cachedInputTokens: 30 }),
    ]);
  });

  it('numbers tool calls among tool_use and server_tool_use blocks, not by content block', async () => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start,
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          { type: 'content_block_stop', index: 0 },
          { type: 'content_block_start', index: 1, content_block: { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} } },
          { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"query":"x"}' } },
          { type: 'content_block_stop', index: 1 },
          { type: 'content_block_start', index: 2, content_block: { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [] } },
          { type: 'content_block_stop', index: 2 },
          { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'toolu_9', name: 'lookup', input: {} } },
          { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{}' } },
          { type: 'content_block_stop', index: 3 },
          { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 9 } },
          { type: 'message_stop' },
        ]),
      ),
    );
    expect(withoutTimestamps(chunks)).toStrictEqual([
      { token: '{"query":"x"}', index: 0, type: 'tool-call', toolCall: { id: 'srvtoolu_1', name: 'web_search', index: 0, providerExecuted: true }, ...meta },
      { token: '{}', index: 1, type: 'tool-call', toolCall: { id: 'toolu_9', name: 'lookup', index: 1 }, ...meta },
      final(2, 'tool-calls', { inputTokens: 5, outputTokens: 9 }),
    ]);
  });

  it('throws a ProviderError for an error event that reaches it', async () => {
    const { chunks, error } = await collect(
      fromAnthropic(fromEvents([start, { type: 'error', error: { type: 'api_error', message: 'Internal server error' } }])),
    );
    expect(chunks).toStrictEqual([]);
    expect(error).toMatchObject({
      name: 'ProviderError',
      message: 'Anthropic stream failed with api_error: Internal server error',
      retryable: true,
      providerType: 'api_error',
    });
  });

  it('recognises the error event as older SDKs throw it (an APIConnectionError carrying the JSON)', async () => {
    const legacy = new Error('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
    legacy.name = 'APIConnectionError';
    async function* source(): AsyncGenerator<AnthropicStreamEvent> {
      yield* fromEvents([start]);
      throw legacy;
    }
    const { error } = await collect(fromAnthropic(source()));
    expect(error).toMatchObject({
      message: 'Anthropic stream failed with overloaded_error: Overloaded',
      retryable: true,
      providerType: 'overloaded_error',
    });
    expect((error as Error).cause).toBe(legacy);
  });

  it('calls return() on the source when the consumer breaks', async () => {
    let finished = false;
    async function* source(): AsyncGenerator<AnthropicStreamEvent> {
      try {
        yield* fromEvents([start, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'a' } }]);
        await new Promise(() => {});
      } finally {
        finished = true;
      }
    }
    for await (const chunk of fromAnthropic(source())) {
      expect(chunk.token).toBe('a');
      break;
    }
    expect(finished).toBe(true);
  });

  it('fails fast on arguments that are not streams', () => {
    expect(() => fromAnthropic(null as never)).toThrow(new TypeError('Expected `stream` to be an Anthropic SDK stream (an async iterable), got null'));
  });

  it('rejects a client without messages.create at once', () => {
    expect(() => streamAnthropic({} as never, PARAMS, { signal: new AbortController().signal })).toThrow(
      new TypeError('Expected `client` to be an Anthropic client with `messages.create`, got object'),
    );
  });
});
