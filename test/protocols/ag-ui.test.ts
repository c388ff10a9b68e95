// The 'ag-ui' protocol, event by event: every event it writes is checked with @ag-ui/core's own
// zod schemas (EventSchemas), and the table of docs/protocols.md is the table tested here.
import { EventSchemas, RunAgentInputSchema, RunErrorEventSchema } from '@ag-ui/core/schemas';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProviderError, type TokenChunk } from 'tokenrelay';
import { InvalidRequestError, readRunAgentInput } from 'tokenrelay/protocols';
import { toResponse } from 'tokenrelay/web';

interface Frame {
  id: string | undefined;
  event: Record<string, unknown>;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** The frames of an 'ag-ui' body: each one's `id` and its event, validated by EventSchemas. */
function parse(body: string): Frame[] {
  expect(body.endsWith('\n\n')).toBe(true);
  const frames: Frame[] = [];
  for (const block of body.slice(0, -2).split('\n\n')) {
    let id: string | undefined;
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) {
        expect(data).toBeUndefined();
        data = line.slice(6);
      } else expect(line.startsWith(':') || line.startsWith('retry: ')).toBe(true);
    }
    if (data === undefined) continue;
    const event = JSON.parse(data) as Record<string, unknown>;
    const parsed = EventSchemas.safeParse(event);
    expect(parsed.success, `${data}: ${parsed.error?.message}`).toBe(true);
    frames.push({ id, event });
  }
  return frames;
}

function chunk(index: number, fields: Partial<TokenChunk>): TokenChunk {
  return { token: '', index, timestamp: 0, type: 'text', ...fields };
}

async function* chunks(items: TokenChunk[], error?: unknown): AsyncGenerator<TokenChunk> {
  yield* items;
  if (error !== undefined) throw error;
}

/** The frames the 'ag-ui' protocol writes for `source`, through `toResponse` (the public way). */
async function encode(
  source: (signal: AbortSignal) => AsyncIterable<TokenChunk>,
  extra: { exposeErrors?: boolean; retryMs?: number } = {},
): Promise<{ status: number; frames: Frame[]; text: string }> {
  const response = await toResponse(source, { protocol: 'ag-ui', heartbeatMs: false, statusWindowMs: 0, ...extra });
  const text = await response.text();
  return { status: response.status, frames: response.status === 200 ? parse(text) : [], text };
}

const types = (frames: Frame[]) => frames.map((frame) => frame.event.type);

