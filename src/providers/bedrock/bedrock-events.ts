// How each ConverseStream event becomes TokenChunks: one `BedrockEventReader` per stream.
import type { ConverseStreamOutput } from '@aws-sdk/client-bedrock-runtime';
import { ChunkStamper } from '../../chunk-stamper.js';
import { ProviderError } from '../../core/errors.js';
import type { FinishReason, SourceInfo, TokenChunk, ToolCallInfo, Usage } from '../../core/types.js';
import { streamException, type BedrockErrorContext } from './bedrock-errors.js';

/** One event of `ConverseStreamCommand`'s `output.stream`, as the SDK yields it. */
export type BedrockStreamEvent = ConverseStreamOutput;

type Fields = Record<string, unknown>;

/** A tool call, by `contentBlockIndex`: whether any of its input arrived yet. */
interface ToolBlock {
  info: ToolCallInfo;
  streamed: boolean;
}

/** A citation being streamed in a content block: its location first, then its cited text in pieces. */
interface PendingCitation {
  source: SourceInfo;
  cited: string;
}

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  tool_use: 'tool-calls',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  guardrail_intervened: 'content-filter',
  content_filtered: 'content-filter',
  malformed_model_output: 'error',
  malformed_tool_use: 'error',
};

/** The exception members of the union: the SDK throws them, other sources may yield them. */
const EXCEPTION_MEMBERS = [
  'throttlingException',
  'modelStreamErrorException',
  'validationException',
  'serviceUnavailableException',
  'internalServerException',
] as const;

/**
 * Reads the events of one ConverseStream, in order, into normalized chunks, and remembers what
 * the final chunk needs: the stop reason (`messageStop`) and the usage (`metadata`, which
 * Bedrock sends after `messageStop`). Chunks are pushed onto the caller's array.
 */
export class BedrockEventReader {
  readonly #stamper: ChunkStamper;
  readonly #context: BedrockErrorContext;
  readonly #tools = new Map<number, ToolBlock>();
  readonly #citations = new Map<number, PendingCitation>();
  #toolCount = 0;
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;

  constructor(context: BedrockErrorContext, model?: string) {
    this.#context = context;
    this.#stamper = new ChunkStamper(context.provider, model);
  }

  /** Whether `messageStop` came. */
  get stopped(): boolean {
    return this.#finishReason !== undefined;
  }

