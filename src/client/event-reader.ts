import { createParser, type EventSourceParser } from 'eventsource-parser';
import type { ServerSentEvent } from './types.js';

/** Largest event (or unterminated line) the client buffers, in UTF-16 code units. */
export const MAX_EVENT_SIZE = 16 * 1024 * 1024;

/** What one response body produced so far, for the connection loop to act on. */
export interface EventSink {
  event(event: ServerSentEvent): void;
  retry(ms: number): void;
  overflow(): void;
}

/**
 * Turns the bytes of one response into events, following the WHATWG event-stream rules: UTF-8
 * always (whatever the charset says), a leading BOM dropped, CR, LF and CRLF line ends, an event
 * cut off by the end of the body discarded. A multibyte character split across network chunks is
 * decoded whole (`TextDecoder` in stream mode). One reader per response; the last event id is
 * kept by the caller, since it outlives responses.
 *
 * The parser dispatches nothing for a block without `data`, but by the rules such a block's `id`
 * still becomes the last event id (the next event carries it, and a reconnection sends it). So
 * the lines are also followed here, and the text is fed to the parser up to the end of each such
 * block before the id is set, which keeps events and ids in stream order.
 */
export class EventReader {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;
  readonly #lastEventId: { value: string };
  // The current line so far: whole for an `id` line, else only enough to tell its field name.
  #line = '';
  // The last chunk ended with CR: an LF at the start of the next one ends the same line.
  #afterCR = false;
  // The current block's id (if it set one) and whether it has a `data` field.
  #blockId: string | undefined;
  #blockHasData = false;

  constructor(sink: EventSink, lastEventId: { value: string }) {
    this.#lastEventId = lastEventId;
    this.#parser = createParser({
      maxBufferSize: MAX_EVENT_SIZE,
      onEvent({ id, event, data }) {
        // The parser reports an id only on the event whose block set it; the spec's buffer persists.
        if (id !== undefined) lastEventId.value = id;
        sink.event({ event: event ?? 'message', data, lastEventId: lastEventId.value });
      },
      onRetry: (ms) => sink.retry(ms),
      onError(error) {
        if (error.type === 'max-buffer-size-exceeded') sink.overflow();
      },
    });
  }

  push(bytes: Uint8Array): void {
    const text = this.#decoder.decode(bytes, { stream: true });
    if (text === '') return;
    let fed = 0;
    let lineStart = this.#afterCR && text.charCodeAt(0) === LF ? 1 : 0;
    this.#afterCR = false;
    for (let index = lineStart; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code !== LF && code !== CR) continue;
      const line = this.#line + text.slice(lineStart, index);
      this.#line = '';
      if (code === CR) {
        if (index + 1 === text.length) this.#afterCR = true;
        else if (text.charCodeAt(index + 1) === LF) index++;
      }
      lineStart = index + 1;
      if (line !== '') {
        this.#field(line);
        continue;
      }
      const id = this.#blockId;
      if (id !== undefined && !this.#blockHasData) {
        this.#parser.feed(text.slice(fed, lineStart));
        fed = lineStart;
        this.#lastEventId.value = id;
      }
      this.#blockId = undefined;
      this.#blockHasData = false;
    }
    this.#line = keptOf(this.#line + text.slice(lineStart));
    if (fed < text.length) this.#parser.feed(fed === 0 ? text : text.slice(fed));
  }

  #field(line: string): void {
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    if (name === 'data') this.#blockHasData = true;
    else if (name === 'id') {
      const value = colon === -1 ? '' : line.charCodeAt(colon + 1) === SPACE ? line.slice(colon + 2) : line.slice(colon + 1);
      if (!value.includes('\0')) this.#blockId = value;
    }
  }
}

const LF = 10;
const CR = 13;
const SPACE = 32;

/** What of an unfinished line is worth keeping: all of an `id` line, the start of any other. */
function keptOf(line: string): string {
  return line.length <= 5 || line.startsWith('id:') ? line : line.slice(0, 5);
}
