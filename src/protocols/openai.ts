import { describeError, encodeSSEFrame, HEARTBEAT_FRAME, type SSEErrorPayload } from '../sse/encoder.js';
import type { FinishReason, TokenChunk, Usage } from '../core/types.js';
import { describeValue } from '../core/validate.js';
import { chatCompletionHintsFor, type ChatCompletionHints } from './openai-request.js';
import type { EncoderContext, Protocol, StreamEncoder } from './protocol.js';

/** The `finish_reason` of each finish reason; `undefined`: the stream ends with an `error` frame instead. */
export const CHAT_FINISH_REASONS: Readonly<Record<FinishReason, string | undefined>> = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool_calls',
  'content-filter': 'content_filter',
  other: 'stop',
  error: undefined,
  aborted: undefined,
  timeout: undefined,
};

/** The OpenAI error `type` of each tokenrelay error `code` (a provider error goes by its status). */
const ERROR_TYPES: Readonly<Record<string, string>> = {
  limit: 'rate_limit_error',
  'invalid-cursor': 'invalid_request_error',
  'invalid-request': 'invalid_request_error',
  'not-found': 'invalid_request_error',
};

/** The OpenAI error object of an error payload: `{ message, type, param, code }`, `code` being tokenrelay's. */
export function chatErrorObject(payload: SSEErrorPayload): { message: string; type: string; param: null; code: string } {
  return { message: payload.message, type: errorTypeOf(payload), param: null, code: payload.code };
}

function errorTypeOf({ code, status }: SSEErrorPayload): string {
  if (code === 'provider') {
    if (status === 429) return 'rate_limit_error';
    if (status === 400 || status === 413 || status === 422) return 'invalid_request_error';
    return 'server_error';
  }
  return ERROR_TYPES[code] ?? 'server_error';
}

/** Options of the `'openai'` protocol. */
export interface ChatCompletionsProtocolOptions {
  /** The reconnection delay sent first as an SSE `retry` field (the `openai` SDK ignores it). */
  retryMs?: number | undefined;
}

const DONE_FRAME = 'data: [DONE]\n\n';

/**
 * OpenAI Chat Completions chunks over SSE (`data: {"object":"chat.completion.chunk",…}`, then
 * `data: [DONE]`), so the `openai` SDK and every OpenAI-compatible client can read the stream.
 * Errors after the first byte are `data: {"error":{…}}` frames, which the SDK throws as `APIError`.
 */
export function chatCompletionsProtocol(options: ChatCompletionsProtocolOptions = {}): Protocol {
  const retryFrame = options.retryMs === undefined ? '' : encodeSSEFrame({ retry: options.retryMs });
  return {
    name: 'openai',
    headers: { 'Content-Type': 'text/event-stream; charset=utf-8' },
    heartbeat: HEARTBEAT_FRAME,
    encoder: (context) => new ChatCompletionEncoder(context, retryFrame),
    errorBody: (payload) => JSON.stringify({ error: chatErrorObject(payload) }),
    shutdownFrame: ({ retryMs, message }) =>
      encodeSSEFrame({ retry: retryMs, data: JSON.stringify({ error: chatErrorObject({ code: 'shutdown', message }) }) }) +
      DONE_FRAME,
  };
}

type Delta = Record<string, unknown>;

/** Why a chunk was dropped: the kinds of chunk Chat Completions has no field for. */
type Dropped = 'source' | 'provider-executed tool call' | 'unknown type';

class ChatCompletionEncoder implements StreamEncoder {
  readonly #context: EncoderContext;
  readonly #retryFrame: string;
  readonly #id = `chatcmpl-${globalThis.crypto.randomUUID().replaceAll('-', '')}`;
  readonly #created = Math.floor(Date.now() / 1000);
  // Read on the first frame: the factory that registers them runs after the encoder is made.
  #hints: ChatCompletionHints | undefined;
  #model: string | undefined;
  #roleSent = false;
  readonly #toolIndexes = new Map<string, number>();
  #usage: Usage | undefined;
  readonly #dropped = new Map<Dropped, number>();

  constructor(context: EncoderContext, retryFrame: string) {
    this.#context = context;
    this.#retryFrame = retryFrame;
  }

  open(): string {
    return this.#retryFrame;
  }

  chunk(chunk: TokenChunk): string {
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    this.#model ??= chunk.model ?? this.#hintsOf()?.model ?? '';
    const delta = this.#deltaOf(chunk);
    const { finishReason } = chunk;
    if (finishReason === undefined) return delta === undefined ? '' : this.#frame(delta, null);
    const reason = CHAT_FINISH_REASONS[finishReason];
    if (reason === undefined) {
      const payload = { code: finishReason === 'error' ? 'provider' : finishReason, message: FAILED[finishReason] ?? 'The stream failed' };
      return (delta === undefined ? '' : this.#frame(delta, null)) + this.#errorEnd(payload);
    }
    return this.#finish(delta ?? {}, reason);
  }

  end(): string {
    this.#model ??= this.#hintsOf()?.model ?? '';
    return this.#finish({}, 'stop');
  }

  error(error: unknown): string {
    return this.#errorEnd(describeError(error, this.#context.exposeErrors));
  }

  #hintsOf(): ChatCompletionHints | undefined {
    this.#hints ??= chatCompletionHintsFor(this.#context.signal);
    return this.#hints;
  }

