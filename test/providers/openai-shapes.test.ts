import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError, type TokenChunk } from 'tokenrelay';
import { fromOpenAI, streamOpenAI } from 'tokenrelay/openai';
import type { OpenAIScenarioName } from '../../src/testing/openai-scenarios.js';
import { openaiChatWire, openaiResponsesWire } from '../../src/testing/openai-wire.js';
import type { MockRequest, MockScript, WireResponse } from '../../src/testing/script.js';
import { structuralFrame } from '../../src/testing/wire-format.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

/** The shapes of issue 13: compatible servers, hosted tools, citations, the SDK helpers' own errors. */

const MODEL = 'gpt-4o-mini';
const messages = [{ role: 'user' as const, content: 'Hi' }];

function mockClient(answer: (request: MockRequest) => WireResponse, requests: MockRequest[] = []): OpenAI {
  return new OpenAI({
    apiKey: 'sk-test-SECRET',
    maxRetries: 0,
    fetch: async (url, init) => {
      const path = new URL(String(url)).pathname;
      const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
      const request: MockRequest = { api: path.endsWith('/responses') ? 'openai-responses' : 'openai-chat', path, headers: {}, body };
      requests.push(request);
      return wireToResponse(answer(request), { signal: init?.signal ?? undefined });
    },
  });
}

const scenario = (name: OpenAIScenarioName, extra: MockScript = {}) => (request: MockRequest) =>
  request.api === 'openai-chat'
    ? openaiChatWire({ ...extra, openaiScenario: name }, request)
    : openaiResponsesWire({ ...extra, openaiScenario: name }, request);

function customWire(events: unknown[], named = false): () => WireResponse {
  const frames = events.map((event) => structuralFrame(event, named && typeof event === 'object' ? String((event as { type: string }).type) : undefined));
  return () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, frames, end: 'close' });
}

function chatChunk(delta: Record<string, unknown>, finishReason: string | null = null, extra: Record<string, unknown> = {}) {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra };
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

/** The chunks without what varies (timestamps) or repeats (model, provider), every token checked to be a string. */
function shape(chunks: TokenChunk[]) {
  return chunks.map(({ timestamp: _timestamp, model: _model, provider: _provider, index, ...rest }, position) => {
    expect(index).toBe(position);
    expect(typeof rest.token).toBe('string');
    return rest;
  });
}

const text = (token: string) => ({ token, type: 'text' });
const reasoning = (token: string) => ({ token, type: 'reasoning' });
const call = (token: string, toolCall: Record<string, unknown>) => ({ token, type: 'tool-call', toolCall });
const source = (info: Record<string, unknown>) => ({ token: '', type: 'source', source: info });
const finish = (finishReason: string, usage?: Record<string, number>) => ({ token: '', type: 'text', finishReason, ...(usage ? { usage } : {}) });

const SCENARIO_RESPONSES_USAGE = { inputTokens: 310, outputTokens: 96, cachedInputTokens: 128, reasoningTokens: 32 };
const SCENARIO_CHAT_USAGE = { inputTokens: 18, outputTokens: 24, cachedInputTokens: 0, reasoningTokens: 0 };

