import type { AIMessageChunk } from '@langchain/core/messages';
import { ChunkStamper } from '../chunk-stamper.js';
import type { ChunkType, FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../core/types.js';

/** A call, as LangChain's `concat` merges `tool_call_chunks`: by `index` (and `id`), else by `id`. */
interface CallState {
  info: ToolCallInfo;
  index: number | string | undefined;
}

/** The fields of an `AIMessageChunk` that are read, by shape, so any `@langchain/core` copy works. */
interface ChunkLike {
  content?: unknown;
  tool_call_chunks?: unknown;
  tool_calls?: unknown;
  usage_metadata?: unknown;
  response_metadata?: unknown;
  additional_kwargs?: unknown;
}

interface PartLike {
  type?: unknown;
  text?: unknown;
  thinking?: unknown;
  reasoning?: unknown;
  refusal?: unknown;
  summary?: unknown;
  annotations?: unknown;
  citations?: unknown;
}

const FINISH_REASONS: Record<string, FinishReason> = {
  stop: 'stop',
  end_turn: 'stop',
  stop_sequence: 'stop',
  eos: 'stop',
  length: 'length',
  max_tokens: 'length',
  model_length: 'length',
  tool_calls: 'tool-calls',
  tool_use: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
  content_filtered: 'content-filter',
  guardrail_intervened: 'content-filter',
  refusal: 'content-filter',
  safety: 'content-filter',
  recitation: 'content-filter',
  prohibited_content: 'content-filter',
  blocklist: 'content-filter',
  spii: 'content-filter',
  error: 'error',
};

/**
 * Reads the `AIMessageChunk`s of one `.stream()`, in order, into chunks pushed onto the caller's
 * array. LangChain has no finish chunk: {@link LangChainChunkReader.finish} makes the final one
 * from what the message chunks said (summed usage, the last finish reason seen).
 */
export class LangChainChunkReader {
  readonly #stamper: ChunkStamper;
  readonly #calls: CallState[] = [];
  #last: CallState | undefined;
  #rawReason: string | undefined;
  #refused = false;
  #input: number | undefined;
  #output: number | undefined;
  #cached: number | undefined;
  #reasoning: number | undefined;

  constructor(provider: string) {
    this.#stamper = new ChunkStamper(provider);
  }

  read(item: AIMessageChunk | string, out: TokenChunk[]): void {
    if (typeof item === 'string') return this.#delta(item, 'text', out);
    const chunk = item as ChunkLike;
    this.#metadata(chunk.response_metadata);
    this.#delta((chunk.additional_kwargs as { reasoning_content?: unknown } | undefined)?.reasoning_content, 'reasoning', out);
    if (typeof chunk.content === 'string') this.#delta(chunk.content, 'text', out);
    else if (Array.isArray(chunk.content)) for (const part of chunk.content as unknown[]) this.#part(part, out);
    const streamed = Array.isArray(chunk.tool_call_chunks) ? (chunk.tool_call_chunks as unknown[]) : [];
    if (streamed.length > 0) for (const call of streamed) this.#callChunk(call, out);
    else if (Array.isArray(chunk.tool_calls)) for (const call of chunk.tool_calls as unknown[]) this.#wholeCall(call, out);
    this.#addUsage(chunk.usage_metadata);
  }

  /**
   * The final chunk: the finish reason the provider gave (`'tool-calls'` when calls were seen
   * and it said only `stop`), else `'tool-calls'` or `'stop'`; `'content-filter'` after a refusal.
   */
  finish(): TokenChunk {
    const given = this.#rawReason === undefined ? undefined : (FINISH_REASONS[this.#rawReason.toLowerCase()] ?? 'other');
    let reason: FinishReason = given ?? 'stop';
    if (reason === 'stop' && this.#calls.length > 0) reason = 'tool-calls';
    if (this.#refused) reason = 'content-filter';
    const usage: Usage | undefined =
      this.#input === undefined && this.#output === undefined ? undefined : { inputTokens: this.#input ?? 0, outputTokens: this.#output ?? 0 };
    if (usage !== undefined && this.#cached !== undefined) usage.cachedInputTokens = this.#cached;
    if (usage !== undefined && this.#reasoning !== undefined) usage.reasoningTokens = this.#reasoning;
    return this.#stamper.finish(reason, usage);
  }

  /** Typed content parts; `*_delta` types are the streamed form of the same part (as `concat` treats them). */
  #part(part: unknown, out: TokenChunk[]): void {
    if (typeof part === 'string') return this.#delta(part, 'text', out);
    if (part === null || typeof part !== 'object') return;
    const block = part as PartLike;
    const type = typeof block.type === 'string' ? block.type.replace(/_delta$/, '') : '';
    if (type === 'text') {
      this.#delta(block.text, 'text', out);
      for (const list of [block.annotations, block.citations]) {
        if (Array.isArray(list)) for (const citation of list as unknown[]) this.#source(citationSource(citation), out);
      }
    } else if (type === 'thinking') this.#delta(block.thinking, 'reasoning', out);
    else if (type === 'reasoning') {
      if (typeof block.reasoning === 'string') this.#delta(block.reasoning, 'reasoning', out);
      else if (Array.isArray(block.summary)) for (const item of block.summary as Array<{ text?: unknown } | null>) this.#delta(item?.text, 'reasoning', out);
    } else if (type === 'refusal' && typeof block.refusal === 'string' && block.refusal !== '') {
      this.#refused = true;
      this.#delta(block.refusal, 'text', out);
    }
  }

  #callChunk(value: unknown, out: TokenChunk[]): void {
    if (value === null || typeof value !== 'object') return;
    const chunk = value as { id?: unknown; name?: unknown; args?: unknown; index?: unknown };
    const id = typeof chunk.id === 'string' && chunk.id !== '' ? chunk.id : undefined;
    const name = typeof chunk.name === 'string' && chunk.name !== '' ? chunk.name : undefined;
    const index = typeof chunk.index === 'number' || typeof chunk.index === 'string' ? chunk.index : undefined;
    const call = this.#findCall(id, name, index) ?? this.#newCall(id, name, index);
    if ((id !== undefined && call.info.id === '') || (name !== undefined && call.info.name === '')) {
      call.info = { ...call.info, id: call.info.id || (id ?? ''), name: call.info.name || (name ?? '') };
    }
    this.#last = call;
    if (typeof chunk.args === 'string' && chunk.args !== '') out.push(this.#stamper.chunk(chunk.args, 'tool-call', { ...call.info }));
  }

  /** Matches `concat`: same `index` (and same `id` when both have one), or, without index, same `id`. */
  #findCall(id: string | undefined, name: string | undefined, index: number | string | undefined): CallState | undefined {
    if (index !== undefined) {
      return this.#calls.find((call) => call.index === index && (id === undefined || call.info.id === '' || call.info.id === id));
    }
    if (id !== undefined) return this.#calls.find((call) => call.index === undefined && call.info.id === id);
    // Neither: a fragment of the call being streamed, unless it names a new tool.
    return name === undefined ? this.#last : undefined;
  }

  #newCall(id: string | undefined, name: string | undefined, index: number | string | undefined): CallState {
    const call: CallState = { info: { id: id ?? '', name: name ?? '', index: this.#calls.length }, index };
    this.#calls.push(call);
    return call;
  }

  /** A complete call (`tool_calls` of a chunk without `tool_call_chunks`): its arguments as one chunk. */
  #wholeCall(value: unknown, out: TokenChunk[]): void {
    if (value === null || typeof value !== 'object') return;
    const call = value as { id?: unknown; name?: unknown; args?: unknown };
    const id = typeof call.id === 'string' ? call.id : '';
    if (id !== '' && this.#calls.some((known) => known.info.id === id)) return;
    const state = this.#newCall(id, typeof call.name === 'string' ? call.name : '', undefined);
    const args = typeof call.args === 'string' ? call.args : (JSON.stringify(call.args ?? {}) ?? '{}');
    out.push(this.#stamper.chunk(args, 'tool-call', { ...state.info }));
  }

  #metadata(metadata: unknown): void {
    if (metadata === null || typeof metadata !== 'object') return;
    const fields = metadata as Record<string, unknown>;
    const model = fields['model_name'] ?? fields['model'];
    if (typeof model === 'string' && model !== '') this.#stamper.model = model;
    for (const key of ['finish_reason', 'stop_reason', 'finishReason', 'stopReason']) {
      const reason = fields[key];
      if (typeof reason === 'string' && reason !== '') this.#rawReason = reason;
    }
  }

  /** LangChain's `concat` sums usage across chunks (Anthropic sends input and output tokens apart): so do we. */
  #addUsage(value: unknown): void {
    if (value === null || typeof value !== 'object') return;
    const usage = value as {
      input_tokens?: unknown;
      output_tokens?: unknown;
      input_token_details?: { cache_read?: unknown } | undefined;
      output_token_details?: { reasoning?: unknown } | undefined;
    };
    this.#input = add(this.#input, usage.input_tokens);
    this.#output = add(this.#output, usage.output_tokens);
    this.#cached = add(this.#cached, usage.input_token_details?.cache_read);
    this.#reasoning = add(this.#reasoning, usage.output_token_details?.reasoning);
  }

  #delta(token: unknown, type: ChunkType, out: TokenChunk[]): void {
    if (typeof token === 'string' && token !== '') out.push(this.#stamper.chunk(token, type));
  }

  #source(found: SourceInfo | undefined, out: TokenChunk[]): void {
    if (found === undefined) return;
    const chunk = this.#stamper.chunk('', 'source');
    chunk.source = found;
    out.push(chunk);
  }
}

function add(total: number | undefined, value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return total;
  return (total ?? 0) + value;
}

/** A standard `citation` annotation, or a citation of Anthropic's native text blocks. */
function citationSource(value: unknown): SourceInfo | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const citation = value as Record<string, unknown>;
  const source: SourceInfo = {};
  const url = citation['url'] ?? citation['source'];
  if (typeof url === 'string' && url !== '') source.url = url;
  const title = citation['title'] ?? citation['document_title'];
  if (typeof title === 'string' && title !== '') source.title = title;
  const documentIndex = citation['document_index'];
  if (typeof documentIndex === 'number') source.documentIndex = documentIndex;
  const cited = citation['citedText'] ?? citation['cited_text'];
  if (typeof cited === 'string' && cited !== '') source.citedText = cited;
  return Object.keys(source).length === 0 ? undefined : source;
}
