// The `openai` SDK itself reads a tokenrelay `'openai'` endpoint that relays an Anthropic stream
// (`streamAnthropic` against the loopback mock provider): text, reasoning, tool calls and usage
// must come out exact, errors as the SDK's own APIError classes, and every exit path must end
// with the protocol's terminal frame and leave nothing open (provider request, server stream).
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import express from 'express';
import OpenAI, { APIError, BadRequestError, InternalServerError, RateLimitError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StreamMetrics } from 'tokenrelay';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { closeAllStreams, sse, type SendSSEOptions } from 'tokenrelay/express';
import { anthropicScenarios, startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { readChatCompletionRequest } from 'tokenrelay/protocols';

const MODEL = 'claude-haiku-4-5-20251001';
const MESSAGES = [{ role: 'user' as const, content: 'Hi' }];

let provider: MockProvider;
beforeAll(async () => {
  provider = await startMockProvider();
});
afterAll(() => provider.close());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Endpoint {
  openai: OpenAI;
  /** One per stream, when it ended (the server side of "nothing is left open"). */
  outcomes: StreamMetrics[];
  nextOutcome(): Promise<StreamMetrics>;
  /** The raw body of a request, to look at the wire itself. */
  raw(body: Record<string, unknown>): Promise<{ status: number; type: string | null; text: string }>;
}

/** An Express `POST /v1/chat/completions` that relays Anthropic as Chat Completions chunks. */
async function startEndpoint(script: MockScript, options: SendSSEOptions = {}): Promise<Endpoint> {
  provider.setScript(script);
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
  const outcomes: StreamMetrics[] = [];
  let waiters: Array<() => void> = [];
  let taken = 0;
  const app = express();
  app.post(
    '/v1/chat/completions',
    express.json(),
    sse(
      (req, signal) => {
        const request = readChatCompletionRequest(req.body, { signal });
        const messages = request.messages.map((message) => ({ role: message.role as 'user' | 'assistant', content: String(message.content) }));
        return streamAnthropic(anthropic, { model: request.model, max_tokens: 256, messages }, { signal });
      },
      {
        protocol: 'openai',
        monitor: {
          onFinish: (metrics) => {
            outcomes.push(metrics);
            const woken = waiters;
            waiters = [];
            for (const wake of woken) wake();
          },
        },
        ...options,
      },
    ),
  );
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    openai: new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 }),
    outcomes,
    nextOutcome: () =>
      new Promise((resolve) => {
        const check = (): void => {
          const next = outcomes[taken];
          if (next === undefined) waiters.push(check);
          else {
            taken++;
            resolve(next);
          }
        };
        check();
      }),
    async raw(body) {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: MESSAGES, stream: true, ...body }),
      });
      return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
    },
  };
}

/** The provider request of this stream ended, and how. */
async function providerEnd(): Promise<string> {
  const last = provider.requests.at(-1);
  if (last === undefined) throw new Error('No provider request');
  return (await last.ended).end ?? 'unknown';
}

