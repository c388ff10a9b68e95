import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { createRelay, isStoreUnavailableError, memoryStore, StoreUnavailableError } from 'tokenrelay/relay';
import type { RelayStore } from 'tokenrelay/store';
import { toResponse } from 'tokenrelay/web';
import { controlledSource, drain, take } from './helpers.js';

// A store outage seen from the relay, with a memory store behind a switch: calls that reject as
// unavailable (a client that fails fast), calls that hang until the store is back (ioredis'
// offline queue), and an append stored whose answer is lost. Real time, small livenessMs, bounds
// with margins for a loaded 2-core machine.

type Mode = 'up' | 'reject' | 'hang';

/**
 * `inner` behind a switch. Hung calls run, in order, when the store is back (like a client's
 * offline queue); an answer that comes during an outage does not get through either.
 */
function flakyStore(inner: RelayStore) {
  const state = { mode: 'up' as Mode, loseNextAppendAnswer: false, calls: 0 };
  const queued: Array<() => void> = [];
  const flush = (): void => {
    for (const run of queued.splice(0)) run();
  };
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (name === 'watch' || name === 'close') return value.bind(target);
      return (...args: unknown[]) => {
        state.calls++;
        const through = (answer: Promise<unknown>): Promise<unknown> =>
          new Promise((resolve, reject) => {
            const settle = (run: () => void): void => {
              if (state.mode === 'reject') reject(new StoreUnavailableError('down (test)'));
              else if (state.mode === 'hang') queued.push(run);
              else run();
            };
            answer.then(
              (result) => settle(() => resolve(result)),
              (error: unknown) => settle(() => reject(error)),
            );
          });
        const call = () => through((value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        if (state.mode === 'reject') return Promise.reject(new StoreUnavailableError('down (test)', { cause: new Error('ECONNREFUSED') }));
        if (state.mode === 'hang') return new Promise((resolve, reject) => queued.push(() => call().then(resolve, reject)));
        if (name === 'append' && state.loseNextAppendAnswer) {
          state.loseNextAppendAnswer = false;
          return call().then(() => {
            throw new StoreUnavailableError('connection reset after the write (test)');
          });
        }
        return call();
      };
    },
  });
  return {
    store,
    state,
    set(mode: Mode): void {
      state.mode = mode;
      if (mode === 'up') flush();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** When `signal` aborts, in performance.now() time. */
function abortedAt(signal: AbortSignal): Promise<number> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(performance.now()), { once: true }));
}

function expectGapFree(chunks: TokenChunk[], text: string): void {
  expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
  expect(chunks.map((chunk) => chunk.token).join('')).toBe(text);
}

