import { assertInteger, describeError, type SSEDonePayload } from '../sse/encoder.js';
import type { TokenChunk, Usage } from '../core/types.js';
import type { EncoderContext, Protocol, StreamEncoder } from './protocol.js';

/** The last line of a stream that ended normally: `{ type: 'done', finishReason, index, usage, model, provider }`. */
export interface NDJSONDoneLine extends SSEDonePayload {
  type: 'done';
}

/**
 * The empty line sent while the stream is idle: NDJSON readers skip empty lines (TanStack's
 * `fetchHttpStream` does; the NDJSON spec allows it), and it keeps proxies from closing the connection.
 */
export const NDJSON_HEARTBEAT = '\n';

/**
 * tokenrelay's chunks as newline-delimited JSON over a plain HTTP stream: one chunk per line as
 * JSON (the `data` of tokenrelay SSE's `token` events), then one last line
 * `{ "type": "done", finishReason, index, usage, model, provider }`, or
 * `{ "type": "error", code, message }`, or `{ "type": "shutdown", retryMs, message }`.
 */
export function ndjsonProtocol(): Protocol {
  return {
    name: 'ndjson',
    headers: { 'Content-Type': 'application/x-ndjson' },
    heartbeat: NDJSON_HEARTBEAT,
    encoder: (context) => new NDJSONEncoder(context),
    errorBody: (payload) => JSON.stringify({ error: payload }),
    shutdownFrame: ({ retryMs, message }) => line({ type: 'shutdown', retryMs, message }),
  };
}

// JSON.stringify escapes every control character, CR and LF included: a value is always one line.
function line(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

class NDJSONEncoder implements StreamEncoder {
  readonly #exposeErrors: boolean;
  #last: TokenChunk | undefined;
  #usage: Usage | undefined;

  constructor(context: EncoderContext) {
    this.#exposeErrors = context.exposeErrors;
  }

  open(): string {
    return '';
  }

  chunk(chunk: TokenChunk): string {
    assertInteger('index', chunk.index);
    this.#last = chunk;
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason === undefined) return line(chunk);
    // A text chunk with no text only carries the end: the done line says it all.
    if (chunk.token === '' && (chunk.type === 'text' || chunk.type === 'reasoning')) return this.#done(chunk);
    const { finishReason: _reason, usage: _usage, ...rest } = chunk;
    return line(rest) + this.#done(chunk);
  }

  end(): string {
    return this.#done(undefined);
  }

  error(error: unknown): string {
    return line({ type: 'error', ...describeError(error, this.#exposeErrors) });
  }

  #done(chunk: TokenChunk | undefined): string {
    const last = chunk ?? this.#last;
    const done: NDJSONDoneLine = { type: 'done', finishReason: chunk?.finishReason ?? 'stop' };
    if (last !== undefined) done.index = last.index;
    const usage = chunk?.usage ?? this.#usage;
    if (usage !== undefined) done.usage = usage;
    if (last?.model !== undefined) done.model = last.model;
    if (last?.provider !== undefined) done.provider = last.provider;
    return line(done);
  }
}

/**
 * Another protocol's events as NDJSON: each SSE frame of its encoder becomes the line of its
 * `data` (the `id`, `retry` and comment fields are dropped), for readers that want those events
 * over a plain HTTP stream: `ndjsonFrom(agUIProtocol())` is what TanStack AI's `fetchHttpStream`
 * reads (it parses each line as an AG-UI event). For protocols whose frames carry one-line JSON
 * `data` and no `event:` name (AG-UI); not for the `openai` protocol (`[DONE]` is not JSON).
 */
export function ndjsonFrom(protocol: Protocol): Protocol {
  return {
    name: protocol.name,
    headers: { 'Content-Type': 'application/x-ndjson' },
    heartbeat: NDJSON_HEARTBEAT,
    encoder: (context) => new ReframedEncoder(protocol.encoder(context)),
    errorBody: (payload) => protocol.errorBody(payload),
    shutdownFrame: (notice) => linesOfFrames(protocol.shutdownFrame(notice)),
  };
}

class ReframedEncoder implements StreamEncoder {
  readonly #inner: StreamEncoder;

  constructor(inner: StreamEncoder) {
    this.#inner = inner;
  }

  open(): string {
    return linesOfFrames(this.#inner.open());
  }

  chunk(chunk: TokenChunk): string {
    return linesOfFrames(this.#inner.chunk(chunk));
  }

  end(): string {
    return linesOfFrames(this.#inner.end());
  }

  error(error: unknown): string {
    return linesOfFrames(this.#inner.error(error));
  }
}

/** The `data` of each SSE frame, one line each; frames with no data (comments, `retry`) give none. */
function linesOfFrames(frames: string): string {
  let lines = '';
  for (const frame of frames.split('\n\n')) {
    const data = frame
      .split('\n')
      .filter((field) => field.startsWith('data:'))
      .map((field) => field.slice(field.startsWith('data: ') ? 6 : 5));
    // A line break inside JSON can only be whitespace between tokens: a space keeps the value.
    if (data.length > 0) lines += `${data.join(' ')}\n`;
  }
  return lines;
}