  #deltaOf(chunk: TokenChunk): Delta | undefined {
    const { token, type } = chunk;
    switch (type) {
      case 'text':
        return token === '' ? undefined : { content: token };
      case 'reasoning':
        return token === '' ? undefined : { reasoning_content: token };
      case 'tool-call':
        return this.#toolCallDelta(chunk);
      case 'source':
        return this.#drop('source');
      default:
        return this.#drop('unknown type');
    }
  }

  #toolCallDelta({ token, toolCall }: TokenChunk): Delta | undefined {
    if (toolCall === null || typeof toolCall !== 'object') {
      throw new TypeError(`Expected \`toolCall\` on a 'tool-call' chunk, got ${describeValue(toolCall)}`);
    }
    if (toolCall.providerExecuted === true) return this.#drop('provider-executed tool call');
    const { id, name } = toolCall;
    const index = this.#toolIndexes.get(id);
    if (index !== undefined) return token === '' ? undefined : { tool_calls: [{ index, function: { arguments: token } }] };
    // Dense, in order of first appearance: the chunk's own index may count other blocks too.
    const next = this.#toolIndexes.size;
    this.#toolIndexes.set(id, next);
    return { tool_calls: [{ index: next, id, type: 'function', function: { name, arguments: token } }] };
  }

  #drop(kind: Dropped): undefined {
    this.#dropped.set(kind, (this.#dropped.get(kind) ?? 0) + 1);
    return undefined;
  }

  #finish(delta: Delta, reason: string): string {
    const usage = this.#usage === undefined ? undefined : chatUsage(this.#usage);
    let frames = this.#frame(delta, reason, usage);
    if (usage !== undefined && this.#hintsOf()?.includeUsage === true) frames += this.#data({ choices: [], usage });
    return frames + this.#droppedNote() + DONE_FRAME;
  }

  #errorEnd(payload: SSEErrorPayload): string {
    return `data: ${JSON.stringify({ error: chatErrorObject(payload) })}\n\n${this.#droppedNote()}${DONE_FRAME}`;
  }

  #frame(delta: Delta, finishReason: string | null, usage?: ChatUsage): string {
    if (!this.#roleSent) {
      this.#roleSent = true;
      delta = { role: 'assistant', ...delta };
    }
    const choice = { index: 0, delta, logprobs: null, finish_reason: finishReason };
    return this.#data(usage === undefined ? { choices: [choice] } : { choices: [choice], usage });
  }

  #data(fields: { choices: unknown[]; usage?: ChatUsage }): string {
    const chunk = { id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model ?? '', ...fields };
    // JSON.stringify escapes every control character: one `data:` line is always enough.
    return `data: ${JSON.stringify(chunk)}\n\n`;
  }

  /**
   * The count of what was dropped, once per stream: a warning on the console (as the other
   * protocols do), and an SSE comment, which clients ignore but any capture of the wire shows.
   */
  #droppedNote(): string {
    if (this.#dropped.size === 0) return '';
    const counts = [...this.#dropped].map(([kind, count]) => `${count} ${kind}${count === 1 ? '' : 's'}`).join(', ');
    this.#dropped.clear();
    try {
      console.warn(`tokenrelay: the 'openai' protocol dropped chunks it cannot express: ${counts} (see docs/protocols.md)`);
    } catch {
      // A console that throws has nowhere left to report to.
    }
    return `: tokenrelay dropped chunks Chat Completions cannot express: ${counts}\n\n`;
  }
}

const FAILED: Partial<Record<FinishReason, string>> = {
  error: 'The provider reported an error',
  aborted: 'The stream was aborted',
  timeout: 'The stream timed out',
};

/** OpenAI's `usage` object. */
interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number };
}

/** tokenrelay's usage as OpenAI's: both count cached prompt tokens in the prompt, and reasoning in the completion. */
export function chatUsage(usage: Usage): ChatUsage {
  const { inputTokens, outputTokens, cachedInputTokens, reasoningTokens } = usage;
  const result: ChatUsage = { prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens };
  if (cachedInputTokens !== undefined) result.prompt_tokens_details = { cached_tokens: cachedInputTokens };
  if (reasoningTokens !== undefined) result.completion_tokens_details = { reasoning_tokens: reasoningTokens };
  return result;
}