describe('Chat Completions shapes of compatible servers', () => {
  it("maps Mistral's content parts: text parts to text, thinking parts to reasoning, unknown parts to nothing", async () => {
    const client = mockClient(scenario('chat-content-parts'));
    const chunks = await collect(streamOpenAI(client, { model: 'magistral-medium-2509', messages }, { provider: 'mistral' }));
    expect(shape(chunks)).toStrictEqual([
      reasoning('The user says hi.'),
      reasoning(' A short greeting fits.'),
      text('Hello'),
      text(' there,'),
      text(' friend'),
      text('!'),
      finish('stop', SCENARIO_CHAT_USAGE),
    ]);
    expect(chunks[0]).toMatchObject({ model: 'magistral-medium-2509', provider: 'mistral' });
  });

  it('never yields a token that is not a string, whatever a server puts in the text fields', async () => {
    const client = mockClient(
      customWire([
        chatChunk({ role: 'assistant', content: { text: 'object' } }),
        chatChunk({ content: 42, reasoning_content: ['list'] }),
        chatChunk({ content: [{ type: 'text', text: 7 }, { type: 'thinking', thinking: 'Plain thinking' }, null, 'bare'] }),
        chatChunk({ refusal: { reason: 'x' } }),
        chatChunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: { city: 'Brest' } } }] }),
        chatChunk({ content: 'ok' }, 'tool_calls'),
        '[DONE]',
      ]),
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, messages }));
    expect(shape(chunks)).toStrictEqual([
      reasoning('Plain thinking'),
      call('{"city":"Brest"}', { id: 'call_1', name: 'f', index: 0 }),
      text('ok'),
      finish('tool-calls'),
    ]);
  });

  it("relays Perplexity's citations and search results once each, as they first appear", async () => {
    const client = mockClient(scenario('chat-citations'));
    const chunks = await collect(streamOpenAI(client, { model: 'sonar', messages }, { provider: 'perplexity' }));
    expect(shape(chunks)).toStrictEqual([
      source({ url: 'https://tides.example.org/brest', title: 'Tide tables for Brest' }),
      text('High tide in Brest'),
      text(' is at 06:12 [1]'),
      source({ url: 'https://sea.example.com/spring-tides', title: 'Spring tides explained' }),
      text(', a spring tide [2].'),
      finish('stop', SCENARIO_CHAT_USAGE),
    ]);
  });

  it('relays a bare citations array as url-only sources', async () => {
    const citations = ['https://a.example', 'https://b.example'];
    const client = mockClient(customWire([chatChunk({ content: 'A' }, null, { citations }), chatChunk({}, 'stop', { citations }), '[DONE]']));
    const chunks = await collect(streamOpenAI(client, { model: 'sonar', messages }));
    expect(shape(chunks)).toStrictEqual([source({ url: 'https://a.example' }), source({ url: 'https://b.example' }), text('A'), finish('stop')]);
  });

  it("relays the url_citation annotations of OpenAI's search models", async () => {
    const client = mockClient(scenario('chat-search-annotations'));
    const chunks = await collect(streamOpenAI(client, { model: 'gpt-4o-search-preview', messages }));
    expect(shape(chunks).filter((chunk) => chunk.type === 'source')).toStrictEqual([
      source({ url: 'https://tides.example.org/brest', title: 'Tide tables for Brest' }),
      source({ url: 'https://sea.example.com/spring-tides', title: 'Spring tides explained' }),
    ]);
  });
});

