import type { Candidate, Citation, GenerateContentResponse, GenerateContentResponseUsageMetadata, GroundingChunk, Part } from '@google/genai';
import { ChunkStamper } from '../../chunk-stamper.js';
import { ProviderError } from '../../core/errors.js';
import type { FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../../core/types.js';
import type { GoogleErrorContext } from './google-errors.js';

/**
 * One item of a `generateContentStream` stream, as the SDK yields it (a `GenerateContentResponse`)
 * or as plain JSON from the wire: only data fields are read, never the SDK's getters.
 */
export type GoogleStreamResponse = Pick<
  GenerateContentResponse,
  'candidates' | 'modelVersion' | 'promptFeedback' | 'responseId' | 'usageMetadata'
>;

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content-filter',
  RECITATION: 'content-filter',
  BLOCKLIST: 'content-filter',
  PROHIBITED_CONTENT: 'content-filter',
  SPII: 'content-filter',
};

/**
 * Reads the responses of one Gemini stream, in order, into normalized chunks and remembers what
 * the final chunk needs: the finish reason, the latest usage (each response carries the running
 * total), and whether the prompt was blocked. Chunks are pushed onto the caller's array.
 */
export class GoogleResponseReader {
  readonly #stamper: ChunkStamper;
  readonly #context: GoogleErrorContext;
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  #blocked = false;
  #responseId: string | undefined;
  /** Calls so far (application and provider-executed): the next call's `index`. */
  #calls = 0;
  #applicationCalls = 0;
  readonly #sources = new Set<string>();

  constructor(context: GoogleErrorContext) {
    this.#context = context;
    this.#stamper = new ChunkStamper(context.provider);
  }

  /** Pushes the chunks of one response (often one, sometimes none or several) onto `out`. */
  read(response: GoogleStreamResponse, out: TokenChunk[]): void {
    if (response === null || typeof response !== 'object') return;
    if (typeof response.modelVersion === 'string' && response.modelVersion !== '') this.#stamper.model = response.modelVersion;
    if (typeof response.responseId === 'string' && response.responseId !== '') this.#responseId ??= response.responseId;
    if (response.usageMetadata) this.#usage = usageOf(response.usageMetadata);
    const blockReason: unknown = response.promptFeedback?.blockReason;
    if (typeof blockReason === 'string' && blockReason !== '') this.#blocked = true;
    const candidate = firstCandidate(response.candidates);
    if (candidate === undefined) return;
    for (const part of candidate.content?.parts ?? []) this.#part(part, out);
    for (const chunk of candidate.groundingMetadata?.groundingChunks ?? []) this.#source(groundingSource(chunk), out);
    // The SDK renames the Gemini API's `citationSources` to `citations`; raw JSON still has the wire name.
    const citationMetadata = candidate.citationMetadata as { citations?: Citation[]; citationSources?: Citation[] } | undefined;
    for (const citation of citationMetadata?.citations ?? citationMetadata?.citationSources ?? []) {
      this.#source(sourceOf(citation?.uri, citation?.title), out);
    }
    const finishReason: unknown = candidate.finishReason;
    if (typeof finishReason === 'string' && finishReason !== '') {
      const reason = FINISH_REASONS[finishReason] ?? 'other';
      this.#finishReason = reason === 'stop' && this.#applicationCalls > 0 ? 'tool-calls' : reason;
    }
  }

  /** The final chunk; a blocked prompt (no candidates, `promptFeedback.blockReason`) ends with `'content-filter'`. */
  finish(): TokenChunk {
    const reason = this.#finishReason ?? (this.#blocked ? 'content-filter' : undefined);
    if (reason === undefined) {
      throw new ProviderError('The stream ended before the provider finished', { retryable: true, provider: this.#context.provider });
    }
    return this.#stamper.finish(reason, this.#usage);
  }

  #part(part: Part, out: TokenChunk[]): void {
    if (part === null || typeof part !== 'object') return;
    if (typeof part.text === 'string' && part.text !== '') {
      out.push(this.#stamper.chunk(part.text, part.thought === true ? 'reasoning' : 'text'));
    }
    if (part.functionCall) {
      const { id, name, args } = part.functionCall;
      this.#applicationCalls += 1;
      this.#call(id, name, args, false, out);
    }
    if (part.executableCode) {
      const { id, code, language } = part.executableCode;
      this.#call(id, 'code_execution', { language, code }, true, out);
    }
    if (part.toolCall) {
      const { id, toolType, args } = part.toolCall;
      this.#call(id, typeof toolType === 'string' ? toolType.toLowerCase() : 'server_tool', args, true, out);
    }
  }

  /** A call arrives whole: one chunk with its complete JSON arguments. */
  #call(id: unknown, name: unknown, args: unknown, providerExecuted: boolean, out: TokenChunk[]): void {
    const index = this.#calls++;
    const info: ToolCallInfo = {
      // Gemini 2.x sends no ids: the response id and the position make one that is the same on every replay.
      id: typeof id === 'string' && id !== '' ? id : `call_${this.#responseId ?? 'gemini'}_${index}`,
      name: typeof name === 'string' ? name : '',
      index,
    };
    if (providerExecuted) info.providerExecuted = true;
    out.push(this.#stamper.chunk(JSON.stringify(args ?? {}), 'tool-call', info));
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
}

/** Candidate 0: Gemini sends `index` on each candidate, but not always (Vertex leaves out 0). */
function firstCandidate(candidates: Candidate[] | undefined): Candidate | undefined {
  if (!Array.isArray(candidates)) return undefined;
  return candidates.find((candidate, position) => (candidate?.index ?? position) === 0);
}

function groundingSource(chunk: GroundingChunk): SourceInfo | undefined {
  if (chunk === null || typeof chunk !== 'object') return undefined;
  if (chunk.web) return sourceOf(chunk.web.uri, chunk.web.title);
  if (chunk.retrievedContext) {
    const found = sourceOf(chunk.retrievedContext.uri, chunk.retrievedContext.title);
    const text = chunk.retrievedContext.text;
    if (found !== undefined && typeof text === 'string' && text !== '') found.citedText = text;
    return found;
  }
  if (chunk.maps) return sourceOf(chunk.maps.uri, chunk.maps.title);
  if (chunk.image) return sourceOf(chunk.image.sourceUri, chunk.image.title);
  return undefined;
}

function sourceOf(url: unknown, title: unknown): SourceInfo | undefined {
  const found: SourceInfo = {};
  if (typeof url === 'string' && url !== '') found.url = url;
  if (typeof title === 'string' && title !== '') found.title = title;
  return found.url === undefined && found.title === undefined ? undefined : found;
}

/**
 * Gemini counts thoughts apart from the candidates; tokenrelay's `outputTokens` includes the
 * reasoning, and `inputTokens` the results of server tools that were fed back to the model.
 */
function usageOf(metadata: GenerateContentResponseUsageMetadata): Usage {
  const count = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
  const usage: Usage = {
    inputTokens: count(metadata.promptTokenCount) + count(metadata.toolUsePromptTokenCount),
    outputTokens: count(metadata.candidatesTokenCount) + count(metadata.thoughtsTokenCount),
  };
  if (typeof metadata.cachedContentTokenCount === 'number') usage.cachedInputTokens = metadata.cachedContentTokenCount;
  if (typeof metadata.thoughtsTokenCount === 'number') usage.reasoningTokens = metadata.thoughtsTokenCount;
  return usage;
}
