// How each Anthropic stream event becomes TokenChunks: one `MessageState` per message.
import type { Anthropic } from '@anthropic-ai/sdk';
import { ChunkStamper } from '../chunk-stamper.js';
import type { FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../core/types.js';
import { inBandError } from './anthropic-errors.js';
import type { AnthropicStreamEvent } from './anthropic.js';

/** A tool call whose input may arrive whole (at its start) or as `input_json_delta` fragments. */
interface ToolBlock {
  info: ToolCallInfo;
  /** The `input` of `content_block_start`: what the call carries if no fragment follows. */
  input: unknown;
  /** Whether a non-empty fragment came: then the fragments, not `input`, are the arguments. */
  streamed: boolean;
}

/** A content block as the wire has it: any type, with the fields tokenrelay reads. */
interface WireBlock {
  type: string;
  id?: unknown;
  name?: unknown;
  input?: unknown;
  text?: unknown;
  thinking?: unknown;
  citations?: unknown;
  content?: unknown;
}

/** The state of one message as its events arrive. */
export class MessageState {
  stopped = false;
  readonly #stamper: ChunkStamper;
  readonly #usage = new UsageCounts();
  /** Tool calls still open, by content block index. */
  readonly #toolBlocks = new Map<number, ToolBlock>();
  #toolCount = 0;
  #finishReason: FinishReason = 'other';

  constructor(provider: string) {
    this.#stamper = new ChunkStamper(provider);
  }

  /** Adds the chunks of `event` to `out`. */
  accept(event: AnthropicStreamEvent, out: TokenChunk[]): void {
    switch (event.type) {
      case 'message_start':
        this.#stamper.model = event.message.model;
        this.#usage.update(event.message.usage);
        if (event.message.stop_reason != null) this.#finishReason = toFinishReason(event.message.stop_reason);
        // Programmatic tool calling sends the whole message here, with no block events after it.
        for (const block of (event.message.content ?? []) as WireBlock[]) this.#wholeBlock(block, out);
        return;
      case 'content_block_start':
        this.#startBlock(event.index, event.content_block as WireBlock, out);
        return;
      case 'content_block_delta':
        this.#delta(event.index, event.delta, out);
        return;
      case 'content_block_stop':
        this.#closeToolBlock(event.index, out);
        return;
      case 'message_delta':
        if (event.delta.stop_reason != null) this.#finishReason = toFinishReason(event.delta.stop_reason);
        this.#usage.update(event.usage);
        return;
      case 'message_stop':
        for (const index of [...this.#toolBlocks.keys()].sort((a, b) => a - b)) this.#closeToolBlock(index, out);
        this.stopped = true;
        return;
      case 'error':
        throw inBandError(event.error, { provider: this.#stamper.provider ?? 'anthropic' }, event);
      default:
        return;
    }
  }

  finish(): TokenChunk {
    return this.#stamper.finish(this.#finishReason, this.#usage.toUsage());
  }

  #startBlock(index: number, block: WireBlock, out: TokenChunk[]): void {
    const info = this.#toolCallInfo(block);
    if (info !== undefined) {
      this.#toolBlocks.set(index, { info, input: block.input, streamed: false });
      return;
    }
    this.#blockContent(block, out);
  }

  /** A block that is complete as it is (from `message_start`): a tool call's input is its arguments. */
  #wholeBlock(block: WireBlock, out: TokenChunk[]): void {
    const info = this.#toolCallInfo(block);
    if (info === undefined) this.#blockContent(block, out);
    else this.#emit(out, this.#stamper.chunk(JSON.stringify(block.input ?? {}), 'tool-call', info));
  }

  /** What a block that is not a tool call carries already at its start. */
  #blockContent(block: WireBlock, out: TokenChunk[]): void {
    if (block.type === 'text') {
      if (typeof block.text === 'string' && block.text !== '') this.#emit(out, this.#stamper.chunk(block.text));
      if (Array.isArray(block.citations)) for (const citation of block.citations) this.#source(out, citationSource(citation));
    } else if (block.type === 'thinking') {
      if (typeof block.thinking === 'string' && block.thinking !== '') this.#emit(out, this.#stamper.chunk(block.thinking, 'reasoning'));
    } else {
      for (const source of resultSources(block)) this.#source(out, source);
    }
  }

  #toolCallInfo(block: WireBlock): ToolCallInfo | undefined {
    if (!block.type.endsWith('tool_use') || typeof block.id !== 'string' || typeof block.name !== 'string') return undefined;
    const info: ToolCallInfo = { id: block.id, name: block.name, index: this.#toolCount++ };
    // `tool_use` is the application's to run; `server_tool_use`, `mcp_tool_use`… ran at Anthropic.
    if (block.type !== 'tool_use') info.providerExecuted = true;
    return info;
  }

  #delta(index: number, delta: Anthropic.RawContentBlockDelta, out: TokenChunk[]): void {
    switch (delta.type) {
      case 'text_delta':
        this.#emit(out, this.#stamper.chunk(delta.text));
        return;
      case 'thinking_delta':
        this.#emit(out, this.#stamper.chunk(delta.thinking, 'reasoning'));
        return;
      case 'citations_delta':
        this.#source(out, citationSource(delta.citation));
        return;
      case 'input_json_delta': {
        const block = this.#toolBlocks.get(index);
        if (block === undefined) return;
        if (delta.partial_json !== '') block.streamed = true;
        this.#emit(out, this.#stamper.chunk(delta.partial_json, 'tool-call', { ...block.info }));
        return;
      }
      default:
        return;
    }
  }

  /** Ends a tool call; one whose input came whole (no fragment) gets it as one chunk. */
  #closeToolBlock(index: number, out: TokenChunk[]): void {
    const block = this.#toolBlocks.get(index);
    if (block === undefined) return;
    this.#toolBlocks.delete(index);
    if (!block.streamed) this.#emit(out, this.#stamper.chunk(JSON.stringify(block.input ?? {}), 'tool-call', block.info));
  }

  #source(out: TokenChunk[], source: SourceInfo | undefined): void {
    if (source === undefined) return;
    const chunk = this.#stamper.chunk('', 'source');
    chunk.source = source;
    this.#emit(out, chunk);
  }

  // Anthropic reports the input tokens at the start: the first chunk carries the usage known
  // so far, so a stream stopped before its end is still costed with its real input.
  #emit(out: TokenChunk[], chunk: TokenChunk): void {
    if (chunk.index === 0 && this.#usage.known) chunk.usage = this.#usage.toUsage();
    out.push(chunk);
  }
}

