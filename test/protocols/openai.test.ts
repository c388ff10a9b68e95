// The 'openai' encoder, table by table (the tables of docs/protocols.md): chunk → delta, finish
// reason → finish_reason or error frame, usage, errors, and what Chat Completions cannot express.
import { describe, expect, it, vi } from 'vitest';
import { ProviderError, StreamTimeoutError, type FinishReason, type TokenChunk } from 'tokenrelay';
import { StreamLimitError } from 'tokenrelay/relay';
import { InvalidRequestError, readChatCompletionRequest } from 'tokenrelay/protocols';
import { chatCompletionsProtocol } from '../../src/protocols/openai.js';
import { protocolNamed } from '../../src/protocols/index.js';

const chunk = (fields: Partial<TokenChunk> & { index: number }): TokenChunk => ({ token: '', timestamp: 0, type: 'text', ...fields });

interface Frame {
  raw: string;
  data: string | undefined;
  json: Record<string, any> | undefined;
}

function framesOf(text: string): Frame[] {
  expect(text.endsWith('\n\n') || text === '').toBe(true);
  return text
    .split('\n\n')
    .filter((frame) => frame !== '')
    .map((raw) => {
      const data = raw
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      const json = data === '' || data === '[DONE]' ? undefined : (JSON.parse(data) as Record<string, any>);
      return { raw, data: data === '' ? undefined : data, json };
    });
}

function encode(chunks: TokenChunk[], options: { signal?: AbortSignal; end?: 'end' | Error; exposeErrors?: boolean } = {}): Frame[] {
  const encoder = chatCompletionsProtocol().encoder({ exposeErrors: options.exposeErrors ?? false, signal: options.signal });
  let text = encoder.open();
  for (const each of chunks) text += encoder.chunk(each);
  if (options.end === 'end') text += encoder.end();
  else if (options.end instanceof Error) text += encoder.error(options.end);
  return framesOf(text);
}

const deltas = (frames: Frame[]) => frames.filter((frame) => frame.json?.['choices']?.length === 1).map((frame) => frame.json?.['choices'][0].delta);