  /** Pushes the chunks of one event (none, one or several) onto `out`; throws for an exception member. */
  read(event: BedrockStreamEvent, out: TokenChunk[]): void {
    if (event === null || typeof event !== 'object') return;
    const fields = event as unknown as Fields;
    if (isObject(fields['contentBlockDelta'])) this.#delta(fields['contentBlockDelta'], out);
    else if (isObject(fields['contentBlockStart'])) this.#start(fields['contentBlockStart']);
    else if (isObject(fields['contentBlockStop'])) this.#closeBlock(index(fields['contentBlockStop']), out);
    else if (isObject(fields['messageStop'])) this.#stop(fields['messageStop'], out);
    else if (isObject(fields['metadata'])) this.#metadata(fields['metadata']);
    else {
      for (const member of EXCEPTION_MEMBERS) {
        const body = fields[member];
        if (isObject(body)) throw streamException(member, body, this.#context, event);
      }
    }
    // `messageStart` (the role) and members this version does not know carry nothing to relay.
  }

  /** The final chunk; a stream that ended before `messageStop` throws a retryable error. */
  finish(): TokenChunk {
    if (this.#finishReason === undefined) {
      throw new ProviderError('The stream ended before the provider finished', { retryable: true, provider: this.#context.provider });
    }
    return this.#stamper.finish(this.#finishReason, this.#usage);
  }

  #start(event: Fields): void {
    const toolUse = (event['start'] as Fields | null | undefined)?.['toolUse'];
    if (!isObject(toolUse)) return;
    const info: ToolCallInfo = { id: text(toolUse['toolUseId']), name: text(toolUse['name']), index: this.#toolCount++ };
    if (toolUse['type'] === 'server_tool_use') info.providerExecuted = true;
    this.#tools.set(index(event), { info, streamed: false });
  }

  #delta(event: Fields, out: TokenChunk[]): void {
    const delta = event['delta'];
    if (!isObject(delta)) return;
    if (typeof delta['text'] === 'string') {
      if (delta['text'] !== '') out.push(this.#stamper.chunk(delta['text']));
    } else if (isObject(delta['reasoningContent'])) {
      // `signature` and `redactedContent` (encrypted reasoning) are for sending back, not for reading.
      const reasoning = delta['reasoningContent']['text'];
      if (typeof reasoning === 'string' && reasoning !== '') out.push(this.#stamper.chunk(reasoning, 'reasoning'));
    } else if (isObject(delta['toolUse'])) {
      const tool = this.#tools.get(index(event));
      const input = delta['toolUse']['input'];
      if (tool === undefined || typeof input !== 'string' || input === '') return;
      tool.streamed = true;
      out.push(this.#stamper.chunk(input, 'tool-call', { ...tool.info }));
    } else if (isObject(delta['citation'])) {
      this.#citation(index(event), delta['citation'], out);
    }
    // `toolResult` (a server tool's output) and `image` deltas are not relayed.
  }

  /**
   * A citation delta: one that names a location or a title starts a citation, one with only
   * `sourceContent` adds to the cited text of the citation before it. Each goes out whole, once,
   * when the next begins or its block ends.
   */
  #citation(blockIndex: number, delta: Fields, out: TokenChunk[]): void {
    const pending = this.#citations.get(blockIndex);
    const cited = citedText(delta['sourceContent']);
    const source = citationSource(delta);
    if (pending !== undefined && Object.keys(source).length === 0) {
      pending.cited += cited;
      return;
    }
    this.#flushCitation(blockIndex, out);
    this.#citations.set(blockIndex, { source, cited });
  }

  #flushCitation(blockIndex: number, out: TokenChunk[]): void {
    const pending = this.#citations.get(blockIndex);
    if (pending === undefined) return;
    this.#citations.delete(blockIndex);
    const source = pending.cited === '' ? pending.source : { ...pending.source, citedText: pending.cited };
    if (Object.keys(source).length === 0) return;
    const chunk = this.#stamper.chunk('', 'source');
    chunk.source = source;
    out.push(chunk);
  }

  /** Ends a block: its last citation goes out, and a tool call whose input never arrived (no parameters) gets `{}`. */
  #closeBlock(blockIndex: number, out: TokenChunk[]): void {
    this.#flushCitation(blockIndex, out);
    const tool = this.#tools.get(blockIndex);
    if (tool === undefined) return;
    this.#tools.delete(blockIndex);
    if (!tool.streamed) out.push(this.#stamper.chunk('{}', 'tool-call', tool.info));
  }

  #stop(event: Fields, out: TokenChunk[]): void {
    const open = new Set([...this.#tools.keys(), ...this.#citations.keys()]);
    for (const blockIndex of [...open].sort((a, b) => a - b)) this.#closeBlock(blockIndex, out);
    const reason = event['stopReason'];
    this.#finishReason = (typeof reason === 'string' ? FINISH_REASONS[reason] : undefined) ?? 'other';
  }

  #metadata(event: Fields): void {
    const usage = event['usage'];
    if (!isObject(usage)) return;
    const cacheRead = count(usage['cacheReadInputTokens']);
    // Bedrock's `inputTokens` leaves out the tokens read from or written to the prompt cache.
    const result: Usage = {
      inputTokens: count(usage['inputTokens']) + cacheRead + count(usage['cacheWriteInputTokens']),
      outputTokens: count(usage['outputTokens']),
    };
    if (cacheRead > 0) result.cachedInputTokens = cacheRead;
    this.#usage = result;
  }
}

/** Where a `citation` delta points: a web page, or a document passed in the request. */
function citationSource(citation: Fields): SourceInfo {
  const source: SourceInfo = {};
  const location = citation['location'];
  if (isObject(location)) {
    const web = location['web'];
    if (isObject(web) && typeof web['url'] === 'string') source.url = web['url'];
    for (const kind of ['documentChar', 'documentPage', 'documentChunk']) {
      const document = location[kind];
      if (isObject(document) && typeof document['documentIndex'] === 'number') source.documentIndex = document['documentIndex'];
    }
  }
  if (typeof citation['title'] === 'string') source.title = citation['title'];
  return source;
}

function citedText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content.map((part: unknown) => (isObject(part) && typeof part['text'] === 'string' ? part['text'] : '')).join('');
}

function isObject(value: unknown): value is Fields {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function index(event: Fields): number {
  const value = event['contentBlockIndex'];
  return typeof value === 'number' ? value : 0;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
