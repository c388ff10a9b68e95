import type { TokenChunk } from '../../core/types.js';

// Shared by every empty buffer, never written: a push first grows the buffer.
const NO_ITEMS: (TokenChunk | undefined)[] = [];
const NO_SIZES: number[] = [];

/**
 * The read-ahead buffer of `withBackpressure`: a growable ring of chunks that keeps the exact
 * UTF-8 size of the buffered `token` text and can merge runs of neighbouring chunks of the same
 * kind into one ({@link ChunkBuffer.coalesce}).
 */
export class ChunkBuffer {
  // Made on the first push: a stream that waits on a slow source holds no slots.
  #items: (TokenChunk | undefined)[] = NO_ITEMS;
  #sizes: number[] = NO_SIZES;
  #mask = -1;
  #head = 0;
  #length = 0;
  #bytes = 0;
  // The first #settled chunks hold no mergeable neighbours, so coalesce() rescans only the rest.
  #settled = 0;

  get length(): number {
    return this.#length;
  }

  /** UTF-8 bytes of the buffered `token` text. */
  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: TokenChunk, size: number): void {
    if (this.#length > this.#mask) this.#grow();
    const slot = (this.#head + this.#length) & this.#mask;
    this.#items[slot] = chunk;
    this.#sizes[slot] = size;
    this.#length++;
    this.#bytes += size;
  }

  /** Removes and returns the oldest chunk; the buffer must not be empty. */
  shift(): TokenChunk {
    const slot = this.#head;
    const chunk = this.#items[slot] as TokenChunk;
    this.#items[slot] = undefined;
    this.#bytes -= this.#sizes[slot] as number;
    this.#head = (slot + 1) & this.#mask;
    this.#length--;
    if (this.#settled > 0) this.#settled--;
    return chunk;
  }

  /** Merges every run of mergeable neighbours into one chunk (see {@link canMerge}). */
  coalesce(): void {
    const items = this.#items;
    const sizes = this.#sizes;
    const mask = this.#mask;
    const head = this.#head;
    let write = this.#settled > 0 ? this.#settled - 1 : 0;
    let owned = false;
    for (let read = write + 1; read < this.#length; read++) {
      const target = (head + write) & mask;
      const from = (head + read) & mask;
      const last = items[target] as TokenChunk;
      const next = items[from] as TokenChunk;
      if (canMerge(last, next)) {
        // The first merge copies: the source may still hold the chunk objects it yielded.
        items[target] = owned ? appendTo(last, next) : appendTo({ ...last }, next);
        owned = true;
        sizes[target] = (sizes[target] as number) + (sizes[from] as number);
      } else {
        write++;
        owned = false;
        const slot = (head + write) & mask;
        items[slot] = next;
        sizes[slot] = sizes[from] as number;
      }
    }
    for (let index = write + 1; index < this.#length; index++) items[(head + index) & mask] = undefined;
    this.#length = this.#length === 0 ? 0 : write + 1;
    this.#settled = this.#length;
  }

  /** Drops every chunk, releasing the memory. */
  clear(): void {
    this.#items = NO_ITEMS;
    this.#sizes = NO_SIZES;
    this.#mask = -1;
    this.#head = 0;
    this.#length = 0;
    this.#bytes = 0;
    this.#settled = 0;
  }

  #grow(): void {
    const capacity = Math.max(16, (this.#mask + 1) * 2);
    const items = new Array<TokenChunk | undefined>(capacity).fill(undefined);
    const sizes = new Array<number>(capacity).fill(0);
    for (let index = 0; index < this.#length; index++) {
      const slot = (this.#head + index) & this.#mask;
      items[index] = this.#items[slot];
      sizes[index] = this.#sizes[slot] as number;
    }
    this.#items = items;
    this.#sizes = sizes;
    this.#mask = capacity - 1;
    this.#head = 0;
  }
}

/**
 * Whether `next` can be merged into the chunk just before it without losing anything: same kind
 * (and the same tool call), same model and provider, and neither carries a `finishReason` or
 * `usage`.
 */
export function canMerge(last: TokenChunk, next: TokenChunk): boolean {
  return (
    last.type === next.type &&
    last.finishReason === undefined &&
    next.finishReason === undefined &&
    last.usage === undefined &&
    next.usage === undefined &&
    last.model === next.model &&
    last.provider === next.provider &&
    (last.type !== 'tool-call' || (last.toolCall !== undefined && last.toolCall.id === next.toolCall?.id))
  );
}

function appendTo(target: TokenChunk, next: TokenChunk): TokenChunk {
  target.token += next.token;
  target.index = next.index;
  target.timestamp = next.timestamp;
  return target;
}

/** The exact number of bytes `text` takes in UTF-8 (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(index + 1))) {
      bytes += 2;
      index++;
    } else bytes += 2;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
