import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { ResponseStreamEvent, ResponseUsage, Response as OpenAIResponse } from 'openai/resources/responses/responses';
import { ChunkStamper } from '../chunk-stamper.js';
import { ProviderError } from '../core/errors.js';
import type { ChunkType, FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../core/types.js';
import { streamError, type OpenAIErrorContext } from './openai-errors.js';
import { annotationSource, describeCallItem, json, messageSources, source, type CallItem } from './openai-items.js';

/** One item of an OpenAI stream: a Chat Completions chunk or a Responses API event. */
export type OpenAIStreamEvent = ChatCompletionChunk | ResponseStreamEvent;

type ChatToolCallDelta = ChatCompletionChunk.Choice.Delta.ToolCall;
/**
 * What OpenAI-compatible servers add to a delta: the reasoning text (vLLM, DeepSeek, Ollama,
 * OpenRouter), `content` as an array of typed parts (Mistral), citations (OpenAI search models).
 */
type ChatDelta = Omit<ChatCompletionChunk.Choice.Delta, 'content'> & {
  content?: unknown;
  reasoning_content?: unknown;
  reasoning?: unknown;
  annotations?: unknown;
};
/** Perplexity-style servers list the sources on the chunk itself, repeated on every chunk. */
type ChatChunk = ChatCompletionChunk & { citations?: unknown; search_results?: unknown };

/** A Responses call, by `output_index`: what was sent of its input so far. */
interface ResponsesCall {
  info: ToolCallInfo;
  streamed: boolean;
  /** The input sent so far (streamed calls), so a complete copy later sends only what is missing. */
  sent: string;
  /** A chunk was sent for it (so a call with an empty input still shows up once). */
  emitted: boolean;
}

const CHAT_FINISH_REASONS: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
  // Mistral's, on its OpenAI-compatible endpoint.
  model_length: 'length',
  error: 'error',
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
  /** Chat: tool calls by their wire `index`. */
  readonly #chatCalls = new Map<number, ToolCallInfo>();
  /** Responses: tool calls by `output_index`. */
  readonly #calls = new Map<number, ResponsesCall>();
  /** Responses: calls the application must run (not hosted tools). */
  #applicationCalls = 0;
  /** Sources already relayed: servers repeat them (Perplexity sends all of them on every chunk). */
  readonly #sources = new Set<string>();

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

  #readChat(chunk: ChatChunk, out: TokenChunk[]): void {
    this.#setModel(chunk.model);
    if (chunk.usage) this.#usage = chatUsage(chunk.usage);
    this.#chatSources(chunk, out);
    if (!Array.isArray(chunk.choices)) return;
    const choice = chunk.choices.find((candidate) => (candidate?.index ?? 0) === 0);
    if (choice === undefined) return;
    const delta: ChatDelta = choice.delta ?? {};
    this.#delta(firstText(delta.reasoning_content, delta.reasoning), 'reasoning', out);
    if (Array.isArray(delta.content)) this.#contentParts(delta.content as unknown[], out);
    else this.#delta(delta.content, 'text', out);
    this.#refusal(delta.refusal, out);
    if (Array.isArray(delta.annotations)) {
      for (const annotation of delta.annotations as unknown[]) {
        const citation = (annotation as { url_citation?: { url?: unknown; title?: unknown } } | null)?.url_citation;
        this.#source(source(citation?.url, citation?.title), out);
      }
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const [position, call] of delta.tool_calls.entries()) this.#chatToolCall(call, position, out);
    }
    if (delta.function_call) this.#chatToolCall({ index: 0, function: delta.function_call }, 0, out);
    if (choice.finish_reason) this.#finishReason = CHAT_FINISH_REASONS[choice.finish_reason] ?? 'other';
  }

  /** Mistral's typed parts: `text` parts are text, `thinking` parts hold text parts of reasoning. */
  #contentParts(parts: unknown[], out: TokenChunk[]): void {
    for (const part of parts) {
      if (part === null || typeof part !== 'object') continue;
      const { type, text, thinking } = part as { type?: unknown; text?: unknown; thinking?: unknown };
      if (type === 'text') this.#delta(text, 'text', out);
      else if (type === 'thinking' && Array.isArray(thinking)) {
        for (const inner of thinking as unknown[]) {
          const nested = inner as { type?: unknown; text?: unknown } | null;
          if (nested?.type === 'text') this.#delta(nested.text, 'reasoning', out);
        }
      } else if (type === 'thinking') this.#delta(thinking, 'reasoning', out);
    }
  }

  #chatSources(chunk: ChatChunk, out: TokenChunk[]): void {
    if (Array.isArray(chunk.search_results)) {
      for (const result of chunk.search_results as unknown[]) {
        const fields = result as { url?: unknown; title?: unknown } | null;
        this.#source(source(fields?.url, fields?.title), out);
      }
    }
    if (Array.isArray(chunk.citations)) {
      for (const url of chunk.citations as unknown[]) this.#source(source(url, undefined), out);
    }
  }

  #chatToolCall(call: ChatToolCallDelta, position: number, out: TokenChunk[]): void {
    if (call === null || typeof call !== 'object') return;
    const index = call.index ?? position;
    const known = this.#chatCalls.get(index);
    const info: ToolCallInfo = {
      id: call.id || known?.id || '',
      name: call.function?.name || call.custom?.name || known?.name || '',
      index,
    };
    this.#chatCalls.set(index, info);
    // Some compatible servers send the arguments as an object rather than JSON text.
    const fragment = call.function?.arguments ?? call.custom?.input;
    this.#toolCall(typeof fragment === 'object' ? json(fragment) : fragment, info, out);
  }

  #readResponse(event: ResponseStreamEvent, out: TokenChunk[]): void {
    switch (event.type) {
      case 'response.created':
      case 'response.in_progress':
        this.#setModel(event.response?.model);
        return;
      case 'response.output_text.delta':
        return this.#delta(event.delta, 'text', out);
      case 'response.refusal.delta':
        return this.#refusal(event.delta, out);
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_text.delta':
        return this.#delta(event.delta, 'reasoning', out);
      case 'response.output_text.annotation.added':
        return this.#source(annotationSource(event.annotation), out);
      case 'response.output_item.added':
        this.#callAt(event.output_index, event.item);
        return;
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        return this.#streamedInput(event.output_index, event.item_id, event.delta, out);
      case 'response.function_call_arguments.done':
        return this.#completeInput(this.#calls.get(event.output_index), event.arguments, out);
      case 'response.custom_tool_call_input.done':
        return this.#completeInput(this.#calls.get(event.output_index), event.input, out);
      case 'response.output_item.done':
        return this.#itemDone(event.output_index, event.item, out);
      case 'response.completed':
        // Items whose `output_item.done` never came: the final response has them whole.
        for (const [outputIndex, item] of (event.response?.output ?? []).entries()) this.#itemDone(outputIndex, item, out);
        return this.#complete(event.response, this.#applicationCalls > 0 ? 'tool-calls' : 'stop');
      case 'response.incomplete':
        return this.#complete(event.response, INCOMPLETE_REASONS[event.response?.incomplete_details?.reason ?? ''] ?? 'other');
      case 'response.failed':
        throw streamError(event.response?.error ?? {}, { ...this.#context, cause: event, what: 'response' });
      case 'error': {
        // First-party servers nest the details in `error`; others put them on the event itself.
        const nested = (event as { error?: unknown }).error;
        const body = nested !== null && typeof nested === 'object' ? nested : event;
        throw streamError(body, { ...this.#context, cause: event });
      }
    }
  }

  /** The call at `outputIndex`, remembered the first time its item is seen (`undefined` for other items). */
  #callAt(outputIndex: number, item: unknown): ResponsesCall | undefined {
    const known = this.#calls.get(outputIndex);
    if (known !== undefined) return known;
    const call = describeCallItem(item);
    if (call === undefined) return undefined;
    const info: ToolCallInfo = { id: call.id, name: call.name, index: this.#calls.size };
    if (call.providerExecuted) info.providerExecuted = true;
    else this.#applicationCalls += 1;
    const state: ResponsesCall = { info, streamed: call.streamed, sent: '', emitted: false };
    this.#calls.set(outputIndex, state);
    return state;
  }

  #streamedInput(outputIndex: number, itemId: string, fragment: unknown, out: TokenChunk[]): void {
    // A delta whose `output_item.added` was missed still gets a stable identity: its item id.
    const call = this.#calls.get(outputIndex) ?? this.#callAt(outputIndex, { type: 'function_call', call_id: itemId });
    if (call === undefined || typeof fragment !== 'string' || fragment === '') return;
    call.sent += fragment;
    this.#emitCall(call, fragment, out);
  }

  /** The complete input: sends what the deltas did not (all of it when no delta came, LM Studio). */
  #completeInput(call: ResponsesCall | undefined, input: unknown, out: TokenChunk[]): void {
    if (call === undefined || typeof input !== 'string' || !input.startsWith(call.sent)) return;
    const missing = input.slice(call.sent.length);
    call.sent = input;
    if (missing !== '') this.#emitCall(call, missing, out);
  }

  #itemDone(outputIndex: number, item: unknown, out: TokenChunk[]): void {
    if ((item as { type?: unknown } | null)?.type === 'message') {
      for (const found of messageSources(item)) this.#source(found, out);
      return;
    }
    const described = describeCallItem(item);
    if (described === undefined) return;
    const call = this.#callWithId(described.id) ?? this.#callAt(outputIndex, item);
    if (call === undefined) return;
    if (call.info.id === '' || call.info.name === '') this.#identify(call, described);
    if (call.streamed) this.#completeInput(call, described.input, out);
    else if (!call.emitted) this.#emitCall(call, described.input, out);
    // A call without any input still shows up, once.
    if (!call.emitted) this.#emitCall(call, '', out);
  }

  #callWithId(id: string): ResponsesCall | undefined {
    if (id === '') return undefined;
    for (const call of this.#calls.values()) if (call.info.id === id) return call;
    return undefined;
  }

  /** Fills in the identity of a call whose `output_item.added` was missed or incomplete. */
  #identify(call: ResponsesCall, described: CallItem): void {
    const info = { ...call.info };
    if (info.id === '') info.id = described.id;
    if (info.name === '') info.name = described.name;
    call.info = info;
  }

  #emitCall(call: ResponsesCall, token: string, out: TokenChunk[]): void {
    call.emitted = true;
    out.push(this.#stamper.chunk(token, 'tool-call', { ...call.info }));
  }

  #complete(response: OpenAIResponse | undefined, finishReason: FinishReason): void {
    this.#setModel(response?.model);
    if (response?.usage) this.#usage = responsesUsage(response.usage);
    this.#finishReason = finishReason;
  }

  /** Only strings become tokens: whatever else a server puts in a text field is dropped. */
  #delta(token: unknown, type: ChunkType, out: TokenChunk[]): void {
    if (typeof token === 'string' && token !== '') out.push(this.#stamper.chunk(token, type));
  }

  #refusal(token: unknown, out: TokenChunk[]): void {
    if (typeof token !== 'string' || token === '') return;
    this.#refused = true;
    out.push(this.#stamper.chunk(token, 'text'));
  }

  #toolCall(fragment: unknown, info: ToolCallInfo, out: TokenChunk[]): void {
    if (typeof fragment === 'string' && fragment !== '') out.push(this.#stamper.chunk(fragment, 'tool-call', { ...info }));
  }

  #source(found: SourceInfo | undefined, out: TokenChunk[]): void {
    if (found === undefined) return;
    const key = found.url ?? `title:${found.title ?? ''}`;
    if (this.#sources.has(key)) return;
    this.#sources.add(key);
    const chunk = this.#stamper.chunk('', 'source');
    chunk.source = found;
    out.push(chunk);
  }

  #setModel(model: unknown): void {
    if (typeof model === 'string' && model !== '') this.#stamper.model = model;
  }
}

function firstText(first: unknown, second: unknown): string | undefined {
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
