import type { TextStreamPart, ToolSet } from 'ai';
import { ChunkStamper } from '../chunk-stamper.js';
import type { ChunkType, FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../core/types.js';
import { abortedError, earlyEndError, toSourceError, type SourceErrorContext } from './source-errors.js';

/** One part of an AI SDK `fullStream`, for any tool set. */
export type AISDKStreamPart = TextStreamPart<ToolSet>;

/** A call seen in `tool-input-start`, by its id. */
interface CallState {
  info: ToolCallInfo;
  /** Its input was streamed (JSON deltas were relayed), so the complete `tool-call` adds nothing. */
  streamed: boolean;
  /** `inputEncoding: 'text'`: the deltas are not JSON, only the complete input is relayed. */
  textInput: boolean;
}

const FINISH_REASONS: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool-calls',
  'content-filter': 'content-filter',
  error: 'error',
  other: 'other',
};

/**
 * Reads the parts of one `fullStream`, in order, into chunks pushed onto the caller's array,
 * and remembers what the final chunk needs. `abort` and `error` parts throw; the `finish`
 * part makes {@link AISDKPartReader.finished} true and the next {@link AISDKPartReader.finish}
 * returns the final chunk.
 */
export class AISDKPartReader {
  readonly #stamper: ChunkStamper;
  readonly #context: SourceErrorContext;
  readonly #calls = new Map<string, CallState>();
  readonly #sources = new Set<string>();
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;

  constructor(context: SourceErrorContext) {
    this.#context = context;
    this.#stamper = new ChunkStamper(context.provider);
  }

  /** The `finish` part arrived: nothing that follows it is relayed. */
  get finished(): boolean {
    return this.#finishReason !== undefined;
  }

  read(part: AISDKStreamPart, out: TokenChunk[]): void {
    if (part === null || typeof part !== 'object') return;
    switch (part.type) {
      case 'text-delta':
        return this.#delta(part.text ?? (part as { delta?: unknown }).delta, 'text', out);
      case 'reasoning-delta':
        return this.#delta(part.text ?? (part as { delta?: unknown }).delta, 'reasoning', out);
      case 'text-end':
        for (const citation of part.citations ?? []) this.#source(citationSource(citation), out);
        return;
      case 'tool-input-start':
        this.#startCall(part.id, part.toolName, part.providerExecuted === true, part.inputEncoding === 'text');
        return;
      case 'tool-input-delta':
        return this.#inputDelta(part.id, part.delta, out);
      case 'tool-call':
        return this.#completeCall(part.toolCallId, part.toolName, part.input, part.providerExecuted === true, out);
      case 'source':
        return this.#source(sourceOf(part), out);
      case 'finish-step':
        return this.#setModel(part.response?.modelId);
      case 'finish':
        this.#usage = usageOf(part.totalUsage);
        this.#finishReason = FINISH_REASONS[part.finishReason] ?? 'other';
        return;
      case 'abort':
        throw abortedError(this.#context.signal?.aborted === true ? this.#context.signal.reason : part.reason);
      case 'error':
        throw toSourceError(part.error, this.#context);
      default:
        // start, start-step, text-start/-end, reasoning-start/-end, tool-input-end, tool-result,
        // tool-error, tool-output-denied, tool-approval-*, file, reasoning-file, custom, raw,
        // ping, steering-message: nothing a TokenChunk carries.
        return;
    }
  }

  /** The final chunk; throws when the stream ended before its `finish` part. */
  finish(): TokenChunk {
    if (this.#finishReason === undefined) throw earlyEndError(this.#context);
    return this.#stamper.finish(this.#finishReason, this.#usage);
  }

  #delta(token: unknown, type: ChunkType, out: TokenChunk[]): void {
    if (typeof token === 'string' && token !== '') out.push(this.#stamper.chunk(token, type));
  }

  #startCall(id: string, name: string, providerExecuted: boolean, textInput: boolean): CallState {
    const known = this.#calls.get(id);
    if (known !== undefined) return known;
    const info: ToolCallInfo = { id, name, index: this.#calls.size };
    if (providerExecuted) info.providerExecuted = true;
    const call: CallState = { info, streamed: false, textInput };
    this.#calls.set(id, call);
    return call;
  }

  #inputDelta(id: string, delta: unknown, out: TokenChunk[]): void {
    const call = this.#calls.get(id);
    if (call === undefined || call.textInput || typeof delta !== 'string' || delta === '') return;
    call.streamed = true;
    out.push(this.#stamper.chunk(delta, 'tool-call', { ...call.info }));
  }

  /** The complete call: relayed whole unless its JSON input was already streamed. */
  #completeCall(id: string, name: string, input: unknown, providerExecuted: boolean, out: TokenChunk[]): void {
    const call = this.#startCall(id, name, providerExecuted, false);
    if (call.streamed) return;
    call.streamed = true;
    out.push(this.#stamper.chunk(inputJSON(input), 'tool-call', { ...call.info }));
  }

  #source(found: SourceInfo | undefined, out: TokenChunk[]): void {
    if (found === undefined) return;
    const key = JSON.stringify([found.url, found.title, found.citedText]);
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

/**
 * The `fullStream` has parsed the input; an invalid call keeps the raw text the model sent.
 * A call without input still shows up once, as `{}`.
 */
function inputJSON(input: unknown): string {
  if (typeof input === 'string') return input;
  return JSON.stringify(input ?? {}) ?? '{}';
}

interface SourceLike {
  sourceType?: unknown;
  url?: unknown;
  title?: unknown;
  filename?: unknown;
}

function sourceOf(part: SourceLike): SourceInfo | undefined {
  const source: SourceInfo = {};
  if (typeof part.url === 'string' && part.url !== '') source.url = part.url;
  if (typeof part.title === 'string' && part.title !== '') source.title = part.title;
  else if (typeof part.filename === 'string' && part.filename !== '') source.title = part.filename;
  return source.url === undefined && source.title === undefined ? undefined : source;
}

function citationSource(citation: { source?: unknown; citedText?: unknown }): SourceInfo | undefined {
  const source = sourceOf((citation?.source ?? {}) as SourceLike);
  if (source !== undefined && typeof citation.citedText === 'string' && citation.citedText !== '') source.citedText = citation.citedText;
  return source;
}

interface UsageLike {
  inputTokens?: unknown;
  outputTokens?: unknown;
  inputTokenDetails?: { cacheReadTokens?: unknown } | undefined;
  outputTokenDetails?: { reasoningTokens?: unknown } | undefined;
  /** AI SDK 5 and 6 (deprecated in 6). */
  cachedInputTokens?: unknown;
  reasoningTokens?: unknown;
}

/** The AI SDK's `LanguageModelUsage`; left out when the provider reported no token counts. */
function usageOf(total: unknown): Usage | undefined {
  if (total === null || typeof total !== 'object') return undefined;
  const usage = total as UsageLike;
  const input = count(usage.inputTokens);
  const output = count(usage.outputTokens);
  if (input === undefined && output === undefined) return undefined;
  const result: Usage = { inputTokens: input ?? 0, outputTokens: output ?? 0 };
  const cached = count(usage.inputTokenDetails?.cacheReadTokens) ?? count(usage.cachedInputTokens);
  const reasoning = count(usage.outputTokenDetails?.reasoningTokens) ?? count(usage.reasoningTokens);
  if (cached !== undefined) result.cachedInputTokens = cached;
  if (reasoning !== undefined) result.reasoningTokens = reasoning;
  return result;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