/** A citation (`citations_delta`, or a text block's `citations`) as a source; unknown kinds give none. */
function citationSource(value: unknown): SourceInfo | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const citation = value as Record<string, unknown>;
  const source: SourceInfo = {};
  switch (citation.type) {
    case 'char_location':
    case 'page_location':
    case 'content_block_location':
      setNumber(source, 'documentIndex', citation.document_index);
      setString(source, 'title', citation.document_title);
      break;
    case 'web_search_result_location':
      setString(source, 'url', citation.url);
      setString(source, 'title', citation.title);
      break;
    case 'search_result_location':
      // `source` names where a search result passed in the request came from: usually its URL.
      setString(source, 'url', citation.source);
      setString(source, 'title', citation.title);
      break;
    default:
      return undefined;
  }
  setString(source, 'citedText', citation.cited_text);
  return source;
}

/** The pages a server tool's result block brought in: web search results, a fetched page. */
function resultSources(block: WireBlock): SourceInfo[] {
  const content = block.content as Record<string, unknown> | Record<string, unknown>[] | null | undefined;
  if (block.type === 'web_search_tool_result' && Array.isArray(content)) {
    return content.filter((item) => item?.type === 'web_search_result').map((item) => pageSource(item.url, item.title));
  }
  if (block.type === 'web_fetch_tool_result' && content != null && !Array.isArray(content) && content.type === 'web_fetch_result') {
    const document = content.content as { title?: unknown } | null | undefined;
    return [pageSource(content.url, document?.title)];
  }
  return [];
}

function pageSource(url: unknown, title: unknown): SourceInfo {
  const source: SourceInfo = {};
  setString(source, 'url', url);
  setString(source, 'title', title);
  return source;
}

function setString(source: SourceInfo, key: 'url' | 'title' | 'citedText', value: unknown): void {
  if (typeof value === 'string') source[key] = value;
}

function setNumber(source: SourceInfo, key: 'documentIndex', value: unknown): void {
  if (typeof value === 'number') source[key] = value;
}

interface AnthropicUsageFields {
  input_tokens?: number | null | undefined;
  cache_read_input_tokens?: number | null | undefined;
  cache_creation_input_tokens?: number | null | undefined;
  output_tokens?: number | null | undefined;
  output_tokens_details?: { thinking_tokens?: number | null | undefined } | null | undefined;
}

/** Anthropic's counts are cumulative: each report replaces the fields it carries. */
class UsageCounts {
  #seen = false;

  /** Whether any report came yet. */
  get known(): boolean {
    return this.#seen;
  }

  #input = 0;
  #cacheRead = 0;
  #cacheCreation = 0;
  #output = 0;
  #thinking = 0;

  update(usage: AnthropicUsageFields | null | undefined): void {
    if (usage == null) return;
    this.#seen = true;
    this.#input = usage.input_tokens ?? this.#input;
    this.#cacheRead = usage.cache_read_input_tokens ?? this.#cacheRead;
    this.#cacheCreation = usage.cache_creation_input_tokens ?? this.#cacheCreation;
    this.#output = usage.output_tokens ?? this.#output;
    this.#thinking = usage.output_tokens_details?.thinking_tokens ?? this.#thinking;
  }

  toUsage(): Usage | undefined {
    if (!this.#seen) return undefined;
    const usage: Usage = {
      inputTokens: this.#input + this.#cacheRead + this.#cacheCreation,
      outputTokens: this.#output,
    };
    if (this.#cacheRead > 0) usage.cachedInputTokens = this.#cacheRead;
    if (this.#thinking > 0) usage.reasoningTokens = this.#thinking;
    return usage;
  }
}

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool-calls',
  refusal: 'content-filter',
};

function toFinishReason(stopReason: string): FinishReason {
  return FINISH_REASONS[stopReason] ?? 'other';
}