describe("the openai SDK reads a tokenrelay 'openai' endpoint relaying Anthropic", () => {
  it('create({ stream: true }): exact text, stable id/model, finish_reason, the usage-only chunk when asked, [DONE]', async () => {
    const endpoint = await startEndpoint(anthropicScenarios.text);
    const stream = await endpoint.openai.chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Héllo 🙂🚀 漢字');
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(new Set(chunks.map((chunk) => chunk.created)).size).toBe(1);
    expect(new Set(chunks.map((chunk) => chunk.model))).toEqual(new Set([MODEL]));
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const finish = chunks.at(-2);
    expect(finish?.choices[0]?.finish_reason).toBe('stop');
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
    expect((await endpoint.nextOutcome()).outcome).toBe('completed');
    expect(await providerEnd()).toBe('completed');
  });

  it('without include_usage: no usage-only chunk (every chunk has its choice), usage on the finish chunk', async () => {
    const endpoint = await startEndpoint(anthropicScenarios.text);
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.choices.length === 1)).toBe(true);
    expect(chunks.at(-1)?.usage).toEqual({ prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
    const raw = await endpoint.raw({});
    expect(raw.status).toBe(200);
    expect(raw.type).toBe('text/event-stream; charset=utf-8');
    expect(raw.text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('.stream() and finalChatCompletion(): text, role, finish_reason and usage exact', async () => {
    const endpoint = await startEndpoint(anthropicScenarios.text);
    const runner = endpoint.openai.chat.completions.stream({
      model: MODEL,
      messages: MESSAGES,
      stream_options: { include_usage: true },
    });
    const completion = await runner.finalChatCompletion();
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe(MODEL);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'Héllo 🙂🚀 漢字' });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toEqual({ prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
  });

  it('tool calls: index, id and name on the first delta; finalChatCompletion has them exact', async () => {
    const endpoint = await startEndpoint(anthropicScenarios['parallel-tool-calls']);
    const completion = await endpoint.openai.chat.completions
      .stream({ model: MODEL, messages: MESSAGES, stream_options: { include_usage: true } })
      .finalChatCompletion();
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(completion.choices[0]?.message.tool_calls).toEqual([
      { id: 'toolu_01Weather', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
      { id: 'toolu_01Time', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
    ]);
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    const calls = [];
    for await (const chunk of stream) calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    const firsts = calls.filter((call) => call.id !== undefined);
    expect(firsts.map((call) => [call.index, call.id, call.function?.name])).toEqual([
      [0, 'toolu_01Weather', 'get_weather'],
      [1, 'toolu_01Time', 'get_time'],
    ]);
    expect(calls.filter((call) => call.id === undefined).every((call) => call.function?.name === undefined)).toBe(true);
  });

  it('reasoning as delta.reasoning_content, text as content, reasoning tokens in the usage details', async () => {
    const endpoint = await startEndpoint(anthropicScenarios.thinking);
    const stream = await endpoint.openai.chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    let reasoning = '';
    let content = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      reasoning += delta?.reasoning_content ?? '';
      content += delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(reasoning).toBe('Let me count: 6×7.');
    expect(content).toBe('42');
    expect(usage).toEqual({ prompt_tokens: 20, completion_tokens: 9, total_tokens: 29, completion_tokens_details: { reasoning_tokens: 6 } });
  });

  it('sources and provider-executed tool calls are dropped and counted; the answer still reads', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const endpoint = await startEndpoint(anthropicScenarios['web-search']);
    const completion = await endpoint.openai.chat.completions.stream({ model: MODEL, messages: MESSAGES }).finalChatCompletion();
    expect(completion.choices[0]?.message.content).toBe("I'll search.High tide is at 06:12.");
    expect(completion.choices[0]?.message.tool_calls).toBeUndefined();
    const raw = await endpoint.raw({});
    expect(raw.text).toMatch(/^: tokenrelay dropped chunks Chat Completions cannot express: \d+ provider-executed tool calls?, \d+ sources?$/m);
    expect(raw.text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/^tokenrelay: the 'openai' protocol dropped chunks it cannot express: \d+ provider-executed tool calls?, \d+ sources?/);
    warn.mockRestore();
  });
});

describe("every exit path of an 'openai' stream, seen by the openai SDK", () => {
  it('a body that is not a Chat Completions request is a 400 BadRequestError, and no provider request is made', async () => {
    const endpoint = await startEndpoint(anthropicScenarios.text);
    const before = provider.requests.length;
    const error = await endpoint.openai.chat.completions
      .create({ model: '', messages: MESSAGES, stream: true })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid-request' });
    expect((error as BadRequestError).message).toContain('`model`');
    expect(provider.requests.length).toBe(before);
  });

  it('a provider 429 before the first byte is a RateLimitError with Retry-After and OpenAI error JSON', async () => {
    const endpoint = await startEndpoint({ fault: { kind: 'http-error', status: 429, type: 'rate_limit_error', headers: { 'retry-after': '7' } } });
    const error = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'provider', param: null });
    expect((error as RateLimitError).headers.get('retry-after')).toBe('7');
    expect((await endpoint.nextOutcome()).outcome).toBe('error');
  });

  it('a provider failure before the first byte is a 502 InternalServerError', async () => {
    const endpoint = await startEndpoint({ fault: { kind: 'http-error', status: 500, type: 'api_error' } });
    const error = await endpoint.openai.chat.completions.stream({ model: MODEL, messages: MESSAGES }).finalChatCompletion().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 502, type: 'server_error', code: 'provider' });
  });

  it("the provider's in-band error before the first token is an HTTP error status too", async () => {
    const endpoint = await startEndpoint({ tokens: ['never'], fault: { kind: 'error-event', afterTokens: 0 } });
    const error = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBeGreaterThanOrEqual(500);
    expect(await providerEnd()).toBe('completed');
  });

  it('a provider error after the first token is an in-stream error frame: APIError (no status), text so far kept', async () => {
    const endpoint = await startEndpoint(anthropicScenarios['error-event']);
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((caught: unknown) => caught);
    expect(text).toBe('Partial answer');
    expect(error).toBeInstanceOf(APIError);
    expect(error).not.toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: undefined, type: 'server_error', code: 'provider', message: 'The provider failed' });
    expect((await endpoint.nextOutcome()).outcome).toBe('error');
    const final = await endpoint.openai.chat.completions.stream({ model: MODEL, messages: MESSAGES }).finalChatCompletion().catch((caught: unknown) => caught);
    expect(final).toBeInstanceOf(APIError);
  });

  it('an idle timeout after the first token is an in-stream APIError with code timeout; the provider request is cancelled', async () => {
    const endpoint = await startEndpoint({ tokens: ['one', ' two'], fault: { kind: 'stall', afterTokens: 1 } }, { timeout: { idleMs: 150 } });
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((caught: unknown) => caught);
    expect(text).toBe('one');
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status: undefined, code: 'timeout', type: 'server_error' });
    expect((await endpoint.nextOutcome()).outcome).toBe('timeout');
    expect(await providerEnd()).toBe('client-closed');
  });

  it('a first-token timeout is a 504 InternalServerError', async () => {
    const endpoint = await startEndpoint({ tokens: ['late'], fault: { kind: 'stall', afterTokens: 0 } }, { timeout: { firstTokenMs: 100 }, statusWindowMs: 5_000 });
    const error = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 504, code: 'timeout' });
    expect(await providerEnd()).toBe('client-closed');
  });

  it('a client abort (break) cancels the relay and the provider request', async () => {
    const tokens = Array.from({ length: 200 }, (_, index) => ` t${index}`);
    const endpoint = await startEndpoint({ tokens, delayMs: 10 });
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    let seen = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) seen++;
      if (seen === 2) break;
    }
    expect((await endpoint.nextOutcome()).outcome).toBe('aborted');
    expect(await providerEnd()).toBe('client-closed');
  });

  it('a graceful shutdown ends the stream with an error frame (code shutdown) and [DONE]', async () => {
    const tokens = Array.from({ length: 200 }, (_, index) => ` t${index}`);
    const endpoint = await startEndpoint({ tokens, delayMs: 10 });
    const stream = await endpoint.openai.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (text !== '') void closeAllStreams({ reason: 'Deploying', retryMs: 500 });
      }
    })().catch((caught: unknown) => caught);
    expect(text.startsWith(' t0')).toBe(true);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status: undefined, code: 'shutdown', type: 'server_error' });
    expect((await endpoint.nextOutcome()).outcome).toBe('aborted');
    expect(await providerEnd()).toBe('client-closed');
  });
});
