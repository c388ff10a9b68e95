import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { StreamAbortedError, type TokenChunk } from 'tokenrelay';
import { fromAnthropic, streamAnthropic, type AnthropicStreamEvent } from 'tokenrelay/anthropic';
import { anthropicScenarios } from '../../src/testing/anthropic-scenarios.js';
import { anthropicMessagesWire } from '../../src/testing/anthropic-wire.js';
import type { MockScript, WireResponse } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

const MODEL = 'claude-sonnet-4-5';
const PARAMS = { model: MODEL, max_tokens: 256, messages: [{ role: 'user' as const, content: 'Hi' }] };
const meta = { model: MODEL, provider: 'anthropic' };

interface Harness {
  client: Anthropic;
  requests: number;
  signals: AbortSignal[];
}

function createHarness(script: MockScript, edit?: (wire: WireResponse) => WireResponse): Harness {
  const harness: Harness = { client: undefined as unknown as Anthropic, requests: 0, signals: [] };
  harness.client = new Anthropic({
    apiKey: 'sk-ant-test',
    maxRetries: 0,
    fetch: async (url, init) => {
      harness.requests += 1;
      if (init?.signal) harness.signals.push(init.signal);
      const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
      const wire = anthropicMessagesWire(script, { api: 'anthropic-messages', path: new URL(String(url)).pathname, headers: {}, body });
      return wireToResponse(edit ? edit(wire) : wire, { signal: init?.signal ?? undefined });
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

/** Drops timestamps and the early usage of the first chunk (asserted in its own test). */
const bare = (chunks: TokenChunk[]) =>
  chunks.map(({ timestamp: _timestamp, ...rest }) => {
    if (rest.index !== 0 || rest.finishReason !== undefined) return rest;
    const { usage: _usage, ...withoutUsage } = rest;
    return withoutUsage;
  });

async function* fromEvents(events: unknown[]): AsyncGenerator<AnthropicStreamEvent> {
  for (const event of events) yield event as AnthropicStreamEvent;
}

const usage = { input_tokens: 5, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 };
const start = (message: Record<string, unknown> = {}) => ({
  type: 'message_start',
  message: { id: 'msg_1', type: 'message', role: 'assistant', model: MODEL, content: [], stop_reason: null, usage, ...message },
});
const blockStart = (index: number, block: Record<string, unknown>) => ({ type: 'content_block_start', index, content_block: block });
const delta = (index: number, body: Record<string, unknown>) => ({ type: 'content_block_delta', index, delta: body });
const blockStop = (index: number) => ({ type: 'content_block_stop', index });
const end = (stopReason: string, outputTokens = 9) => [
  { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } },
  { type: 'message_stop' },
];
const call = (index: number, token: string, id: string, name: string, providerExecuted?: true) => ({
  token,
  index,
  type: 'tool-call',
  toolCall: providerExecuted ? { id, name, index: 0, providerExecuted } : { id, name, index: 0 },
  ...meta,
});
const final = (index: number, finishReason: TokenChunk['finishReason'], output = 9) => ({
  token: '',
  index,
  type: 'text',
  finishReason,
  usage: { inputTokens: 5, outputTokens: output },
  ...meta,
});

describe('fromAnthropic: tool inputs that arrive whole', () => {
  it.each([
    ['tool_use', 'toolu_1', 'lookup', { term: 'tide', n: 3 }, undefined],
    ['tool_use', 'toolu_2', 'get_time', {}, undefined],
    ['server_tool_use', 'srvtoolu_1', 'web_fetch', { url: 'https://a.example' }, true],
    ['mcp_tool_use', 'mcptoolu_1', 'roll_dice', { sides: 6 }, true],
  ] as const)('relays a %s block whose input came in content_block_start as one chunk', async (type, id, name, input, providerExecuted) => {
    const { chunks, error } = await collect(
      fromAnthropic(fromEvents([start(), blockStart(0, { type, id, name, input }), blockStop(0), ...end('tool_use')])),
    );
    expect(error).toBeUndefined();
    expect(bare(chunks)).toStrictEqual([call(0, JSON.stringify(input), id, name, providerExecuted), final(1, 'tool-calls')]);
  });

  it('relays `{}` for a call whose only fragment is empty, and prefers fragments over the start input', async () => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start(),
          blockStart(0, { type: 'tool_use', id: 'toolu_1', name: 'now', input: {} }),
          delta(0, { type: 'input_json_delta', partial_json: '' }),
          blockStop(0),
          blockStart(1, { type: 'tool_use', id: 'toolu_2', name: 'find', input: {} }),
          delta(1, { type: 'input_json_delta', partial_json: '{"q":1}' }),
          blockStop(1),
          ...end('tool_use'),
        ]),
      ),
    );
    expect(bare(chunks)).toStrictEqual([
      call(0, '', 'toolu_1', 'now'),
      call(1, '{}', 'toolu_1', 'now'),
      { ...call(2, '{"q":1}', 'toolu_2', 'find'), toolCall: { id: 'toolu_2', name: 'find', index: 1 } },
      final(3, 'tool-calls'),
    ]);
  });

  it('relays a call still open at message_stop (no content_block_stop)', async () => {
    const { chunks } = await collect(
      fromAnthropic(fromEvents([start(), blockStart(0, { type: 'tool_use', id: 'toolu_1', name: 'go', input: { a: 1 } }), ...end('tool_use')])),
    );
    expect(bare(chunks)).toStrictEqual([call(0, '{"a":1}', 'toolu_1', 'go'), final(1, 'tool-calls')]);
  });
});

