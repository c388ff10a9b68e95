import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectText, type TokenChunk } from 'tokenrelay';
import { fromBedrock, streamBedrock, type BedrockStreamEvent, type BedrockStreamInput } from 'tokenrelay/bedrock';
import { bedrockEventFrame, bedrockHandlers, MockRecorder, wireToResponse, type WireFrame } from 'tokenrelay/testing';

/** Event shapes beyond the scripted ones: the stop reasons, citations, server tools, exceptions as members. */

const MODEL = 'amazon.nova-pro-v1:0';
const INPUT: BedrockStreamInput = { modelId: MODEL, messages: [{ role: 'user', content: [{ text: 'Hi' }] }] };

async function* fromEvents(events: unknown[]): AsyncGenerator<BedrockStreamEvent> {
  for (const event of events) yield event as BedrockStreamEvent;
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

/** The chunks without what varies (timestamps) or repeats (model, provider); indexes checked gap-free. */
function shape(chunks: TokenChunk[]) {
  return chunks.map(({ timestamp: _timestamp, model: _model, provider: _provider, index, ...rest }, position) => {
    expect(index).toBe(position);
    return rest;
  });
}

const start = { messageStart: { role: 'assistant' } };
const delta = (contentBlockIndex: number, value: Record<string, unknown>) => ({ contentBlockDelta: { contentBlockIndex, delta: value } });
const stop = (stopReason: string) => ({ messageStop: { stopReason } });
const finish = (finishReason: string, usage?: Record<string, number>) => ({ token: '', type: 'text', finishReason, ...(usage ? { usage } : {}) });

describe('fromBedrock event mapping', () => {
  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['tool_use', 'tool-calls'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['guardrail_intervened', 'content-filter'],
    ['content_filtered', 'content-filter'],
    ['malformed_model_output', 'error'],
    ['malformed_tool_use', 'error'],
    ['something_new', 'other'],
  ])('maps stopReason %s to %s', async (stopReason, expected) => {
    const { chunks, error } = await collect(fromBedrock(fromEvents([start, delta(0, { text: 'x' }), stop(stopReason)])));
    expect(error).toBeUndefined();
    expect(shape(chunks)).toStrictEqual([{ token: 'x', type: 'text' }, finish(expected)]);
  });

  it('reads usage with cache reads and writes, and ignores signatures, redacted reasoning, images, tool results and unknown members', async () => {
    const { chunks } = await collect(
      fromBedrock(
        fromEvents([
          start,
          delta(0, { reasoningContent: { text: 'Hm' } }),
          delta(0, { reasoningContent: { signature: 'sig' } }),
          delta(0, { reasoningContent: { redactedContent: new Uint8Array([1, 2]) } }),
          { contentBlockStop: { contentBlockIndex: 0 } },
          delta(1, { text: '' }),
          delta(1, { text: 'Hi' }),
          delta(1, { image: { source: {} } }),
          delta(1, { toolResult: [{ text: 'result' }] }),
          { $unknown: ['somethingNew', {}] },
          { contentBlockStop: { contentBlockIndex: 1 } },
          stop('end_turn'),
          {
            metadata: {
              usage: { inputTokens: 7, outputTokens: 11, totalTokens: 58, cacheReadInputTokens: 30, cacheWriteInputTokens: 10 },
              metrics: { latencyMs: 1 },
              trace: { guardrail: {} },
            },
          },
        ]),
        { model: MODEL },
      ),
    );
    expect(shape(chunks)).toStrictEqual([
      { token: 'Hm', type: 'reasoning' },
      { token: 'Hi', type: 'text' },
      finish('stop', { inputTokens: 47, outputTokens: 11, cachedInputTokens: 30 }),
    ]);
    expect(chunks[0]?.model).toBe(MODEL);
  });

  it('numbers tool calls, marks server tools as provider-executed, and gives a call without input `{}`', async () => {
    const { chunks } = await collect(
      fromBedrock(
        fromEvents([
          start,
          delta(0, { text: 'Let me check.' }),
          { contentBlockStop: { contentBlockIndex: 0 } },
          { contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'srv_1', name: 'nova_grounding', type: 'server_tool_use' } } } },
          delta(1, { toolUse: { input: '{"q":"tides"}' } }),
          { contentBlockStop: { contentBlockIndex: 1 } },
          { contentBlockStart: { contentBlockIndex: 2, start: { toolResult: { toolUseId: 'srv_1', status: 'success' } } } },
          delta(2, { toolResult: [{ json: { ok: true } }] }),
          { contentBlockStop: { contentBlockIndex: 2 } },
          { contentBlockStart: { contentBlockIndex: 3, start: { toolUse: { toolUseId: 'tooluse_2', name: 'now' } } } },
          { contentBlockStop: { contentBlockIndex: 3 } },
          { contentBlockStart: { contentBlockIndex: 4, start: { toolUse: { toolUseId: 'tooluse_3', name: 'lookup' } } } },
          delta(4, { toolUse: { input: '' } }),
          delta(4, { toolUse: { input: '{"id":1}' } }),
          delta(9, { toolUse: { input: '{"orphan":true}' } }),
          // No contentBlockStop for the last call: messageStop closes it.
          stop('tool_use'),
        ]),
      ),
    );
    expect(shape(chunks)).toStrictEqual([
      { token: 'Let me check.', type: 'text' },
      { token: '{"q":"tides"}', type: 'tool-call', toolCall: { id: 'srv_1', name: 'nova_grounding', index: 0, providerExecuted: true } },
      { token: '{}', type: 'tool-call', toolCall: { id: 'tooluse_2', name: 'now', index: 1 } },
      { token: '{"id":1}', type: 'tool-call', toolCall: { id: 'tooluse_3', name: 'lookup', index: 2 } },
      finish('tool-calls'),
    ]);
  });

  it('relays each citation once, whole, with its cited text gathered across deltas', async () => {
    const { chunks } = await collect(
      fromBedrock(
        fromEvents([
          start,
          delta(0, { text: 'Tides follow the moon.' }),
          delta(0, { citation: { title: 'Tides', location: { web: { url: 'https://example.org/tides', domain: 'example.org' } } } }),
          delta(0, { citation: { sourceContent: [{ text: 'The moon ' }] } }),
          delta(0, { citation: { sourceContent: [{ text: 'pulls the sea.' }] } }),
          delta(0, { citation: { title: 'handbook.pdf', location: { documentPage: { documentIndex: 1, start: 3, end: 4 } }, sourceContent: [{ text: 'p. 3' }] } }),
          delta(0, { citation: {} }),
          { contentBlockStop: { contentBlockIndex: 0 } },
          delta(1, { citation: { location: { documentChar: { documentIndex: 0, start: 0, end: 5 } } } }),
          stop('end_turn'),
        ]),
      ),
    );
    expect(shape(chunks)).toStrictEqual([
      { token: 'Tides follow the moon.', type: 'text' },
      { token: '', type: 'source', source: { url: 'https://example.org/tides', title: 'Tides', citedText: 'The moon pulls the sea.' } },
      { token: '', type: 'source', source: { documentIndex: 1, title: 'handbook.pdf', citedText: 'p. 3' } },
      { token: '', type: 'source', source: { documentIndex: 0 } },
      finish('stop'),
    ]);
  });

  it.each([
    ['throttlingException', true],
    ['serviceUnavailableException', true],
    ['internalServerException', true],
    ['modelStreamErrorException', false],
    ['validationException', false],
  ])('throws a ProviderError for a %s member a source yields (retryable: %s)', async (member, retryable) => {
    const event = { [member]: { message: 'it broke' } };
    const { chunks, error } = await collect(fromBedrock(fromEvents([start, delta(0, { text: 'a' }), event])));
    expect(shape(chunks)).toStrictEqual([{ token: 'a', type: 'text' }]);
    const name = member.charAt(0).toUpperCase() + member.slice(1);
    expect(error).toMatchObject({ name: 'ProviderError', message: `Bedrock stream failed with ${name}: it broke`, retryable, providerType: name });
    expect((error as Error).cause).toBe(event);
  });

  it('throws a retryable error for a stream that ends before messageStop, and an abort when the signal fired', async () => {
    const early = await collect(fromBedrock(fromEvents([start, delta(0, { text: 'a' })])));
    expect(early.error).toMatchObject({ name: 'ProviderError', message: 'The stream ended before the provider finished', retryable: true });
    const controller = new AbortController();
    controller.abort('left');
    const aborted = await collect(fromBedrock(fromEvents([start, delta(0, { text: 'a' })]), { signal: controller.signal }));
    expect(aborted.error).toMatchObject({ name: 'StreamAbortedError', cause: 'left' });
  });

  it('calls return() on the source when the consumer breaks', async () => {
    let finished = false;
    async function* source(): AsyncGenerator<BedrockStreamEvent> {
      try {
        yield* fromEvents([start, delta(0, { text: 'a' })]);
        await new Promise(() => {});
      } finally {
        finished = true;
      }
    }
    for await (const chunk of fromBedrock(source())) {
      expect(chunk.token).toBe('a');
      break;
    }
    expect(finished).toBe(true);
  });
});

