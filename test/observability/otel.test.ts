import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { monitored, pipe, withAbort, withTimeout, type TokenChunk } from 'tokenrelay';
import { sendSSE } from 'tokenrelay/node';
import { otelMonitor } from 'tokenrelay/otel';
import { chunk, consume, scripted } from './helpers.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const price = { inputPerMTok: 1, outputPerMTok: 4 };

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});

afterAll(() => {
  context.disable();
});

afterEach(() => {
  exporter.reset();
  vi.useRealTimers();
});

function gate(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

const spansNamed = (prefix: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name.startsWith(prefix));

function answer(model = 'gpt-4o-mini-2024-07-18'): TokenChunk[] {
  return [
    chunk('', { model, provider: 'openai' }),
    chunk('The secret'),
    chunk(' answer'),
    chunk('', { finishReason: 'tool-calls', usage: { inputTokens: 12, outputTokens: 3 } }),
  ];
}

describe('otelMonitor', () => {
  it('makes one client span per stream with the GenAI attributes, a first-token event, and no content', async () => {
    const monitor = otelMonitor({ tracer });
    await consume(pipe(scripted(answer().map((item): [number, TokenChunk] => [0, item])).source, monitored(monitor)));

    const [span, ...others] = exporter.getFinishedSpans();
    expect(others).toEqual([]);
    expect(span!.name).toBe('chat gpt-4o-mini-2024-07-18');
    expect(span!.kind).toBe(SpanKind.CLIENT);
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 3,
      'gen_ai.response.finish_reasons': ['tool_call'],
      'tokenrelay.outcome': 'completed',
    });
    expect(span!.events.map((event) => event.name)).toEqual(['tokenrelay.first_token']);
    expect(span!.events[0]!.attributes).toEqual({ 'tokenrelay.time_to_first_token_ms': expect.any(Number) });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    expect(JSON.stringify([span!.attributes, span!.events])).not.toContain('secret');
  });

  it('records the completion text with recordContent, and the model asked for with attributes', async () => {
    const monitor = otelMonitor({ tracer, recordContent: true, attributes: { 'gen_ai.request.model': 'gpt-4o-mini', 'app.user_tier': 'free' } });
    await consume(pipe(scripted(answer().map((item): [number, TokenChunk] => [0, item])).source, monitored(monitor)));
    const [span] = exporter.getFinishedSpans();
    expect(span!.name).toBe('chat gpt-4o-mini');
    expect(span!.attributes).toMatchObject({
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'app.user_tier': 'free',
    });
    expect(JSON.parse(span!.attributes['gen_ai.output.messages'] as string)).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'The secret answer' }], finish_reason: 'tool_call' },
    ]);
  });

  it('sets the status from the outcome: error and timeout are errors with the exception, aborted and cancelled are not', async () => {
    vi.useFakeTimers();
    const monitor = otelMonitor({ tracer, pricing: () => price });
    const head = chunk('', { model: 'm', provider: 'anthropic', usage: { inputTokens: 100, outputTokens: 1 } });
    const failure = new Error('provider down');
    const client = new AbortController();
    setTimeout(() => client.abort(), 100);
    const runs = [
      consume(pipe(scripted([[0, head], [10, chunk('abcdefgh')], [10, failure]]).source, monitored(monitor))),
      consume(pipe(scripted([[0, head], [10, chunk('a')]], { stall: true }).source, withTimeout({ idleMs: 50 }), monitored(monitor))),
      consume(pipe(scripted([[0, head], [10, chunk('abcdefghijkl')]], { stall: true }).source, withAbort(client.signal), monitored(monitor))),
      consume(pipe(scripted([[0, head], [10, chunk('a')], [10, chunk('b')]]).source, monitored(monitor)), 2),
    ];
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all(runs);

    const byOutcome = new Map(exporter.getFinishedSpans().map((span) => [span.attributes['tokenrelay.outcome'], span]));
    expect([...byOutcome.keys()].sort()).toEqual(['aborted', 'cancelled', 'error', 'timeout']);

    const error = byOutcome.get('error')!;
    expect(error.status).toEqual({ code: SpanStatusCode.ERROR, message: 'provider down' });
    expect(error.attributes['error.type']).toBe('_OTHER');
    const exception = error.events.find((event) => event.name === 'exception');
    expect(exception?.attributes).toMatchObject({ 'exception.message': 'provider down', 'exception.type': 'Error' });

    const timeout = byOutcome.get('timeout')!;
    expect(timeout.status.code).toBe(SpanStatusCode.ERROR);
    expect(timeout.attributes['error.type']).toBe('timeout');
    expect(timeout.events.map((event) => event.name)).toEqual(['tokenrelay.first_token', 'exception']);

    for (const outcome of ['aborted', 'cancelled']) {
      const span = byOutcome.get(outcome)!;
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.events.map((event) => event.name)).toEqual(['tokenrelay.first_token']);
      expect(span.attributes['error.type']).toBeUndefined();
    }
    // Cut short: the input count that came early is kept, the output is estimated from the text.
    expect(byOutcome.get('aborted')!.attributes).toMatchObject({
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 3,
      'tokenrelay.usage.estimated': true,
      'tokenrelay.cost.usd': (100 * 1 + 3 * 4) / 1e6,
    });
  });

  it('makes each span a child of the context its stream was first read in, for concurrent streams sharing one monitor', async () => {
    const monitor = otelMonitor({ tracer });
    const gates = [gate(), gate()];
    async function* slow(gate: Promise<void>): AsyncGenerator<TokenChunk> {
      yield chunk('', { model: 'm', provider: 'openai' });
      await gate;
      yield chunk('x', { finishReason: 'stop' });
    }
    // The monitored stream is built outside any request; what counts is where it is read.
    const streams = gates.map((gate) => pipe(slow(gate.promise), monitored(monitor)));
    const requests = ['request A', 'request B'].map((name, i) =>
      tracer.startActiveSpan(name, async (span) => {
        await consume(streams[i]!);
        span.end();
      }),
    );
    gates[1]!.resolve();
    gates[0]!.resolve();
    await Promise.all(requests);

    const chats = spansNamed('chat');
    expect(chats).toHaveLength(2);
    for (const name of ['request A', 'request B']) {
      const parent = spansNamed(name)[0]!;
      const children = chats.filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId);
      expect(children).toHaveLength(1);
      expect(children[0]!.spanContext().traceId).toBe(parent.spanContext().traceId);
    }
  });

  it('parents the span to the request span around a real sendSSE response', async () => {
    const server = http.createServer((req, res) => {
      void tracer.startActiveSpan('POST /chat', async (span) => {
        await sendSSE(req, res, () => scripted(answer().map((item): [number, TokenChunk] => [0, item])).source, {
          monitor: otelMonitor({ tracer }),
        });
        span.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const body = await (await fetch(`http://127.0.0.1:${port}/chat`, { method: 'POST' })).text();
      expect(body).toContain('event: done');
      await vi.waitFor(() => expect(spansNamed('POST /chat')).toHaveLength(1));
      const [request] = spansNamed('POST /chat');
      const [chat] = spansNamed('chat');
      expect(chat!.parentSpanContext?.spanId).toBe(request!.spanContext().spanId);
      expect(chat!.attributes['tokenrelay.outcome']).toBe('completed');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('uses the global tracer by default and fails fast on bad options', async () => {
    expect(trace.getTracer('tokenrelay')).toBeDefined();
    await consume(pipe(scripted([[0, chunk('a')]]).source, monitored(otelMonitor())));
    expect(exporter.getFinishedSpans()).toEqual([]); // no global provider registered: a no-op tracer
    expect(() => otelMonitor(null as never)).toThrow(new TypeError('Expected `options` to be an object, got null'));
    expect(() => otelMonitor({ tracer: {} as never })).toThrow(new TypeError('Expected `tracer` to be an OpenTelemetry Tracer, got an object'));
    expect(() => otelMonitor({ tracer, recordContent: 'yes' as never })).toThrow(new TypeError('Expected `recordContent` to be a boolean, got "yes"'));
    expect(() => otelMonitor({ tracer, pricing: {} as never })).toThrow(new TypeError('Expected `pricing` to be a function, got an object'));
  });
});
