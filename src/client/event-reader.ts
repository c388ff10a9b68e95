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
 */
export class EventReader {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;

  constructor(sink: EventSink, lastEventId: { value: string }) {
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
    if (text !== '') this.#parser.feed(text);
  }
}
