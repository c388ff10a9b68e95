// The 'ndjson' protocol: one chunk per line, then one terminal line (done, error or shutdown),
// its heartbeat an empty line. Read by a plain line reader and by TanStack AI's
// `fetchHttpStream` connection, through `toResponse` relaying Anthropic from the mock provider.
import Anthropic from '@anthropic-ai/sdk';
import { fetchHttpStream } from '@tanstack/ai-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type StreamMetrics, type TokenChunk } from 'tokenrelay';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { anthropicScenarios, startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { closeAllStreams, toResponse, type ToResponseOptions } from 'tokenrelay/web';
import { ndjsonProtocol } from '../../src/protocols/ndjson.js';
import { protocolNamed } from '../../src/protocols/index.js';

const chunk = (fields: Partial<TokenChunk> & { index: number }): TokenChunk => ({ token: '', timestamp: 0, type: 'text', ...fields });

function encode(chunks: TokenChunk[], end?: 'end' | Error): string {
  const encoder = ndjsonProtocol().encoder({ exposeErrors: false });
  let text = encoder.open();
  for (const each of chunks) text += encoder.chunk(each);
  if (end === 'end') text += encoder.end();
  else if (end !== undefined) text += encoder.error(end);
  return text;
}

const linesOf = (text: string): Array<Record<string, unknown>> =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("'ndjson' protocol: lines", () => {
  it('is in the registry, as application/x-ndjson with an empty-line heartbeat', () => {
    const protocol = protocolNamed('ndjson', { retryMs: 1000 });
    expect(protocol?.name).toBe('ndjson');
    expect(protocol?.headers).toEqual({ 'Content-Type': 'application/x-ndjson' });
    expect(protocol?.heartbeat).toBe('\n');
    expect(protocol?.encoder({ exposeErrors: false }).open()).toBe('');
  });

  it('writes each chunk as one JSON line, then a done line with the finish reason, last index, usage, model and provider', () => {
    const usage = { inputTokens: 3, outputTokens: 2 };
    const chunks = [
      chunk({ index: 0, type: 'reasoning', token: 'hm' }),
      chunk({ index: 1, token: 'a\nb\r\u2028', model: 'm', provider: 'p' }),
      chunk({ index: 2, type: 'tool-call', token: '{}', toolCall: { id: 'c1', name: 'f', index: 0 } }),
      chunk({ index: 3, type: 'source', source: { url: 'https://a.example' } }),
      chunk({ index: 4, token: '!', finishReason: 'tool-calls', usage, model: 'm', provider: 'p' }),
    ];
    const text = encode(chunks);
    expect(text.split('\n')).toHaveLength(7);
    expect(text.endsWith('\n')).toBe(true);
    const lines = linesOf(text);
    expect(lines.slice(0, 4)).toEqual(chunks.slice(0, 4));
    // The last chunk's text keeps its own line; its end goes to the done line.
    expect(lines[4]).toEqual({ token: '!', index: 4, timestamp: 0, type: 'text', model: 'm', provider: 'p' });
    expect(lines[5]).toEqual({ type: 'done', finishReason: 'tool-calls', index: 4, usage, model: 'm', provider: 'p' });
  });

  it('a last chunk with no text is only the done line; a source that just ends is done with stop and the last usage', () => {
    expect(linesOf(encode([chunk({ index: 0, token: 'x' }), chunk({ index: 1, finishReason: 'length' })]))).toEqual([
      { token: 'x', index: 0, timestamp: 0, type: 'text' },
      { type: 'done', finishReason: 'length', index: 1 },
    ]);
    expect(linesOf(encode([chunk({ index: 0, token: 'x', usage: { inputTokens: 1, outputTokens: 1 } })], 'end')).at(-1)).toEqual({
      type: 'done',
      finishReason: 'stop',
      index: 0,
      usage: { inputTokens: 1, outputTokens: 1 },
    });
    expect(linesOf(encode([], 'end'))).toEqual([{ type: 'done', finishReason: 'stop' }]);
  });

  it('an error is one error line { type, code, message } (provider text hidden), shutdown one shutdown line', () => {
    expect(linesOf(encode([chunk({ index: 0, token: 'x' })], new ProviderError('secret upstream text', { status: 529, retryable: true }))).at(-1)).toEqual({
      type: 'error',
      code: 'provider',
      message: 'The provider failed',
      status: 529,
      retryable: true,
    });
    expect(linesOf(encode([], new Error('bug')))).toEqual([{ type: 'error', code: 'internal', message: 'Internal error' }]);
    expect(ndjsonProtocol().shutdownFrame({ retryMs: 500, message: 'Deploying' })).toBe('{"type":"shutdown","retryMs":500,"message":"Deploying"}\n');
    expect(JSON.parse(ndjsonProtocol().errorBody({ code: 'provider', message: 'The provider failed', status: 429 }))).toEqual({
      error: { code: 'provider', message: 'The provider failed', status: 429 },
    });
  });
});

let provider: MockProvider;
beforeAll(async () => {
  provider = await startMockProvider();
});
afterAll(() => provider.close());

const MODEL = 'claude-haiku-4-5-20251001';

/** A fetch that answers with `toResponse(…, { protocol: 'ndjson' })` relaying Anthropic, and each stream's outcome. */
function relay(script: MockScript, options: Omit<ToResponseOptions, 'request' | 'protocol'> = {}) {
  provider.setScript(script);
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: provider.anthropicBaseURL, maxRetries: 0 });
  const outcomes: StreamMetrics[] = [];
  let settle: (metrics: StreamMetrics) => void = () => undefined;
  const finished = new Promise<StreamMetrics>((resolve) => (settle = resolve));
  const fetchClient = (async (input: string | URL | Request, init?: RequestInit) =>
    toResponse((signal) => streamAnthropic(anthropic, { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] }, { signal }), {
      ...options,
      request: new Request(input, init),
      protocol: 'ndjson',
      monitor: {
        onFinish: (metrics) => {
          outcomes.push(metrics);
          settle(metrics);
        },
      },
    })) as typeof fetch;
  return { fetchClient, finished };
}

