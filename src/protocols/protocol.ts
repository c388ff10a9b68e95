import type { SSEErrorPayload } from '../sse/encoder.js';
import type { TokenChunk } from '../core/types.js';

/**
 * The wire protocol a response speaks, for the frontend that reads it:
 * - `'tokenrelay'`: tokenrelay's own SSE (`token`, `done`, `error` events; `tokenrelay/client`);
 * - `'ai-sdk'`: the Vercel AI SDK UI message stream (`useChat` of `@ai-sdk/react`);
 * - `'ag-ui'`: AG-UI events over SSE (`@ag-ui/client`, CopilotKit, TanStack AI);
 * - `'openai'`: OpenAI Chat Completions chunks (the `openai` SDK and every OpenAI-compatible client);
 * - `'ndjson'`: tokenrelay's chunks as newline-delimited JSON over a plain HTTP stream;
 * - `'ag-ui-ndjson'`: AG-UI events as newline-delimited JSON (TanStack AI's `fetchHttpStream`).
 */
export type ProtocolName = 'tokenrelay' | 'ai-sdk' | 'ag-ui' | 'openai' | 'ndjson' | 'ag-ui-ndjson';

/** What an encoder may know about the response it encodes. */
export interface EncoderContext {
  /** Put the raw message of provider and unknown errors in the error frame; stack traces never. */
  exposeErrors: boolean;
  /**
   * The stream's signal, the one its source factory receives: per-request settings registered
   * for it (`readChatCompletionRequest(body, { signal })`) reach the encoder through it.
   * @defaultValue none (`toSSE` used on its own)
   */
  signal?: AbortSignal | undefined;
}

/**
 * One stream's encoder: chunks in, frames (text) out. Pure: no I/O, no timers; the adapter
 * writes the frames, the frame iterator sends heartbeats. Made per stream, so it may keep state
 * (an open text block, the tool calls seen, the last usage).
 */
export interface StreamEncoder {
  /** What goes out before the first chunk's frames (a `start` part, a `retry` field), or `''`. Called once. */
  open(): string;
  /** The frames of one chunk. The chunk with a `finishReason` is the last one: its frames end the stream. */
  chunk(chunk: TokenChunk): string;
  /** The source ended with no `finishReason` chunk: the frames of a normal end. */
  end(): string;
  /** The source failed (or was aborted, or timed out): the frames of that end. */
  error(error: unknown): string;
}

/** A wire protocol: its headers, its encoder, and how it says "heartbeat", "error" and "shutdown". */
export interface Protocol {
  readonly name: ProtocolName;
  /** The content headers of a streamed answer (the transport headers are added by the adapter). */
  readonly headers: Readonly<Record<string, string>>;
  /** Sent when the stream has been idle for `heartbeatMs`; `''` when the protocol has no such frame. */
  readonly heartbeat: string;
  /** A new encoder, for one stream. */
  encoder(context: EncoderContext): StreamEncoder;
  /** The body of an error answered with an HTTP status, before any stream started. */
  errorBody(payload: SSEErrorPayload): string;
  /** The last frame of a stream ended by a graceful shutdown, or `''` to just end it. */
  shutdownFrame(notice: { retryMs: number; message: string }): string;
}

/** The transport headers every streamed answer gets: never cached, never buffered, never transformed. */
export function streamHeaders(protocol: Protocol, httpVersion?: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    ...protocol.headers,
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  };
  if (httpVersion !== undefined && /^1(\.|$)/.test(httpVersion)) headers['Connection'] = 'keep-alive';
  return headers;
}
