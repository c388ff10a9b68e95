import { BedrockRuntimeClient, ConverseStreamCommand, ThrottlingException } from '@aws-sdk/client-bedrock-runtime';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProviderError, StreamAbortedError, isProviderError, isStreamTimeoutError, pipe, withTimeout, type TokenChunk } from 'tokenrelay';
import { fromBedrock, streamBedrock, type BedrockStreamInput } from 'tokenrelay/bedrock';
import { bedrockConverseWire, startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';

const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const INPUT: BedrockStreamInput = { modelId: MODEL, messages: [{ role: 'user', content: [{ text: 'Hi' }] }] };
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY';
const FAST_CHECK_SEED = 20_260_515;

function bedrockClient(endpoint: string): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDTOKENRELAYTEST', secretAccessKey: SECRET },
    maxAttempts: 1,
    // The client's default handler speaks HTTP/2 only; the mock provider is HTTP/1.1.
    requestHandler: new NodeHttpHandler(),
  });
}

/** A mock provider and a client for one test; closes both. */
async function withProvider<T>(
  script: MockScript,
  run: (client: BedrockRuntimeClient, provider: MockProvider) => Promise<T>,
  split?: { seed: number },
): Promise<T> {
  const provider = await startMockProvider({ script, split });
  const client = bedrockClient(provider.bedrockEndpoint);
  try {
    return await run(client, provider);
  } finally {
    client.destroy();
    await provider.close();
  }
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

/** The chunks without their timestamps (checked to be non-decreasing numbers). */
function withoutTimestamps(chunks: TokenChunk[]): Omit<TokenChunk, 'timestamp'>[] {
  let previous = -Infinity;
  return chunks.map(({ timestamp, ...rest }) => {
    expect(typeof timestamp).toBe('number');
    expect(timestamp).toBeGreaterThanOrEqual(previous);
    previous = timestamp;
    return rest;
  });
}

const meta = { model: MODEL, provider: 'bedrock' };
const text = (index: number, token: string) => ({ token, index, type: 'text', ...meta });
const final = (index: number, finishReason: TokenChunk['finishReason'], usage?: TokenChunk['usage']) => ({
  token: '',
  index,
  type: 'text',
  finishReason,
  ...(usage === undefined ? {} : { usage }),
  ...meta,
});

const request = { api: 'bedrock-converse-stream' as const, path: `/model/${encodeURIComponent(MODEL)}/converse-stream`, headers: {}, body: {} };

describe('bedrockConverseWire', () => {
  const codec = new EventStreamCodec(
    (bytes) => new TextDecoder().decode(bytes),
    (value) => new TextEncoder().encode(value),
  );
  const decode = (bytes: Uint8Array | undefined) => {
    const message = codec.decode(bytes as Uint8Array);
    const headers = Object.fromEntries(Object.entries(message.headers).map(([name, header]) => [name, header.value]));
    const { p, ...payload } = JSON.parse(new TextDecoder().decode(message.body)) as Record<string, unknown>;
    expect(typeof p).toBe('string');
    return { headers, payload };
  };

  it('encodes each event as an event-stream message with the headers Bedrock sends', () => {
    const wire = bedrockConverseWire(
      { reasoning: ['Hm'], tokens: ['Hé'], toolCalls: [{ name: 'f', arguments: ['{}'] }], usage: { inputTokens: 10, outputTokens: 3 } },
      request,
    );
    expect(wire.status).toBe(200);
    expect(wire.headers['content-type']).toBe('application/vnd.amazon.eventstream');
    const messages = (wire.frames ?? []).map((frame) => decode(frame.bytes));
    const event = (type: string) => ({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' });
    expect(messages).toStrictEqual([
      { headers: event('messageStart'), payload: { role: 'assistant' } },
      { headers: event('contentBlockDelta'), payload: { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Hm' } } } },
      { headers: event('contentBlockDelta'), payload: { contentBlockIndex: 0, delta: { reasoningContent: { signature: expect.any(String) } } } },
      { headers: event('contentBlockStop'), payload: { contentBlockIndex: 0 } },
      { headers: event('contentBlockDelta'), payload: { contentBlockIndex: 1, delta: { text: 'Hé' } } },
      { headers: event('contentBlockStop'), payload: { contentBlockIndex: 1 } },
      { headers: event('contentBlockStart'), payload: { contentBlockIndex: 2, start: { toolUse: { toolUseId: 'tooluse_tokenrelay000000', name: 'f' } } } },
      { headers: event('contentBlockDelta'), payload: { contentBlockIndex: 2, delta: { toolUse: { input: '{}' } } } },
      { headers: event('contentBlockStop'), payload: { contentBlockIndex: 2 } },
      { headers: event('messageStop'), payload: { stopReason: 'tool_use' } },
      { headers: event('metadata'), payload: { usage: { inputTokens: 10, outputTokens: 3, totalTokens: 13 }, metrics: { latencyMs: 200 } } },
    ]);
    expect(wire.frames?.[4]?.text).toBe('event contentBlockDelta {"contentBlockIndex":1,"delta":{"text":"Hé"},"p":"abcdefghijklmnopqrstuvwxyzABC"}\n');
  });

  it('ends an error-event fault with an exception message', () => {
    const wire = bedrockConverseWire({ tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1, type: 'ThrottlingException' } }, request);
    const last = codec.decode(wire.frames?.at(-1)?.bytes as Uint8Array);
    expect(Object.fromEntries(Object.entries(last.headers).map(([name, header]) => [name, header.value]))).toStrictEqual({
      ':exception-type': 'throttlingException',
      ':content-type': 'application/json',
      ':message-type': 'exception',
    });
    expect(JSON.parse(new TextDecoder().decode(last.body))).toStrictEqual({ message: 'Too many tokens, please wait before trying again.' });
    expect(wire.end).toBe('close');
  });

  it('answers an http-error fault as Bedrock does, with x-amzn-errortype', () => {
    expect(bedrockConverseWire({ fault: { kind: 'http-error', status: 429 } }, request)).toStrictEqual({
      status: 429,
      headers: {
        'content-type': 'application/json',
        'x-amzn-requestid': expect.any(String),
        'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/',
      },
      body: '{"message":"Too many requests, please wait before trying again."}',
    });
  });
});

describe('streamBedrock with the real SDK over the loopback mock provider', () => {
  it('relays text deltas and ends with the finish reason and the usage', async () => {
    await withProvider({ tokens: ['Hello', ',', ' world'], usage: { inputTokens: 12, outputTokens: 3 } }, async (client, provider) => {
      const { chunks, error } = await collect(streamBedrock(client, INPUT));
      expect(error).toBeUndefined();
      expect(withoutTimestamps(chunks)).toStrictEqual([
        text(0, 'Hello'),
        text(1, ','),
        text(2, ' world'),
        final(3, 'stop', { inputTokens: 12, outputTokens: 3 }),
      ]);
      const recorded = await provider.request(1);
      expect(recorded.api).toBe('bedrock-converse-stream');
      expect(recorded.path).toBe('/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream');
      expect(recorded.body).toStrictEqual({ messages: INPUT.messages });
      expect(recorded.headers['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTOKENRELAYTEST\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
      expect((await recorded.ended).end).toBe('completed');
    });
  });

  it('keeps reasoning, multibyte text and tool calls whole however the bytes are split (fast-check)', async () => {
    const script: MockScript = {
      reasoning: ['Dé', 'jà 🤔'],
      tokens: ['Hé', '🙂🚀', '漢字', 'テスト', ' 👩‍👩‍👧', ' ½ €'],
      toolCalls: [
        { name: 'météo', arguments: ['{"ville":', ' "Zürich 🏔"}'] },
        { id: 'tooluse_b', name: 'time', arguments: ['{"tz"', ':"東京"}'] },
      ],
      usage: { inputTokens: 40, outputTokens: 12, cachedInputTokens: 30 },
    };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
        await withProvider(
          script,
          async (client) => {
            const { chunks, error } = await collect(streamBedrock(client, INPUT));
            expect(error).toBeUndefined();
            const first = { id: 'tooluse_tokenrelay000000', name: 'météo', index: 0 };
            const second = { id: 'tooluse_b', name: 'time', index: 1 };
            expect(withoutTimestamps(chunks)).toStrictEqual([
              { token: 'Dé', index: 0, type: 'reasoning', ...meta },
              { token: 'jà 🤔', index: 1, type: 'reasoning', ...meta },
              ...['Hé', '🙂🚀', '漢字', 'テスト', ' 👩‍👩‍👧', ' ½ €'].map((token, index) => text(index + 2, token)),
              { token: '{"ville":', index: 8, type: 'tool-call', toolCall: first, ...meta },
              { token: ' "Zürich 🏔"}', index: 9, type: 'tool-call', toolCall: first, ...meta },
              { token: '{"tz"', index: 10, type: 'tool-call', toolCall: second, ...meta },
              { token: ':"東京"}', index: 11, type: 'tool-call', toolCall: second, ...meta },
              final(12, 'tool-calls', { inputTokens: 40, outputTokens: 12, cachedInputTokens: 30 }),
            ]);
          },
          { seed },
        );
      }),
      { seed: FAST_CHECK_SEED, numRuns: 8 },
    );
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool-calls', 'tool-calls'],
    ['content-filter', 'content-filter'],
  ] as const)('maps the emulated stop reason for %s back to %s', async (scripted, expected) => {
    await withProvider({ tokens: ['x'], finishReason: scripted }, async (client) => {
      const { chunks, error } = await collect(streamBedrock(client, INPUT));
      expect(error).toBeUndefined();
      expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toStrictEqual([chunks.at(-1)]);
      expect(chunks.at(-1)?.finishReason).toBe(expected);
    }, { seed: scripted.length });
  });

  it.each([
    ['throttlingException', true],
    ['serviceUnavailableException', true],
    ['internalServerException', true],
    ['modelStreamErrorException', false],
    ['validationException', false],
  ] as const)('relays a %s mid-stream as a ProviderError (retryable: %s), after the text sent so far', async (type, retryable) => {
    await withProvider({ tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2, type } }, async (client) => {
      const { chunks, error } = await collect(streamBedrock(client, INPUT));
      expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a'), text(1, 'b')]);
      const name = type.charAt(0).toUpperCase() + type.slice(1);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ code: 'provider', retryable, providerType: name, status: undefined, provider: 'bedrock' });
      expect((error as Error).message).toMatch(new RegExp(`^Bedrock stream failed with ${name}: `));
      expect(((error as Error).cause as Error).name).toBe(name);
    }, { seed: type.length });
  });

  it.each([
    [429, 'ThrottlingException', true],
    [400, 'ValidationException', false],
    [403, 'AccessDeniedException', false],
    [404, 'ResourceNotFoundException', false],
    [424, 'ModelErrorException', false],
    [500, 'InternalServerException', true],
    [503, 'ServiceUnavailableException', true],
  ] as const)('maps HTTP %i (%s) before the stream to a ProviderError with its status', async (status, name, retryable) => {
    await withProvider({ fault: { kind: 'http-error', status } }, async (client) => {
      const { chunks, error } = await collect(streamBedrock(client, INPUT));
      expect(chunks).toStrictEqual([]);
      expect(isProviderError(error)).toBe(true);
      expect(error).toMatchObject({ status, retryable, providerType: name, provider: 'bedrock' });
      expect((error as Error).message).toMatch(new RegExp(`^Bedrock request failed with status ${status}: `));
      expect(((error as Error).cause as Error).name).toBe(name);
    });
  });

  it('never puts credentials in an error message, even when the provider echoes them', async () => {
    const echo = `The request signature we calculated does not match. Credential=AKIDTOKENRELAYTEST/20260101/us-east-1/bedrock/aws4_request, key AKIAIOSFODNN7EXAMPLE`;
    await withProvider({ fault: { kind: 'http-error', status: 403, type: 'InvalidSignatureException', message: echo } }, async (client) => {
      const { error } = await collect(streamBedrock(client, INPUT));
      expect(error).toMatchObject({ status: 403, retryable: false, providerType: 'InvalidSignatureException' });
      expect((error as Error).message).not.toContain('AKID');
      expect((error as Error).message).not.toContain('AKIAIOSFODNN7EXAMPLE');
      expect((error as Error).message).not.toContain(SECRET);
      expect(JSON.stringify({ ...(error as object), cause: undefined })).not.toContain('AKID');
    });
  });

  it('maps a connection reset mid-stream to a retryable ProviderError', async () => {
    await withProvider({ tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 1 } }, async (client, provider) => {
      const { chunks, error } = await collect(streamBedrock(client, INPUT));
      // A reset can discard bytes the client had received but not read yet: at most `a` arrives.
      expect(withoutTimestamps(chunks)).toStrictEqual([text(0, 'a')].slice(0, chunks.length));
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ message: 'The connection to Bedrock was lost', retryable: true, status: undefined });
      expect((await (await provider.request(1)).ended).end).toBe('reset');
    });
  });

  it('maps a refused connection to a retryable ProviderError', async () => {
    const provider = await startMockProvider();
    const endpoint = provider.bedrockEndpoint;
    await provider.close();
    const client = bedrockClient(endpoint);
    const { error } = await collect(streamBedrock(client, INPUT));
    client.destroy();
    expect(error).toMatchObject({ name: 'ProviderError', message: 'Could not connect to Bedrock', retryable: true });
  });

  it('fails a stream that closes before messageStop with a retryable ProviderError', async () => {
    await withProvider({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 2 } }, async (client, provider) => {
      const stream = streamBedrock(client, INPUT);
      expect((await stream.next()).value?.token).toBe('a');
      expect((await stream.next()).value?.token).toBe('b');
      const pending = stream.next();
      // The provider goes away without finishing: its server drops the connection.
      await provider.close();
      await expect(pending).rejects.toMatchObject({ name: 'ProviderError', retryable: true });
    });
  });
});

