import type { CompletionChunk, CompletionEvent } from '@mistralai/mistralai/models/components';
import { ChunkStamper } from '../../chunk-stamper.js';
import { ProviderError } from '../../core/errors.js';
import type { ChunkType, FinishReason, TokenChunk, ToolCallInfo, Usage } from '../../core/types.js';

/** What `chat.stream()` yields (`{ data: CompletionChunk }`), or a completion chunk itself. */
export type MistralStreamEvent = CompletionEvent | CompletionChunk;

type Fields = Record<string, unknown>;

const FINISH_REASONS: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  // The model's context window, not `max_tokens`, cut the answer: still a length limit.
  model_length: 'length',
  tool_calls: 'tool-calls',
  error: 'error',
};

/**
 * Reads the events of one Mistral stream, in order, into normalized chunks, and remembers what
 * the final chunk needs. Fields are read in the SDK's camelCase and in the wire's snake_case,
 * so a chunk parsed by hand reads the same as one the SDK parsed.
 */
export class MistralEventReader {
  readonly #stamper: ChunkStamper;
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  /** Calls by their id: a delta with an id not seen yet starts a new call. */
  readonly #callsById = new Map<string, ToolCallInfo>();
  /** Calls by the wire `index`: a delta without an id continues the call at its index. */
  readonly #callsByIndex = new Map<number, ToolCallInfo>();
  #lastCall: ToolCallInfo | undefined;
  #callCount = 0;

  constructor(provider: string) {
    this.#stamper = new ChunkStamper(provider);
  }

  /** Pushes the chunks of one event (often one, sometimes none or several) onto `out`. */
  read(event: MistralStreamEvent, out: TokenChunk[]): void {
    if (event === null || typeof event !== 'object') return;
    const data = (event as { data?: unknown }).data;
    const chunk = (data !== null && typeof data === 'object' ? data : event) as Fields;
    const model = chunk['model'];
    if (typeof model === 'string' && model !== '') this.#stamper.model = model;
    const usage = chunk['usage'];
    if (usage !== null && typeof usage === 'object') this.#usage = usageOf(usage as Fields);
    const choices = chunk['choices'];
    if (!Array.isArray(choices)) return;
    // Only the first choice is relayed, as for OpenAI (`n` > 1 interleaves choices).
    const choice = (choices as Array<Fields | null>).find((candidate) => (candidate?.['index'] ?? 0) === 0);
    if (choice === undefined || choice === null) return;
    const delta = (choice['delta'] ?? {}) as Fields;
    const content = delta['content'];
    if (Array.isArray(content)) this.#parts(content as unknown[], out);
    else this.#text(content, 'text', out);
    const calls = delta['toolCalls'] ?? delta['tool_calls'];
    if (Array.isArray(calls)) for (const call of calls as unknown[]) this.#toolCall(call, out);
    const reason = choice['finishReason'] ?? choice['finish_reason'];
    if (typeof reason === 'string' && reason !== '') this.#finishReason = FINISH_REASONS[reason] ?? 'other';
  }

  /** The final chunk; a stream that ended without a finish reason was cut short. */
  finish(): TokenChunk {
    if (this.#finishReason === undefined) {
      throw new ProviderError('The stream ended before the provider finished', {
        retryable: true,
        provider: this.#stamper.provider,
      });
    }
    return this.#stamper.finish(this.#finishReason, this.#usage);
  }

  /** Typed parts: `text` parts are text, `thinking` parts hold the reasoning as `text` parts. */
  #parts(parts: unknown[], out: TokenChunk[]): void {
    for (const part of parts) {
      if (part === null || typeof part !== 'object') continue;
      const { type, text, thinking } = part as Fields;
      if (type === 'text') this.#text(text, 'text', out);
      else if (type === 'thinking' && Array.isArray(thinking)) {
        for (const inner of thinking as unknown[]) {
          const nested = inner as Fields | null;
          // The SDK fills in `type: 'text'` when it is missing; `tool_reference`/`reference` parts carry no text.
          if (nested !== null && typeof nested === 'object' && (nested['type'] ?? 'text') === 'text') this.#text(nested['text'], 'reasoning', out);
        }
      } else if (type === 'thinking') this.#text(thinking, 'reasoning', out);
    }
  }

  #toolCall(call: unknown, out: TokenChunk[]): void {
    if (call === null || typeof call !== 'object') return;
    const { id, index } = call as Fields;
    const fn = ((call as Fields)['function'] ?? {}) as Fields;
    // The SDK (2.7) turns a missing id into the string "null": that is no id at all.
    const realId = typeof id === 'string' && id !== '' && id !== 'null' ? id : undefined;
    const wireIndex = typeof index === 'number' ? index : 0;
    let info = realId === undefined ? (this.#callsByIndex.get(wireIndex) ?? this.#lastCall) : this.#callsById.get(realId);
    if (info === undefined) {
      info = { id: realId ?? '', name: '', index: this.#callCount++ };
      if (realId !== undefined) this.#callsById.set(realId, info);
    }
    const name = fn['name'];
    if (info.name === '' && typeof name === 'string' && name !== '') info.name = name;
    this.#callsByIndex.set(wireIndex, info);
    this.#lastCall = info;
    const fragment = fn['arguments'];
    // Arguments usually come as JSON text; an object is sent as its JSON.
    const token = typeof fragment === 'string' ? fragment : fragment !== null && typeof fragment === 'object' ? JSON.stringify(fragment) : '';
    if (token !== '') out.push(this.#stamper.chunk(token, 'tool-call', { ...info }));
  }

  /** Only non-empty strings become tokens. */
  #text(token: unknown, type: ChunkType, out: TokenChunk[]): void {
    if (typeof token === 'string' && token !== '') out.push(this.#stamper.chunk(token, type));
  }
}

function usageOf(usage: Fields): Usage {
  const input = usage['promptTokens'] ?? usage['prompt_tokens'];
  const output = usage['completionTokens'] ?? usage['completion_tokens'];
  const result: Usage = { inputTokens: typeof input === 'number' ? input : 0, outputTokens: typeof output === 'number' ? output : 0 };
  // The SDK (2.7) keeps fields it does not know as they came: these stay in snake_case.
  const cached = detail(usage, 'prompt_tokens_details', 'promptTokensDetails', 'cached_tokens', 'cachedTokens');
  if (cached !== undefined) result.cachedInputTokens = cached;
  const reasoning = detail(usage, 'completion_tokens_details', 'completionTokensDetails', 'reasoning_tokens', 'reasoningTokens');
  if (reasoning !== undefined) result.reasoningTokens = reasoning;
  return result;
}

function detail(usage: Fields, snake: string, camel: string, snakeField: string, camelField: string): number | undefined {
  const details = (usage[snake] ?? usage[camel]) as Fields | null | undefined;
  if (details === null || typeof details !== 'object') return undefined;
  const value = details[snakeField] ?? details[camelField];
  return typeof value === 'number' ? value : undefined;
}