describe('a store outage, seen from the relay (memory store behind a switch)', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  /** Two instances sharing one store, each with its own switch (a producer's and a subscriber's view). */
  function twoInstances(livenessMs: number) {
    const shared = memoryStore();
    const a = flakyStore(shared);
    const b = flakyStore(shared);
    const producer = createRelay({ store: a.store, livenessMs, graceMs: Infinity });
    const subscriber = createRelay({ store: b.store, livenessMs });
    return {
      a,
      b,
      producer,
      subscriber,
      set(mode: Mode) {
        a.set(mode);
        b.set(mode);
      },
      async close() {
        this.set('up');
        await Promise.all([producer.close(), subscriber.close()]);
        await shared.close();
      },
    };
  }

  it.each(['reject', 'hang'] as const)(
    'an outage shorter than livenessMs (calls %s): the stream survives, complete and gap-free, and the source is never aborted',
    async (mode) => {
      const livenessMs = 900;
      const setup = twoInstances(livenessMs);
      const source = controlledSource();
      const { id, done } = await setup.producer.start(source.factory);
      const reading = drain(setup.subscriber.subscribe(id));
      const words: string[] = [];
      for (let n = 0; n < 10; n++) words.push(`w${n} `);
      for (const word of words.slice(0, 5)) source.push(word);
      await sleep(50);
      setup.set(mode);
      for (const word of words.slice(5)) source.push(word);
      await sleep(livenessMs / 3);
      setup.set('up');
      source.finish();
      const { chunks, error } = await reading;
      expect(error).toBeUndefined();
      expectGapFree(chunks, words.join(''));
      expect(chunks.at(-1)?.finishReason).toBe('stop');
      expect((await done).outcome).toBe('completed');
      expect(source.state.signal?.aborted).toBe(false);
      await setup.close();
    },
  );

  it('an append stored whose answer is lost is retried without a duplicate or a gap', async () => {
    const setup = twoInstances(900);
    const source = controlledSource();
    const { id, done } = await setup.producer.start(source.factory);
    setup.a.state.loseNextAppendAnswer = true;
    source.push('a');
    source.push('b');
    source.push('c');
    source.push('d');
    source.finish();
    expect((await done).outcome).toBe('completed');
    const { chunks, error } = await drain(setup.subscriber.subscribe(id));
    expect(error).toBeUndefined();
    expectGapFree(chunks, 'abcd');
    expect(setup.a.state.loseNextAppendAnswer).toBe(false);
    await setup.close();
  });

  it.each(['reject', 'hang'] as const)(
    'an outage longer than livenessMs (calls %s): the source is aborted within about livenessMs, subscribers get StoreUnavailableError, new streams work once the store is back',
    async (mode) => {
      const livenessMs = 600;
      const setup = twoInstances(livenessMs);
      const source = controlledSource();
      const { id, done } = await setup.producer.start(source.factory);
      const subscription = setup.subscriber.subscribe(id);
      source.push('a');
      expect((await take(subscription, 1)).map((chunk) => chunk.token)).toEqual(['a']);
      const live = drain(setup.subscriber.subscribe(id, { after: 0 }));
      await sleep(20);
      const aborted = abortedAt(source.state.signal!);
      setup.set(mode);
      const downAt = performance.now();
      source.push('b'); // its write meets the outage
      const producerMs = (await aborted) - downAt;
      const { chunks, error } = await live;
      const subscriberMs = performance.now() - downAt;
      const result = await done;
      const doneMs = performance.now() - downAt;
      console.info(
        `store outage (${mode}): source aborted ${producerMs.toFixed(0)} ms, subscriber ended ${subscriberMs.toFixed(0)} ms, done ${doneMs.toFixed(0)} ms after it began (livenessMs ${livenessMs})`,
      );
      expect(source.state.signal?.reason).toSatisfy(isStoreUnavailableError);
      expect(producerMs).toBeGreaterThanOrEqual(livenessMs - 20);
      expect(producerMs).toBeLessThan(livenessMs + 400);
      expect(chunks).toEqual([]);
      expect(error).toSatisfy(isStoreUnavailableError);
      expect((error as StoreUnavailableError).code).toBe('store-unavailable');
      expect(subscriberMs).toBeGreaterThanOrEqual(livenessMs - 20);
      expect(subscriberMs).toBeLessThan((livenessMs * 4) / 3 + 400);
      expect(result.outcome).toBe('failed');
      expect(isStoreUnavailableError(result.error)).toBe(true);
      // The end cannot be stored either: `done` waits for it at most livenessMs more.
      expect(doneMs).toBeLessThan(2 * livenessMs + 400);
      expect(source.state.finallyRuns).toBe(1);

      setup.set('up');
      const again = controlledSource();
      const next = await setup.producer.start(again.factory);
      again.push('back');
      again.finish();
      const after = await drain(setup.subscriber.subscribe(next.id));
      expect(after.error).toBeUndefined();
      expectGapFree(after.chunks, 'back');
      expect((await next.done).outcome).toBe('completed');
      await setup.close();
    },
  );

  it('start, subscribe and cancel during an outage fail with StoreUnavailableError after livenessMs, never hang', async () => {
    const livenessMs = 300;
    const setup = twoInstances(livenessMs);
    const { id } = await setup.producer.start(controlledSource().factory);
    setup.set('hang');
    const began = performance.now();
    const [started, subscribed, cancelled] = await Promise.allSettled([
      setup.producer.start(controlledSource().factory),
      drain(setup.subscriber.subscribe(id)),
      setup.subscriber.cancel(id),
    ]);
    const elapsedMs = performance.now() - began;
    expect(started.status === 'rejected' && isStoreUnavailableError(started.reason)).toBe(true);
    expect(subscribed.status === 'fulfilled' && isStoreUnavailableError(subscribed.value.error)).toBe(true);
    expect(cancelled.status === 'rejected' && isStoreUnavailableError(cancelled.reason)).toBe(true);
    expect(elapsedMs).toBeLessThan((livenessMs * 4) / 3 + 400);
    await setup.close();
  });

  it('behind the web adapter: 503 with code store-unavailable before the first byte, the SSE error event after it', async () => {
    const livenessMs = 300;
    const setup = twoInstances(livenessMs);
    const source = controlledSource();
    const { id } = await setup.producer.start(source.factory);
    source.push('a');
    const route = (request: Request) =>
      toResponse((signal) => setup.subscriber.subscribe(id, { signal }), { request, statusWindowMs: 5_000 });
    const streaming = await route(new Request('http://x/s'));
    expect(streaming.status).toBe(200);
    const reader = streaming.body!.pipeThrough(new TextDecoderStream()).getReader();
    let body = '';
    while (!body.includes('id: 0')) body += (await reader.read()).value ?? '';
    setup.set('hang');
    const early = await route(new Request('http://x/s'));
    expect(early.status).toBe(503);
    expect((JSON.parse(await early.text()) as { error: { code: string } }).error.code).toBe('store-unavailable');
    for (let reads = 0; reads < 1_000; reads++) {
      const { value, done } = await reader.read();
      if (done) break;
      body += value;
    }
    expect(body).toMatch(/event: error\ndata: \{"code":"store-unavailable",/);
    await setup.close();
  });
});
