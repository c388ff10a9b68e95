import type { WireFrame, WireResponse } from './script.js';

/** Options of {@link wireToStream} and {@link wireToResponse}. */
export interface WireStreamOptions {
  /** Stops the stream (the request was aborted): pauses end and the body errors with the reason. */
  signal?: AbortSignal | undefined;
  /**
   * Cut every frame's bytes into random pieces (1 to 16 bytes), as a network does, including
   * in the middle of a multibyte character. The same seed gives the same cuts.
   * @defaultValue frames are sent whole
   */
  split?:
    | {
        /** Seeds the random cuts: the same seed gives the same pieces. */
        seed: number;
      }
    | undefined;
  /** Called once when the body stops: sent to the end, cancelled by the reader, or aborted. */
  onEnd?: ((how: 'completed' | 'reset' | 'cancelled' | 'aborted') => void) | undefined;
}

const encoder = new TextEncoder();

/** The body of a wire response as a byte stream that honours the frames' pauses and the end. */
export function wireToStream(wire: WireResponse, options: WireStreamOptions = {}): ReadableStream<Uint8Array> {
  const frames: readonly WireFrame[] = wire.frames ?? [];
  const { signal, onEnd } = options;
  const random = options.split === undefined ? undefined : createRandom(options.split.seed);
  let next = 0;
  let ended = false;
  let stop: (() => void) | undefined;

  const end = (how: 'completed' | 'reset' | 'cancelled' | 'aborted') => {
    if (ended) return;
    ended = true;
    stop?.();
    onEnd?.(how);
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (ended) return;
        if (signal?.aborted) {
          end('aborted');
          controller.error(signal.reason);
          return;
        }
        const frame = frames[next];
        if (frame === undefined) {
          await finish(controller);
          return;
        }
        next += 1;
        if (frame.delayMs > 0 && !(await pause(frame.delayMs))) {
          if (signal?.aborted && !ended) {
            end('aborted');
            controller.error(signal.reason);
          }
          return;
        }
        for (const piece of cut(frame.bytes ?? encoder.encode(frame.text), random)) controller.enqueue(piece);
      },
      cancel() {
        end('cancelled');
      },
    },
    { highWaterMark: 0 },
  );

  async function finish(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const how = wire.end ?? 'close';
    if (how === 'close') {
      end('completed');
      controller.close();
    } else if (how === 'reset') {
      end('reset');
      controller.error(new TypeError('terminated: other side closed'));
    } else if (await pause(Number.POSITIVE_INFINITY)) {
      controller.close();
    } else if (signal?.aborted && !ended) {
      end('aborted');
      controller.error(signal.reason);
    }
  }

  /** Resolves true after `ms`, or false as soon as the stream is aborted or cancelled. */
  function pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => settle(true), ms) : undefined;
      const onAbort = () => settle(false);
      function settle(elapsed: boolean) {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stop = undefined;
        resolve(elapsed && !ended);
      }
      stop = onAbort;
      if (signal?.aborted) settle(false);
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * A `Response` that a provider SDK can consume through its `fetch` option, built from a wire
 * response: the same status, headers and bytes the real API sends.
 *
 * @example
 * ```ts
 * const openai = new OpenAI({
 *   apiKey: 'test',
 *   fetch: async (_url, init) => wireToResponse(openaiChatWire({ tokens: ['Hi'] }, request), { signal: init?.signal }),
 * });
 * ```
 */
export function wireToResponse(wire: WireResponse, options: WireStreamOptions = {}): Response {
  const init = { status: wire.status, headers: wire.headers };
  if (wire.body !== undefined) {
    options.onEnd?.('completed');
    return new Response(wire.body, init);
  }
  return new Response(wireToStream(wire, options), init);
}

/** A small seeded pseudo-random generator (mulberry32): the same seed gives the same numbers. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cut(bytes: Uint8Array, random: (() => number) | undefined): Uint8Array[] {
  if (random === undefined) return [bytes];
  const pieces: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; ) {
    const size = 1 + Math.floor(random() * 16);
    pieces.push(bytes.subarray(start, start + size));
    start += size;
  }
  return pieces;
}
