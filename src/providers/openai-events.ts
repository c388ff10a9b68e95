import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { ResponseStreamEvent, ResponseUsage, Response as OpenAIResponse } from 'openai/resources/responses/responses';
import { ChunkStamper } from '../chunk-stamper.js';
import { ProviderError } from '../errors.js';
import type { ChunkType, FinishReason, TokenChunk, ToolCallInfo, Usage } from '../types.js';
import { streamError, type OpenAIErrorContext } from './openai-errors.js';

/** One item of an OpenAI stream: a Chat Completions chunk or a Responses API event. */
export type OpenAIStreamEvent = ChatCompletionChunk | ResponseStreamEvent;

type ChatChoice = ChatCompletionChunk.Choice;
type ChatToolCallDelta = ChatCompletionChunk.Choice.Delta.ToolCall;
/** OpenAI-compatible servers (vLLM, DeepSeek, Ollama, OpenRouter) add the reasoning text to the delta. */
type ChatDelta = ChatCompletionChunk.Choice.Delta & { reasoning_content?: string | null; reasoning?: string | null };
type OutputItem = Extract<ResponseStreamEvent, { type: 'response.output_item.added' }>['item'];

const CHAT_FINISH_REASONS: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
};

const INCOMPLETE_REASONS: Record<string, FinishReason> = {
  max_output_tokens: 'length',
  content_filter: 'content-filter',
};

/**
 * Reads the events of one OpenAI stream, in order, into normalized chunks and remembers what
 * the final chunk needs: the finish reason, the usage, and whether the model refused. Chunks
 * are pushed onto the caller's array rather than yielded: this runs once per event, and
 * nested generators would cost an object per layer on every event.
 */
export class OpenAIEventReader {
  readonly #stamper: ChunkStamper;
  readonly #context: OpenAIErrorContext;
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  #refused = false;
  /** Chat: tool calls by their `index`. Responses: function calls by `output_index`. */
  readonly #calls = new Map<number, ToolCallInfo>();

  constructor(context: OpenAIErrorContext) {
    this.#context = context;
    this.#stamper = new ChunkStamper(context.provider);
  }

  /** Pushes the chunks of one event (often one, sometimes none or several) onto `out`. */
  read(event: OpenAIStreamEvent, out: TokenChunk[]): void {
    if (event === null || typeof event !== 'object') return;
    if ('object' in event && event.object === 'chat.completion.chunk') this.#readChat(event, out);
    else if ('choices' in event && Array.isArray(event.choices)) this.#readChat(event, out);
    else if ('type' in event && typeof event.type === 'string') this.#readResponse(event, out);
  }

  /** The final chunk. A refusal turns any finish reason into `'content-filter'`. */
  finish(): TokenChunk {
    if (this.#finishReason === undefined) {
      throw new ProviderError('The stream ended before the provider finished', {
        retryable: true,
        provider: this.#context.provider,
      });
    }
    return this.#stamper.finish(this.#refused ? 'content-filter' : this.#finishReason, this.#usage);
  }

