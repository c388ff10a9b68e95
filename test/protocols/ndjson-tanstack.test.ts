// TanStack AI's `fetchHttpStream` parses every NDJSON line as an AG-UI event, so its ChatClient
// reads `ndjsonFrom(agUIProtocol())` (AG-UI events as lines), relaying Anthropic from the mock
// provider through the same frame iterator the adapters run.
import Anthropic from '@anthropic-ai/sdk';
import { ChatClient, fetchHttpStream } from '@tanstack/ai-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { anthropicScenarios, startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { sseWith } from '../../src/operators/to-sse.js';
import { agUIProtocol } from '../../src/protocols/ag-ui.js';
import { readRunAgentInput } from 'tokenrelay/protocols';
import { ndjsonFrom, ndjsonProtocol } from '../../src/protocols/ndjson.js';
import { toResponse } from 'tokenrelay/web';

let provider: MockProvider;
beforeAll(async () => {
  provider = await startMockProvider();
});
afterAll(() => provider.close());

const protocol = ndjsonFrom(agUIProtocol());
const encoder = new TextEncoder();

/** A fetch answering AG-UI NDJSON for Anthropic's answer; the bodies it sent, to look at. */
function agUIOverNDJSON(script: MockScript) {
  provider.setScript(script);
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
  const bodies: string[] = [];
  const fetchClient = (async (_input: string | URL | Request, init?: RequestInit) => {
    const controller = new AbortController();
    readRunAgentInput(JSON.parse(String(init?.body)), { signal: controller.signal });
    const chunks: AsyncIterable<TokenChunk> = streamAnthropic(
      anthropic,
      { model: 'claude-haiku-4-5-20251001', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] },
      { signal: controller.signal },
    );
    const frames = sseWith({ protocol, heartbeatMs: 0, exposeErrors: false, signal: controller.signal })(chunks);
    let text = '';
    for await (const frame of frames) text += frame;
    bodies.push(text);
    const body = new ReadableStream<Uint8Array>({
      start(stream) {
        stream.enqueue(encoder.encode(text));
        stream.close();
      },
    });
    return new Response(body, { headers: protocol.headers });
  }) as typeof fetch;
  return { fetchClient, bodies };
}

describe("TanStack AI's ChatClient over fetchHttpStream", () => {
  it('reads AG-UI events as NDJSON lines: the assistant text and the tool calls', async () => {
    const { fetchClient, bodies } = agUIOverNDJSON(anthropicScenarios['multiple-blocks']);
    const client = new ChatClient({ connection: fetchHttpStream('http://relay.test/agent', { fetchClient }) });
    await client.sendMessage('Hi');
    const assistant = client.getMessages().find((message) => message.role === 'assistant');
    const parts = (assistant?.parts ?? []) as Array<Record<string, unknown>>;
    const text = parts.filter((part) => part['type'] === 'text').map((part) => part['content']).join('');
    expect(text).toContain('First I look it up.');
    expect(text).toContain('Then I convert it.');
    const calls = parts.filter((part) => part['type'] === 'tool-call');
    expect(calls.map((part) => [part['name'], part['arguments']])).toEqual([
      ['lookup', '{"term":"tide"}'],
      ['convert', '{"unit":"m"}'],
    ]);
    const [body] = bodies;
    expect(body?.endsWith('\n')).toBe(true);
    // One AG-UI event per line, nothing else (no `id:`, no `data:` prefix).
    for (const line of (body ?? '').split('\n').filter((line) => line !== '')) expect(JSON.parse(line)).toHaveProperty('type');
  });

  it("tokenrelay's own NDJSON lines are not AG-UI events: the ChatClient shows no text for them", async () => {
    const fetchClient = (async () => {
      const frames = sseWith({ protocol: ndjsonProtocol(), heartbeatMs: 0, exposeErrors: false })(
        (async function* () {
          yield { token: 'Hello', index: 0, timestamp: 0, type: 'text' } satisfies TokenChunk;
          yield { token: '', index: 1, timestamp: 0, type: 'text', finishReason: 'stop' } satisfies TokenChunk;
        })(),
      );
      let text = '';
      for await (const frame of frames) text += frame;
      return new Response(text, { headers: { 'Content-Type': 'application/x-ndjson' } });
    }) as typeof fetch;
    const client = new ChatClient({ connection: fetchHttpStream('http://relay.test/chat', { fetchClient }) });
    await client.sendMessage('Hi');
    const assistant = client.getMessages().find((message) => message.role === 'assistant');
    const text = ((assistant?.parts ?? []) as Array<Record<string, unknown>>).filter((part) => part['type'] === 'text').map((part) => part['content']).join('');
    expect(text).toBe('');
  });

  it("protocol: 'ag-ui-ndjson' through toResponse: the ChatClient gets the run's text and tool calls, with its own thread and run ids", async () => {
    provider.setScript(anthropicScenarios['multiple-blocks']);
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
    let response: Response | undefined;
    const fetchClient = (async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      const body: unknown = await request.json();
      response = await toResponse(
        (signal) => {
          readRunAgentInput(body, { signal });
          return streamAnthropic(anthropic, { model: 'claude-haiku-4-5-20251001', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] }, { signal });
        },
        { request, protocol: 'ag-ui-ndjson' },
      );
      return response;
    }) as typeof fetch;
    const client = new ChatClient({ connection: fetchHttpStream('http://relay.test/agent', { fetchClient }) });
    await client.sendMessage('Hi');
    expect(response?.headers.get('content-type')).toBe('application/x-ndjson');
    const assistant = client.getMessages().find((message) => message.role === 'assistant');
    const parts = (assistant?.parts ?? []) as Array<Record<string, unknown>>;
    expect(parts.filter((part) => part['type'] === 'text').map((part) => part['content']).join('')).toContain('Then I convert it.');
    expect(parts.filter((part) => part['type'] === 'tool-call').map((part) => part['name'])).toEqual(['lookup', 'convert']);
  });
});
