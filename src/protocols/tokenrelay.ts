import {
  assertInteger,
  describeError,
  encodeData,
  encodeSSEFrame,
  HEARTBEAT_FRAME,
  type SSEDonePayload,
} from '../sse/encoder.js';
import type { TokenChunk, Usage } from '../core/types.js';
import { describeValue } from '../core/validate.js';
import type { EncoderContext, Protocol, StreamEncoder } from './protocol.js';

/** The checked options of tokenrelay's own SSE: event lines made once, the `retry` frame, the serializer. */
export interface TokenRelaySSEConfig {
  /** `event: <name>\n` of token frames. */
  tokenEvent: string;
  /** `event: <name>\n` of the done frame. */
  doneEvent: string;
  /** The error event's name. */
  errorEvent: string;
  /** The `retry:` frame sent first, if any. */
  retryFrame: string | undefined;
  serialize: ((chunk: TokenChunk) => string) | undefined;
}

/**
 * tokenrelay's own SSE: `id: <index>` and `event: token` with the chunk as JSON for each chunk;
 * `done` with `{ finishReason, index, usage, model, provider }`; `error` with `{ code, message }`.
 */
export function tokenrelayProtocol(config: TokenRelaySSEConfig): Protocol {
  return {
    name: 'tokenrelay',
    headers: { 'Content-Type': 'text/event-stream; charset=utf-8' },
    heartbeat: HEARTBEAT_FRAME,
    encoder: (context) => new TokenRelayEncoder(config, context),
    errorBody: (payload) => JSON.stringify({ error: payload }),
    shutdownFrame: ({ retryMs, message }) =>
      encodeSSEFrame({ retry: retryMs, event: 'shutdown', data: JSON.stringify({ retryMs, message }) }),
  };
}

class TokenRelayEncoder implements StreamEncoder {
  readonly #config: TokenRelaySSEConfig;
  readonly #exposeErrors: boolean;
  #last: TokenChunk | undefined;
  #usage: Usage | undefined;

  constructor(config: TokenRelaySSEConfig, context: EncoderContext) {
    this.#config = config;
    this.#exposeErrors = context.exposeErrors;
  }

  open(): string {
    return this.#config.retryFrame ?? '';
  }

  chunk(chunk: TokenChunk): string {
    this.#last = chunk;
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason === undefined) return this.#tokenFrame(chunk);
    if (chunk.token === '') return this.#doneFrame(chunk);
    const { finishReason: _reason, usage: _usage, ...text } = chunk;
    return this.#tokenFrame(text) + this.#doneFrame(chunk);
  }

  end(): string {
    return this.#doneFrame(undefined);
  }

  error(error: unknown): string {
    return encodeSSEFrame({ event: this.#config.errorEvent, data: JSON.stringify(describeError(error, this.#exposeErrors)) });
  }

  #tokenFrame(chunk: TokenChunk): string {
    const { serialize, tokenEvent } = this.#config;
    // JSON.stringify escapes every control character, so its output needs no line splitting.
    const data = serialize === undefined ? `data: ${JSON.stringify(chunk)}\n` : encodeData(serialized(serialize(chunk)));
    return `id: ${assertInteger('index', chunk.index)}\n${tokenEvent}${data}\n`;
  }

  #doneFrame(chunk: TokenChunk | undefined): string {
    const last = chunk ?? this.#last;
    const done: SSEDonePayload = { finishReason: chunk?.finishReason ?? 'stop' };
    if (last !== undefined) done.index = assertInteger('index', last.index);
    const usage = chunk?.usage ?? this.#usage;
    if (usage !== undefined) done.usage = usage;
    if (last?.model !== undefined) done.model = last.model;
    if (last?.provider !== undefined) done.provider = last.provider;
    const id = chunk === undefined ? '' : `id: ${chunk.index}\n`;
    return `${id}${this.#config.doneEvent}data: ${JSON.stringify(done)}\n\n`;
  }
}

function serialized(data: unknown): string {
  if (typeof data !== 'string') {
    throw new TypeError(`Expected \`serialize\` to return a string, got ${describeValue(data)}`);
  }
  return data;
}
