import { describeError, encodeSSEFrame, HEARTBEAT_FRAME } from '../sse/encoder.js';
import { isStreamAbortedError } from '../core/errors.js';
import type { FinishReason, TokenChunk, Usage } from '../core/types.js';
import { messageIdOf, ToolInputs } from './ai-sdk-parts.js';
import type { EncoderContext, Protocol, StreamEncoder } from './protocol.js';

/** The options the AI SDK UI message stream reads. */
export interface AISDKProtocolOptions {
  /** Sent first as an SSE `retry` field; the AI SDK ignores it, other SSE readers may not. */
  retryMs?: number | undefined;
}

/**
 * What `finish` carries as `messageMetadata` (merged into `message.metadata` by `useChat`):
 * the usage, the time to first token, and the model, where known.
 */
export interface AISDKMessageMetadata {
  /** The last usage the stream reported. */
  usage?: Usage | undefined;
  /**
   * From the start of this response to the first token, in ms (this process's monotonic clock).
   * Absent when the first token is older than the response: a replay.
   */
  ttftMs?: number | undefined;
  model?: string | undefined;
  provider?: string | undefined;
}

const DONE = 'data: [DONE]\n\n';

/**
 * The Vercel AI SDK UI message stream (v1): what `useChat` of `@ai-sdk/react` and the
 * `DefaultChatTransport` of `ai` read. SSE frames of one JSON part each, ended by `data: [DONE]`.
 * docs/protocols.md has the mapping table.
 */
export function aiSdkProtocol(options: AISDKProtocolOptions = {}): Protocol {
  const retryFrame = options.retryMs === undefined ? '' : encodeSSEFrame({ retry: options.retryMs });
  return {
    name: 'ai-sdk',
    headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'x-vercel-ai-ui-message-stream': 'v1' },
    heartbeat: HEARTBEAT_FRAME,
    encoder: (context) => new AISDKEncoder(context, retryFrame),
    // DefaultChatTransport throws an error whose message is this body: the same shape as an `error` part.
    errorBody: (payload) => JSON.stringify({ type: 'error', errorText: payload.message, ...withoutMessage(payload) }),
    // An error (not an abort): useChat ends in status 'error', and the app can call resumeStream().
    shutdownFrame: ({ message }) => part({ type: 'error', errorText: message }) + DONE,
  };
}

function withoutMessage<T extends { message: string }>(payload: T): Omit<T, 'message'> {
  const { message: _message, ...rest } = payload;
  return rest;
}