  #readChat(chunk: ChatCompletionChunk, out: TokenChunk[]): void {
    this.#setModel(chunk.model);
    if (chunk.usage) this.#usage = chatUsage(chunk.usage);
    const choice = chunk.choices.find((candidate) => (candidate.index ?? 0) === 0);
    if (choice === undefined) return;
    const delta: ChatDelta = choice.delta ?? {};
    this.#delta(firstText(delta.reasoning_content, delta.reasoning), 'reasoning', out);
    this.#delta(delta.content, 'text', out);
    this.#refusal(delta.refusal, out);
    if (delta.tool_calls) {
      for (const [position, call] of delta.tool_calls.entries()) this.#chatToolCall(call, position, out);
    }
    if (delta.function_call) this.#chatToolCall({ index: 0, function: delta.function_call }, 0, out);
    if (choice.finish_reason) this.#finishReason = CHAT_FINISH_REASONS[choice.finish_reason] ?? 'other';
  }

  #chatToolCall(call: ChatToolCallDelta, position: number, out: TokenChunk[]): void {
    const index = call.index ?? position;
    const known = this.#calls.get(index);
    const info: ToolCallInfo = {
      id: call.id || known?.id || '',
      name: call.function?.name || call.custom?.name || known?.name || '',
      index,
    };
    this.#calls.set(index, info);
    this.#toolCall(call.function?.arguments ?? call.custom?.input, info, out);
  }

  #readResponse(event: ResponseStreamEvent, out: TokenChunk[]): void {
    switch (event.type) {
      case 'response.created':
      case 'response.in_progress':
        this.#setModel(event.response.model);
        return;
      case 'response.output_text.delta':
        return this.#delta(event.delta, 'text', out);
      case 'response.refusal.delta':
        return this.#refusal(event.delta, out);
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_text.delta':
        return this.#delta(event.delta, 'reasoning', out);
      case 'response.output_item.added':
        this.#rememberCall(event.output_index, event.item);
        return;
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        return this.#toolCall(event.delta, this.#responseCall(event.output_index, event.item_id), out);
      case 'response.completed':
        return this.#complete(event.response, this.#calls.size > 0 ? 'tool-calls' : 'stop');
      case 'response.incomplete':
        return this.#complete(event.response, INCOMPLETE_REASONS[event.response.incomplete_details?.reason ?? ''] ?? 'other');
      case 'response.failed':
        throw streamError(event.response.error ?? {}, { ...this.#context, cause: event, what: 'response' });
      case 'error':
        throw streamError(event, { ...this.#context, cause: event });
    }
  }

  #rememberCall(outputIndex: number, item: OutputItem): void {
    if (item.type !== 'function_call' && item.type !== 'custom_tool_call') return;
    this.#calls.set(outputIndex, { id: item.call_id, name: item.name, index: this.#calls.size });
  }

  /** A call whose `output_item.added` we missed still gets a stable identity. */
  #responseCall(outputIndex: number, itemId: string): ToolCallInfo {
    const known = this.#calls.get(outputIndex);
    if (known !== undefined) return known;
    const info = { id: itemId, name: '', index: this.#calls.size };
    this.#calls.set(outputIndex, info);
    return info;
  }

  #complete(response: OpenAIResponse, finishReason: FinishReason): void {
    this.#setModel(response.model);
    if (response.usage) this.#usage = responsesUsage(response.usage);
    this.#finishReason = finishReason;
  }

  #delta(token: string | null | undefined, type: ChunkType, out: TokenChunk[]): void {
    if (token) out.push(this.#stamper.chunk(token, type));
  }

  #refusal(token: string | null | undefined, out: TokenChunk[]): void {
    if (!token) return;
    this.#refused = true;
    out.push(this.#stamper.chunk(token, 'text'));
  }

  #toolCall(fragment: string | null | undefined, info: ToolCallInfo, out: TokenChunk[]): void {
    if (fragment) out.push(this.#stamper.chunk(fragment, 'tool-call', { ...info }));
  }

  #setModel(model: unknown): void {
    if (typeof model === 'string' && model !== '') this.#stamper.model = model;
  }
}

function firstText(first: string | null | undefined, second: string | null | undefined): string | undefined {
  if (typeof first === 'string' && first !== '') return first;
  return typeof second === 'string' && second !== '' ? second : undefined;
}

function chatUsage(usage: CompletionUsage): Usage {
  return usageOf(
    usage.prompt_tokens,
    usage.completion_tokens,
    usage.prompt_tokens_details?.cached_tokens,
    usage.completion_tokens_details?.reasoning_tokens,
  );
}

function responsesUsage(usage: ResponseUsage): Usage {
  return usageOf(
    usage.input_tokens,
    usage.output_tokens,
    usage.input_tokens_details?.cached_tokens,
    usage.output_tokens_details?.reasoning_tokens,
  );
}

function usageOf(input: number, output: number, cached: number | null | undefined, reasoning: number | null | undefined): Usage {
  const usage: Usage = { inputTokens: input ?? 0, outputTokens: output ?? 0 };
  if (typeof cached === 'number') usage.cachedInputTokens = cached;
  if (typeof reasoning === 'number') usage.reasoningTokens = reasoning;
  return usage;
}