describe('argument checks', () => {
  const client = new BedrockRuntimeClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' } });

  it('fromBedrock rejects what is not a stream, naming the argument', () => {
    expect(() => fromBedrock(null as never)).toThrow(
      new TypeError('Expected `stream` to be the `stream` of a ConverseStream response (an async iterable), got null'),
    );
    expect(() => fromBedrock({ stream: fromEvents([]), $metadata: {} } as never)).toThrow(/got the whole ConverseStream response \(pass its `stream`\)/);
    expect(() => fromBedrock(Promise.resolve() as never)).toThrow(/got a Promise \(did you forget `await`\?\)/);
  });

  it.each([
    [{ signl: AbortSignal.abort() }, 'Unknown option `signl` in `options`; did you mean `signal`?'],
    [{ provider: '' }, 'Expected `options.provider` to be a non-empty string, got ""'],
    [{ signal: 'no' }, 'Expected `options.signal` to be an AbortSignal, got "no"'],
    [{ model: 3 }, 'Expected `options.model` to be a non-empty string, got 3'],
  ])('fromBedrock rejects bad options %j', (options, message) => {
    expect(() => fromBedrock(fromEvents([]), options as never)).toThrow(new TypeError(message));
  });

  it('streamBedrock checks the client, the input and the options at once', () => {
    expect(() => streamBedrock({} as never, INPUT)).toThrow(new TypeError('Expected `client` to be a BedrockRuntimeClient (with `send`), got an object'));
    expect(() => streamBedrock(client, null as never)).toThrow(new TypeError('Expected `input` to be the ConverseStreamCommand input (an object), got null'));
    expect(() => streamBedrock(client, { messages: [] } as never)).toThrow(new TypeError('Expected `input.modelId` to be a non-empty string, got undefined'));
    expect(() => streamBedrock(client, INPUT, { model: 'x' } as never)).toThrow(
      new TypeError('Unknown option `model` in `options`; known options: `provider`, `signal`'),
    );
  });
});

