import { readFileSync } from 'node:fs';
import type { BaseMessage, UsageMetadata } from '@langchain/core/messages';
import { AIMessageChunk } from '@langchain/core/messages';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { ChatGenerationChunk } from '@langchain/core/outputs';
import { FakeListChatModel, FakeStreamingChatModel } from '@langchain/core/utils/testing';
import { describe, expect, it } from 'vitest';
import { isProviderError, isStreamAbortedError, type ProviderError, type TokenChunk } from 'tokenrelay';
import { fromLangChain } from 'tokenrelay/langchain';

/**
 * LangChain's own fake streaming model, yielding the given message chunks whole (the stock
 * `chunks` option keeps only `content`, `tool_calls` and `additional_kwargs`). Everything else —
 * `.stream()`, callbacks, the signal — is the real `BaseChatModel`.
 */
class ReplayChatModel extends FakeStreamingChatModel {
  failure: unknown;

  override async *_streamResponseChunks(_messages: BaseMessage[], options: this['ParsedCallOptions']): AsyncGenerator<ChatGenerationChunk> {
    for (const message of this.chunks) {
      if (options.signal?.aborted === true) return;
      yield new ChatGenerationChunk({ message, text: typeof message.content === 'string' ? message.content : '' });
    }
    if (this.failure !== undefined) throw this.failure;
  }
}

