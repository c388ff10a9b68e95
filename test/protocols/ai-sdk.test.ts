// The 'ai-sdk' encoder, read by the real `ai` package: every part is validated against its
// `uiMessageChunkSchema`, and the UIMessage that readUIMessageStream assembles must hold exactly
// the text, reasoning and tool calls the chunks carried.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProviderError, StreamAbortedError, StreamTimeoutError, type TokenChunk } from 'tokenrelay';
import { aiSdkProtocol } from '../../src/protocols/ai-sdk.ts';
import { protocolNamed } from '../../src/protocols/index.ts';
import { byteStream, contentParts, messageOf, partsOf } from './ai-sdk-helpers.ts';

type ChunkInput = Partial<TokenChunk> & Pick<TokenChunk, 'token'>;

/** Chunks with gap-free indexes, stamped after `base` (the encoder's TTFT clock). */
function chunks(inputs: ChunkInput[], base = performance.now() + 5): TokenChunk[] {
  return inputs.map((input, index) => ({ type: 'text', index, timestamp: base + index, ...input }));
}

/** The body one stream encodes to: open, each chunk, then end (no finish chunk) or the error's frames. */
function encode(input: TokenChunk[], end: { error: unknown } | 'end' | 'none' = 'none', exposeErrors = false): string {
  const encoder = aiSdkProtocol().encoder({ exposeErrors });
  let body = encoder.open();
  for (const chunk of input) body += encoder.chunk(chunk);
  if (end === 'end') body += encoder.end();
  else if (end !== 'none') body += encoder.error(end.error);
  return body;
}

async function parts(body: string): Promise<Array<Record<string, unknown>>> {
  return (await partsOf(byteStream(body))) as unknown as Array<Record<string, unknown>>;
}

afterEach(() => vi.restoreAllMocks());