describe('Responses API tool calls', () => {
  it('relays arguments that only come in function_call_arguments.done (LM Studio), once', async () => {
    const client = mockClient(scenario('responses-arguments-in-done'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(shape(chunks)).toStrictEqual([
      call('{"city":"Brest"}', { id: 'call_lm1', name: 'get_weather', index: 0 }),
      finish('tool-calls', SCENARIO_RESPONSES_USAGE),
    ]);
  });

  it('relays arguments that only come in output_item.done, and never repeats streamed ones', async () => {
    const client = mockClient(scenario('responses-arguments-in-item'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const time = { id: 'call_item2', name: 'get_time', index: 1 };
    expect(shape(chunks)).toStrictEqual([
      call('{"port":"Brest"}', { id: 'call_item1', name: 'get_tide', index: 0 }),
      call('{"tz":', time),
      call('"CET"}', time),
      finish('tool-calls', SCENARIO_RESPONSES_USAGE),
    ]);
  });

  it('sends only the missing end when the complete arguments extend what the deltas sent', async () => {
    const item = { id: 'fc_1', type: 'function_call', status: 'in_progress', arguments: '', call_id: 'call_1', name: 'f' };
    const at = { item_id: 'fc_1', output_index: 0 };
    const client = mockClient(
      customWire(
        [
          { type: 'response.created', sequence_number: 0, response: { id: 'resp_1', model: MODEL, output: [] } },
          { type: 'response.output_item.added', sequence_number: 1, output_index: 0, item },
          { type: 'response.function_call_arguments.delta', sequence_number: 2, ...at, delta: '{"a":' },
          { type: 'response.function_call_arguments.done', sequence_number: 3, ...at, arguments: '{"a":1}' },
          { type: 'response.output_item.done', sequence_number: 4, output_index: 0, item: { ...item, arguments: '{"a":1}' } },
          { type: 'response.completed', sequence_number: 5, response: { id: 'resp_1', model: MODEL, output: [{ ...item, arguments: '{"a":1}' }] } },
        ],
        true,
      ),
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    const info = { id: 'call_1', name: 'f', index: 0 };
    expect(shape(chunks)).toStrictEqual([call('{"a":', info), call('1}', info), finish('tool-calls')]);
  });

  it('takes a call from response.completed when no item event announced it', async () => {
    const item = { id: 'fc_1', type: 'function_call', status: 'completed', arguments: '{"late":true}', call_id: 'call_late', name: 'f' };
    const client = mockClient(
      customWire(
        [
          { type: 'response.created', sequence_number: 0, response: { id: 'resp_1', model: MODEL, output: [] } },
          { type: 'response.completed', sequence_number: 1, response: { id: 'resp_1', model: MODEL, output: [item] } },
        ],
        true,
      ),
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(shape(chunks)).toStrictEqual([call('{"late":true}', { id: 'call_late', name: 'f', index: 0 }), finish('tool-calls')]);
  });

  it('relays the items the application must act on as tool calls, and finishes with tool-calls', async () => {
    const client = mockClient(scenario('responses-action-items'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Fix it' }));
    expect(shape(chunks)).toStrictEqual([
      call('{"type":"exec","command":["ls","-la"],"env":{},"timeout_ms":10000,"user":null,"working_directory":"/srv"}', {
        id: 'call_lsh1',
        name: 'local_shell',
        index: 0,
      }),
      call('{"commands":["git status"],"max_output_length":null,"timeout_ms":null}', { id: 'call_sh1', name: 'shell', index: 1 }),
      call('{"type":"update_file","path":"src/tide.ts","diff":"@@ -1 +1 @@\\n-old\\n+new\\n"}', { id: 'call_apc1', name: 'apply_patch', index: 2 }),
      call('{"port":"Brest"}', { id: 'mcpr_01', name: 'book_slot', index: 3 }),
      call('SELECT 1', { id: 'call_ctc1', name: 'run_sql', index: 4 }),
      finish('tool-calls', SCENARIO_RESPONSES_USAGE),
    ]);
  });

  it('marks the tools the provider ran itself as providerExecuted, and finishes with stop', async () => {
    const client = mockClient(scenario('responses-hosted-tools'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Tides?' }));
    const hosted = (id: string, name: string, index: number) => ({ id, name, index, providerExecuted: true });
    expect(shape(chunks)).toStrictEqual([
      call('{"queries":["tide tables"]}', hosted('fs_01', 'file_search', 0)),
      call('{"code":"print(6 * 7)","container_id":"cntr_01"}', hosted('ci_01', 'code_interpreter', 1)),
      call('{"port":"Brest"}', hosted('mcp_01', 'lookup', 2)),
      call('{"revised_prompt":"A tide chart of Brest"}', hosted('ig_01', 'image_generation', 3)),
      text('The answer is 42;'),
      text(' high tide is at 06:12.'),
      source({ title: 'tides-2025.pdf' }),
      finish('stop', SCENARIO_RESPONSES_USAGE),
    ]);
    // The generated image is output, not input: it never travels in a token.
    expect(JSON.stringify(chunks)).not.toContain('iVBOR');
  });
});

describe('Responses API citations', () => {
  it('relays url_citation annotations once per page, after the text they cite', async () => {
    const client = mockClient(scenario('responses-web-search'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Tides?', tools: [{ type: 'web_search' }] }));
    expect(shape(chunks)).toStrictEqual([
      call('{"type":"search","query":"high tide Brest today","sources":[{"type":"url","url":"https://tides.example.org/brest"}]}', {
        id: 'ws_01',
        name: 'web_search',
        index: 0,
        providerExecuted: true,
      }),
      text('High tide in Brest is at 06:12 today.'),
      text(' It is a spring tide, higher than usual.'),
      text(' Low tide follows at 12:30.'),
      source({ url: 'https://tides.example.org/brest', title: 'Tide tables for Brest' }),
      source({ url: 'https://sea.example.com/spring-tides', title: 'Spring tides explained' }),
      finish('stop', SCENARIO_RESPONSES_USAGE),
    ]);
  });

  it('reads the annotations of the finished message when no annotation event came, and skips file_path', async () => {
    const part = {
      type: 'output_text',
      text: 'See the chart.',
      annotations: [
        { type: 'file_path', file_id: 'file-1', index: 8 },
        { type: 'container_file_citation', container_id: 'c', file_id: 'file-2', filename: 'chart.png', start_index: 0, end_index: 3 },
      ],
    };
    const item = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [part] };
    const client = mockClient(
      customWire(
        [
          { type: 'response.output_text.delta', sequence_number: 0, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'See the chart.' },
          { type: 'response.output_item.done', sequence_number: 1, output_index: 0, item },
          { type: 'response.completed', sequence_number: 2, response: { id: 'resp_1', model: MODEL, output: [item] } },
        ],
        true,
      ),
    );
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(shape(chunks)).toStrictEqual([text('See the chart.'), source({ title: 'chart.png' }), finish('stop')]);
  });
});

describe('Responses API endings', () => {
  it('reads the nested error event of first-party servers', async () => {
    const client = mockClient(scenario('responses-error-event'));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(shape(chunks)).toStrictEqual([text('Partial')]);
    expect(isProviderError(error)).toBe(true);
    expect(error).toMatchObject({
      message: 'OpenAI stream failed: Your input exceeds the context window.',
      providerType: 'invalid_request_error',
      retryable: false,
    });
  });
});

describe("errors of the SDK's stream helpers", () => {
  it.each([
    ['responses-identity-changed', 'Lifecycle response identity changed.'],
    ['responses-unknown-event', 'Unhandled response stream event: unknown'],
  ] as const)('turns the rejection of responses.stream() (%s) into a non-retryable ProviderError', async (name, sdkMessage) => {
    const client = mockClient(scenario(name));
    const { error } = await collectUntilError(fromOpenAI(client.responses.stream({ model: MODEL, input: 'Hi' })));
    expect(isProviderError(error)).toBe(true);
    const providerError = error as ProviderError;
    expect(providerError.message).toBe(`OpenAI stream rejected by the SDK: ${sdkMessage}`);
    expect(providerError).toMatchObject({ retryable: false, provider: 'openai', status: undefined });
    expect(providerError.cause).toBeInstanceOf(OpenAI.OpenAIError);
  });

  it('turns the rejection of chat.completions.stream() into a non-retryable ProviderError, after the text', async () => {
    const client = mockClient(scenario('chat-no-role'));
    const stream = client.chat.completions.stream({ model: MODEL, messages });
    const { chunks, error } = await collectUntilError(fromOpenAI(stream, { provider: 'llamacpp' }));
    expect(shape(chunks)).toStrictEqual([text('No'), text(' role.')]);
    expect(error).toMatchObject({ message: 'llamacpp stream rejected by the SDK: missing role for choice 0', retryable: false });
    expect((error as ProviderError).cause).toBeInstanceOf(OpenAI.OpenAIError);
  });

  it('relays the same streams from create(), which does not validate them', async () => {
    const client = mockClient(scenario('responses-unknown-event'));
    const chunks = await collect(streamOpenAI(client, { model: MODEL, input: 'Hi' }));
    expect(shape(chunks)).toStrictEqual([text('Still'), text(' relayed.'), finish('stop', SCENARIO_RESPONSES_USAGE)]);
  });
});

describe('OpenAI emulator scenarios', () => {
  it('answers an unknown scenario, or one for the other endpoint, with a 400', async () => {
    const requests: MockRequest[] = [];
    const client = mockClient(scenario('nope' as OpenAIScenarioName), requests);
    const unknown = await collectUntilError(streamOpenAI(client, { model: MODEL, messages }));
    expect(unknown.error).toMatchObject({ status: 400 });
    expect((unknown.error as Error).message).toContain('Unknown OpenAI emulator scenario `nope`');
    const wrongEndpoint = await collectUntilError(streamOpenAI(mockClient(scenario('responses-web-search')), { model: MODEL, messages }));
    expect((wrongEndpoint.error as Error).message).toContain('The scenario `responses-web-search` answers /responses requests');
  });

  it('applies the script fault to a scenario', async () => {
    const client = mockClient(scenario('chat-citations', { fault: { kind: 'error-event', afterTokens: 2 } }));
    const { chunks, error } = await collectUntilError(streamOpenAI(client, { model: 'sonar', messages }));
    expect(shape(chunks).map((chunk) => chunk.token)).toEqual(['', 'High tide in Brest', ' is at 06:12 [1]']);
    expect(error).toMatchObject({ retryable: true, providerType: 'server_error' });
  });
});
