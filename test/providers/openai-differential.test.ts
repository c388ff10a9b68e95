import fc from 'fast-check';
import OpenAI from 'openai';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import type { Response as OpenAIResponse } from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError, type SourceInfo, type TokenChunk } from 'tokenrelay';
import { fromOpenAI } from 'tokenrelay/openai';
import { OPENAI_SCENARIOS, openaiScenarios, type OpenAIScenarioName } from '../../src/testing/openai-scenarios.js';
import { openaiChatWire, openaiResponsesWire } from '../../src/testing/openai-wire.js';
import type { MockRequest, MockScript } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

/**
 * Every emulator scenario, through the real SDK, cut at random places: tokenrelay's chunks
 * must say what the SDK's own accumulator says (`finalChatCompletion()`, `finalResponse()`).
 */

const MODEL = 'gpt-4o-mini';
const RUNS_PER_SCENARIO = 4;
const FAST_CHECK_SEED = 20_260_512;

interface Case {
  name: string;
  api: 'openai-chat' | 'openai-responses';
  script: MockScript;
  request?: Record<string, unknown> | undefined;
}

const scripted: Case[] = [
  { name: 'chat: text', api: 'openai-chat', script: { tokens: ['Hel', 'lo', ' 世界 🙂'] } },
  {
    name: 'chat: parallel tool calls',
    api: 'openai-chat',
    script: { tokens: ['On it.'], toolCalls: [{ name: 'a', arguments: ['{"x"', ':1}'] }, { id: 'call_b', name: 'b', arguments: ['{}'] }] },
  },
  { name: 'chat: refusal', api: 'openai-chat', script: { tokens: [], refusal: ['I cannot', ' help.'] } },
  { name: 'chat: length', api: 'openai-chat', script: { tokens: ['Cut'], finishReason: 'length' } },
  { name: 'chat: content filter', api: 'openai-chat', script: { tokens: ['Hm'], finishReason: 'content-filter' } },
  { name: 'chat: error frame', api: 'openai-chat', script: { tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1 } } },
  {
    name: 'responses: reasoning and text',
    api: 'openai-responses',
    script: { reasoning: ['Think', 'ing'], tokens: ['Hi', ' ✓'], usage: { inputTokens: 9, outputTokens: 7, cachedInputTokens: 2, reasoningTokens: 3 } },
  },
  {
    name: 'responses: function calls',
    api: 'openai-responses',
    script: { tokens: ['Checking.'], toolCalls: [{ name: 'f', arguments: ['{"q":', '"tides"}'] }, { name: 'g', arguments: ['{}'] }] },
  },
  { name: 'responses: refusal', api: 'openai-responses', script: { tokens: [], refusal: ['No', '.'] } },
  { name: 'responses: incomplete (length)', api: 'openai-responses', script: { tokens: ['Par', 'tial'], finishReason: 'length' } },
  { name: 'responses: incomplete (content filter)', api: 'openai-responses', script: { tokens: ['Hm'], finishReason: 'content-filter' } },
  { name: 'responses: error event', api: 'openai-responses', script: { tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1 } } },
];

const named: Case[] = Object.entries(OPENAI_SCENARIOS).map(([name, scenario]) => ({
  name,
  api: scenario.api,
  script: openaiScenarios[name as OpenAIScenarioName],
  request: 'request' in scenario ? scenario.request : undefined,
}));

/** What an answer says, whoever read it. */
interface Summary {
  text: string;
  /** Left out where the SDK does not accumulate it (Chat Completions has no reasoning field). */
  reasoning?: string;
  toolCalls: Array<{ id: string; name: string; arguments: string; providerExecuted?: true }>;
  sources: SourceInfo[];
  finishReason: string;
  usage?: TokenChunk['usage'];
}

/**
 * Where the SDK's accumulator cannot be the reference, what the answer is known to contain:
 * the SDK concatenates Mistral's content parts as strings ("[object Object]"), and its stream
 * helpers reject these three streams (tokenrelay still relays them through `create()`).
 */
