import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isStreamAbortedError, type TokenChunk, type TokenSourceFactory } from 'tokenrelay';
import { createRelay } from 'tokenrelay/relay';
import { drain, take } from './helpers.js';

const graceMs = 1_000;

/** A provider that pauses `delays[i]` ms (fake time) before token `i`. */
function pacedSource(tokens: string[], delays: number[]): TokenSourceFactory {
  return async function* () {
    for (const [index, token] of tokens.entries()) {
      const delay = delays[index % Math.max(1, delays.length)] ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      yield { token, index, timestamp: 0, type: 'text' };
    }
    yield { token: '', index: tokens.length, timestamp: 0, type: 'text', finishReason: 'stop' };
  };
}

/** Advances fake time in small steps until `promise` settles. */
async function until<T>(promise: Promise<T>): Promise<T> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let step = 0; !settled; step++) {
    if (step > 100_000) throw new Error('did not settle');
    await vi.advanceTimersByTimeAsync(5);
  }
  return promise;
}

describe('resume through reconnects (property)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reconstructs exactly the produced text: no chunk lost, none repeated, indices gap-free', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 5 }), { maxLength: 40, size: 'max' }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 10, size: 'max' }),
        fc.array(fc.record({ read: fc.integer({ min: 0, max: 6 }), awayMs: fc.integer({ min: 0, max: 1_500 }) }), {
          maxLength: 10,
          size: 'max',
        }),
        async (tokens, delays, visits) => {
          const relay = createRelay({ graceMs });
          const { id, done } = await relay.start(pacedSource(tokens, delays));
          const received: TokenChunk[] = [];
          let last: number | undefined;
          for (const visit of visits) {
            const chunks = await until(take(relay.subscribe(id, { after: last }), visit.read).catch(() => []));
            received.push(...chunks);
            last = chunks.at(-1)?.index ?? last;
            await vi.advanceTimersByTimeAsync(visit.awayMs);
          }
          const rest = await until(drain(relay.subscribe(id, { after: last })));
          received.push(...rest.chunks);
          const result = await until(done);

          expect(received.map((chunk) => chunk.index)).toEqual(received.map((_, index) => index));
          expect(received.length).toBe(result.chunks);
          if (result.outcome === 'completed') {
            expect(rest.error).toBeUndefined();
            expect(received.map((chunk) => chunk.token).join('')).toBe(tokens.join(''));
            expect(received.at(-1)?.finishReason).toBe('stop');
          } else {
            // Gone longer than graceMs while it still produced: a clean prefix, then a typed end.
            expect(result.outcome).toBe('abandoned');
            expect(isStreamAbortedError(rest.error)).toBe(true);
            expect(tokens.join('').startsWith(received.map((chunk) => chunk.token).join(''))).toBe(true);
            expect(visits.some((visit) => visit.awayMs >= graceMs)).toBe(true);
          }
          await relay.close();
          expect(vi.getTimerCount()).toBe(0);
        },
      ),
      { seed: 20_240_917, numRuns: 120 },
    );
  });
});