async function providerEnd(): Promise<string> {
  const last = provider.requests.at(-1);
  if (last === undefined) throw new Error('No provider request');
  return (await last.ended).end ?? 'unknown';
}

async function readLines(response: Response): Promise<Array<Record<string, unknown>>> {
  return linesOf(await response.text());
}

describe("every exit path of an 'ndjson' stream", () => {
  it('completed: the chunks, then a done line; the answer reads back exact', async () => {
    const { fetchClient, finished } = relay(anthropicScenarios.text);
    const response = await fetchClient('http://relay.test/chat', { method: 'POST' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = await readLines(response);
    expect(lines.filter((line) => line['type'] === 'text').map((line) => line['token']).join('')).toBe('Héllo 🙂🚀 漢字');
    expect(lines.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop', usage: { inputTokens: 9, outputTokens: 4 }, model: MODEL, provider: 'anthropic' });
    expect((await finished).outcome).toBe('completed');
    expect(await providerEnd()).toBe('completed');
  });

  it('a provider error before the first token: its HTTP status, a JSON body', async () => {
    const { fetchClient } = relay({ fault: { kind: 'http-error', status: 429, headers: { 'retry-after': '3' } } });
    const response = await fetchClient('http://relay.test/chat', { method: 'POST' });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(await response.json()).toMatchObject({ error: { code: 'provider', status: 429 } });
  });

  it('a provider error after the first token: an error line ends the stream', async () => {
    const { fetchClient, finished } = relay(anthropicScenarios['error-event']);
    const lines = await readLines(await fetchClient('http://relay.test/chat', { method: 'POST' }));
    expect(lines.filter((line) => line['type'] === 'text').map((line) => line['token']).join('')).toBe('Partial answer');
    expect(lines.at(-1)).toMatchObject({ type: 'error', code: 'provider', message: 'The provider failed' });
    expect((await finished).outcome).toBe('error');
  });

  it('an idle timeout: an error line with code timeout, the provider request cancelled', async () => {
    const { fetchClient, finished } = relay({ tokens: ['one', 'two'], fault: { kind: 'stall', afterTokens: 1 } }, { timeout: { idleMs: 100 } });
    const lines = await readLines(await fetchClient('http://relay.test/chat', { method: 'POST' }));
    expect(lines.at(-1)).toMatchObject({ type: 'error', code: 'timeout' });
    expect((await finished).outcome).toBe('timeout');
    expect(await providerEnd()).toBe('client-closed');
  });

  it('a client abort (body cancelled) aborts the relay and the provider request', async () => {
    const tokens = Array.from({ length: 200 }, (_, index) => ` t${index}`);
    const { fetchClient, finished } = relay({ tokens, delayMs: 10 });
    const response = await fetchClient('http://relay.test/chat', { method: 'POST' });
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();
    expect((await finished).outcome).toBe('aborted');
    expect(await providerEnd()).toBe('client-closed');
  });

  it('a graceful shutdown: a shutdown line ends the stream', async () => {
    const tokens = Array.from({ length: 200 }, (_, index) => ` t${index}`);
    const { fetchClient, finished } = relay({ tokens, delayMs: 10 });
    const response = await fetchClient('http://relay.test/chat', { method: 'POST' });
    const reader = response.body!.getReader();
    await reader.read();
    await closeAllStreams({ reason: 'Deploying', retryMs: 250 });
    let text = '';
    const decoder = new TextDecoder();
    for (let reads = 0; reads < 10_000; reads++) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(linesOf(text).at(-1)).toEqual({ type: 'shutdown', retryMs: 250, message: 'Deploying' });
    expect((await finished).outcome).toBe('aborted');
    expect(await providerEnd()).toBe('client-closed');
  });

  it('an idle stream sends empty lines, which readers skip', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<TokenChunk> {
      yield chunk({ index: 0, token: 'before' });
      await released;
      yield chunk({ index: 1, token: 'after', finishReason: 'stop' });
    }
    const response = await toResponse(slow(), { protocol: 'ndjson', heartbeatMs: 5 });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (let reads = 0; reads < 10_000 && !text.includes('\n\n'); reads++) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toMatch(/^\{[^\n]*\}\n\n/);
    release();
    for (let reads = 0; reads < 10_000; reads++) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(linesOf(text).map((line) => line['token'] ?? line['type'])).toEqual(['before', 'after', 'done']);
  });
});

describe("TanStack AI's fetchHttpStream reads an 'ndjson' stream", () => {
  it('yields every line as an object, the terminal line included, skipping heartbeats', async () => {
    const { fetchClient } = relay(anthropicScenarios['parallel-tool-calls']);
    const connection = fetchHttpStream('http://relay.test/chat', { fetchClient });
    const events: Array<Record<string, unknown>> = [];
    for await (const event of connection.connect([], undefined, undefined, { threadId: 't', runId: 'r' })) {
      events.push(event as unknown as Record<string, unknown>);
    }
    const calls = events.filter((event) => event['type'] === 'tool-call') as unknown as TokenChunk[];
    expect(calls.filter((call) => call.toolCall?.id === 'toolu_01Weather').map((call) => call.token).join('')).toBe('{"city": "Paris"}');
    expect(calls.filter((call) => call.toolCall?.id === 'toolu_01Time').map((call) => call.token).join('')).toBe('{"tz":"CET"}');
    expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'tool-calls' });
  });
});
