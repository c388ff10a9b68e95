import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  isProviderError,
  isStreamAbortedError,
  ProviderError,
  StreamAbortedError,
  type TokenChunk,
} from 'tokenrelay';
import {
  createRelay,
  InvalidCursorError,
  isInvalidCursorError,
  isProducerLostError,
  isStreamLimitError,
  isStreamNotFoundError,
  memoryStore,
} from 'tokenrelay/relay';
import { abortListeners, controlledSource, drain, settle, take, tokenSource } from './helpers.js';

const tokensOf = (chunks: TokenChunk[]) => chunks.map((chunk) => chunk.token);
const indicesOf = (chunks: TokenChunk[]) => chunks.map((chunk) => chunk.index);

describe('createRelay', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('replays from the start, follows live, and ends with the terminal chunk', async () => {
    const relay = createRelay();
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    source.push('Hel');
    source.push('lo');
    const reading = drain(relay.subscribe(id));
    await settle();
    source.push(' world');
    source.finish('stop');
    const { chunks, error } = await reading;
    expect(error).toBeUndefined();
    expect(tokensOf(chunks)).toEqual(['Hel', 'lo', ' world', '']);
    expect(indicesOf(chunks)).toEqual([0, 1, 2, 3]);
    expect(chunks.at(-1)?.finishReason).toBe('stop');
    expect(await done).toEqual({ outcome: 'completed', chunks: 4 });
    expect(source.state.finallyRuns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    await relay.close();
  });

  it('numbers chunks itself, gap-free, whatever the source said', async () => {
    const relay = createRelay();
    const { id, done } = await relay.start(async function* () {
      yield { token: 'a', index: 7, timestamp: 0, type: 'text' as const };
      yield { token: 'b', index: 7, timestamp: 0, type: 'text' as const };
    });
    await done;
    expect(indicesOf((await drain(relay.subscribe(id))).chunks)).toEqual([0, 1]);
  });

  it('resumes after a cursor; a cursor equal to the last index means nothing was missed', async () => {
    const relay = createRelay();
    const { id, done } = await relay.start(tokenSource(['a', 'b', 'c', 'd']));
    await done;
    expect(tokensOf((await drain(relay.subscribe(id, { after: 1 }))).chunks)).toEqual(['c', 'd', '']);
    expect(tokensOf((await drain(relay.subscribe(id, { after: '2' }))).chunks)).toEqual(['d', '']);
    const atEnd = await drain(relay.subscribe(id, { after: 4 }));
    expect(atEnd).toEqual({ chunks: [] });

    const source = controlledSource();
    const live = await relay.start(source.factory);
    source.push('x');
    source.push('y');
    await settle();
    const following = drain(relay.subscribe(live.id, { after: 1 }));
    await settle();
    source.push('z');
    source.finish();
    expect(tokensOf((await following).chunks)).toEqual(['z', '']);
  });

  it('replays long streams in batches', async () => {
    const relay = createRelay();
    const tokens = Array.from({ length: 1000 }, (_, index) => `t${index}`);
    const { id, done } = await relay.start(tokenSource(tokens));
    await done;
    const { chunks } = await drain(relay.subscribe(id, { after: 10 }));
    expect(tokensOf(chunks)).toEqual([...tokens.slice(11), '']);
    expect(indicesOf(chunks)).toEqual(Array.from({ length: 990 }, (_, index) => index + 11));
  });

  it('rethrows the producer error, typed, with its fields, to every subscriber', async () => {
    const relay = createRelay();
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    source.push('a');
    const live = drain(relay.subscribe(id));
    await settle();
    source.fail(new ProviderError('Rate limited', { status: 429, retryAfterMs: 2000, provider: 'openai' }));
    const result = await live;
    expect(tokensOf(result.chunks)).toEqual(['a']);
    expect(isProviderError(result.error)).toBe(true);
    expect(result.error).toMatchObject({ status: 429, retryAfterMs: 2000, provider: 'openai', retryable: true });
    expect((await done).outcome).toBe('failed');
    const later = await drain(relay.subscribe(id, { after: 0 }));
    expect(later.chunks).toEqual([]);
    expect(isProviderError(later.error)).toBe(true);

    const plain = await relay.start(async function* () {
      yield* [];
      throw new Error('boom');
    });
    await plain.done;
    const { error } = await drain(relay.subscribe(plain.id));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('boom');
  });

  it('throws StreamNotFoundError for an unknown, malformed or expired id', async () => {
    const relay = createRelay({ ttlMs: 60_000 });
    for (const id of ['nope', '', '../etc', 'a\r\nb', 'x'.repeat(300)]) {
      const { error } = await drain(relay.subscribe(id));
      expect(isStreamNotFoundError(error)).toBe(true);
      expect((error as Error).message).not.toContain(id || '\u0000');
    }
    const { id, done } = await relay.start(tokenSource(['a']));
    await done;
    await vi.advanceTimersByTimeAsync(59_000);
    expect((await drain(relay.subscribe(id))).error).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_001);
    expect(isStreamNotFoundError((await drain(relay.subscribe(id))).error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects tampered, negative, huge and non-numeric cursors without echoing them', async () => {
    const relay = createRelay();
    const { id, done } = await relay.start(tokenSource(['a', 'b']));
    await done;
    const bad: unknown[] = ['-1', '1.5', '1e2', '0x2', ' 1', '01', '1 ', 'abc', 'NaN', '99999999999999999999', '1;DROP', -1, 1.5, NaN, Infinity, 2 ** 60];
    for (const after of bad) {
      const { chunks, error } = await drain(relay.subscribe(id, { after: after as number }));
      expect(chunks).toEqual([]);
      expect(isInvalidCursorError(error), String(after)).toBe(true);
      expect((error as Error).message).not.toContain(String(after));
    }
  });

  it('rejects a cursor beyond the last index written so far, and nothing else changes', async () => {
    const store = memoryStore();
    const relay = createRelay({ store });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    source.push('a');
    source.push('b');
    await settle();
    const before = store.stats();
    // 5 is the id of a chunk of another, longer stream: scoped to this one, it is beyond the end.
    for (const after of [2, 5, 1_000_000]) {
      const { error } = await drain(relay.subscribe(id, { after }));
      expect(error).toBeInstanceOf(InvalidCursorError);
    }
    expect(store.stats()).toEqual(before);
    expect((await store.heartbeat(id, 10_000))?.subscribers).toBe(0);
    const valid = drain(relay.subscribe(id, { after: 1 }));
    await settle();
    source.push('c');
    source.finish();
    expect(tokensOf((await valid).chunks)).toEqual(['c', '']);
    expect((await done).outcome).toBe('completed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('cancel() stops the producer, also from another relay sharing the store', async () => {
    const store = memoryStore();
    const here = createRelay({ store });
    const there = createRelay({ store });
    const source = controlledSource();
    const { id, done } = await here.start(source.factory);
    source.push('a');
    const watching = drain(there.subscribe(id));
    await settle();
    expect(await there.cancel(id)).toBe(true);
    expect(source.state.signal?.aborted).toBe(true);
    const result = await watching;
    expect(tokensOf(result.chunks)).toEqual(['a']);
    expect(isStreamAbortedError(result.error)).toBe(true);
    expect((result.error as Error).message).toBe('The stream was cancelled');
    expect((await done).outcome).toBe('cancelled');
    expect(source.state.finallyRuns).toBe(1);
    expect(await there.cancel(id)).toBe(false);
    expect(await there.cancel('unknown')).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('cancel() interrupts a producer stuck waiting on its provider', async () => {
    const relay = createRelay();
    let signal: AbortSignal | undefined;
    const { id, done } = await relay.start(async function* (given) {
      signal = given;
      yield { token: 'a', index: 0, timestamp: 0, type: 'text' as const };
      await new Promise(() => undefined); // a provider that never answers, and ignores the signal
    });
    await settle();
    await relay.cancel(id);
    expect(signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('cancelled');
  });

  it('authorize: a refusal looks like an unknown id, for subscribe and cancel', async () => {
    const relay = createRelay({ authorize: (stream, user) => stream.metadata.userId === user });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory, { metadata: { userId: 'alice' } });
    source.push('secret');
    await settle();
    const stolen = await drain(relay.subscribe(id, { context: 'mallory' }));
    expect(stolen.chunks).toEqual([]);
    expect(isStreamNotFoundError(stolen.error)).toBe(true);
    expect(await relay.cancel(id, { context: 'mallory' })).toBe(false);
    expect(source.state.signal?.aborted).toBe(false);
    const mine = take(relay.subscribe(id, { context: 'alice' }), 1);
    expect(tokensOf(await mine)).toEqual(['secret']);
    expect(await relay.cancel(id, { context: 'alice' })).toBe(true);
    expect((await done).outcome).toBe('cancelled');
  });

  it('maxChunks: the producer is aborted and subscribers get a StreamLimitError', async () => {
    const relay = createRelay({ maxChunks: 3 });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    for (const token of ['a', 'b', 'c', 'd', 'e']) source.push(token);
    const result = await drain(relay.subscribe(id));
    expect(tokensOf(result.chunks)).toEqual(['a', 'b', 'c']);
    expect(isStreamLimitError(result.error)).toBe(true);
    expect(result.error).toMatchObject({ limit: 'chunks' });
    expect(source.state.signal?.aborted).toBe(true);
    expect((await done).outcome).toBe('failed');
  });

  it('a subscriber whose signal aborts detaches at once, leaving no listener or timer', async () => {
    const store = memoryStore();
    const relay = createRelay({ store, graceMs: Infinity });
    const source = controlledSource();
    const { id } = await relay.start(source.factory);
    const controller = new AbortController();
    const iterator = relay.subscribe(id, { signal: controller.signal });
    const pending = iterator.next();
    await settle();
    expect((await store.heartbeat(id, 10_000))?.subscribers).toBe(1);
    expect(abortListeners(controller.signal)).toBe(1);
    controller.abort(new Error('tab closed'));
    const error = await pending.catch((caught: unknown) => caught);
    expect(isStreamAbortedError(error)).toBe(true);
    expect((error as StreamAbortedError).cause).toEqual(new Error('tab closed'));
    expect(abortListeners(controller.signal)).toBe(0);
    expect((await store.heartbeat(id, 10_000))?.subscribers).toBe(0);
    expect(source.state.signal?.aborted).toBe(false); // the producer carries on
    source.finish();
    await settle();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an already aborted signal fails the first read and never attaches', async () => {
    const store = memoryStore();
    const relay = createRelay({ store });
    const source = controlledSource();
    const { id } = await relay.start(source.factory);
    const { error } = await drain(relay.subscribe(id, { signal: AbortSignal.abort() }));
    expect(isStreamAbortedError(error)).toBe(true);
    expect((await store.heartbeat(id, 10_000))?.subscribers).toBe(0);
    await relay.close();
  });

  it('a subscriber gets ProducerLostError when the producer stops beating, instead of hanging', async () => {
    const store = memoryStore();
    const relay = createRelay({ store, livenessMs: 3_000 });
    // A producer on an instance that died: it wrote, then went silent without an end.
    await store.create('orphan', { ttlMs: 600_000, metadata: {} });
    await store.heartbeat('orphan', 3_000);
    await store.append('orphan', { token: 'a', index: 0, timestamp: 0, type: 'text' });
    const result = drain(relay.subscribe('orphan'));
    await vi.advanceTimersByTimeAsync(6_000);
    const { chunks, error } = await result;
    expect(tokensOf(chunks)).toEqual(['a']);
    expect(isProducerLostError(error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails start with StreamLimitError when the store holds only live streams', async () => {
    const relay = createRelay({ store: memoryStore({ maxStreams: 2 }), graceMs: Infinity });
    const first = controlledSource();
    await relay.start(first.factory);
    const second = await relay.start(tokenSource(['done']));
    await second.done;
    await relay.start(controlledSource().factory); // evicts the finished one
    const error = await relay.start(controlledSource().factory).catch((caught: unknown) => caught);
    expect(isStreamLimitError(error)).toBe(true);
    expect(error).toMatchObject({ limit: 'streams' });
    await relay.close();
    expect(first.state.signal?.aborted).toBe(true);
  });

  it('validates its arguments with TypeErrors', async () => {
    expect(() => createRelay({ graceMs: -1 })).toThrow('Expected `graceMs` to be a number >= 0, got -1');
    expect(() => createRelay({ ttlMs: 0 })).toThrow(TypeError);
    expect(() => createRelay({ maxChunks: 1.5 })).toThrow(TypeError);
    expect(() => createRelay({ store: {} as never })).toThrow('Expected `store` to be a RelayStore');
    const relay = createRelay();
    await expect(relay.start(tokenSource([]), { id: 'bad id' })).rejects.toThrow(TypeError);
    await expect(relay.start(undefined as never, { id: 'ok' })).rejects.toThrow('Expected `factory` to be a function, got undefined');
    // The 0.1 form, `start(id, factory, options)`, names the form that replaced it.
    await expect(relay.start('chat-1' as never, tokenSource(['a']) as never)).rejects.toThrow(
      'Expected `factory` to be a function, got "chat-1": pass the id as an option, `relay.start(factory, { id })`',
    );
    await expect(relay.start(undefined as never, tokenSource(['a']) as never)).rejects.toThrow('`relay.start(factory, { id })`');
    await expect(relay.start(tokenSource([]), { metadata: { n: 1 } as never })).rejects.toThrow(TypeError);
    expect((await relay.start(tokenSource(['a']), { id: 'chat-42:1' })).id).toBe('chat-42:1');
    await expect(relay.start(tokenSource(['a']), { id: 'chat-42:1' })).rejects.toThrow('existing');
    expect(() => relay.subscribe(42 as never)).toThrow(TypeError);
    expect(() => relay.subscribe('x', { after: {} as never })).toThrow(TypeError);
    expect(() => relay.subscribe('x', { signal: 'no' as never })).toThrow(TypeError);
    await relay.close();
    await expect(relay.start(tokenSource([]))).rejects.toThrow('closed');
  });

  it('generates unguessable, distinct, URL-safe ids', async () => {
    const relay = createRelay({ graceMs: Infinity });
    const ids = new Set<string>();
    for (let n = 0; n < 200; n++) {
      const { id, done } = await relay.start(tokenSource([]));
      await done;
      expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(200);
  });

  it('close() cancels the producers it runs and waits for their ends to be stored', async () => {
    const store = memoryStore();
    const relay = createRelay({ store, graceMs: Infinity });
    const source = controlledSource();
    const { id, done } = await relay.start(source.factory);
    await relay.close();
    expect((await done).outcome).toBe('cancelled');
    const { error } = await drain(createRelay({ store }).subscribe(id));
    expect((error as Error).message).toBe('The relay was closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer and no listener behind, whichever way 1,000 streams end', async () => {
    const store = memoryStore();
    const relay = createRelay({ store, graceMs: 50 });
    const shared = new AbortController();
    for (let n = 0; n < 1_000; n++) {
      const source = controlledSource();
      const { id, done } = await relay.start(source.factory);
      source.push('a');
      const way = n % 6;
      if (way === 0) {
        source.finish();
        await drain(relay.subscribe(id, { signal: shared.signal }));
      } else if (way === 1) {
        await take(relay.subscribe(id, { signal: shared.signal }), 1); // subscriber breaks
        source.finish();
      } else if (way === 2) {
        const controller = new AbortController();
        const reading = drain(relay.subscribe(id, { signal: AbortSignal.any([controller.signal, shared.signal]) }));
        await settle();
        controller.abort();
        await reading;
        source.finish();
      } else if (way === 3) {
        source.fail(new Error('provider down'));
        await drain(relay.subscribe(id, { signal: shared.signal }));
      } else if (way === 4) {
        await relay.cancel(id);
      } else {
        await vi.advanceTimersByTimeAsync(50); // abandoned
      }
      await done;
    }
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(shared.signal)).toBe(0);
    expect(store.stats().liveStreams).toBe(0);
  });
});