function replay(chunks: AIMessageChunk[], failure?: unknown): ReplayChatModel {
  const model = new ReplayChatModel({ chunks });
  model.failure = failure;
  return model;
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

function expectInvariants(chunks: TokenChunk[]): void {
  expect(chunks.map((chunk) => chunk.index)).toStrictEqual(chunks.map((_, index) => index));
  for (const chunk of chunks) expect(typeof chunk.token).toBe('string');
  expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toHaveLength(1);
  expect(chunks.at(-1)?.finishReason).toBeDefined();
}

function strip(chunks: TokenChunk[]) {
  return chunks.map(({ timestamp, index, provider, ...rest }) => {
    expect(typeof timestamp).toBe('number');
    expect(provider).toBe('langchain');
    return rest;
  });
}

function textOf(chunks: TokenChunk[], type: TokenChunk['type'] = 'text'): string {
  return chunks.filter((chunk) => chunk.type === type).map((chunk) => chunk.token).join('');
}

/** Streams the model, relaying through fromLangChain while concatenating the same message chunks. */
async function relayAndConcat(model: ReplayChatModel | FakeStreamingChatModel | FakeListChatModel) {
  let merged: AIMessageChunk | undefined;
  async function* tap(stream: AsyncIterable<AIMessageChunk>) {
    for await (const chunk of stream) {
      merged = merged === undefined ? chunk : merged.concat(chunk);
      yield chunk;
    }
  }
  const chunks = await collect(fromLangChain(tap(await model.stream('Hi'))));
  return { chunks, merged: merged as AIMessageChunk };
}

/** The text of a concatenated message: its string content, or its text parts. */
function mergedText(message: AIMessageChunk): string {
  if (typeof message.content === 'string') return message.content;
  return message.content.map((part) => (part.type === 'text' || part.type === 'text_delta' ? String(part['text']) : '')).join('');
}

describe('fromLangChain with the fake chat models', () => {
  it('relays string content and finishes with the finish_reason of response_metadata', async () => {
    const model = new FakeListChatModel({ responses: ['Héllo 🙂'], generationInfo: { finish_reason: 'length' } });
    const { chunks, merged } = await relayAndConcat(model);
    expect(strip(chunks)).toStrictEqual([
      ...[...'Héllo 🙂'].map((token) => ({ token, type: 'text' })),
      { token: '', type: 'text', finishReason: 'length' },
    ]);
    expect(textOf(chunks)).toBe(mergedText(merged));
  });

  it('relays content parts, streamed tool calls and summed usage like concat does', async () => {
    const model = replay([
      withUsage({ content: '', response_metadata: { model_name: 'claude-x' } }, usage(100, 0, { cache_read: 60 })),
      new AIMessageChunk({ content: [{ type: 'thinking', thinking: 'Weather ', index: 0 }] }),
      new AIMessageChunk({ content: [{ type: 'thinking', thinking: 'twice.', index: 0 }] }),
      new AIMessageChunk({ content: [{ type: 'text_delta', text: 'Checking', index: 1 }] }),
      new AIMessageChunk({ content: [{ type: 'reasoning', reasoning: ' (standard block)' }] }),
      new AIMessageChunk({ content: ' both.' }),
      new AIMessageChunk({ content: '', tool_call_chunks: [{ type: 'tool_call_chunk', id: 'call_a', name: 'weather', args: '', index: 2 }] }),
      new AIMessageChunk({ content: '', tool_call_chunks: [{ type: 'tool_call_chunk', args: '{"city":', index: 2 }] }),
      new AIMessageChunk({ content: '', tool_call_chunks: [{ type: 'tool_call_chunk', id: 'call_b', name: 'weather', args: '{"city":"Rome"}', index: 3 }] }),
      new AIMessageChunk({ content: '', tool_call_chunks: [{ type: 'tool_call_chunk', args: '"Paris"}', index: 2 }] }),
      withUsage({ content: '', response_metadata: { stop_reason: 'tool_use' } }, usage(0, 42, {}, { reasoning: 12 })),
    ]);
    const { chunks, merged } = await relayAndConcat(model);
    const a = { id: 'call_a', name: 'weather', index: 0 };
    const b = { id: 'call_b', name: 'weather', index: 1 };
    const meta = { model: 'claude-x' };
    expect(strip(chunks)).toStrictEqual([
      { token: 'Weather ', type: 'reasoning', ...meta },
      { token: 'twice.', type: 'reasoning', ...meta },
      { token: 'Checking', type: 'text', ...meta },
      { token: ' (standard block)', type: 'reasoning', ...meta },
      { token: ' both.', type: 'text', ...meta },
      { token: '{"city":', type: 'tool-call', toolCall: a, ...meta },
      { token: '{"city":"Rome"}', type: 'tool-call', toolCall: b, ...meta },
      { token: '"Paris"}', type: 'tool-call', toolCall: a, ...meta },
      {
        token: '',
        type: 'text',
        finishReason: 'tool-calls',
        usage: { inputTokens: 100, outputTokens: 42, cachedInputTokens: 60, reasoningTokens: 12 },
        ...meta,
      },
    ]);
    // Differential: LangChain's own accumulation of the same chunks.
    expect(textOf(chunks)).toBe(mergedText(merged));
    const calls = new Map<string, string>();
    for (const chunk of chunks) if (chunk.toolCall) calls.set(chunk.toolCall.id, (calls.get(chunk.toolCall.id) ?? '') + chunk.token);
    expect((merged.tool_calls ?? []).map((call) => [call.id, call.name, call.args])).toStrictEqual(
      [...calls].map(([id, args]) => [id, 'weather', JSON.parse(args)]),
    );
    // Typed `undefined` by @langchain/core 1.4 under exactOptionalPropertyTypes; set at run time.
    const total = (merged as unknown as { usage_metadata?: UsageMetadata }).usage_metadata;
    expect(chunks.at(-1)?.usage).toStrictEqual({
      inputTokens: total?.input_tokens,
      outputTokens: total?.output_tokens,
      cachedInputTokens: total?.input_token_details?.cache_read,
      reasoningTokens: total?.output_token_details?.reasoning,
    });
  });

  it('relays complete tool_calls of a chunk without tool_call_chunks whole, once', async () => {
    const model = new FakeStreamingChatModel({
      chunks: [
        new AIMessageChunk({ content: 'Calling.' }),
        new AIMessageChunk({ content: '', tool_calls: [{ id: 'call_1', name: 'lookup', args: { q: 'tokenrelay' }, type: 'tool_call' }] }),
      ],
    });
    const { chunks, merged } = await relayAndConcat(model);
    expect(strip(chunks)).toStrictEqual([
      { token: 'Calling.', type: 'text' },
      { token: '{"q":"tokenrelay"}', type: 'tool-call', toolCall: { id: 'call_1', name: 'lookup', index: 0 } },
      { token: '', type: 'text', finishReason: 'tool-calls' },
    ]);
    expect(merged.tool_calls?.map((call) => call.args)).toStrictEqual([{ q: 'tokenrelay' }]);
  });

  it.each([
    [undefined, false, 'stop'],
    [undefined, true, 'tool-calls'],
    ['STOP', true, 'tool-calls'],
    ['end_turn', false, 'stop'],
    ['max_tokens', false, 'length'],
    ['MAX_TOKENS', false, 'length'],
    ['content_filter', false, 'content-filter'],
    ['SAFETY', false, 'content-filter'],
    ['guardrail_intervened', false, 'content-filter'],
    ['tool_calls', true, 'tool-calls'],
    ['pause_turn', false, 'other'],
  ])('finishes with finish reason %s (calls: %s) as %s', async (reason, withCall, expectedReason) => {
    const last = new AIMessageChunk({
      content: withCall ? '' : 'x',
      ...(withCall ? { tool_call_chunks: [{ type: 'tool_call_chunk' as const, id: 'c1', name: 't', args: '{}', index: 0 }] } : {}),
      response_metadata: reason === undefined ? {} : { finish_reason: reason },
    });
    const chunks = await collect(fromLangChain(await replay([last]).stream('Hi')));
    expect(chunks.at(-1)).toMatchObject({ token: '', finishReason: expectedReason, index: 1 });
    expect(chunks.at(-1)).not.toHaveProperty('usage');
  });

  it('relays citations as sources and a refusal as text that finishes with content-filter', async () => {
    const model = replay([
      new AIMessageChunk({
        content: [
          {
            type: 'text',
            text: 'Per the docs.',
            citations: [{ type: 'web_search_result_location', url: 'https://example.com', title: 'Ex', cited_text: 'quoted' }],
            annotations: [{ type: 'citation', title: 'Manual', citedText: 'page 2' }],
          },
        ],
      }),
      new AIMessageChunk({ content: [{ type: 'refusal', refusal: 'I cannot.' }] }),
    ]);
    const chunks = await collect(fromLangChain(await model.stream('Hi')));
    expect(strip(chunks)).toStrictEqual([
      { token: 'Per the docs.', type: 'text' },
      { token: '', type: 'source', source: { title: 'Manual', citedText: 'page 2' } },
      { token: '', type: 'source', source: { url: 'https://example.com', title: 'Ex', citedText: 'quoted' } },
      { token: 'I cannot.', type: 'text' },
      { token: '', type: 'text', finishReason: 'content-filter' },
    ]);
  });

  it('relays the strings of a chain that ends in a StringOutputParser', async () => {
    const chain = new FakeListChatModel({ responses: ['ok!'] }).pipe(new StringOutputParser());
    const chunks = await collect(fromLangChain(await chain.stream('Hi'), { provider: 'my-chain' }));
    expect(chunks.map((chunk) => [chunk.token, chunk.provider])).toStrictEqual([
      ['o', 'my-chain'],
      ['k', 'my-chain'],
      ['!', 'my-chain'],
      ['', 'my-chain'],
    ]);
  });
});

describe('fromLangChain failures', () => {
  it('throws a ProviderError that keeps the model error as cause', async () => {
    const broke = new Error('model broke');
    const { chunks, error } = await collectUntilError(fromLangChain(await replay([new AIMessageChunk('a')], broke).stream('Hi')));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a']);
    expect(isProviderError(error)).toBe(true);
    expect(error).toMatchObject({ retryable: false, provider: 'langchain', message: 'LangChain stream failed: model broke' });
    expect((error as ProviderError).cause).toBe(broke);
  });

  it('reads status, retryability and retry-after from an SDK error thrown mid-stream', async () => {
    const sdkError = Object.assign(new Error('429 Rate limit reached for sk-abcdefghijklmnop'), {
      status: 429,
      headers: { 'retry-after': '3' },
      lc_error_code: 'MODEL_RATE_LIMIT',
    });
    const { chunks, error } = await collectUntilError(fromLangChain(await replay([new AIMessageChunk('Part')], sdkError).stream('Hi')));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['Part']);
    expect(error).toMatchObject({ name: 'ProviderError', status: 429, retryable: true, retryAfterMs: 3000, cause: sdkError });
    expect((error as ProviderError).message).not.toContain('sk-abcdefghijklmnop');
  });

  it('throws StreamAbortedError with the signal reason when the signal fires mid-stream', async () => {
    const controller = new AbortController();
    const reason = new Error('client went away');
    const model = new FakeListChatModel({ responses: ['abcdef'], sleep: 1 });
    const chunks: TokenChunk[] = [];
    let error: unknown;
    try {
      for await (const chunk of fromLangChain(await model.stream('Hi', { signal: controller.signal }), { signal: controller.signal })) {
        chunks.push(chunk);
        controller.abort(reason);
      }
    } catch (caught) {
      error = caught;
    }
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a']);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
  });

  it('reports a stream that ended quietly after the signal fired as an abort', async () => {
    const controller = new AbortController();
    async function* quiet() {
      yield new AIMessageChunk('a');
      controller.abort('gone');
    }
    const { chunks, error } = await collectUntilError(fromLangChain(quiet(), { signal: controller.signal }));
    expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a']);
    expect(error).toMatchObject({ name: 'StreamAbortedError', cause: 'gone' });
  });

  it('turns an AbortError into StreamAbortedError without the signal option', async () => {
    const abort = new DOMException('This operation was aborted', 'AbortError');
    const { error } = await collectUntilError(fromLangChain(await replay([new AIMessageChunk('a')], abort).stream('Hi')));
    expect(error).toMatchObject({ name: 'StreamAbortedError', cause: abort });
  });

  it('rejects an item that is not a message chunk and closes the stream', async () => {
    const closed: string[] = [];
    async function* items() {
      try {
        yield new AIMessageChunk('a');
        yield 42 as unknown as AIMessageChunk;
      } finally {
        closed.push('closed');
      }
    }
    const { error } = await collectUntilError(fromLangChain(items()));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('Expected each item of `stream` to be an AIMessageChunk or a string, got 42');
    expect(closed).toStrictEqual(['closed']);
  });

  it('closes the stream when the consumer breaks', async () => {
    const closed: string[] = [];
    async function* items() {
      try {
        yield new AIMessageChunk('a');
        yield new AIMessageChunk('b');
      } finally {
        closed.push('closed');
      }
    }
    for await (const chunk of fromLangChain(items())) if (chunk.token === 'a') break;
    expect(closed).toStrictEqual(['closed']);
  });
});