describe('fromAnthropic: the whole message in message_start', () => {
  it('honours message_start content and stop_reason when no message_delta follows', async () => {
    const content = [
      { type: 'text', text: 'Querying.', citations: null },
      { type: 'server_tool_use', id: 'srvtoolu_1', name: 'code_execution', input: { code: 'q()' } },
      { type: 'tool_use', id: 'toolu_1', name: 'query', input: { region: 'a' }, caller: { type: 'code_execution_20250825', tool_id: 'srvtoolu_1' } },
    ];
    const { chunks, error } = await collect(
      fromAnthropic(fromEvents([start({ content, stop_reason: 'tool_use', usage: { ...usage, output_tokens: 40 } }), { type: 'message_stop' }])),
    );
    expect(error).toBeUndefined();
    expect(chunks[0]?.usage).toStrictEqual({ inputTokens: 5, outputTokens: 40 });
    expect(bare(chunks)).toStrictEqual([
      { token: 'Querying.', index: 0, type: 'text', ...meta },
      call(1, '{"code":"q()"}', 'srvtoolu_1', 'code_execution', true),
      { ...call(2, '{"region":"a"}', 'toolu_1', 'query'), toolCall: { id: 'toolu_1', name: 'query', index: 1 } },
      final(3, 'tool-calls', 40),
    ]);
  });

  it.each([
    ['messages.create({ stream: true })', (client: Anthropic) => streamAnthropic(client, PARAMS)],
    ['messages.stream()', (client: Anthropic) => fromAnthropic(client.messages.stream(PARAMS))],
  ])('relays the programmatic tool calling scenario through the real SDK (%s)', async (_name, run) => {
    const { chunks, error } = await collect(run(createHarness(anthropicScenarios['programmatic-tool-calling']).client));
    expect(error).toBeUndefined();
    expect(chunks.filter((chunk) => chunk.type === 'tool-call').map((chunk) => [chunk.toolCall?.name, chunk.token])).toStrictEqual([
      ['code_execution', '{"code":"r = [query(x) for x in \\"ab\\"]"}'],
      ['query', '{"region":"a"}'],
      ['query', '{"region":"b"}'],
    ]);
    expect(chunks.at(-1)).toMatchObject({ finishReason: 'tool-calls', usage: { inputTokens: 300, outputTokens: 80 } });
  });

  it('reads message_start as it arrived even when a MessageStream reader lags behind the network', async () => {
    const harness = createHarness(anthropicScenarios.text);
    const chunks = fromAnthropic(harness.client.messages.stream(PARAMS));
    // The SDK has accumulated the whole message into the message_start event before the first read.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const { chunks: all } = await collect(chunks);
    expect(all.map((chunk) => chunk.token)).toStrictEqual(['Hé', 'llo ', '🙂🚀', ' 漢字', '']);
    expect(all[0]?.usage).toStrictEqual({ inputTokens: 9, outputTokens: 1 });
  });
});

