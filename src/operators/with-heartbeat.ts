import type { Operator } from '../core/types.js';
import { assertNumber, assertOptions, describeValue } from '../core/validate.js';
import { PASS_THROUGH, StagedRead, type ReadStage } from '../core/staged-read.js';
import { HEARTBEAT_FRAME } from '../sse/encoder.js';

/**
 * Options of {@link withHeartbeat}.
 *
 * @example
 * ```ts
 * const options: WithHeartbeatOptions = { idleMs: 10_000, frame: ': keep-alive\n\n' };
 * ```
 */
export interface WithHeartbeatOptions {
  /**
   * How long the consumer may wait for the next frame before the keep-alive goes out instead
   * (counted from when it asks, so time it spends between reads never counts). `0`, `Infinity`
   * or `false` turn it off.
   * @defaultValue `15_000`
   */
  idleMs?: number | false | undefined;
  /**
   * The keep-alive itself: the protocol's heartbeat frame (`protocol.heartbeat`), e.g. an SSE
   * comment or an NDJSON blank line. `''` sends none.
   * @defaultValue `': ping\n\n'` (an SSE comment)
   */
  frame?: string | undefined;
}

/**
 * Keeps an idle connection open: when the consumer has waited `idleMs` for the next frame, it
 * receives `frame` instead, and the same pending source read goes on (a heartbeat never starts
 * a second read, so it never reorders or loses a frame). Goes after the encoder, on frames. A
 * consumer `return()` ends the stream at once, even while a read is pending, clears the timer
 * and returns the source without awaiting it. A steady stream costs one timer per interval,
 * not one per frame. `toSSE({ heartbeatMs })` runs the same heartbeat in its own layer.
 *
 * @example
 * ```ts
 * const frames = pipe(source, toSSE({ heartbeatMs: 0 }), withHeartbeat({ idleMs: 10_000 }));
 * ```
 */
export function withHeartbeat(options: WithHeartbeatOptions = {}): Operator<string, string> {
  const { idleMs, frame } = checkHeartbeatOptions(options);
  return heartbeatWith(idleMs, frame);
}

/** @internal {@link WithHeartbeatOptions} checked, with `idleMs` as a timer delay (`0` for none). */
export interface HeartbeatConfig {
  idleMs: number;
  frame: string;
}

/** @internal Checks `withHeartbeat` options (unknown keys included) and resolves the defaults. */
export function checkHeartbeatOptions(options: unknown): HeartbeatConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions('options', options, ['idleMs', 'frame']);
  const { idleMs = 15_000, frame = HEARTBEAT_FRAME } = options as WithHeartbeatOptions;
  if (idleMs !== false) assertNumber('idleMs', idleMs, { allowInfinity: true });
  if (typeof frame !== 'string') throw new TypeError(`Expected \`frame\` to be a string, got ${describeValue(frame)}`);
  return { idleMs: heartbeatDelay(idleMs), frame };
}

/** @internal The heartbeat for checked options: what is built per stream, with no checks. */
export function heartbeatWith(idleMs: number, frame: string): Operator<string, string> {
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    const stage = PASS_THROUGH as ReadStage<string, string>;
    return { [Symbol.asyncIterator]: () => new StagedRead(source, stage, idleMs, frame || undefined) };
  };
}

// Beyond the largest setTimeout delay a heartbeat would never be due in practice.
const MAX_DELAY = 2_147_483_647;

/** @internal An idle interval as a timer delay: `0` for none. */
export function heartbeatDelay(idleMs: number | false): number {
  return idleMs === false || idleMs > MAX_DELAY ? 0 : idleMs;
}
