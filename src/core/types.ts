/**
 * What a chunk carries: answer text, the model's reasoning, a fragment of a tool call's JSON
 * arguments, or a citation of a source the answer draws on.
 */
export type ChunkType = 'text' | 'reasoning' | 'tool-call' | 'source';

/**
 * Why a stream ended, normalized across providers.
 *
 * - `'stop'`: the model finished its answer (or hit a stop sequence).
 * - `'length'`: the output token limit was reached.
 * - `'tool-calls'`: the model stopped to call one or more tools.
 * - `'content-filter'`: the provider withheld or cut the output (includes refusals).
 * - `'error'`: the provider reported a failure in-band.
 * - `'other'`: any reason the provider gave that has no better match.
 * - `'aborted'` / `'timeout'`: the relay itself ended the stream.
 */
export type FinishReason =
  | 'stop'
  | 'length'
  | 'tool-calls'
  | 'content-filter'
  | 'error'
  | 'other'
  | 'aborted'
  | 'timeout';

/** Token counts as the provider reported them. */
export interface Usage {
  /** Prompt tokens, including any that were served from the provider's prompt cache. */
  inputTokens: number;
  /** Generated tokens, including reasoning tokens. */
  outputTokens: number;
  /** Part of `inputTokens` that was read from the provider's prompt cache. */
  cachedInputTokens?: number | undefined;
  /** Part of `outputTokens` the model spent on hidden reasoning. */
  reasoningTokens?: number | undefined;
}

/** Identifies the tool call a `'tool-call'` chunk belongs to. */
export interface ToolCallInfo {
  /** The provider's id for this call (used to send the tool result back). */
  id: string;
  /** The name of the tool being called. */
  name: string;
  /** 0-based position of this call among the calls of the same response. */
  index: number;
  /**
   * `true` for a tool the provider ran itself (a server tool such as web search, code execution
   * or a remote MCP tool): relayed so a UI can show it, never to be executed by the application.
   * @defaultValue `undefined` (the application runs the tool)
   */
  providerExecuted?: boolean | undefined;
}

/**
 * Where an answer came from: on `'source'` chunks (their `token` is `''`). Every field is
 * optional because providers cite differently: a web result has a `url` and `title`, a
 * citation of a document passed in the request has its `documentIndex` and the `citedText`.
 */
export interface SourceInfo {
  /** The cited web page. */
  url?: string | undefined;
  /** The page's or document's title. */
  title?: string | undefined;
  /** 0-based position of the cited document among those sent in the request. */
  documentIndex?: number | undefined;
  /** The passage of the source the answer relies on. */
  citedText?: string | undefined;
}

/**
 * One normalized piece of a model's output. Flat and JSON-serializable: this is the shape
 * that goes over the wire.
 *
 * @example
 * ```ts
 * const chunk: TokenChunk = { token: 'Hel', index: 0, timestamp: 12.5, type: 'text' };
 * ```
 */
export interface TokenChunk {
  /** The text delta; `''` on a chunk that only carries metadata (such as the last one). */
  token: string;
  /** 0-based, gap-free position in the stream. It is the SSE `id` and the resume cursor. */
  index: number;
  /** When the adapter received this chunk, in ms on the monotonic clock (`performance.now()`). */
  timestamp: number;
  /**
   * What `token` holds.
   * @defaultValue `'text'`
   */
  type: ChunkType;
  /** On `'tool-call'` chunks: the call that `token` (a JSON fragment of its arguments) belongs to. */
  toolCall?: ToolCallInfo | undefined;
  /** On `'source'` chunks: the citation. */
  source?: SourceInfo | undefined;
  /** Set on the last chunk of a stream, and only there. */
  finishReason?: FinishReason | undefined;
  /** Token counts, usually on the last chunk. */
  usage?: Usage | undefined;
  /** The model that produced the chunk, where the provider said. */
  model?: string | undefined;
  /** The provider that produced the chunk, e.g. `'openai'` or `'anthropic'`. */
  provider?: string | undefined;
}

/** A stream of normalized chunks: what adapters produce and operators consume. */
export type TokenStream = AsyncIterable<TokenChunk>;

/**
 * Starts a stream for one request. The signal is aborted when the client goes away (or a
 * timeout fires); pass it to the provider SDK so its HTTP request is cancelled too.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) =>
 *   streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal });
 * ```
 */
export type TokenSourceFactory = (signal: AbortSignal) => AsyncIterable<TokenChunk>;

/** A step of a pipeline: takes a stream, returns a stream. Composed with {@link pipe}. */
export type Operator<In, Out> = (source: AsyncIterable<In>) => AsyncIterable<Out>;
