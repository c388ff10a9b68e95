import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { isStreamAbortedError, type TokenChunk } from 'tokenrelay';
import { createRelay, memoryStore } from 'tokenrelay/relay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { controlledSource, drain, settle, take } from './helpers.js';

const tokensOf = (chunks: TokenChunk[]) => chunks.map((chunk) => chunk.token);

describe('grace window (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts a producer nobody ever subscribes to, graceMs after its start', async () => {
    const relay = createRelay({ graceMs: 5_000 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    source.push('a');
    await vi.advanceTimersByTimeAsync(4_999);
    expect(source.state.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('abandoned');
    expect(source.state.finallyRuns).toBe(1);
    const late = await drain(relay.subscribe(id));
    expect(tokensOf(late.chunks)).toEqual(['a']);
    expect(isStreamAbortedError(late.error)).toBe(true);
    expect((late.error as Error).message).toBe('The stream was abandoned: no subscriber for 5000 ms');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts graceMs after the last subscriber leaves, and not before', async () => {
    const relay = createRelay({ graceMs: 2_000 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    const first = relay.subscribe(id);
    const second = relay.subscribe(id);
    source.push('a');
    await take(first, 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(source.state.signal?.aborted).toBe(false); // `second` is still attached
    await second.return?.();
    await vi.advanceTimersByTimeAsync(1_999);
    expect(source.state.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('abandoned');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps going when the client comes back inside the window, and nothing is lost', async () => {
    const relay = createRelay({ graceMs: 2_000 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    let last: number | undefined;
    const text: string[] = [];
    for (let n = 0; n < 5; n++) {
      source.push(`t${n}`);
      const chunks = await take(relay.subscribe(id, { after: last }), 1);
      text.push(...tokensOf(chunks));
      last = chunks.at(-1)?.index ?? last;
      source.push(`u${n}`); // produced while nobody listens
      await vi.advanceTimersByTimeAsync(1_999); // gone for just under the window
    }
    expect(source.state.signal?.aborted).toBe(false);
    source.finish();
    const rest = await drain(relay.subscribe(id, { after: last }));
    text.push(...tokensOf(rest.chunks));
    expect(text.join('')).toBe('t0u0t1u1t2u2t3u3t4u4');
    expect(rest.chunks.at(-1)?.index).toBe(10);
    expect((await done).outcome).toBe('completed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('graceMs: 0 aborts on disconnect, yet survives start followed by subscribe', async () => {
    const relay = createRelay({ graceMs: 0 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    const subscription = relay.subscribe(id);
    source.push('a');
    await vi.advanceTimersByTimeAsync(100);
    expect(source.state.signal?.aborted).toBe(false);
    await take(subscription, 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('abandoned');
  });

  it('graceMs: Infinity finishes with nobody listening (to persist the answer)', async () => {
    const relay = createRelay({ graceMs: Infinity });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    source.push('saved');
    await vi.advanceTimersByTimeAsync(3_600_000);
    source.finish();
    expect(await done).toEqual({ outcome: 'completed', chunks: 2 });
    expect(tokensOf((await drain(relay.subscribe(id))).chunks)).toEqual(['saved', '']);
  });

  it('a subscriber on another relay sharing the store keeps the producer alive', async () => {
    const store = memoryStore();
    const producer = createRelay({ store, graceMs: 1_000 });
    const elsewhere = createRelay({ store, graceMs: 1_000 });
    const source = controlledSource();
    const { id } = await producer.start(source.factory);
    const remote = elsewhere.subscribe(id);
    const reading = drain(remote);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.state.signal?.aborted).toBe(false);
    await remote.return?.();
    await reading;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(source.state.signal?.aborted).toBe(true);
  });

  it('a subscriber on an instance that died stops counting after livenessMs', async () => {
    const store = memoryStore();
    const relay = createRelay({ store, graceMs: 1_000, livenessMs: 3_000 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    await store.attach(id, 'ghost', 3_000); // attached, then never refreshed nor detached
    await vi.advanceTimersByTimeAsync(2_999);
    expect(source.state.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(3_000 / 3 + 1_000 + 1);
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('abandoned');
  });

  it('a reconnect during the final presence check is honoured', async () => {
    const relay = createRelay({ graceMs: 1_000 });
    const source = controlledSource();
    const { id } = await relay.start(source.factory);
    await vi.advanceTimersByTimeAsync(999);
    const subscription = relay.subscribe(id);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(source.state.signal?.aborted).toBe(false);
    await subscription.return?.();
    await settle();
    await relay.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('grace window with the real openai SDK (loopback provider, real time)', () => {
  const graceMs = 300;
  const tokens = Array.from({ length: 200 }, (_, n) => `w${n} `);
  let provider: MockProvider;
  let openai: OpenAI;
  beforeAll(async () => {
    provider = await startMockProvider({ script: { tokens, delayMs: 10 } });
    openai = new OpenAI({ apiKey: 'sk-test', baseURL: provider.openaiBaseURL, maxRetries: 0 });
  });
  afterEach(() => provider.clear());
  afterAll(() => provider.close());

  it('cancels the provider request within graceMs + 100 ms of the last disconnect', async () => {
    const relay = createRelay({ graceMs });
    const { id, done } = await relay.start((signal) =>
      streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { signal }),
    );
    await take(relay.subscribe(id), 3);
    const leftAt = performance.now();
    const request = await (await provider.request(1)).ended;
    const latency = (request.endedAt ?? Infinity) - leftAt;
    console.info(`grace abort: provider request closed ${latency.toFixed(1)} ms after the disconnect (graceMs ${graceMs})`);
    expect(request.end).toBe('client-closed');
    expect(latency).toBeGreaterThanOrEqual(graceMs - 5);
    expect(latency).toBeLessThan(graceMs + 100);
    expect((await done).outcome).toBe('abandoned');
    await relay.close();
  });

  it('keeps the provider request when the client reconnects inside the window; the text is whole', async () => {
    const relay = createRelay({ graceMs });
    const { id, done } = await relay.start((signal) =>
      streamOpenAI(openai, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { signal }),
    );
    const text: string[] = [];
    let last: number | undefined;
    for (let visit = 0; visit < 3; visit++) {
      const chunks = await take(relay.subscribe(id, { after: last }), 20);
      text.push(...tokensOf(chunks));
      last = chunks.at(-1)?.index;
      await new Promise((resolve) => setTimeout(resolve, graceMs / 2));
    }
    const rest = await drain(relay.subscribe(id, { after: last }));
    expect(rest.error).toBeUndefined();
    text.push(...tokensOf(rest.chunks));
    expect(text.join('')).toBe(tokens.join(''));
    expect(rest.chunks.at(-1)?.finishReason).toBe('stop');
    expect((await (await provider.request(1)).ended).end).toBe('completed');
    expect((await done).outcome).toBe('completed');
    await relay.close();
  });
});