describe('streamBedrock cancellation', () => {
  it('throws StreamAbortedError with the signal reason when aborted mid-stream, and closes the request', async () => {
    await withProvider({ tokens: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 20 }, async (client, provider) => {
      const controller = new AbortController();
      const reason = new Error('user left');
      const seen: string[] = [];
      const { error } = await collect(
        (async function* () {
          for await (const chunk of streamBedrock(client, INPUT, { signal: controller.signal })) {
            seen.push(chunk.token);
            if (seen.length === 2) controller.abort(reason);
            yield chunk;
          }
        })(),
      );
      expect(seen).toStrictEqual(['a', 'b']);
      expect(error).toBeInstanceOf(StreamAbortedError);
      expect((error as Error).cause).toBe(reason);
      expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    });
  });

  it('aborts a read that waits on a stalled stream', async () => {
    await withProvider({ tokens: ['a', 'b'], fault: { kind: 'stall', afterTokens: 1 } }, async (client, provider) => {
      const controller = new AbortController();
      const stream = streamBedrock(client, INPUT, { signal: controller.signal });
      expect((await stream.next()).value?.token).toBe('a');
      const pending = stream.next();
      const recorded = await provider.request(1);
      expect(recorded.end).toBeUndefined();
      controller.abort('gone');
      await expect(pending).rejects.toMatchObject({ name: 'StreamAbortedError', cause: 'gone' });
      expect((await recorded.ended).end).toBe('client-closed');
    });
  });

  it('throws StreamAbortedError while the request is pending', async () => {
    await withProvider({ tokens: ['a'], firstTokenDelayMs: 60_000 }, async (client, provider) => {
      const controller = new AbortController();
      const pending = streamBedrock(client, INPUT, { signal: controller.signal }).next();
      const recorded = await provider.request(1);
      controller.abort('stop');
      await expect(pending).rejects.toMatchObject({ name: 'StreamAbortedError', cause: 'stop' });
      expect((await recorded.ended).end).toBe('client-closed');
    });
  });

  it('sends no request when the signal is already aborted', async () => {
    await withProvider({ tokens: ['a'] }, async (client, provider) => {
      const { error } = await collect(streamBedrock(client, INPUT, { signal: AbortSignal.abort('early') }));
      expect(error).toMatchObject({ name: 'StreamAbortedError', cause: 'early' });
      expect(provider.requests).toHaveLength(0);
    });
  });

  it('closes the request when the consumer breaks, without a signal', async () => {
    await withProvider({ tokens: ['a', 'b', 'c', 'd'], delayMs: 20 }, async (client, provider) => {
      for await (const chunk of streamBedrock(client, INPUT)) {
        expect(chunk.token).toBe('a');
        break;
      }
      expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    });
  });

  it('times out a stalled stream with withTimeout, and the timeout closes the request', async () => {
    await withProvider({ tokens: ['a', 'b', 'c'], fault: { kind: 'stall', afterTokens: 2 } }, async (client, provider) => {
      const controller = new AbortController();
      const stream = pipe(streamBedrock(client, INPUT, { signal: controller.signal }), withTimeout({ idleMs: 100, controller }));
      const { chunks, error } = await collect(stream);
      expect(chunks.map((chunk) => chunk.token)).toStrictEqual(['a', 'b']);
      expect(isStreamTimeoutError(error)).toBe(true);
      expect(error).toMatchObject({ phase: 'idle', timeoutMs: 100 });
      expect(controller.signal.reason).toBe(error);
      expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    });
  });
});

