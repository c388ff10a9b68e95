import {
  assertInteger,
  describeError,
  encodeData,
  encodeSSEFrame,
  HEARTBEAT_FRAME,
  type SSEDonePayload,
  type SSEErrorPayload,
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
 * The default options (no renamed events, no `retryMs`, no `serialize`) share one protocol object.
 */
export function tokenrelayProtocol(config: TokenRelaySSEConfig): Protocol {
  if (isDefault(config)) return (defaultProtocol ??= new TokenRelayProtocol(config));
  return new TokenRelayProtocol(config);
}

const HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'Content-Type': 'text/event-stream; charset=utf-8' });

// Made once, on first use: what every plan with the default options shares.
let defaultProtocol: TokenRelayProtocol | undefined;

function isDefault({ tokenEvent, doneEvent, errorEvent, retryFrame, serialize }: TokenRelaySSEConfig): boolean {
  return (
    tokenEvent === 'event: token\n' &&
    doneEvent === 'event: done\n' &&
    errorEvent === 'error' &&
    retryFrame === undefined &&
    serialize === undefined
  );
}

/** The protocol for one config: its methods on the prototype, so a plan holds no closures for it. */
class TokenRelayProtocol implements Protocol {
  readonly name = 'tokenrelay';
  readonly headers = HEADERS;
  readonly heartbeat = HEARTBEAT_FRAME;
  readonly #config: TokenRelaySSEConfig;

  constructor(config: TokenRelaySSEConfig) {
    this.#config = config;
  }

  encoder(context: EncoderContext): StreamEncoder {
    return new TokenRelayEncoder(this.#config, context);
  }

  errorBody(payload: SSEErrorPayload): string {
    return JSON.stringify({ error: payload });
  }

  shutdownFrame({ retryMs, message }: { retryMs: number; message: string }): string {
    return encodeSSEFrame({ retry: retryMs, event: 'shutdown', data: JSON.stringify({ retryMs, message }) });
  }
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