describe('fromAnthropic: sources and dropped blocks', () => {
  it.each([
    [
      { type: 'char_location', cited_text: 'Blue.', document_index: 0, document_title: 'Sky', start_char_index: 0, end_char_index: 5, file_id: null },
      { documentIndex: 0, title: 'Sky', citedText: 'Blue.' },
    ],
    [
      { type: 'page_location', cited_text: 'Green.', document_index: 1, document_title: null, start_page_number: 1, end_page_number: 2, file_id: null },
      { documentIndex: 1, citedText: 'Green.' },
    ],
    [
      { type: 'content_block_location', cited_text: 'White.', document_index: 2, document_title: 'Snow', start_block_index: 0, end_block_index: 1, file_id: null },
      { documentIndex: 2, title: 'Snow', citedText: 'White.' },
    ],
    [
      { type: 'web_search_result_location', url: 'https://a.example', title: 'A', cited_text: 'Fact.', encrypted_index: 'Eo1' },
      { url: 'https://a.example', title: 'A', citedText: 'Fact.' },
    ],
    [
      { type: 'search_result_location', source: 'https://kb.example/1', title: 'KB', cited_text: 'Do X.', search_result_index: 0, start_block_index: 0, end_block_index: 1 },
      { url: 'https://kb.example/1', title: 'KB', citedText: 'Do X.' },
    ],
  ])('turns a citations_delta of type %o into a source chunk', async (citation, source) => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start(),
          blockStart(0, { type: 'text', text: '', citations: [] }),
          delta(0, { type: 'citations_delta', citation }),
          delta(0, { type: 'text_delta', text: 'Yes.' }),
          blockStop(0),
          ...end('end_turn'),
        ]),
      ),
    );
    expect(bare(chunks)).toStrictEqual([
      { token: '', index: 0, type: 'source', source, ...meta },
      { token: 'Yes.', index: 1, type: 'text', ...meta },
      final(2, 'stop'),
    ]);
  });

  it('relays web search results and a fetched page as sources, and drops other results, redacted thinking and unknown citations', async () => {
    const { chunks } = await collect(
      fromAnthropic(
        fromEvents([
          start(),
          blockStart(0, { type: 'redacted_thinking', data: 'Emw' }),
          blockStop(0),
          blockStart(1, {
            type: 'web_search_tool_result',
            tool_use_id: 's1',
            content: [{ type: 'web_search_result', url: 'https://a.example', title: 'A', encrypted_content: 'x', page_age: null }],
          }),
          blockStop(1),
          blockStart(2, { type: 'web_search_tool_result', tool_use_id: 's2', content: { type: 'web_search_tool_result_error', error_code: 'unavailable' } }),
          blockStop(2),
          blockStart(3, {
            type: 'web_fetch_tool_result',
            tool_use_id: 's3',
            content: { type: 'web_fetch_result', url: 'https://b.example', retrieved_at: null, content: { type: 'document', title: 'B' } },
          }),
          blockStop(3),
          blockStart(4, { type: 'code_execution_tool_result', tool_use_id: 's4', content: { type: 'code_execution_result', stdout: '1' } }),
          blockStop(4),
          blockStart(5, { type: 'mcp_tool_result', tool_use_id: 'm1', is_error: false, content: [{ type: 'text', text: '4' }] }),
          blockStop(5),
          blockStart(6, { type: 'text', text: '' }),
          delta(6, { type: 'citations_delta', citation: { type: 'future_location', cited_text: '?' } }),
          delta(6, { type: 'text_delta', text: 'Ok' }),
          blockStop(6),
          ...end('end_turn'),
        ]),
      ),
    );
    expect(bare(chunks)).toStrictEqual([
      { token: '', index: 0, type: 'source', source: { url: 'https://a.example', title: 'A' }, ...meta },
      { token: '', index: 1, type: 'source', source: { url: 'https://b.example', title: 'B' }, ...meta },
      { token: 'Ok', index: 2, type: 'text', ...meta },
      final(3, 'stop'),
    ]);
  });
});

describe('fromAnthropic / streamAnthropic: errors the SDK raises itself', () => {
  const doubled = (wire: WireResponse): WireResponse => ({ ...wire, frames: [wire.frames?.[0], ...(wire.frames ?? [])].filter((frame) => frame !== undefined) });
  const notJSON = (wire: WireResponse): WireResponse => ({
    ...wire,
    frames: [wire.frames?.[0], { text: 'event: content_block_start\ndata: {not json\n\n', delayMs: 0 }].filter((frame) => frame !== undefined),
  });

  it('reports a MessageStream that rejects events out of order as a non-retryable ProviderError saying so', async () => {
    const { error } = await collect(fromAnthropic(createHarness({ tokens: ['a'] }, doubled).client.messages.stream(PARAMS)));
    expect(error).toMatchObject({
      name: 'ProviderError',
      message: 'The Anthropic SDK rejected the stream: Unexpected event order, got message_start before receiving "message_stop"',
      retryable: false,
      status: undefined,
    });
    expect((error as Error).cause).toBeInstanceOf(Anthropic.AnthropicError);
  });

  it.each([
    ['messages.create({ stream: true })', (client: Anthropic) => streamAnthropic(client, PARAMS)],
    ['messages.stream()', (client: Anthropic) => fromAnthropic(client.messages.stream(PARAMS))],
  ])('reports an event that is not JSON as a non-retryable ProviderError (%s)', async (_name, run) => {
    const { error } = await collect(run(createHarness({ tokens: ['a'] }, notJSON).client));
    expect(error).toMatchObject({ name: 'ProviderError', retryable: false });
    expect((error as Error).message).toMatch(/^The Anthropic SDK rejected the stream: /);
    expect((error as Error).message).not.toContain('connection');
  });
});

