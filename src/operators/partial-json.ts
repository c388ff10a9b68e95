import type { Operator, TokenChunk, ToolCallInfo } from '../core/types.js';
import { Interruptible } from '../core/kernel.js';
import type { InvalidJSONError } from '../core/errors.js';
import { JSONPrefixParser } from './internal/json-prefix-parser.js';


/** `T` with every member optional, at every depth: the shape of a value still being streamed. */
export type PartialDeep<T> = T extends readonly (infer E)[]
  ? PartialDeep<E>[]
  : T extends object
    ? { [K in keyof T]?: PartialDeep<T[K]> }
    : T;

/** A value parsed from a prefix of the JSON text, and whether it is the complete document. */
export type PartialJSONResult<T = unknown> =
  | {
      /** The document parsed so far: incomplete strings, arrays and objects as far as they arrived. */
      value: PartialDeep<T>;
      /** `false` while the document is incomplete. */
      done: false;
    }
  | {
      /** The complete document. */
      value: T;
      /** `true` once the document is complete. */
      done: true;
    };

/** The parsed arguments of one tool call so far; `done` once they are complete. */
export type PartialToolCall<Args = unknown> = ToolCallInfo &
  (
    | {
        /** The arguments parsed so far. */
        arguments: PartialDeep<Args>;
        /** `false` while the call's arguments are still arriving. */
        done: false;
      }
    | {
        /** The complete arguments. */
        arguments: Args;
        /** `true` once the call's arguments are complete. */
        done: true;
      }
  );


const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Parses the text of a stream (the `token`s of `'text'` chunks, or plain strings) as one JSON
 * document while it arrives, for structured output. Yields a value each time it changed:
 * strings grow, members and elements are added, and numbers, `true`, `false` and `null`
 * appear only once complete, so no value ever contradicts the final one. The value is
 * yielded with `done: true` as soon as the document is complete. Throws an
 * {@link InvalidJSONError} (and stops the source) as soon as the text cannot be JSON, or when
 * it ends incomplete.
 *
 * Each character is parsed once; every yielded value is a fresh snapshot that shares the
 * completed parts with the previous one, so the cost per change is the size of the
 * containers still open, not of the whole document.
 *
 * @example
 * ```ts
 * for await (const { value, done } of pipe(stream, partialJSON<{ title: string; tags: string[] }>())) {
 *   render(value.title, value.tags); // done: value is the full document
 * }
 * ```
 */
export function partialJSON<T = unknown>(): Operator<TokenChunk | string, PartialJSONResult<T>> {
  return (source) => ({
    [Symbol.asyncIterator]: () => new DocumentIterator<T>(source),
  });
}

class DocumentIterator<T> implements AsyncIterableIterator<PartialJSONResult<T>> {
  readonly #inner: Interruptible<TokenChunk | string>;
  readonly #parser = new JSONPrefixParser();
  #stopped = false;

  constructor(source: AsyncIterable<TokenChunk | string>) {
    this.#inner = new Interruptible(source);
  }

  async next(): Promise<IteratorResult<PartialJSONResult<T>>> {
    const parser = this.#parser;
    for (;;) {
      if (this.#stopped) return DONE;
      const result = await this.#inner.next();
      if (result.done === true) {
        if (this.#stopped) return DONE;
        this.#stopped = true;
        parser.end();
      } else {
        const text = typeof result.value === 'string' ? result.value : result.value.type === 'text' ? result.value.token : '';
        if (text === '') continue;
        try {
          parser.push(text);
        } catch (error) {
          this.#stop();
          throw error;
        }
      }
      if (parser.changed) {
        return { done: false, value: { value: parser.snapshot(), done: parser.complete } as PartialJSONResult<T> };
      }
    }
  }

  return(): Promise<IteratorResult<PartialJSONResult<T>>> {
    this.#stop();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<PartialJSONResult<T>>> {
    this.#stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #stop(): void {
    this.#stopped = true;
    this.#inner.stop();
  }
}

/**
 * Reassembles the JSON fragments of `'tool-call'` chunks into parsed arguments, per call (by
 * `toolCall.index`), with the same guarantees as {@link partialJSON}. Yields a call each time
 * its arguments changed, and once with `done: true` when they are complete (at the closing
 * brace, or at the end of the stream; a call that streamed no arguments gets `{}`). Other
 * chunks are skipped.
 *
 * @example
 * ```ts
 * for await (const call of pipe(stream, partialToolCalls())) {
 *   if (call.done) results.push(await tools[call.name](call.arguments));
 * }
 * ```
 */
export function partialToolCalls<Args = unknown>(): Operator<TokenChunk, PartialToolCall<Args>> {
  return (source) => ({
    [Symbol.asyncIterator]: () => new ToolCallIterator<Args>(source),
  });
}

interface CallState {
  info: ToolCallInfo;
  parser: JSONPrefixParser;
  done: boolean;
}

class ToolCallIterator<Args> implements AsyncIterableIterator<PartialToolCall<Args>> {
  readonly #inner: Interruptible<TokenChunk>;
  readonly #calls = new Map<number, CallState>();
  #last: CallState | undefined;
  #finishing: Iterator<CallState> | undefined;
  #stopped = false;

  constructor(source: AsyncIterable<TokenChunk>) {
    this.#inner = new Interruptible(source);
  }

  async next(): Promise<IteratorResult<PartialToolCall<Args>>> {
    for (;;) {
      if (this.#finishing !== undefined) return this.#finishNext(this.#finishing);
      if (this.#stopped) return DONE;
      const result = await this.#inner.next();
      if (result.done === true) {
        if (this.#stopped) return DONE;
        this.#finishing = this.#calls.values();
        continue;
      }
      const chunk = result.value;
      if (chunk.type !== 'tool-call') continue;
      const call = this.#callOf(chunk.toolCall);
      if (call === undefined || chunk.token === '') continue;
      try {
        call.parser.push(chunk.token);
      } catch (error) {
        this.#stop();
        throw error;
      }
      if (call.parser.changed) return this.#emit(call, call.parser.snapshot());
    }
  }

  return(): Promise<IteratorResult<PartialToolCall<Args>>> {
    this.#stop();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<PartialToolCall<Args>>> {
    this.#stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  // Chunks after the first of a call may leave out `toolCall`: they continue the last call.
  #callOf(info: ToolCallInfo | undefined): CallState | undefined {
    if (info === undefined) return this.#last;
    let call = this.#calls.get(info.index);
    if (call === undefined) {
      call = { info, parser: new JSONPrefixParser(info), done: false };
      this.#calls.set(info.index, call);
    }
    this.#last = call;
    return call;
  }

  #finishNext(calls: Iterator<CallState>): IteratorResult<PartialToolCall<Args>> {
    for (let step = calls.next(); step.done !== true; step = calls.next()) {
      const call = step.value;
      if (call.done) continue;
      if (!call.parser.started) return this.#emit(call, {}, true);
      try {
        call.parser.end();
      } catch (error) {
        this.#finishing = undefined;
        this.#stopped = true;
        throw error;
      }
      return this.#emit(call, call.parser.snapshot());
    }
    this.#stopped = true;
    this.#finishing = undefined;
    return DONE;
  }

  #stop(): void {
    this.#stopped = true;
    this.#inner.stop();
  }

  #emit(call: CallState, value: unknown, done = call.parser.complete): IteratorResult<PartialToolCall<Args>> {
    call.done = done;
    const { id, name, index } = call.info;
    return { done: false, value: { id, name, index, arguments: value, done } as PartialToolCall<Args> };
  }
}