describe('fromBedrock with the real SDK', () => {
  it('relays the stream of a response the caller sent, with the model given', async () => {
    await withProvider({ tokens: ['A', 'B'] }, async (client) => {
      const signal = new AbortController().signal;
      const response = await client.send(new ConverseStreamCommand(INPUT), { abortSignal: signal });
      const { chunks, error } = await collect(fromBedrock(response.stream!, { signal, model: 'nova', provider: 'aws' }));
      expect(error).toBeUndefined();
      expect(withoutTimestamps(chunks)).toStrictEqual([
        { token: 'A', index: 0, type: 'text', model: 'nova', provider: 'aws' },
        { token: 'B', index: 1, type: 'text', model: 'nova', provider: 'aws' },
        { token: '', index: 2, type: 'text', finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 2 }, model: 'nova', provider: 'aws' },
      ]);
    });
  });

  it('maps an exception the SDK throws mid-stream and names the provider given', async () => {
    await withProvider({ tokens: ['a'], fault: { kind: 'error-event', afterTokens: 0, type: 'throttlingException' } }, async (client) => {
      const response = await client.send(new ConverseStreamCommand(INPUT));
      const { error } = await collect(fromBedrock(response.stream!, { provider: 'aws' }));
      expect(error).toMatchObject({ message: 'aws stream failed with ThrottlingException: Too many tokens, please wait before trying again.', retryable: true });
      expect((error as Error).cause).toBeInstanceOf(ThrottlingException);
    });
  });
});