describe('fromLangChain arguments', () => {
  it.each([
    [null, /got null/],
    [Promise.resolve([]), /got a Promise \(did you forget `await`\?\)/],
    [[new AIMessageChunk('a')], /\(an async iterable\), got an array/],
    [{}, /\(an async iterable\), got an object/],
  ])('rejects %o as the stream', (value, message) => {
    expect(() => fromLangChain(value as never)).toThrow(TypeError);
    expect(() => fromLangChain(value as never)).toThrow(message);
  });

  it('rejects unknown options and bad option values', async () => {
    const stream = await new FakeListChatModel({ responses: ['a'] }).stream('Hi');
    expect(() => fromLangChain(stream, { Provider: 'x' } as never)).toThrow('Unknown option `Provider` in `options`; did you mean `provider`?');
    expect(() => fromLangChain(stream, { signal: {} } as never)).toThrow('Expected `options.signal` to be an AbortSignal, got an object');
    expect(() => fromLangChain(stream, { provider: 7 } as never)).toThrow('Expected `options.provider` to be a non-empty string, got 7');
  });

  it('imports @langchain/core only as types, so the subpath loads without it', () => {
    for (const file of ['langchain.ts', 'langchain-chunks.ts', 'source-errors.ts']) {
      const text = readFileSync(new URL(`../../src/providers/${file}`, import.meta.url), 'utf8');
      for (const line of text.split('\n').filter((candidate) => /^import\b.*from '@langchain\//.test(candidate))) {
        expect(line).toMatch(/^import type /);
      }
    }
  });
});

/** A chunk with `usage_metadata` (its constructor type rejects it under exactOptionalPropertyTypes). */
function withUsage(fields: { content: string; response_metadata: Record<string, unknown> }, usageMetadata: UsageMetadata): AIMessageChunk {
  return new AIMessageChunk({ ...fields, usage_metadata: usageMetadata } as ConstructorParameters<typeof AIMessageChunk>[0]);
}

function usage(
  input: number,
  output: number,
  inputDetails: UsageMetadata['input_token_details'] = {},
  outputDetails: UsageMetadata['output_token_details'] = {},
): UsageMetadata {
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    input_token_details: inputDetails,
    output_token_details: outputDetails,
  };
}
