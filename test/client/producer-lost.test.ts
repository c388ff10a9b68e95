// Issue 12, item 7: two instances share a store, the producer's instance A is killed, the reading
// client comes back through the load balancer to instance B, which answers `producer-lost`. The
// client must throw `ProducerLostError` within 1.2 × livenessMs of the kill and ask no more.
//
// Both instances run in this process behind a `fetch` double (the load balancer), with fake
// timers. A "kill -9" of A: its connections reset, it takes no new ones, and nothing it still
// does reaches the shared store (its producer's heartbeats stop, its writes never land).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { createRelay, isProducerLostError, memoryStore, resumeCursor } from 'tokenrelay/relay';
import type { RelayStore } from 'tokenrelay/store';
import { streamTokens, type FetchLike, type RetryInfo } from 'tokenrelay/client';
import { toResponse } from 'tokenrelay/web';

const LIVENESS_MS = 1_200;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A model that writes one word every 100 ms until aborted. */
async function* model(signal: AbortSignal): AsyncGenerator<TokenChunk, void, undefined> {
  for (let index = 0; index < 1_000; index++) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 100);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
    yield { token: `w${index} `, index, timestamp: performance.now(), type: 'text' };
  }
}

/** The shared store as one instance sees it: once the instance is dead, none of its calls arrive. */
function storeOf(shared: RelayStore, isDead: () => boolean): RelayStore {
  const never = new Promise<never>(() => {});
  return new Proxy(shared, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (!isDead()) return (value as (...args: unknown[]) => unknown).apply(target, args);
        return key === 'watch' ? () => undefined : never;
      };
    },
  });
}

/** A response body that fails like a reset connection once `killed` settles. */
function resetOnKill(response: Response, killed: Promise<void>): Response {
  if (response.body === null) return response;
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const result = await Promise.race([reader.read(), killed.then(() => undefined)]);
      if (result === undefined) controller.error(new TypeError('terminated'));
      else if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

interface Answer {
  instance: 'A' | 'B';
  at: number;
  method: string;
  path: string;
  lastEventId: string | null;
  status: number;
  code?: string;
}

function startCluster() {
  const shared = memoryStore();
  let killA!: () => void;
  const killed = new Promise<void>((resolve) => (killA = resolve));
  let aDead = false;
  const relays = {
    A: createRelay({ store: storeOf(shared, () => aDead), livenessMs: LIVENESS_MS, graceMs: 30_000 }),
    B: createRelay({ store: shared, livenessMs: LIVENESS_MS, graceMs: 30_000 }),
  };
  const answers: Answer[] = [];

  /** The load balancer: A while it lives, then B. Each instance serves the chat protocol of docs/client.md. */
  const fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    const instance = aDead ? 'B' : 'A';
    const relay = relays[instance];
    const path = new URL(request.url).pathname;
    const answer: Answer = { instance, at: performance.now(), method: request.method, path, lastEventId: request.headers.get('last-event-id'), status: 0 };
    answers.push(answer);
    let response: Response;
    if (request.method === 'POST' && path === '/chat') {
      const { id } = await relay.start((signal) => model(signal));
      response = await toResponse((signal) => relay.subscribe(id, { signal }), { request, headers: { 'X-Stream-Id': id } });
    } else {
      const id = decodeURIComponent(path.slice('/chat/'.length));
      response = await toResponse((signal) => relay.subscribe(id, { after: resumeCursor(request), signal }), { request });
    }
    answer.status = response.status;
    if (response.headers.get('content-type')?.includes('json') === true) {
      answer.code = ((await response.clone().json()) as { error: { code: string } }).error.code;
    }
    return instance === 'A' ? resetOnKill(response, killed) : response;
  };

  return {
    fetch,
    answers,
    kill(): number {
      aDead = true;
      killA();
      return performance.now();
    },
    close: () => relays.B.close(), // A is dead: there is nothing left of it to close
  };
}