describe("'openai' protocol: chunks to Chat Completions chunks", () => {
  it('is in the registry under its name, with SSE headers and a comment heartbeat', () => {
    const protocol = protocolNamed('openai', {});
    expect(protocol?.name).toBe('openai');
    expect(protocol?.headers).toEqual({ 'Content-Type': 'text/event-stream; charset=utf-8' });
    expect(protocol?.heartbeat).toBe(': ping\n\n');
    expect(protocolNamed('openai', { retryMs: 1500 })?.encoder({ exposeErrors: false }).open()).toBe('retry: 1500\n\n');
  });

  it('maps text, reasoning and tool calls to delta fields; role on the first delta only', () => {
    const frames = encode([
      chunk({ index: 0, type: 'reasoning', token: 'Think' }),
      chunk({ index: 1, type: 'text', token: 'Hé🙂' }),
      chunk({ index: 2, type: 'tool-call', token: '{"a":', toolCall: { id: 'call_A', name: 'lookup', index: 3 } }),
      chunk({ index: 3, type: 'tool-call', token: '1}', toolCall: { id: 'call_A', name: 'lookup', index: 3 } }),
      chunk({ index: 4, type: 'tool-call', token: '', toolCall: { id: 'call_B', name: 'now', index: 5 } }),
      chunk({ index: 5, type: 'tool-call', token: '', toolCall: { id: 'call_B', name: 'now', index: 5 } }),
      chunk({ index: 6, type: 'text', token: '' }),
      chunk({ index: 7, token: '', finishReason: 'tool-calls' }),
    ]);
    expect(deltas(frames)).toEqual([
      { role: 'assistant', reasoning_content: 'Think' },
      { content: 'Hé🙂' },
      { tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'lookup', arguments: '{"a":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '1}' } }] },
      // Dense indexes in order of first appearance, whatever the chunk's own index counted.
      { tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'now', arguments: '' } }] },
      {},
    ]);
    expect(frames.at(-1)?.data).toBe('[DONE]');
    const last = frames.at(-2)?.json;
    expect(last?.['choices'][0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' });
  });

  it('keeps id, object, created and model stable across the stream', () => {
    const frames = encode(
      [chunk({ index: 0, token: 'a', model: 'claude-x' }), chunk({ index: 1, token: 'b', model: 'other' }), chunk({ index: 2, finishReason: 'stop' })],
    ).filter((frame) => frame.json !== undefined);
    expect(frames).toHaveLength(3);
    const [first] = frames;
    expect(first?.json?.['id']).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(Number.isInteger(first?.json?.['created'])).toBe(true);
    for (const frame of frames) {
      expect(frame.json).toMatchObject({ id: first?.json?.['id'], object: 'chat.completion.chunk', created: first?.json?.['created'], model: 'claude-x' });
    }
    const other = encode([chunk({ index: 0, token: 'a' })]);
    expect(other[0]?.json?.['id']).not.toBe(first?.json?.['id']);
  });

  it("uses the request's model when the chunks have none, and sends the usage-only chunk only when asked", () => {
    const usage = { inputTokens: 12, outputTokens: 5, cachedInputTokens: 4, reasoningTokens: 2 };
    const wanted = new AbortController();
    readChatCompletionRequest({ model: 'gpt-4o-mini', messages: [], stream: true, stream_options: { include_usage: true } }, { signal: wanted.signal });
    const chunks = [chunk({ index: 0, token: 'Hi' }), chunk({ index: 1, finishReason: 'stop', usage })];
    const frames = encode(chunks, { signal: wanted.signal });
    const chatUsage = {
      prompt_tokens: 12,
      completion_tokens: 5,
      total_tokens: 17,
      prompt_tokens_details: { cached_tokens: 4 },
      completion_tokens_details: { reasoning_tokens: 2 },
    };
    expect(frames.map((frame) => frame.json?.['model'])).toEqual(['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', undefined]);
    expect(frames[1]?.json).toMatchObject({ choices: [{ finish_reason: 'stop' }], usage: chatUsage });
    expect(frames[2]?.json).toMatchObject({ choices: [], usage: chatUsage });
    expect(frames[3]?.data).toBe('[DONE]');

    const unasked = new AbortController();
    readChatCompletionRequest({ model: 'gpt-4o-mini', messages: [], stream: true }, { signal: unasked.signal });
    const plain = encode(chunks, { signal: unasked.signal });
    expect(plain.map((frame) => frame.json?.['choices']?.length)).toEqual([1, 1, undefined]);
    expect(plain[1]?.json?.['usage']).toEqual(chatUsage);
    expect(plain[0]?.json).not.toHaveProperty('usage');
  });

  it('ends a source that stops without a finish reason with finish_reason stop, the last usage and [DONE]', () => {
    const frames = encode([chunk({ index: 0, token: 'x', usage: { inputTokens: 1, outputTokens: 1 } })], { end: 'end' });
    expect(frames[1]?.json?.['choices'][0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    expect(frames[1]?.json?.['usage']).toEqual({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
    expect(frames[2]?.data).toBe('[DONE]');
    // An empty stream still says who speaks: the SDK's finalChatCompletion needs the role.
    expect(encode([], { end: 'end' })[0]?.json?.['choices'][0]).toEqual({ index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: 'stop' });
  });

  const finishTable: Array<[FinishReason, string | { code: string }]> = [
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool_calls'],
    ['content-filter', 'content_filter'],
    ['other', 'stop'],
    ['error', { code: 'provider' }],
    ['aborted', { code: 'aborted' }],
    ['timeout', { code: 'timeout' }],
  ];
  it.each(finishTable)('finish reason %s → %o', (reason, expected) => {
    const frames = encode([chunk({ index: 0, token: 'last', finishReason: reason })]);
    expect(frames.at(-1)?.data).toBe('[DONE]');
    if (typeof expected === 'string') {
      expect(frames).toHaveLength(2);
      expect(frames[0]?.json?.['choices'][0]).toEqual({ index: 0, delta: { role: 'assistant', content: 'last' }, logprobs: null, finish_reason: expected });
    } else {
      // The text is not lost; the end is an error the SDK throws, not a success.
      expect(frames).toHaveLength(3);
      expect(frames[0]?.json?.['choices'][0].finish_reason).toBeNull();
      expect(frames[1]?.json).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: expected.code } });
    }
  });

  const errorTable: Array<[string, unknown, { type: string; code: string; message: string }]> = [
    ['a provider 429', new ProviderError('Rate limited', { status: 429 }), { type: 'rate_limit_error', code: 'provider', message: 'The provider failed' }],
    ['a provider 400', new ProviderError('Bad', { status: 400 }), { type: 'invalid_request_error', code: 'provider', message: 'The provider failed' }],
    ['a provider 529', new ProviderError('Overloaded', { status: 529 }), { type: 'server_error', code: 'provider', message: 'The provider failed' }],
    ['a timeout', new StreamTimeoutError('idle', 100), { type: 'server_error', code: 'timeout', message: expect.any(String) as unknown as string }],
    ['a stream limit', new StreamLimitError('Too many streams'), { type: 'rate_limit_error', code: 'limit', message: 'Too many streams' }],
    ['a bug', new Error('secret stack'), { type: 'server_error', code: 'internal', message: 'Internal error' }],
  ];
  it.each(errorTable)('an error after the first byte (%s) is an error frame, then [DONE]', (_name, error, expected) => {
    const frames = encode([chunk({ index: 0, token: 'partial' })], { end: error as Error });
    expect(frames).toHaveLength(3);
    expect(frames[1]?.json).toEqual({ error: { ...expected, param: null } });
    expect(frames[1]?.raw).not.toMatch(/^event:/m);
    expect(frames[2]?.data).toBe('[DONE]');
  });

  it('exposes the provider message only when asked', () => {
    const frames = encode([], { end: new ProviderError('upstream said no', { status: 500 }), exposeErrors: true });
    expect(frames[0]?.json?.['error'].message).toBe('upstream said no');
  });

  it('answers early errors with OpenAI error JSON, and shutdown with an error frame and [DONE]', () => {
    const protocol = chatCompletionsProtocol();
    expect(JSON.parse(protocol.errorBody({ code: 'provider', message: 'The provider failed', status: 429, retryAfterMs: 2000 }))).toEqual({
      error: { message: 'The provider failed', type: 'rate_limit_error', param: null, code: 'provider' },
    });
    const frames = framesOf(protocol.shutdownFrame({ retryMs: 2000, message: 'The server is restarting' }));
    expect(frames[0]?.raw).toMatch(/^retry: 2000$/m);
    expect(frames[0]?.json).toEqual({ error: { message: 'The server is restarting', type: 'server_error', param: null, code: 'shutdown' } });
    expect(frames[1]?.data).toBe('[DONE]');
  });

  it('drops what Chat Completions cannot express (sources, provider-executed tool calls) and counts it', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const frames = encode(
      [
        chunk({ index: 0, type: 'source', source: { url: 'https://a.example', title: 'A' } }),
        chunk({ index: 1, type: 'tool-call', token: '{"q":1}', toolCall: { id: 'srv_1', name: 'web_search', index: 0, providerExecuted: true } }),
        chunk({ index: 2, token: 'Answer' }),
        chunk({ index: 3, type: 'source', source: { documentIndex: 0, citedText: 'x' } }),
        chunk({ index: 4, type: 'tool-call', token: '{}', toolCall: { id: 'call_1', name: 'run', index: 1 } }),
        chunk({ index: 5, finishReason: 'tool-calls' }),
      ],
    );
    expect(deltas(frames)).toEqual([
      { role: 'assistant', content: 'Answer' },
      { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'run', arguments: '{}' } }] },
      {},
    ]);
    const note = frames.find((frame) => frame.raw.startsWith(':'));
    expect(note?.raw).toBe(': tokenrelay dropped chunks Chat Completions cannot express: 2 sources, 1 provider-executed tool call');
    expect(frames.at(-1)?.data).toBe('[DONE]');
    expect(warn.mock.calls).toEqual([
      ["tokenrelay: the 'openai' protocol dropped chunks it cannot express: 2 sources, 1 provider-executed tool call (see docs/protocols.md)"],
    ]);
    // Nothing dropped: no note, no warning.
    expect(encode([chunk({ index: 0, finishReason: 'stop' })]).some((frame) => frame.raw.startsWith(':'))).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
  });

  it('escapes every line break and control character inside one data line', () => {
    const frames = encode([chunk({ index: 0, token: 'a\r\nb\u2028c\0' })]);
    expect(frames[0]?.raw.split('\n')).toHaveLength(1);
    expect(frames[0]?.json?.['choices'][0].delta.content).toBe('a\r\nb\u2028c\0');
  });

  it("fails a 'tool-call' chunk without toolCall loudly (the stream ends with an error frame)", () => {
    const encoder = chatCompletionsProtocol().encoder({ exposeErrors: false });
    expect(() => encoder.chunk(chunk({ index: 0, type: 'tool-call', token: '{}' }))).toThrow(TypeError);
  });
});

