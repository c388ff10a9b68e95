import type { ChunkType, FinishReason, TokenChunk, ToolCallInfo, Usage } from './core/types.js';

/**
 * Builds the chunks of one stream: a gap-free `index`, a monotonic `timestamp`, and the
 * `provider`/`model` once known. Fields that are unknown are left out rather than set to
 * `undefined`, so chunks serialize compactly.
 */
export class ChunkStamper {
  provider: string | undefined;
  model: string | undefined;
  #index = 0;

  constructor(provider?: string, model?: string) {
    this.provider = provider;
    this.model = model;
  }

  /** How many chunks were made so far. */
  get count(): number {
    return this.#index;
  }

  chunk(token: string, type: ChunkType = 'text', toolCall?: ToolCallInfo): TokenChunk {
    const chunk: TokenChunk = { token, index: this.#index++, timestamp: performance.now(), type };
    if (toolCall !== undefined) chunk.toolCall = toolCall;
    return this.#describe(chunk);
  }

  finish(finishReason: FinishReason, usage?: Usage): TokenChunk {
    const chunk: TokenChunk = {
      token: '',
      index: this.#index++,
      timestamp: performance.now(),
      type: 'text',
      finishReason,
    };
    if (usage !== undefined) chunk.usage = usage;
    return this.#describe(chunk);
  }

  #describe(chunk: TokenChunk): TokenChunk {
    if (this.model !== undefined) chunk.model = this.model;
    if (this.provider !== undefined) chunk.provider = this.provider;
    return chunk;
  }
}