/** Reads until the stream fails; `failedAt` is the (fake) time it did. */
function read(stream: AsyncIterable<TokenChunk>) {
  const state = { chunks: [] as TokenChunk[], error: undefined as unknown, failedAt: undefined as number | undefined };
  const done = (async () => {
    try {
      for await (const chunk of stream) state.chunks.push(chunk);
    } catch (error) {
      state.error = error;
      state.failedAt = performance.now();
    }
  })();
  return { state, done };
}

describe('producer killed: the reading client throws ProducerLostError at once', () => {
  it('B answers 500 producer-lost before the stream (the reconnection came after the liveness ran out)', async () => {
    const cluster = startCluster();
    const retries: RetryInfo[] = [];
    // The default back-off (first delay up to 1 s), with a fixed draw: 900 ms.
    const stream = streamTokens('http://127.0.0.1/chat', {
      fetch: cluster.fetch,
      body: { prompt: 'hi' },
      resume: 'http://127.0.0.1/chat/{id}',
      reconnect: { random: () => 0.9, onRetry: (info) => retries.push(info) },
    });
    const { state, done } = read(stream);
    // The producer beats every livenessMs / 3 (at 0, 400, 800, …); A dies 10 ms before the beat at
    // 1_200, so its producer counts as alive until 800 + 1_200 = 2_000, 810 ms after the kill.
    await vi.advanceTimersByTimeAsync(1_190);
    const received = state.chunks.length;
    
    expect(received).toBeGreaterThanOrEqual(10);
    const killedAt = cluster.kill();

    await vi.advanceTimersByTimeAsync(1.2 * LIVENESS_MS);
    expect(isProducerLostError(state.error)).toBe(true);
    await done;
    const elapsed = (state.failedAt as number) - killedAt;
    console.info(`producer killed → ProducerLostError after ${elapsed} ms (HTTP path; livenessMs ${LIVENESS_MS})`);
    expect(elapsed).toBeLessThanOrEqual(1.2 * LIVENESS_MS);
    expect(state.chunks).toHaveLength(received); // nothing lost before the kill, nothing made up after it

    // One reconnection, to B, answered 500 producer-lost; then no request at all.
    expect(retries).toMatchObject([{ attempt: 1, delayMs: 900, reason: 'network', lastEventId: String(received - 1) }]);
    expect(cluster.answers.map(({ instance, method, status, code }) => [instance, method, status, code])).toEqual([
      ['A', 'POST', 200, undefined],
      ['B', 'GET', 500, 'producer-lost'],
    ]);
    expect(cluster.answers[1]).toMatchObject({ path: `/chat/${stream.streamId}`, lastEventId: String(received - 1) });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(cluster.answers).toHaveLength(2);
    await cluster.close();
  });

  it('B opens the stream, then sends an error event producer-lost (the reconnection came at once)', async () => {
    const cluster = startCluster();
    const retries: RetryInfo[] = [];
    const stream = streamTokens('http://127.0.0.1/chat', {
      fetch: cluster.fetch,
      body: { prompt: 'hi' },
      resume: 'http://127.0.0.1/chat/{id}',
      reconnect: { random: () => 0, onRetry: (info) => retries.push(info) },
    });
    const { state, done } = read(stream);
    await vi.advanceTimersByTimeAsync(1_190);
    const received = state.chunks.length;
    const killedAt = cluster.kill();

    await vi.advanceTimersByTimeAsync(1.2 * LIVENESS_MS);
    expect(isProducerLostError(state.error)).toBe(true);
    await done;
    const elapsed = (state.failedAt as number) - killedAt;
    console.info(`producer killed → ProducerLostError after ${elapsed} ms (SSE path; livenessMs ${LIVENESS_MS})`);
    expect(elapsed).toBeLessThanOrEqual(1.2 * LIVENESS_MS);
    expect(state.chunks).toHaveLength(received);
    expect(retries).toMatchObject([{ attempt: 1, delayMs: 0, reason: 'network' }]);
    expect(cluster.answers.map(({ instance, method, status }) => [instance, method, status])).toEqual([
      ['A', 'POST', 200],
      ['B', 'GET', 200],
    ]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(cluster.answers).toHaveLength(2);
    await cluster.close();
  });
});
