// The 'ai-sdk' protocol over real HTTP, read by the real `ai` client (DefaultChatTransport, which
// validates every part against uiMessageChunkSchema, and readUIMessageStream), with the answers
// coming from the mock provider through the real OpenAI and Anthropic SDKs. Every exit path ends
// with the protocol's terminal part and leaves nothing open; a chat's active stream resumes from
// another relay instance that shares the store.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { APICallError, DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, memoryStore, type Relay } from 'tokenrelay/relay';
import type { RelayStore } from 'tokenrelay/store';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { closeAllStreams } from 'tokenrelay/node';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { liveStreamCount } from '../../src/servers/internal/registry.ts';
import { createUseChatApp, listen, type Llm } from './ai-sdk-app.ts';
import { contentParts } from './ai-sdk-helpers.ts';

type Served = Awaited<ReturnType<typeof listen>>;

const USER: UIMessage = { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Hi' }] };
const TOKENS = ['Streaming ', 'keeps ', 'people ', 'reading ', 'while ', 'the ', 'model ', 'writes.'];

let provider: MockProvider;
let openaiLlm: Llm;
let anthropicLlm: Llm;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  provider = await startMockProvider();
  const openai = new OpenAI({ apiKey: 'mock', baseURL: provider.openaiBaseURL, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'mock', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
  openaiLlm = (messages, signal) => streamOpenAI(openai, { model: 'mock-model', messages }, { signal });
  anthropicLlm = (messages, signal) => streamAnthropic(anthropic, { model: 'claude-mock', max_tokens: 256, messages }, { signal });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

afterAll(async () => {
  await provider?.close();
});

async function serve(llm: Llm, options: Parameters<typeof createUseChatApp>[2] = {}, relay: Relay = createRelay()): Promise<Served> {
  const served = await listen(createUseChatApp(relay, llm, options));
  closers.push(() => relay.close(), () => served.close());
  return served;
}

function transport(served: Served): DefaultChatTransport<UIMessage> {
  return new DefaultChatTransport({ api: `${served.url}/api/chat` });
}

function send(served: Served, options: { chatId?: string; path?: string; signal?: AbortSignal } = {}): Promise<ReadableStream<UIMessageChunk>> {
  const api = `${served.url}${options.path ?? '/api/chat'}`;
  return new DefaultChatTransport({ api }).sendMessages({
    trigger: 'submit-message',
    chatId: options.chatId ?? crypto.randomUUID(),
    messageId: undefined,
    messages: [USER],
    abortSignal: options.signal,
  });
}

/** Reads the parts to the end: the parts, and the UIMessage they assemble into (readUIMessageStream on a copy). */
async function read(stream: ReadableStream<UIMessageChunk>): Promise<{ parts: UIMessageChunk[]; message: UIMessage | undefined; errors: Error[] }> {
  const [forParts, forMessage] = stream.tee();
  const errors: Error[] = [];
  const assembled = (async () => {
    let message: UIMessage | undefined;
    for await (const snapshot of readUIMessageStream({ stream: forMessage, onError: (error) => errors.push(error as Error) })) message = snapshot;
    return message;
  })();
  const parts: UIMessageChunk[] = [];
  for await (const part of forParts) parts.push(part);
  return { parts, message: await assembled, errors };
}

/** The raw body of a POST, to see the bytes the client gets (the terminal `[DONE]`). */
async function rawPost(served: Served, path = '/api/direct'): Promise<Response> {
  return fetch(`${served.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: crypto.randomUUID(), messages: [USER] }),
  });
}

async function untilNothingIsOpen(): Promise<void> {
  for (let round = 0; round < 500 && liveStreamCount() > 0; round++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(liveStreamCount()).toBe(0);
}

function script(extra: MockScript = {}): MockScript {
  return { tokens: TOKENS, usage: { inputTokens: 5, outputTokens: TOKENS.length }, ...extra };
}

describe("'ai-sdk' over HTTP, read by DefaultChatTransport", () => {
  it('sends the UI message stream headers and ends the body with data: [DONE]', async () => {
    provider.setScript(script());
    const served = await serve(openaiLlm);
    const response = await rawPost(served);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
    const body = await response.text();
    expect(body).toMatch(/data: \{"type":"finish-step"\}\n\ndata: \{"type":"finish",[^\n]*\}\n\ndata: \[DONE\]\n\n$/);
    await untilNothingIsOpen();
  });

  it('assembles exactly the reasoning, text and tool calls the provider streamed (Anthropic SDK)', async () => {
    provider.setScript({
      reasoning: ['Let me ', 'check.'],
      tokens: ['I will ', 'search.'],
      toolCalls: [
        { id: 'toolu_1', name: 'search', arguments: ['{"query":', '"tokenrelay"}'] },
        { id: 'toolu_2', name: 'weather', arguments: ['{"city":"Zürich"', '}'] },
      ],
      finishReason: 'tool-calls',
      usage: { inputTokens: 12, outputTokens: 30 },
    });
    const served = await serve(anthropicLlm);
    const { parts, message, errors } = await read(await send(served, { path: '/api/direct' }));
    expect(errors).toEqual([]);
    expect(contentParts(message)).toEqual([
      { type: 'reasoning', id: 'r0', text: 'Let me check.', state: 'done' },
      { type: 'text', text: 'I will search.', state: 'done' },
      { type: 'tool-search', toolCallId: 'toolu_1', state: 'input-available', input: { query: 'tokenrelay' } },
      { type: 'tool-weather', toolCallId: 'toolu_2', state: 'input-available', input: { city: 'Zürich' } },
    ]);
    expect(parts[0]).toEqual({ type: 'start', messageId: message?.id });
    expect(parts.at(-1)).toEqual({
      type: 'finish',
      finishReason: 'tool-calls',
      messageMetadata: { usage: expect.objectContaining({ inputTokens: 12, outputTokens: 30 }), ttftMs: expect.any(Number), model: 'claude-mock', provider: 'anthropic' },
    });
    expect(message?.metadata).toMatchObject({ usage: { inputTokens: 12, outputTokens: 30 } });
    await untilNothingIsOpen();
  });

  describe('every exit path ends with its terminal part and leaves nothing open', () => {
    it('completed: finish, and the provider answered to the end', async () => {
      provider.setScript(script());
      const served = await serve(openaiLlm);
      const before = provider.requests.length;
      const { parts, message } = await read(await send(served, { path: '/api/direct' }));
      expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
      expect(contentParts(message)).toEqual([{ type: 'text', text: TOKENS.join(''), state: 'done' }]);
      expect((await (await provider.request(before + 1)).ended).end).toBe('completed');
      await untilNothingIsOpen();
    });

    it('client abort: the provider request is closed', async () => {
      provider.setScript(script({ delayMs: 40 }));
      const served = await serve(openaiLlm);
      const before = provider.requests.length;
      const controller = new AbortController();
      const reader = (await send(served, { path: '/api/direct', signal: controller.signal })).getReader();
      for (let reads = 0; reads < 50; reads++) {
        const { value } = await reader.read();
        if (value?.type === 'text-delta') break;
      }
      controller.abort();
      await expect(reader.read()).rejects.toThrow();
      expect((await (await provider.request(before + 1)).ended).end).toBe('client-closed');
      await untilNothingIsOpen();
    });

    it('provider error before the first token: its HTTP status, and a body the client can read', async () => {
      provider.setScript({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '3' } } });
      const served = await serve(openaiLlm);
      const error = await send(served, { path: '/api/direct' }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(APICallError.isInstance(error)).toBe(true);
      const apiError = error as APICallError;
      expect(apiError.statusCode).toBe(429);
      expect(JSON.parse(apiError.message)).toEqual({
        type: 'error',
        errorText: 'The provider failed',
        code: 'provider',
        status: 429,
        retryable: true,
        retryAfterMs: 3000,
      });
      await untilNothingIsOpen();
    });

    it('provider error after the first token: an error part (safe message only), then [DONE]', async () => {
      provider.setScript(script({ fault: { kind: 'error-event', afterTokens: 2, message: 'secret upstream detail' } }));
      const served = await serve(openaiLlm);
      const { parts, message, errors } = await read(await send(served, { path: '/api/direct' }));
      expect(parts.at(-1)).toEqual({ type: 'error', errorText: 'The provider failed' });
      expect(JSON.stringify(parts)).not.toContain('secret');
      expect(errors.map((error) => error.message)).toEqual(['The provider failed']);
      expect(contentParts(message)).toEqual([{ type: 'text', text: TOKENS.slice(0, 2).join(''), state: 'done' }]);
      const body = await (await rawPost(served)).text();
      expect(body.endsWith('data: {"type":"error","errorText":"The provider failed"}\n\ndata: [DONE]\n\n')).toBe(true);
      await untilNothingIsOpen();
    });

    it('timeout: an error part saying so, and the provider request is closed', async () => {
      provider.setScript(script({ fault: { kind: 'stall', afterTokens: 2 } }));
      const served = await serve(openaiLlm, { timeout: { idleMs: 150 }, statusWindowMs: 0 });
      const before = provider.requests.length;
      const { parts } = await read(await send(served, { path: '/api/direct' }));
      expect(parts.at(-1)).toEqual({ type: 'error', errorText: "No chunk within 150 ms" });
      expect((await (await provider.request(before + 1)).ended).end).toBe('client-closed');
      await untilNothingIsOpen();
    });

    it('timeout before the first token: 504 with the same readable body', async () => {
      provider.setScript(script({ firstTokenDelayMs: 5_000 }));
      const served = await serve(openaiLlm, { timeout: { firstTokenMs: 100 } });
      const error = (await send(served, { path: '/api/direct' }).catch((caught: unknown) => caught)) as APICallError;
      expect(error.statusCode).toBe(504);
      expect(JSON.parse(error.message)).toMatchObject({ type: 'error', code: 'timeout', errorText: expect.any(String) });
      await untilNothingIsOpen();
    });

    it('shutdown: an error part with the notice, then [DONE]; the provider request is closed', async () => {
      provider.setScript(script({ delayMs: 40 }));
      const served = await serve(openaiLlm);
      const before = provider.requests.length;
      const reader = (await send(served, { path: '/api/direct' })).getReader();
      const parts: UIMessageChunk[] = [];
      for (let reads = 0; reads < 50; reads++) {
        const { value } = await reader.read();
        if (value !== undefined) parts.push(value);
        if (value?.type === 'text-delta') break;
      }
      await closeAllStreams({ retryMs: 500, reason: 'The server is restarting' });
      for (let reads = 0; reads < 100; reads++) {
        const { value, done } = await reader.read();
        if (done) break;
        parts.push(value);
      }
      expect(parts.at(-1)).toEqual({ type: 'error', errorText: 'The server is restarting' });
      expect((await (await provider.request(before + 1)).ended).end).toBe('client-closed');
      await untilNothingIsOpen();
    });
  });
});

describe('resume, as useChat({ resume: true }) does it: GET {api}/{chatId}/stream', () => {
  async function twoInstances(store: RelayStore, llm: Llm): Promise<[Served, Served]> {
    // Two instances: each its own relay and server, one shared store.
    return [await serve(llm, {}, createRelay({ store })), await serve(llm, {}, createRelay({ store }))];
  }

  it('answers 204 when the chat has no active stream', async () => {
    const [served] = await twoInstances(memoryStore(), openaiLlm);
    const response = await fetch(`${served.url}/api/chat/${crypto.randomUUID()}/stream`);
    expect(response.status).toBe(204);
    expect(await transport(served).reconnectToStream({ chatId: crypto.randomUUID() })).toBeNull();
  });

  it('replays the active stream from its start on another instance and follows it live; 204 once it ended', async () => {
    provider.setScript(script({ delayMs: 30 }));
    const store = memoryStore();
    const [first, second] = await twoInstances(store, openaiLlm);
    const chatId = crypto.randomUUID();
    const before = provider.requests.length;
    const original = (await send(first, { chatId })).getReader();
    const seen: UIMessageChunk[] = [];
    for (let reads = 0; reads < 50; reads++) {
      const { value } = await original.read();
      if (value !== undefined) seen.push(value);
      if (seen.filter((part) => part.type === 'text-delta').length === 2) break;
    }
    const resumed = await transport(second).reconnectToStream({ chatId });
    expect(resumed).not.toBeNull();
    const { parts, message } = await read(resumed!);
    // From its start: the same start part (the same message id), then every part live, once.
    expect(parts[0]).toEqual(seen[0]);
    expect(contentParts(message)).toEqual([{ type: 'text', text: TOKENS.join(''), state: 'done' }]);
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
    const rest = await read(new ReadableStream({ pull: async (controller) => {
      const { value, done } = await original.read();
      if (done) controller.close();
      else controller.enqueue(value);
    } }));
    expect([...seen, ...rest.parts].map((part) => part.type)).toEqual(parts.map((part) => part.type));
    expect(provider.requests.length).toBe(before + 1);
    for (let round = 0; round < 200 && (await fetch(`${first.url}/api/chat/${chatId}/stream`)).status !== 204; round++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect((await fetch(`${second.url}/api/chat/${chatId}/stream`)).status).toBe(204);
    await untilNothingIsOpen();
  });

  it('a reload (the POST response gone) resumes the same answer; a shutdown mid-answer too', async () => {
    provider.setScript(script({ delayMs: 30 }));
    const [first, second] = await twoInstances(memoryStore(), openaiLlm);
    const chatId = crypto.randomUUID();
    const controller = new AbortController();
    const original = (await send(first, { chatId, signal: controller.signal })).getReader();
    let start: UIMessageChunk | undefined;
    for (let reads = 0; reads < 50; reads++) {
      const { value } = await original.read();
      start ??= value;
      if (value?.type === 'text-delta') break;
    }
    controller.abort(); // the page reloads
    await original.read().catch(() => undefined);
    const resumed = await transport(first).reconnectToStream({ chatId });
    const reader = resumed!.getReader();
    expect((await reader.read()).value).toEqual(start);
    await closeAllStreams({ reason: 'The server is restarting' }); // this instance shuts down mid-answer
    const ended: UIMessageChunk[] = [];
    for (let reads = 0; reads < 100; reads++) {
      const { value, done } = await reader.read();
      if (done) break;
      ended.push(value);
    }
    expect(ended.at(-1)).toEqual({ type: 'error', errorText: 'The server is restarting' });
    // The producer runs on: the other instance serves the whole answer.
    const { message } = await read((await transport(second).reconnectToStream({ chatId }))!);
    expect(message?.id).toBe((start as { messageId: string }).messageId);
    expect(contentParts(message)).toEqual([{ type: 'text', text: TOKENS.join(''), state: 'done' }]);
    await untilNothingIsOpen();
  });

  it('DELETE {api}/{chatId}/stream stops the provider at once, from any instance', async () => {
    provider.setScript(script({ delayMs: 40 }));
    const [first, second] = await twoInstances(memoryStore(), openaiLlm);
    const chatId = crypto.randomUUID();
    const before = provider.requests.length;
    const reader = (await send(first, { chatId })).getReader();
    for (let reads = 0; reads < 50; reads++) if ((await reader.read()).value?.type === 'text-delta') break;
    expect((await fetch(`${second.url}/api/chat/${chatId}/stream`, { method: 'DELETE' })).status).toBe(204);
    const rest: UIMessageChunk[] = [];
    for (let reads = 0; reads < 100; reads++) {
      const { value, done } = await reader.read();
      if (done) break;
      rest.push(value);
    }
    expect(rest.at(-1)).toEqual({ type: 'abort', reason: 'The stream was cancelled' });
    expect((await (await provider.request(before + 1)).ended).end).toBe('client-closed');
    expect((await fetch(`${second.url}/api/chat/${chatId}/stream`)).status).toBe(204);
    await untilNothingIsOpen();
  });
});
