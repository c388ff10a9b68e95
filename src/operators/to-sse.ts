import type { Protocol, StreamEncoder } from '../protocols/protocol.js';
import { tokenrelayProtocol } from '../protocols/tokenrelay.js';
import { assertFieldValue, encodeSSEFrame } from '../sse/encoder.js';
import type { Operator, TokenChunk } from '../core/types.js';
import { assertFunction, assertNumber, assertOptionalNumber, assertOptions, describeValue } from '../core/validate.js';
import { StagedRead, type ReadStage, type StageHost } from '../core/staged-read.js';
import { heartbeatDelay } from './with-heartbeat.js';

/** Event names of the frames {@link toSSE} writes. Each must be non-empty and free of CR, LF, NUL and lone surrogates. */
export interface SSEEventNames {
  /** @defaultValue `'token'` */
  token?: string | undefined;
  /** @defaultValue `'done'` */
  done?: string | undefined;
  /** @defaultValue `'error'` */
  error?: string | undefined;
}

/** Options of {@link toSSE}. */
export interface ToSSEOptions {
  /**
   * Renames the `token`, `done` and `error` events.
   * @defaultValue `{ token: 'token', done: 'done', error: 'error' }`
   */
  events?: SSEEventNames | undefined;
  /**
   * Sends a `: ping` comment when no frame went out for this long while waiting on the source,
   * so proxies do not close an idle connection. `0`, `Infinity` or `false` turn it off. The same
   * as `withHeartbeat` after the encoder, in one layer.
   * @defaultValue `15_000`
   */
  heartbeatMs?: number | false | undefined;
  /**
   * The reconnection delay for the client, in ms, sent at once as a `retry:` frame of its own.
   * @defaultValue none (the client's default)
   */
  retryMs?: number | undefined;
  /**
   * Builds the `data` of each `token` frame; its line breaks are split into `data:` lines.
   * @defaultValue `JSON.stringify`
   */
  serialize?: ((chunk: TokenChunk) => string) | undefined;
  /**
   * Puts the raw message of provider and unknown errors in the `error` frame. Stack traces never.
   * @defaultValue `false`
   */
  exposeErrors?: boolean | undefined;
}

/**
 * Encodes a chunk stream as Server-Sent Events frames: `id: <index>`, `event: token` and the
 * chunk as JSON for each chunk; the chunk with a `finishReason` (after a `token` frame of its
 * own if its token is not empty) becomes a `done` frame and ends the output, and the source is
 * returned. A source error becomes one final `error` frame `{ code, message }`, then the output
 * ends normally. A consumer `return()` ends the output at once, even while a read is pending,
 * clears the heartbeat timer and returns the source without awaiting it. The heartbeat is
 * {@link withHeartbeat}'s, run in the same layer as the encoding (`heartbeatMs: 0` for none).
 *
 * @example
 * ```ts
 * for await (const frame of pipe(tokens(['Hel', 'lo']), toSSE({ retryMs: 3000 }))) res.write(frame);
 * ```
 */
export function toSSE(options: ToSSEOptions = {}): Operator<TokenChunk, string> {
  return sseWith(checkSSEOptions(options, true));
}

/** @internal The keys of {@link ToSSEOptions}, which the adapters take among their own. */
export const SSE_OPTION_KEYS = ['events', 'heartbeatMs', 'retryMs', 'serialize', 'exposeErrors'] as const;

/** @internal `toSSE` options checked deeply, with the frames' fixed parts made once. */
export type SSEConfig = Config;

/**
 * @internal Checks `toSSE` options once. `ownKeys`: reject keys that are not `toSSE`'s (an
 * adapter checks its whole options object itself instead).
 */
export function checkSSEOptions(options: ToSSEOptions, ownKeys: boolean): SSEConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  if (ownKeys) assertOptions('options', options, SSE_OPTION_KEYS);
  const { events = {}, heartbeatMs = 15_000, retryMs, serialize, exposeErrors = false } = options;
  assertOptions('events', events, ['token', 'done', 'error']);
  if (heartbeatMs !== false) assertNumber('heartbeatMs', heartbeatMs, { allowInfinity: true });
  assertOptionalNumber('retryMs', retryMs, { integer: true });
  if (serialize !== undefined) assertFunction('serialize', serialize);
  if (typeof exposeErrors !== 'boolean') {
    throw new TypeError(`Expected \`exposeErrors\` to be a boolean, got ${describeValue(exposeErrors)}`);
  }
  const protocol = tokenrelayProtocol({
    tokenEvent: `event: ${assertFieldValue('events.token', events.token ?? 'token')}\n`,
    doneEvent: `event: ${assertFieldValue('events.done', events.done ?? 'done')}\n`,
    errorEvent: assertFieldValue('events.error', events.error ?? 'error'),
    retryFrame: retryMs === undefined ? undefined : encodeSSEFrame({ retry: retryMs }),
    serialize,
  });
  return { protocol, heartbeatMs: heartbeatDelay(heartbeatMs), exposeErrors };
}

/** @internal The encoder for checked options: what the adapters build per request, with no checks. */
export function sseWith(config: SSEConfig): Operator<TokenChunk, string> {
  return (source) => {
    if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`Expected \`source\` to be an async iterable, got ${describeValue(source)}`);
    }
    return { [Symbol.asyncIterator]: () => encodeFrames(source, config, config.signal) };
  };
}

/** One stream's frames: the encoding stage, with the heartbeat, in one layer. */
function encodeFrames(
  source: AsyncIterable<TokenChunk>,
  config: SSEConfig,
  signal: AbortSignal | undefined,
): StagedRead<TokenChunk, string> {
  const { protocol, exposeErrors, heartbeatMs } = config;
  const stage = new EncodeStage(protocol, exposeErrors, signal);
  // A protocol with no heartbeat frame (NDJSON) has no heartbeat timer either.
  return new StagedRead(source, stage, heartbeatMs, protocol.heartbeat || undefined);
}

/** How a stream's chunks become frames: the protocol, and how often an idle stream sends its heartbeat. */
interface Config {
  protocol: Protocol;
  /** `0` for no heartbeat. */
  heartbeatMs: number;
  exposeErrors: boolean;
  /** The stream's signal, for the encoder (an adapter's response stream sets it per request). */
  signal?: AbortSignal | undefined;
}

/**
 * @internal The encoding of one stream as a stage ({@link ReadStage}): any protocol's encoder
 * over the chunks. The chunk with a `finishReason`, the source's end and its error each end the
 * stream (an error as the protocol's error frame); a chunk that cannot be encoded fails like the
 * source.
 */
export class EncodeStage implements ReadStage<TokenChunk, string> {
  readonly #encoder: StreamEncoder;

  constructor(protocol: Protocol, exposeErrors: boolean, signal: AbortSignal | undefined) {
    this.#encoder = protocol.encoder({ exposeErrors, signal });
  }

  open(): string | undefined {
    return this.#encoder.open() || undefined;
  }

  chunk(result: IteratorYieldResult<TokenChunk>, host: StageHost): IteratorResult<string> {
    const chunk = result.value;
    let frames: string;
    try {
      frames = this.#encoder.chunk(chunk);
    } catch (error) {
      host.end();
      return this.error(error);
    }
    if (chunk.finishReason !== undefined) host.end();
    return { done: false, value: frames };
  }

  done(): IteratorResult<string> {
    try {
      return { done: false, value: this.#encoder.end() };
    } catch (error) {
      return this.error(error);
    }
  }

  error(error: unknown): IteratorResult<string> {
    return { done: false, value: this.#encoder.error(error) };
  }
}