const KNOWN: Partial<Record<string, Partial<Summary>>> = {
  'chat-content-parts': { text: 'Hello there, friend!', reasoning: 'The user says hi. A short greeting fits.' },
  'chat-no-role': { text: 'No role.', toolCalls: [], sources: [], finishReason: 'stop' },
  'responses-identity-changed': { text: 'Same answer.', reasoning: '', toolCalls: [], sources: [], finishReason: 'stop' },
  'responses-unknown-event': { text: 'Still relayed.', reasoning: '', toolCalls: [], sources: [], finishReason: 'stop' },
};

const CHAT_FINISH: Record<string, string> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
};

/** The documented mapping of Responses items to tool calls: [name, input] (or undefined for other items). */
function itemCall(item: Record<string, unknown>): Summary['toolCalls'][number] | undefined {
  const str = (value: unknown) => (typeof value === 'string' ? value : '');
  const id = str(item['call_id']);
  const hosted = (name: string, input: unknown) => ({ id: str(item['id']), name, arguments: typeof input === 'string' ? input : JSON.stringify(input), providerExecuted: true as const });
  switch (item['type']) {
    case 'function_call':
      return { id, name: str(item['name']), arguments: str(item['arguments']) };
    case 'custom_tool_call':
      return { id, name: str(item['name']), arguments: str(item['input']) };
    case 'local_shell_call':
      return { id, name: 'local_shell', arguments: JSON.stringify(item['action']) };
    case 'shell_call':
      return { id, name: 'shell', arguments: JSON.stringify(item['action']) };
    case 'apply_patch_call':
      return { id, name: 'apply_patch', arguments: JSON.stringify(item['operation']) };
    case 'mcp_approval_request':
      return { id: str(item['id']), name: str(item['name']), arguments: str(item['arguments']) };
    case 'web_search_call':
      return hosted('web_search', item['action'] ?? {});
    case 'file_search_call':
      return hosted('file_search', { queries: item['queries'] ?? [] });
    case 'code_interpreter_call':
      return hosted('code_interpreter', { code: item['code'] ?? '', container_id: item['container_id'] });
    case 'mcp_call':
      return { ...hosted(str(item['name']), str(item['arguments'])) };
    case 'image_generation_call':
      return hosted('image_generation', typeof item['revised_prompt'] === 'string' ? { revised_prompt: item['revised_prompt'] } : {});
    default:
      return undefined;
  }
}

function chatReference(completion: ChatCompletion): Summary {
  const choice = completion.choices[0];
  const message = choice?.message;
  const extra = completion as ChatCompletion & { citations?: string[]; search_results?: Array<{ url: string; title: string }> };
  const sources: SourceInfo[] = [
    ...(extra.search_results ?? []).map(({ url, title }) => ({ url, title })),
    ...(extra.citations ?? []).map((url) => ({ url })),
    ...(message?.annotations ?? []).map(({ url_citation }) => ({ url: url_citation.url, title: url_citation.title })),
  ];
  const refused = typeof message?.refusal === 'string' && message.refusal !== '';
  const summary: Summary = {
    text: (message?.content ?? '') + (message?.refusal ?? ''),
    toolCalls: (message?.tool_calls ?? []).map((call) =>
      call.type === 'function'
        ? { id: call.id, name: call.function.name, arguments: call.function.arguments }
        : { id: call.id, name: call.custom.name, arguments: call.custom.input },
    ),
    sources: uniqueSources(sources),
    finishReason: refused ? 'content-filter' : (CHAT_FINISH[choice?.finish_reason ?? ''] ?? 'other'),
  };
  const usage = completion.usage;
  if (usage) {
    summary.usage = {
      inputTokens: usage.prompt_tokens,
      outputTokens: usage.completion_tokens,
      ...(usage.prompt_tokens_details?.cached_tokens === undefined ? {} : { cachedInputTokens: usage.prompt_tokens_details.cached_tokens }),
      ...(usage.completion_tokens_details?.reasoning_tokens === undefined ? {} : { reasoningTokens: usage.completion_tokens_details.reasoning_tokens }),
    };
  }
  return summary;
}