describe("the 'ai-sdk' protocol", () => {
  it('is registered, with the UI message stream headers', () => {
    const protocol = protocolNamed('ai-sdk', {});
    expect(protocol?.name).toBe('ai-sdk');
    expect(protocol?.headers).toEqual({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'x-vercel-ai-ui-message-stream': 'v1',
    });
    expect(protocol?.heartbeat).toBe(': ping\n\n');
  });

  it('maps text and reasoning to their blocks, with start, steps, finish, metadata and [DONE]', async () => {
    const input = chunks([
      { token: 'Let me ', type: 'reasoning' },
      { token: 'think.', type: 'reasoning' },
      { token: 'Hel', model: 'm-1', provider: 'p' },
      { token: 'lo' },
      { token: '', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 4, reasoningTokens: 2 } },
    ]);
    const body = encode(input);
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    const received = await parts(body);
    const start = received[0] as { type: string; messageId: string };
    expect(start).toEqual({ type: 'start', messageId: expect.stringMatching(/^msg-[0-9a-z]{14}$/) });
    const finish = received.at(-1) as { messageMetadata: { ttftMs: number } };
    expect(received.slice(1, -1)).toEqual([
      { type: 'start-step' },
      { type: 'reasoning-start', id: 'r0' },
      { type: 'reasoning-delta', id: 'r0', delta: 'Let me ' },
      { type: 'reasoning-delta', id: 'r0', delta: 'think.' },
      { type: 'reasoning-end', id: 'r0' },
      { type: 'text-start', id: 't1' },
      { type: 'text-delta', id: 't1', delta: 'Hel' },
      { type: 'text-delta', id: 't1', delta: 'lo' },
      { type: 'text-end', id: 't1' },
      { type: 'finish-step' },
    ]);
    expect(finish).toEqual({
      type: 'finish',
      finishReason: 'stop',
      messageMetadata: {
        usage: { inputTokens: 3, outputTokens: 4, reasoningTokens: 2 },
        ttftMs: expect.any(Number),
        model: 'm-1',
        provider: 'p',
      },
    });
    expect(finish.messageMetadata.ttftMs).toBeGreaterThanOrEqual(0);

    const { message, errors } = await messageOf(received as never);
    expect(errors).toEqual([]);
    expect(message?.id).toBe(start.messageId);
    expect(message?.metadata).toEqual(finish.messageMetadata);
    expect(contentParts(message)).toEqual([
      { type: 'reasoning', id: 'r0', text: 'Let me think.', state: 'done' },
      { type: 'text', text: 'Hello', state: 'done' },
    ]);
  });

  it('streams interleaved tool calls and completes each with its parsed input when another block starts', async () => {
    const search = { id: 'call_a', name: 'search', index: 0 };
    const weather = { id: 'call_b', name: 'weather', index: 1, providerExecuted: true };
    const input = chunks([
      { token: 'Looking.' },
      { token: '', type: 'tool-call', toolCall: search },
      { token: '{"q":', type: 'tool-call', toolCall: search },
      { token: '{"city"', type: 'tool-call', toolCall: weather },
      { token: '"tokens"}', type: 'tool-call', toolCall: search },
      { token: ':"Zürich"}', type: 'tool-call', toolCall: weather },
      { token: 'Done.' },
      { token: '', finishReason: 'tool-calls' },
    ]);
    const received = await parts(encode(input));
    expect(received.filter((part) => String(part.type).startsWith('tool-'))).toEqual([
      { type: 'tool-input-start', toolCallId: 'call_a', toolName: 'search' },
      { type: 'tool-input-delta', toolCallId: 'call_a', inputTextDelta: '{"q":' },
      { type: 'tool-input-start', toolCallId: 'call_b', toolName: 'weather', providerExecuted: true },
      { type: 'tool-input-delta', toolCallId: 'call_b', inputTextDelta: '{"city"' },
      { type: 'tool-input-delta', toolCallId: 'call_a', inputTextDelta: '"tokens"}' },
      { type: 'tool-input-delta', toolCallId: 'call_b', inputTextDelta: ':"Zürich"}' },
      { type: 'tool-input-available', toolCallId: 'call_a', toolName: 'search', input: { q: 'tokens' } },
      { type: 'tool-input-available', toolCallId: 'call_b', toolName: 'weather', input: { city: 'Zürich' }, providerExecuted: true },
    ]);
    // The text block ends before the first call; the calls end before the next text block.
    const types = received.map((part) => part.type);
    expect(types.indexOf('text-end')).toBeLessThan(types.indexOf('tool-input-start'));
    expect(types.lastIndexOf('tool-input-available')).toBeLessThan(types.lastIndexOf('text-start'));
    expect(received.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls' });

    const { message, errors } = await messageOf(received as never);
    expect(errors).toEqual([]);
    expect(contentParts(message)).toEqual([
      { type: 'text', text: 'Looking.', state: 'done' },
      { type: 'tool-search', toolCallId: 'call_a', state: 'input-available', input: { q: 'tokens' } },
      {
        type: 'tool-weather',
        toolCallId: 'call_b',
        state: 'input-available',
        input: { city: 'Zürich' },
        providerExecuted: true,
      },
      { type: 'text', text: 'Done.', state: 'done' },
    ]);
  });

  it('completes open calls at the finish; empty arguments are {}, invalid JSON is a tool-input-error', async () => {
    const now = { id: 'c1', name: 'now', index: 0 };
    const broken = { id: 'c2', name: 'broken', index: 1 };
    const received = await parts(
      encode(
        chunks([
          { token: '', type: 'tool-call', toolCall: now },
          { token: '{"a": [1,', type: 'tool-call', toolCall: broken },
          { token: '', finishReason: 'tool-calls' },
        ]),
      ),
    );
    expect(received.filter((part) => part.type === 'tool-input-available' || part.type === 'tool-input-error')).toEqual([
      { type: 'tool-input-available', toolCallId: 'c1', toolName: 'now', input: {} },
      {
        type: 'tool-input-error',
        toolCallId: 'c2',
        toolName: 'broken',
        input: '{"a": [1,',
        errorText: 'The tool call arguments are not valid JSON',
      },
    ]);
    const { message } = await messageOf(received as never);
    expect(contentParts(message)).toEqual([
      { type: 'tool-now', toolCallId: 'c1', state: 'input-available', input: {} },
      { type: 'tool-broken', toolCallId: 'c2', state: 'output-error', input: '{"a": [1,', errorText: 'The tool call arguments are not valid JSON' },
    ]);
  });

  it('sends sources with a url as source-url, inside the text block', async () => {
    const received = await parts(
      encode(
        chunks([
          { token: 'Per ' },
          { token: '', type: 'source', source: { url: 'https://example.com/a', title: 'A' } },
          { token: 'the docs.' },
          { token: '', type: 'source', source: { url: 'https://example.com/b' } },
          { token: '', finishReason: 'stop' },
        ]),
      ),
    );
    const { message } = await messageOf(received as never);
    expect(contentParts(message)).toEqual([
      { type: 'text', text: 'Per the docs.', state: 'done' },
      { type: 'source-url', sourceId: 's0', url: 'https://example.com/a', title: 'A' },
      { type: 'source-url', sourceId: 's1', url: 'https://example.com/b' },
    ]);
  });

  it('drops the chunks it cannot express, with one counted warning per stream', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const call = { id: 'c1', name: 'f', index: 0 };
    const body = encode(
      chunks([
        { token: '', type: 'source', source: { documentIndex: 0, citedText: 'x', title: 'Doc' } },
        { token: '{}', type: 'tool-call', toolCall: call },
        { token: 'text ends the call' },
        { token: '{"late":1}', type: 'tool-call', toolCall: call },
        { token: '{}', type: 'tool-call' },
        { token: 'odd', type: 'image' as never },
        { token: '', type: 'source' },
        { token: '', finishReason: 'stop' },
      ]),
    );
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toBe(
      "tokenrelay: the 'ai-sdk' protocol dropped chunks it cannot express: 2 × source without url, " +
        '1 × tool-call fragment after its call ended, 1 × tool-call chunk without toolCall, 1 × unknown chunk type (docs/protocols.md)',
    );
    const received = await parts(body);
    expect(JSON.stringify(received)).not.toContain('late');
    const { message } = await messageOf(received as never);
    expect(contentParts(message)).toEqual([
      { type: 'tool-f', toolCallId: 'c1', state: 'input-available', input: {} },
      { type: 'text', text: 'text ends the call', state: 'done' },
    ]);
  });

  it('gives no warning when nothing was dropped', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    encode(chunks([{ token: 'a' }, { token: '', finishReason: 'stop' }]));
    expect(warn).not.toHaveBeenCalled();
  });

  it.each([
    ['stop', { type: 'finish', finishReason: 'stop' }],
    ['length', { type: 'finish', finishReason: 'length' }],
    ['content-filter', { type: 'finish', finishReason: 'content-filter' }],
    ['error', { type: 'finish', finishReason: 'error' }],
    ['other', { type: 'finish', finishReason: 'other' }],
    ['aborted', { type: 'abort', reason: 'The stream was aborted' }],
    ['timeout', { type: 'error', errorText: 'The stream timed out' }],
  ] as const)("finishReason '%s' ends with %o, then [DONE]", async (finishReason, last) => {
    const body = encode(chunks([{ token: 'Hi' }, { token: '', finishReason }]));
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    const received = await parts(body);
    expect(received.at(-1)).toMatchObject(last);
    // The text block is closed whatever the end.
    expect(received).toContainEqual({ type: 'text-end', id: 't0' });
  });

  it('a token on the last chunk is sent before the finish', async () => {
    const received = await parts(encode(chunks([{ token: 'Bye', finishReason: 'stop' }])));
    expect(received.map((part) => part.type)).toEqual(['start', 'start-step', 'text-start', 'text-delta', 'text-end', 'finish-step', 'finish']);
  });

  it('a source that ends without a finish chunk ends with finish "stop"; an empty one too', async () => {
    const received = await parts(encode(chunks([{ token: 'a' }]), 'end'));
    expect(received.slice(-3)).toEqual([
      { type: 'text-end', id: 't0' },
      { type: 'finish-step' },
      { type: 'finish', finishReason: 'stop', messageMetadata: expect.any(Object) },
    ]);
    expect(await parts(encode([], 'end'))).toEqual([
      { type: 'start' },
      { type: 'start-step' },
      { type: 'finish-step' },
      { type: 'finish', finishReason: 'stop', messageMetadata: {} },
    ]);
  });

  it('an error ends with an error part carrying the safe message only; the raw one with exposeErrors', async () => {
    const failure = new ProviderError('upstream said: key sk-123 is invalid', { status: 401 });
    const body = encode(chunks([{ token: 'Hal' }]), { error: failure });
    expect(body).not.toContain('sk-123');
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    const received = await parts(body);
    expect(received.slice(-2)).toEqual([{ type: 'text-end', id: 't0' }, { type: 'error', errorText: 'The provider failed' }]);
    expect((await parts(encode([], { error: new Error('boom') }))).at(-1)).toEqual({ type: 'error', errorText: 'Internal error' });
    expect((await parts(encode([], { error: new Error('boom') }, true))).at(-1)).toEqual({ type: 'error', errorText: 'boom' });
    const timeout = await parts(encode(chunks([{ token: 'a' }]), { error: new StreamTimeoutError('idle', 50) }));
    expect(timeout.at(-1)).toMatchObject({ type: 'error', errorText: expect.stringMatching(/./) });
  });

  it('an abort ends with an abort part', async () => {
    const body = encode(chunks([{ token: 'a' }]), { error: new StreamAbortedError('The stream was cancelled') });
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect((await parts(body)).at(-1)).toEqual({ type: 'abort', reason: 'The stream was cancelled' });
  });

  it('answers early errors with a body shaped like an error part, and shuts down with an error part', async () => {
    const protocol = aiSdkProtocol();
    expect(JSON.parse(protocol.errorBody({ code: 'provider', message: 'The provider failed', status: 429, retryAfterMs: 2000 }))).toEqual({
      type: 'error',
      errorText: 'The provider failed',
      code: 'provider',
      status: 429,
      retryAfterMs: 2000,
    });
    const frame = protocol.shutdownFrame({ retryMs: 1000, message: 'The server is restarting' });
    expect(await parts(frame)).toEqual([{ type: 'error', errorText: 'The server is restarting' }]);
    expect(frame.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(aiSdkProtocol({ retryMs: 1500 }).encoder({ exposeErrors: false }).open()).toBe('retry: 1500\n\n');
  });

  it('derives the message id from the first chunk: a replay gets the same id, another stream another', () => {
    const first = chunks([{ token: 'Hi', model: 'm' }, { token: '', finishReason: 'stop' }], 100);
    const id = (body: string) => /"messageId":"([^"]+)"/.exec(body)?.[1];
    const live = id(encode(first));
    expect(live).toBeDefined();
    expect(id(encode(structuredClone(first)))).toBe(live);
    expect(id(encode(chunks([{ token: 'Hi', model: 'm' }], 100.001)))).not.toBe(live);
    expect(id(encode(chunks([{ token: 'Ho', model: 'm' }], 100)))).not.toBe(live);
  });

  it('reports ttftMs only when the first token is not older than the response (not on a replay)', async () => {
    const replayed = await parts(encode(chunks([{ token: 'a' }, { token: '', finishReason: 'stop' }], performance.now() - 60_000)));
    expect(replayed.at(-1)).toEqual({ type: 'finish', finishReason: 'stop', messageMetadata: {} });
  });

  it('keeps every token exact, line breaks, separators and multibyte text included, however the bytes are cut', async () => {
    const tokens = ['a\nb', '\r\n', 'data: [DONE]', '\u2028\u2029', 'Zürich 東京 🦀', '\ud800', '"}\n\ndata: {"type":"abort"}'];
    const body = encode(chunks([...tokens.map((token) => ({ token })), { token: '', finishReason: 'stop' }]));
    expect(body.split('\n\n').filter((frame) => frame !== '').every((frame) => !frame.includes('\n'))).toBe(true);
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      const cuts = Array.from({ length: 12 }, () => Math.floor(random() * body.length * 2));
      const received = await partsOf(byteStream(body, cuts));
      const { message } = await messageOf(received);
      expect(contentParts(message)).toEqual([{ type: 'text', text: tokens.join(''), state: 'done' }]);
    }
  });
});