function part(value: object): string {
  // JSON.stringify escapes every line break and lone surrogate: one data line, always.
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** Why chunks were dropped, for the one warning a stream gives. */
type DropReason = 'source without url' | 'tool-call chunk without toolCall' | 'tool-call fragment after its call ended' | 'unknown chunk type';

/**
 * One stream's parts. Blocks follow the chunks: a text or reasoning block stays open while
 * chunks of its type come and ends (`text-end`, `reasoning-end`) when another kind starts; a tool
 * call's input ends (`tool-input-available`, or `tool-input-error` for invalid JSON) when a text
 * or reasoning block starts, or at the finish. Calls may interleave. `start` goes out with the
 * first chunk, so its `messageId` can be derived from that chunk: every replay of a relayed
 * stream carries the same id.
 */
class AISDKEncoder implements StreamEncoder {
  readonly #exposeErrors: boolean;
  readonly #retryFrame: string;
  readonly #openedAt = performance.now();
  readonly #tools = new ToolInputs();
  #started = false;
  #block: { type: 'text' | 'reasoning'; id: string } | undefined;
  #blocks = 0;
  #sources = 0;
  #firstTokenAt: number | undefined;
  #usage: Usage | undefined;
  #model: string | undefined;
  #provider: string | undefined;
  #dropped: Map<DropReason, number> | undefined;

  constructor(context: EncoderContext, retryFrame: string) {
    this.#exposeErrors = context.exposeErrors;
    this.#retryFrame = retryFrame;
  }

  open(): string {
    return this.#retryFrame;
  }

  chunk(chunk: TokenChunk): string {
    let frames = this.#start(chunk);
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.model !== undefined) this.#model = chunk.model;
    if (chunk.provider !== undefined) this.#provider = chunk.provider;
    const { token } = chunk;
    switch (chunk.type) {
      case 'text':
      case 'reasoning':
        if (token !== '') frames += this.#content(chunk.type, token, chunk.timestamp);
        break;
      case 'tool-call':
        frames += this.#toolCall(chunk);
        break;
      case 'source':
        frames += this.#source(chunk);
        break;
      default:
        this.#drop('unknown chunk type');
    }
    if (chunk.finishReason !== undefined) frames += this.#finish(chunk.finishReason);
    return frames;
  }

  end(): string {
    return this.#start(undefined) + this.#finish('stop');
  }

  error(error: unknown): string {
    let frames = this.#endBlock();
    if (isStreamAbortedError(error)) {
      frames += part({ type: 'abort', reason: (error as Error).message });
    } else {
      frames += part({ type: 'error', errorText: describeError(error, this.#exposeErrors).message });
    }
    this.#warn();
    return frames + DONE;
  }

  #start(first: TokenChunk | undefined): string {
    if (this.#started) return '';
    this.#started = true;
    const start = first === undefined ? { type: 'start' } : { type: 'start', messageId: messageIdOf(first) };
    return `${part(start)}data: {"type":"start-step"}\n\n`;
  }

  #content(type: 'text' | 'reasoning', token: string, timestamp: number): string {
    this.#firstTokenAt ??= timestamp;
    let frames = '';
    let block = this.#block;
    if (block?.type !== type) {
      frames += this.#endBlock() + this.#tools.endAll();
      block = { type, id: `${type === 'text' ? 't' : 'r'}${this.#blocks++}` };
      this.#block = block;
      frames += `data: {"type":"${type}-start","id":"${block.id}"}\n\n`;
    }
    return `${frames}data: {"type":"${type}-delta","id":"${block.id}","delta":${JSON.stringify(token)}}\n\n`;
  }

  #toolCall(chunk: TokenChunk): string {
    const call = chunk.toolCall;
    if (call === undefined || typeof call.id !== 'string' || typeof call.name !== 'string') {
      this.#drop('tool-call chunk without toolCall');
      return '';
    }
    if (this.#tools.ended(call.id)) {
      this.#drop('tool-call fragment after its call ended');
      return '';
    }
    this.#firstTokenAt ??= chunk.timestamp;
    return this.#endBlock() + this.#tools.add(call, chunk.token);
  }

  #source(chunk: TokenChunk): string {
    const url = chunk.source?.url;
    if (typeof url !== 'string' || url === '') {
      this.#drop('source without url');
      return '';
    }
    const title = chunk.source?.title;
    const source = { type: 'source-url', sourceId: `s${this.#sources++}`, url, ...(typeof title === 'string' ? { title } : {}) };
    return part(source);
  }

  #endBlock(): string {
    const block = this.#block;
    if (block === undefined) return '';
    this.#block = undefined;
    return `data: {"type":"${block.type}-end","id":"${block.id}"}\n\n`;
  }

  #finish(reason: FinishReason): string {
    let frames = this.#endBlock() + this.#tools.endAll();
    if (reason === 'aborted') frames += part({ type: 'abort', reason: 'The stream was aborted' });
    else if (reason === 'timeout') frames += part({ type: 'error', errorText: 'The stream timed out' });
    else frames += `data: {"type":"finish-step"}\n\n${part({ type: 'finish', finishReason: reason, messageMetadata: this.#metadata() })}`;
    this.#warn();
    return frames + DONE;
  }

  #metadata(): AISDKMessageMetadata {
    const metadata: AISDKMessageMetadata = {};
    if (this.#usage !== undefined) metadata.usage = this.#usage;
    const ttft = this.#firstTokenAt === undefined ? -1 : this.#firstTokenAt - this.#openedAt;
    if (ttft >= 0) metadata.ttftMs = Math.round(ttft);
    if (this.#model !== undefined) metadata.model = this.#model;
    if (this.#provider !== undefined) metadata.provider = this.#provider;
    return metadata;
  }

  #drop(reason: DropReason): void {
    this.#dropped ??= new Map();
    this.#dropped.set(reason, (this.#dropped.get(reason) ?? 0) + 1);
  }

  /** One warning per stream, with the counts: a chunk the protocol cannot express is never dropped silently. */
  #warn(): void {
    const dropped = this.#dropped;
    if (dropped === undefined) return;
    this.#dropped = undefined;
    const counts = [...dropped].map(([reason, count]) => `${count} × ${reason}`).join(', ');
    console.warn(`tokenrelay: the 'ai-sdk' protocol dropped chunks it cannot express: ${counts} (docs/protocols.md)`);
  }
}