describe("'ag-ui' protocol", () => {
  it('maps text to one assistant message between RUN_STARTED and RUN_FINISHED, with the usage', async () => {
    const { frames } = await encode(() =>
      chunks([
        chunk(0, { token: 'Hel' }),
        chunk(1, { token: 'lo 👋' }),
        chunk(2, { finishReason: 'stop', usage: { inputTokens: 5, outputTokens: 2, cachedInputTokens: 1 }, model: 'm', provider: 'p' }),
      ]),
    );
    expect(types(frames)).toEqual([
      'RUN_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'RUN_FINISHED',
    ]);
    const [started, start, , second, , finished] = frames.map((frame) => frame.event);
    expect(start).toMatchObject({ role: 'assistant', messageId: `${started?.runId as string}-assistant` });
    expect(second).toMatchObject({ delta: 'lo 👋' });
    expect(finished).toEqual({
      type: 'RUN_FINISHED',
      threadId: started?.threadId,
      runId: started?.runId,
      metadata: { finishReason: 'stop' },
      usage: [{ provider: 'p', model: 'm', inputTokens: 5, outputTokens: 2, totalTokens: 7, cachedInputTokens: 1 }],
    });
    // The id is the chunk index, on the last frame of each chunk only (Last-Event-ID resumes).
    expect(frames.map((frame) => frame.id)).toEqual([undefined, undefined, '0', '1', undefined, '2']);
  });

  it('maps reasoning, text and tool calls, closing each before the next opens', async () => {
    const call = (id: string, index: number) => ({ id, name: 'get_weather', index });
    const { frames } = await encode(() =>
      chunks([
        chunk(0, { type: 'reasoning', token: 'Think' }),
        chunk(1, { token: 'Let me check.' }),
        chunk(2, { type: 'tool-call', token: '', toolCall: call('call_1', 0) }),
        chunk(3, { type: 'tool-call', token: '{"city":', toolCall: call('call_1', 0) }),
        chunk(4, { type: 'tool-call', token: '"Paris"}', toolCall: call('call_1', 0) }),
        chunk(5, { type: 'tool-call', token: '{}', toolCall: call('call_2', 1) }),
        chunk(6, { finishReason: 'tool-calls' }),
      ]),
    );
    expect(types(frames)).toEqual([
      'RUN_STARTED',
      'REASONING_START',
      'REASONING_MESSAGE_START',
      'REASONING_MESSAGE_CONTENT',
      'REASONING_MESSAGE_END',
      'REASONING_END',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'RUN_FINISHED',
    ]);
    const events = frames.map((frame) => frame.event);
    const messageId = events[6]?.messageId;
    expect(events[9]).toEqual({ type: 'TOOL_CALL_START', toolCallId: 'call_1', toolCallName: 'get_weather', parentMessageId: messageId });
    expect(events[3]).toMatchObject({ messageId: events[1]?.messageId, delta: 'Think' });
    expect(events[16]).toMatchObject({ metadata: { finishReason: 'tool-calls' } });
  });

  it('ends with RUN_FINISHED when the source ends without a finishReason', async () => {
    const { frames } = await encode(() => chunks([chunk(0, { token: 'a' })]));
    expect(types(frames)).toEqual(['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_FINISHED']);
    expect(frames.at(-1)?.event).toMatchObject({ metadata: { finishReason: 'stop' } });
  });

  it('ends with RUN_ERROR and the error code after the first token; a cut tool call gets no TOOL_CALL_END', async () => {
    const text = await encode(() => chunks([chunk(0, { token: 'a' })], new ProviderError('upstream said no', { status: 500 })));
    expect(types(text.frames)).toEqual(['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_ERROR']);
    expect(text.frames.at(-1)?.event).toEqual({ type: 'RUN_ERROR', message: 'The provider failed', code: 'provider' });

    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const tool = { id: 'c', name: 't', index: 0 };
    const cut = await encode(() => chunks([chunk(0, { type: 'tool-call', token: '{"a', toolCall: tool })], new Error('boom')), { exposeErrors: true });
    expect(types(cut.frames)).toEqual(['RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'RUN_ERROR']);
    expect(cut.frames.at(-1)?.event).toEqual({ type: 'RUN_ERROR', message: 'boom', code: 'internal' });
  });

  it("maps finishReason 'error' to RUN_ERROR with code 'provider'", async () => {
    const { frames } = await encode(() => chunks([chunk(0, { token: 'a' }), chunk(1, { finishReason: 'error' })]));
    expect(types(frames).at(-1)).toBe('RUN_ERROR');
    expect(frames.at(-1)?.event).toMatchObject({ code: 'provider' });
  });

  it('answers an error before the first token with its HTTP status and a RUN_ERROR body', async () => {
    const response = await toResponse(() => chunks([], new ProviderError('limit', { status: 429, retryAfterMs: 2000 })), {
      protocol: 'ag-ui',
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('2');
    const body: unknown = await response.json();
    expect(RunErrorEventSchema.parse(body)).toEqual({ type: 'RUN_ERROR', message: 'The provider failed', code: 'provider' });
  });

  it('sends sources as CUSTOM events; drops what AG-UI cannot express, with one counted warning', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { frames } = await encode(() =>
      chunks([
        chunk(0, { token: 'a' }),
        chunk(1, { type: 'source', source: { url: 'https://example.com', title: 'Ex' } }),
        chunk(2, { type: 'tool-call', token: '{"q":"x"}', toolCall: { id: 's1', name: 'web_search', index: 0, providerExecuted: true } }),
        chunk(3, { type: 'tool-call', token: '{}' }),
        chunk(4, { type: 'image' as TokenChunk['type'], token: 'x' }),
        chunk(5, { type: 'tool-call', token: '{}', toolCall: { id: 's2', name: 'web_search', index: 1, providerExecuted: true } }),
        chunk(6, { token: 'b', finishReason: 'stop' }),
      ]),
    );
    expect(types(frames)).toEqual(['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'CUSTOM', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_FINISHED']);
    expect(frames[3]?.event).toEqual({ type: 'CUSTOM', name: 'source', value: { url: 'https://example.com', title: 'Ex' } });
    expect(frames.map((frame) => frame.id)).toEqual([undefined, undefined, '0', '1', undefined, undefined, '6']);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toBe(
      "tokenrelay: the 'ag-ui' protocol dropped chunks it cannot express: 2 provider-executed tool calls, 1 tool call without toolCall, 1 unknown chunk type (see docs/protocols.md)",
    );
  });

  it('sends the retry field first when retryMs is set', async () => {
    const { text } = await encode(() => chunks([chunk(0, { finishReason: 'stop' })]), { retryMs: 3000 });
    expect(text.startsWith('retry: 3000\n\n')).toBe(true);
  });
});

describe('readRunAgentInput', () => {
  const body = {
    threadId: 'thread-1',
    runId: 'run-1',
    state: {},
    messages: [
      { id: 'm1', role: 'user', content: 'Weather in Paris?' },
      { id: 'm2', role: 'assistant', content: '', toolCalls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
      { id: 'm3', role: 'tool', toolCallId: 'c1', content: 'sunny' },
    ],
    tools: [{ name: 'w', description: 'weather', parameters: { type: 'object' } }],
    context: [],
    forwardedProps: { x: 1 },
  };

  it('reads a RunAgentInput (valid for @ag-ui/core too) and hands its ids to the stream of that signal', async () => {
    expect(RunAgentInputSchema.safeParse(body).success).toBe(true);
    const input = readRunAgentInput(body);
    expect(input).toMatchObject({ threadId: 'thread-1', runId: 'run-1', messages: body.messages, tools: body.tools, forwardedProps: { x: 1 } });
    const { frames } = await encode((signal) => {
      readRunAgentInput({ ...body, parentRunId: 'run-0' }, { signal });
      return chunks([chunk(0, { token: 'ok', finishReason: 'stop' })]);
    });
    expect(frames[0]?.event).toEqual({ type: 'RUN_STARTED', threadId: 'thread-1', runId: 'run-1', parentRunId: 'run-0' });
    expect(frames.at(-1)?.event).toMatchObject({ threadId: 'thread-1', runId: 'run-1' });
  });

  it('generates the ids the body lacks', () => {
    const input = readRunAgentInput({ messages: [] });
    expect(input.threadId).toMatch(/^[0-9a-f-]{36}$/);
    expect(input.runId).not.toBe(input.threadId);
    expect(input.tools).toEqual([]);
  });

  it.each([
    [null, 'Expected a RunAgentInput request body to be an object, got null'],
    [{ messages: 'hi' }, 'Expected `messages` to be an array'],
    [{ messages: [{ id: 'a', role: 'robot' }] }, 'Expected `messages[0]` to be a message with a `role` of'],
    [{ messages: [{ role: 'user' }] }, 'Expected `messages[0].id` to be a string'],
    [{ messages: [{ id: 'a', role: 'assistant', toolCalls: [{}] }] }, 'Expected `messages[0].toolCalls` to be an array'],
    [{ messages: [], tools: [{}] }, 'Expected `tools[0]` to be a tool with a non-empty `name`'],
    [{ messages: [], runId: 7 }, 'Expected `runId` to be a string, got 7'],
    [{ messages: [], context: [1] }, 'Expected `context` to be an array'],
  ])('rejects %j with an InvalidRequestError (400)', (bad, message) => {
    try {
      readRunAgentInput(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).status).toBe(400);
      expect((error as InvalidRequestError).code).toBe('invalid-request');
      expect((error as Error).message).toContain(message);
    }
  });

  it('answers a bad body read inside the factory with 400 and a RUN_ERROR body', async () => {
    const response = await toResponse(
      (signal) => {
        readRunAgentInput({ messages: 3 }, { signal });
        return chunks([]);
      },
      { protocol: 'ag-ui' },
    );
    expect(response.status).toBe(400);
    expect(RunErrorEventSchema.parse(await response.json())).toMatchObject({ code: 'invalid-request' });
  });
});