describe('readChatCompletionRequest', () => {
  it('reads model, messages, tools, stream and include_usage', () => {
    const body = {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Hi' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
    };
    expect(readChatCompletionRequest(body)).toEqual({
      model: 'gpt-4o',
      messages: body.messages,
      tools: body.tools,
      stream: true,
      includeUsage: true,
      body,
    });
    expect(readChatCompletionRequest({ model: 'm', messages: [] })).toMatchObject({ tools: undefined, stream: false, includeUsage: false });
  });

  it.each([
    [null, /body to be an object/],
    [{ messages: [] }, /`model`/],
    [{ model: 'm', messages: [{ content: 'x' }] }, /`messages`/],
    [{ model: 'm', messages: [], tools: {} }, /`tools`/],
    [{ model: 'm', messages: [], stream: 'yes' }, /`stream`/],
    [{ model: 'm', messages: [], stream_options: { include_usage: 1 } }, /include_usage/],
  ])('rejects %j with an InvalidRequestError (a 400)', (body, message) => {
    expect(() => readChatCompletionRequest(body)).toThrow(message);
    expect(() => readChatCompletionRequest(body)).toThrow(InvalidRequestError);
  });

  it('maps an invalid request to an invalid_request_error body', () => {
    expect(JSON.parse(chatCompletionsProtocol().errorBody({ code: 'invalid-request', message: 'Expected `model`…' }))).toEqual({
      error: { message: 'Expected `model`…', type: 'invalid_request_error', param: null, code: 'invalid-request' },
    });
  });
});