describe('bedrockHandlers (msw) with the real SDK', () => {
  const recorder = new MockRecorder();
  const server = setupServer(...bedrockHandlers({ tokens: ['Grüß', ' dich 👋'] }, { split: { seed: 11 }, recorder }));
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterEach(() => {
    server.resetHandlers();
    recorder.clear();
  });
  afterAll(() => server.close());

  const regional = (region: string) =>
    new BedrockRuntimeClient({
      region,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler(),
    });

  it('answers ConverseStream at the default endpoint of any region', async () => {
    expect(await collectText(streamBedrock(regional('eu-central-1'), INPUT))).toBe('Grüß dich 👋');
    const request = await recorder.request(1);
    expect(request.api).toBe('bedrock-converse-stream');
    expect(request.path).toBe('/model/amazon.nova-pro-v1%3A0/converse-stream');
    expect((await request.ended).end).toBe('completed');
  });

  it('serves hand-made frames through the real SDK: a guardrail stop and a citation', async () => {
    const frames: WireFrame[] = [
      bedrockEventFrame('messageStart', { role: 'assistant' }),
      bedrockEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Sorry.' } }),
      bedrockEventFrame('contentBlockDelta', {
        contentBlockIndex: 0,
        delta: { citation: { title: 'Policy', location: { web: { url: 'https://example.org/policy' } }, sourceContent: [{ text: 'No.' }] } },
      }),
      bedrockEventFrame('contentBlockStop', { contentBlockIndex: 0 }),
      bedrockEventFrame('messageStop', { stopReason: 'guardrail_intervened' }),
      bedrockEventFrame('metadata', { usage: { inputTokens: 5, outputTokens: 1, totalTokens: 6 }, metrics: { latencyMs: 9 } }),
    ];
    server.use(
      http.post(/converse-stream$/, () =>
        wireToResponse({ status: 200, headers: { 'content-type': 'application/vnd.amazon.eventstream' }, frames }, { split: { seed: 5 } }),
      ),
    );
    const { chunks, error } = await collect(streamBedrock(regional('us-west-2'), INPUT));
    expect(error).toBeUndefined();
    expect(shape(chunks)).toStrictEqual([
      { token: 'Sorry.', type: 'text' },
      { token: '', type: 'source', source: { url: 'https://example.org/policy', title: 'Policy', citedText: 'No.' } },
      finish('content-filter', { inputTokens: 5, outputTokens: 1 }),
    ]);
  });
});
