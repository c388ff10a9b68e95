import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProviderError, type FinishReason, type SourceInfo, type TokenChunk, type Usage } from 'tokenrelay';
import { fromAnthropic, streamAnthropic } from 'tokenrelay/anthropic';
import { anthropicScenarios, type AnthropicScenarioName } from '../../src/testing/anthropic-scenarios.js';
import { anthropicMessagesWire } from '../../src/testing/anthropic-wire.js';
import type { MockScript } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

// Every emulator scenario, cut into random network pieces, read twice through the real SDK: by
// tokenrelay and by the SDK's own accumulator (`finalMessage()`). Both must tell the same story.

const PARAMS = { model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user' as const, content: 'Hi' }] };

function clientFor(script: MockScript, seed: number): Anthropic {
  return new Anthropic({
    apiKey: 'sk-ant-test',
    maxRetries: 0,
    fetch: async (url, init) => {
      const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
      const request = { api: 'anthropic-messages' as const, path: new URL(String(url)).pathname, headers: {}, body };
      return wireToResponse(anthropicMessagesWire(script, request), { signal: init?.signal ?? undefined, split: { seed } });
    },
  });
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

function checkInvariants(chunks: TokenChunk[], completed: boolean): void {
  chunks.forEach((chunk, position) => {
    expect(chunk.index).toBe(position);
    expect(typeof chunk.token).toBe('string');
    expect(['text', 'reasoning', 'tool-call', 'source']).toContain(chunk.type);
    if (chunk.type === 'source') expect(chunk.token).toBe('');
  });
  const terminal = chunks.filter((chunk) => chunk.finishReason !== undefined);
  expect(terminal).toHaveLength(completed ? 1 : 0);
  if (completed) expect(chunks.at(-1)?.finishReason).toBeDefined();
}

const joined = (chunks: TokenChunk[], type: TokenChunk['type']) =>
  chunks
    .filter((chunk) => chunk.type === type)
    .map((chunk) => chunk.token)
    .join('');

interface Call {
  id: string;
  name: string;
  input: unknown;
  providerExecuted: boolean;
}

function relayedCalls(chunks: TokenChunk[]): Call[] {
  const calls: { id: string; name: string; json: string; providerExecuted: boolean }[] = [];
  for (const chunk of chunks) {
    if (chunk.type !== 'tool-call' || chunk.toolCall === undefined) continue;
    const { id, name, index, providerExecuted } = chunk.toolCall;
    calls[index] ??= { id, name, json: '', providerExecuted: providerExecuted === true };
    calls[index].json += chunk.token;
  }
  return [...calls].map(({ json, ...call }) => ({ ...call, input: JSON.parse(json) as unknown }));
}

type Block = { type: string } & Record<string, unknown>;

function sdkCalls(content: Block[]): Call[] {
  return content
    .filter((block) => block.type.endsWith('tool_use'))
    .map((block) => ({
      id: block.id as string,
      name: block.name as string,
      input: block.input,
      providerExecuted: block.type !== 'tool_use',
    }));
}

const STOP_REASONS: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool-calls',
  refusal: 'content-filter',
};

function sdkUsage(usage: Anthropic.Usage): Usage {
  const cached = usage.cache_read_input_tokens ?? 0;
  const expected: Usage = {
    inputTokens: usage.input_tokens + cached + (usage.cache_creation_input_tokens ?? 0),
    outputTokens: usage.output_tokens,
  };
  if (cached > 0) expected.cachedInputTokens = cached;
  const thinking = usage.output_tokens_details?.thinking_tokens ?? 0;
  if (thinking > 0) expected.reasoningTokens = thinking;
  return expected;
}

/** The sources docs/providers.md promises, read from the SDK's final message. */
function sdkSources(content: Block[]): SourceInfo[] {
  const defined = (info: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(info).filter(([, value]) => value !== undefined && value !== null)) as SourceInfo;
  return content.flatMap((block): SourceInfo[] => {
    if (block.type === 'text') {
      return ((block.citations as Record<string, unknown>[] | null) ?? []).map((citation) =>
        defined({
          url: citation.url ?? citation.source,
          title: citation.title ?? citation.document_title,
          documentIndex: citation.document_index,
          citedText: citation.cited_text,
        }),
      );
    }
    if (block.type === 'web_search_tool_result' && Array.isArray(block.content)) {
      return (block.content as Record<string, unknown>[]).map((result) => defined({ url: result.url, title: result.title }));
    }
    const fetched = block.content as Record<string, unknown> | undefined;
    if (block.type === 'web_fetch_tool_result' && fetched?.type === 'web_fetch_result') {
      return [defined({ url: fetched.url, title: (fetched.content as { title?: unknown }).title })];
    }
    return [];
  });
}

const withoutTimestamps = (chunks: TokenChunk[]) => chunks.map(({ timestamp: _timestamp, ...rest }) => rest);

const names = Object.keys(anthropicScenarios) as AnthropicScenarioName[];

describe('Anthropic differential: tokenrelay against the SDK accumulator', () => {
  it('covers at least 20 scenarios', () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
  });

  it.each(names)('agrees with finalMessage() on scenario %s under random network splits', async (name) => {
    const script = anthropicScenarios[name];
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 0x7fffffff }), async (seed) => {
        const stream = clientFor(script, seed).messages.stream(PARAMS);
        const relayed = await collect(fromAnthropic(stream));
        const final = await stream.finalMessage().then(
          (message) => ({ message, error: undefined }),
          (error: unknown) => ({ message: undefined, error }),
        );
        // The same bytes through messages.create({ stream: true }) give the same chunks.
        const created = await collect(streamAnthropic(clientFor(script, seed), PARAMS));
        expect(withoutTimestamps(created.chunks)).toStrictEqual(withoutTimestamps(relayed.chunks));

        checkInvariants(relayed.chunks, final.message !== undefined);
        if (final.message === undefined) {
          expect(final.error).toBeInstanceOf(Anthropic.APIError);
          expect(isProviderError(relayed.error)).toBe(true);
          expect(isProviderError(created.error)).toBe(true);
          return;
        }
        expect(relayed.error).toBeUndefined();
        expect(created.error).toBeUndefined();
        const content = final.message.content as unknown as Block[];
        const texts = content.filter((block) => block.type === 'text').map((block) => block.text as string);
        const thoughts = content.filter((block) => block.type === 'thinking').map((block) => block.thinking as string);
        expect(joined(relayed.chunks, 'text')).toBe(texts.join(''));
        expect(joined(relayed.chunks, 'reasoning')).toBe(thoughts.join(''));
        expect(relayedCalls(relayed.chunks)).toStrictEqual(sdkCalls(content));
        expect(relayed.chunks.filter((chunk) => chunk.type === 'source').map((chunk) => chunk.source)).toStrictEqual(sdkSources(content));
        const last = relayed.chunks.at(-1);
        expect(last?.finishReason).toBe(STOP_REASONS[final.message.stop_reason ?? ''] ?? 'other');
        expect(last?.usage).toStrictEqual(sdkUsage(final.message.usage));
        expect(last?.model).toBe(final.message.model);
      }),
      { seed: 1013, numRuns: 10 },
    );
  });
});
