import Anthropic from '@anthropic-ai/sdk';
import { setupServer } from 'msw/node';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectText, isStreamAbortedError, type TokenChunk } from 'tokenrelay';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { streamOpenAI } from 'tokenrelay/openai';
import {
  anthropicHandlers,
  MockRecorder,
  openaiHandlers,
  startMockProvider,
  type MockProvider,
} from 'tokenrelay/testing';

const text = ['Zürich ', '東京 ', '🦀🚀 ', 'done'];

describe('startMockProvider (loopback)', () => {
  let provider: MockProvider;
  beforeAll(async () => {
    provider = await startMockProvider({ script: { tokens: text, delayMs: 1 }, split: { seed: 7 } });
  });
  afterEach(() => provider.clear());
  afterAll(() => provider.close());

  it('serves the real OpenAI SDK over HTTP, split into small writes', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const stream = streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(await collectText(stream)).toBe(text.join(''));
    const request = await provider.request(1);
    expect(request.api).toBe('openai-chat');
    expect(request.body.model).toBe('gpt-4o-mini');
    expect(request.body.stream_options).toEqual({ include_usage: true });
  });

  it('serves the real Anthropic SDK over HTTP', async () => {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
    const chunks: TokenChunk[] = [];
    const signal = new AbortController().signal;
    for await (const chunk of streamAnthropic(
      anthropic,
      { model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] },
      { signal },
    )) {
      chunks.push(chunk);
    }
    expect(chunks.map((chunk) => chunk.token).join('')).toBe(text.join(''));
    expect(chunks.at(-1)?.finishReason).toBe('stop');
    expect((await provider.request(1)).api).toBe('anthropic-messages');
  });

  it('records that a client abort closed the provider request', async () => {
    provider.setScript({ tokens: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 30 });
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const chunk of streamOpenAI(openai, { model: 'm', messages: [] }, { signal: controller.signal })) {
        seen.push(chunk.token);
        if (seen.length === 2) controller.abort(new Error('user left'));
      }
    })().catch((caught: unknown) => caught);
    expect(isStreamAbortedError(error)).toBe(true);
    const request = await provider.request(1);
    const ended = await request.ended;
    expect(ended.end).toBe('client-closed');
    expect(ended.endedAt! - request.receivedAt).toBeLessThan(1000);
    provider.setScript({ tokens: text, delayMs: 1 });
  });

  it('keeps a stalled answer open until the client gives up', async () => {
    provider.setScript({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 1 } });
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    const controller = new AbortController();
    const iterator = streamOpenAI(openai, { model: 'm', messages: [] }, { signal: controller.signal });
    expect((await iterator.next()).value?.token).toBe('a');
    const pending = iterator.next();
    const request = await provider.request(1);
    expect(request.end).toBeUndefined();
    controller.abort();
    await expect(pending).rejects.toSatisfy(isStreamAbortedError);
    expect((await request.ended).end).toBe('client-closed');
    provider.setScript({ tokens: text, delayMs: 1 });
  });

  it('answers requests it cannot serve with a provider-shaped 4xx', async () => {
    const notStreamed = await fetch(`${provider.openaiBaseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(notStreamed.status).toBe(400);
    expect(((await notStreamed.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const unknown = await fetch(`${provider.url}/v1/embeddings`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
  });
});

describe('msw handlers', () => {
  const recorder = new MockRecorder();
  const server = setupServer(
    ...openaiHandlers((request) => ({ tokens: text, model: `${String(request.body.model)}-2026` }), {
      split: { seed: 3 },
      recorder,
    }),
    ...anthropicHandlers({ tokens: text }, { split: { seed: 4 }, recorder }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterEach(() => {
    server.resetHandlers();
    recorder.clear();
  });
  afterAll(() => server.close());

  it('answers the OpenAI SDK at its default base URL, Chat and Responses', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', maxRetries: 0 });
    const chat: TokenChunk[] = [];
    for await (const chunk of streamOpenAI(openai, { model: 'gpt-x', messages: [] })) chat.push(chunk);
    expect(chat.map((chunk) => chunk.token).join('')).toBe(text.join(''));
    expect(chat[0]?.model).toBe('gpt-x-2026');
    expect(await collectText(streamOpenAI(openai, { model: 'gpt-x', input: 'hi' }))).toBe(text.join(''));
    expect(recorder.requests.map((request) => request.api)).toEqual(['openai-chat', 'openai-responses']);
  });

  it('answers the Anthropic SDK at its default base URL', async () => {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', maxRetries: 0 });
    const stream = streamAnthropic(
      anthropic,
      { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
      { signal: new AbortController().signal },
    );
    expect(await collectText(stream)).toBe(text.join(''));
    expect((await recorder.request(1)).end).toBe('completed');
  });
});