describe('streamAnthropic / fromAnthropic: arguments', () => {
  it('works without options, falling back to the SDK stream’s own controller', async () => {
    const harness = createHarness({ tokens: ['a', 'b', 'c'], delayMs: 1 });
    const { chunks, error } = await collect(streamAnthropic(harness.client, PARAMS));
    expect(error).toBeUndefined();
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', 'b', 'c', '']);
    for await (const chunk of streamAnthropic(harness.client, PARAMS, { provider: 'claude' })) {
      expect(chunk).toMatchObject({ token: 'a', provider: 'claude' });
      break;
    }
    expect(harness.signals[1]?.aborted).toBe(true);
    const stream = await harness.client.messages.create({ ...PARAMS, stream: true });
    const relayed = fromAnthropic(stream);
    expect((await relayed.next()).value).toMatchObject({ token: 'a' });
    stream.controller.abort();
    await expect(relayed.next()).rejects.toBeInstanceOf(StreamAbortedError);
  });

  it('throws a TypeError naming the argument for a missing client or bad params, before any request', () => {
    const harness = createHarness({});
    expect(() => streamAnthropic(undefined as never, PARAMS)).toThrow(
      new TypeError('Expected `client` to be an Anthropic client with `messages.create`, got undefined'),
    );
    expect(() => streamAnthropic(harness.client, null as never)).toThrow(
      new TypeError('Expected `params` to be the Messages request parameters (an object), got null'),
    );
    expect(() => streamAnthropic(harness.client, 'Hi' as never)).toThrow(/^Expected `params` to be/);
    expect(harness.requests).toBe(0);
  });

  it('rejects unknown option keys with a suggestion, and bad option values', () => {
    const harness = createHarness({});
    const stream = async function* (): AsyncGenerator<AnthropicStreamEvent> {};
    expect(() => streamAnthropic(harness.client, PARAMS, { signl: new AbortController().signal } as never)).toThrow(
      new TypeError('Unknown option `signl` in `options`; did you mean `signal`?'),
    );
    expect(() => fromAnthropic(stream(), { providr: 'x' } as never)).toThrow(
      new TypeError('Unknown option `providr` in `options`; did you mean `provider`?'),
    );
    expect(() => streamAnthropic(harness.client, PARAMS, { signal: 'abort' } as never)).toThrow(
      new TypeError('Expected `options.signal` to be an AbortSignal, got "abort"'),
    );
    expect(() => fromAnthropic(stream(), { provider: 42 } as never)).toThrow(
      new TypeError('Expected `options.provider` to be a non-empty string, got 42'),
    );
    expect(() => streamAnthropic(harness.client, PARAMS, null as never)).toThrow(new TypeError('Expected `options` to be an object, got null'));
    expect(harness.requests).toBe(0);
  });
});

describe('anthropicMessagesWire: Anthropic content blocks', () => {
  const request = { api: 'anthropic-messages' as const, path: '/v1/messages', headers: {}, body: { model: MODEL, stream: true } };

  it('sends a whole message in message_start, then message_stop alone', () => {
    const wire = anthropicMessagesWire(
      {
        anthropic: {
          delivery: 'message-start',
          content: [{ start: { type: 'tool_use', id: 'toolu_1', name: 'q', input: {} }, deltas: [{ type: 'input_json_delta', partial_json: '{"a":1}' }] }],
        },
        usage: { inputTokens: 3, outputTokens: 7 },
      },
      request,
    );
    expect(wire.frames?.map((frame) => frame.text).join('')).toBe(
      'event: message_start\n' +
        `data: {"type":"message_start","message":{"id":"msg_01TokenRelayMockMessage000","type":"message","role":"assistant","model":"${MODEL}","content":[{"type":"tool_use","id":"toolu_1","name":"q","input":{"a":1}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":7}}}\n\n` +
        'event: ping\ndata: {"type": "ping"}\n\n' +
        'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });

  it('streams custom blocks with their deltas, a raw stop_reason and server tool usage', () => {
    const wire = anthropicMessagesWire(
      {
        anthropic: {
          stopReason: 'pause_turn',
          serverToolUse: { web_search_requests: 1 },
          content: [{ start: { type: 'server_tool_use', id: 's1', name: 'web_search', input: { query: 'x' } } }],
        },
      },
      request,
    );
    const texts = wire.frames?.map((frame) => frame.text) ?? [];
    expect(texts[1]).toBe(
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s1","name":"web_search","input":{"query":"x"}}}\n\n',
    );
    expect(texts.at(-2)).toBe(
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"pause_turn","stop_sequence":null},"usage":{"output_tokens":1,"server_tool_use":{"web_search_requests":1}}}\n\n',
    );
  });
});