function responsesReference(response: OpenAIResponse): Summary {
  let text = '';
  let reasoning = '';
  let refused = false;
  const toolCalls: Summary['toolCalls'] = [];
  const sources: SourceInfo[] = [];
  for (const item of response.output) {
    if (item.type === 'message') {
      for (const part of item.content) {
        if (part.type === 'refusal') {
          text += part.refusal;
          refused ||= part.refusal !== '';
          continue;
        }
        text += part.text;
        for (const annotation of part.annotations) {
          if (annotation.type === 'url_citation') sources.push({ url: annotation.url, title: annotation.title });
          else if (annotation.type === 'file_citation' || annotation.type === 'container_file_citation') sources.push({ title: annotation.filename });
        }
      }
    } else if (item.type === 'reasoning') {
      reasoning += item.summary.map((part) => part.text).join('') + (item.content ?? []).map((part) => part.text).join('');
    } else {
      const call = itemCall(item as unknown as Record<string, unknown>);
      if (call !== undefined) toolCalls.push(call);
    }
  }
  const incomplete: Record<string, string> = { max_output_tokens: 'length', content_filter: 'content-filter' };
  let finishReason =
    response.status === 'incomplete'
      ? (incomplete[response.incomplete_details?.reason ?? ''] ?? 'other')
      : toolCalls.some((call) => call.providerExecuted !== true)
        ? 'tool-calls'
        : 'stop';
  if (refused) finishReason = 'content-filter';
  const summary: Summary = { text, reasoning, toolCalls, sources: uniqueSources(sources), finishReason };
  const usage = response.usage;
  if (usage) {
    summary.usage = {
      inputTokens: usage.input_tokens,
      outputTokens: usage.output_tokens,
      cachedInputTokens: usage.input_tokens_details.cached_tokens,
      reasoningTokens: usage.output_tokens_details.reasoning_tokens,
    };
  }
  return summary;
}

/** tokenrelay's chunks, read back into a summary. */
function summarize(chunks: TokenChunk[], withReasoning: boolean): Summary {
  const calls = new Map<number, Summary['toolCalls'][number]>();
  const sources: SourceInfo[] = [];
  let text = '';
  let reasoning = '';
  for (const chunk of chunks) {
    if (chunk.type === 'text') text += chunk.token;
    else if (chunk.type === 'reasoning') reasoning += chunk.token;
    else if (chunk.type === 'source') sources.push(chunk.source as SourceInfo);
    else {
      const info = chunk.toolCall;
      expect(info).toBeDefined();
      if (info === undefined) continue;
      const call = calls.get(info.index) ?? { id: info.id, name: info.name, arguments: '', ...(info.providerExecuted === true ? { providerExecuted: true as const } : {}) };
      expect({ id: info.id, name: info.name }).toEqual({ id: call.id, name: call.name });
      call.arguments += chunk.token;
      calls.set(info.index, call);
    }
  }
  const last = chunks.at(-1);
  const summary: Summary = {
    text,
    toolCalls: [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call),
    // Not deduplicated here: a source relayed twice makes the comparison fail.
    sources: sortSources(sources),
    finishReason: String(last?.finishReason),
  };
  if (withReasoning) summary.reasoning = reasoning;
  if (last?.usage !== undefined) summary.usage = last.usage;
  return summary;
}

function uniqueSources(sources: SourceInfo[]): SourceInfo[] {
  const seen = new Map<string, SourceInfo>();
  for (const found of sources) {
    const key = found.url ?? `title:${found.title ?? ''}`;
    if (!seen.has(key)) seen.set(key, found);
  }
  return sortSources([...seen.values()]);
}

function sortSources(sources: SourceInfo[]): SourceInfo[] {
  return [...sources].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** The invariants every relayed stream keeps, whatever it carried. */
function expectInvariants(chunks: TokenChunk[], failed: boolean): void {
  expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
  for (const chunk of chunks) {
    expect(typeof chunk.token).toBe('string');
    if (chunk.type === 'source') {
      expect(chunk.token).toBe('');
      expect(chunk.source).toBeDefined();
    }
    if (chunk.type === 'tool-call') expect(chunk.toolCall).toBeDefined();
  }
  const terminal = chunks.filter((chunk) => chunk.finishReason !== undefined);
  if (failed) {
    expect(terminal).toEqual([]);
  } else {
    expect(terminal).toHaveLength(1);
    expect(chunks.at(-1)?.finishReason).toBeDefined();
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

async function collect(stream: AsyncIterable<TokenChunk>, chunks: TokenChunk[] = []): Promise<TokenChunk[]> {
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function mockClient(testCase: Case, seed: number): OpenAI {
  return new OpenAI({
    apiKey: 'sk-test',
    maxRetries: 0,
    fetch: async (url, init) => {
      const path = new URL(String(url)).pathname;
      const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
      const request: MockRequest = { api: testCase.api, path, headers: {}, body };
      const wire = testCase.api === 'openai-chat' ? openaiChatWire(testCase.script, request) : openaiResponsesWire(testCase.script, request);
      return wireToResponse(wire, { signal: init?.signal ?? undefined, split: { seed } });
    },
  });
}

/** tokenrelay over the stream helper, and the helper's own accumulated answer. */
async function relayAndAccumulate(testCase: Case, seed: number) {
  const client = mockClient(testCase, seed);
  const chunks: TokenChunk[] = [];
  if (testCase.api === 'openai-chat') {
    const stream = client.chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: 'Hi' }],
      stream_options: { include_usage: true },
      ...testCase.request,
    });
    const relayed = await settle(collect(fromOpenAI(stream), chunks));
    const final = await settle(stream.finalChatCompletion());
    return { chunks, relayed, reference: final.ok ? { ok: true as const, value: chatReference(final.value) } : final };
  }
  const stream = client.responses.stream({ model: MODEL, input: 'Hi', ...testCase.request });
  const relayed = await settle(collect(fromOpenAI(stream), chunks));
  const final = await settle(stream.finalResponse());
  if (final.ok && final.value.status === 'failed') return { chunks, relayed, reference: { ok: false as const, error: final.value.error } };
  return { chunks, relayed, reference: final.ok ? { ok: true as const, value: responsesReference(final.value) } : final };
}

/** tokenrelay over the raw stream of `create({ stream: true })`, which the SDK does not validate. */
async function relayRaw(testCase: Case, seed: number): Promise<Settled<TokenChunk[]>> {
  const client = mockClient(testCase, seed);
  const stream =
    testCase.api === 'openai-chat'
      ? await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: true, ...testCase.request })
      : await client.responses.create({ model: MODEL, input: 'Hi', stream: true, ...testCase.request });
  return settle(collect(fromOpenAI(stream)));
}

describe('tokenrelay agrees with the SDK accumulator on every OpenAI emulator scenario', () => {
  it.each([...scripted, ...named].map((testCase) => [testCase.name, testCase] as const))('%s', async (name, testCase) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
        const { chunks, relayed, reference } = await relayAndAccumulate(testCase, seed);
        expectInvariants(chunks, !relayed.ok);
        const known = KNOWN[name];
        if (!reference.ok) {
          // The SDK failed the stream: tokenrelay fails it too, with a typed error.
          expect(relayed.ok).toBe(false);
          const error = (relayed as { error: unknown }).error;
          expect(isProviderError(error)).toBe(true);
          if (known !== undefined) {
            // A stream the SDK helper rejects: not retryable, the SDK's error kept as cause ...
            expect((error as ProviderError).retryable).toBe(false);
            expect((error as ProviderError).cause).toBeInstanceOf(OpenAI.OpenAIError);
            // ... and the same answer relayed from `create()` says what it is known to say.
            const raw = await relayRaw(testCase, seed);
            expect(raw.ok).toBe(true);
            const rawChunks = (raw as { value: TokenChunk[] }).value;
            expectInvariants(rawChunks, false);
            const summary = summarize(rawChunks, known.reasoning !== undefined);
            expect({ ...summary, usage: undefined }).toEqual({ ...summary, ...known, usage: undefined });
          }
          return;
        }
        expect(relayed.ok).toBe(true);
        const expected: Summary = { ...reference.value, ...known };
        expect(summarize(chunks, expected.reasoning !== undefined)).toEqual(expected);
      }),
      { seed: FAST_CHECK_SEED, numRuns: RUNS_PER_SCENARIO },
    );
  });

  it('covers every named scenario', () => {
    expect(named.map((testCase) => testCase.name).sort()).toEqual(Object.keys(OPENAI_SCENARIOS).sort());
    expect(named.length).toBeGreaterThanOrEqual(19);
  });
});
