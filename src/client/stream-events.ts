import { ClientStream } from './client-stream.js';
import { EventSourceEngine } from './engine.js';
import { resolveConfig, STREAM_EVENTS_OPTIONS } from './options.js';
import type { ClientEventStream, ServerSentEvent, StreamEventsOptions } from './types.js';

/**
 * Reads any Server-Sent Events endpoint with `fetch` — any method, headers and body — and yields
 * its events as the WHATWG `EventSource` would dispatch them, reconnecting like it too: with
 * `Last-Event-ID` after a broken or idle connection or an end of the response, the server's
 * `retry` as the least delay, exponential back-off with full jitter, and a retry limit. A 204
 * ends the stream; a 4xx other than 408 and 429, a tokenrelay error body with a terminal code
 * (`producer-lost`, `not-found`, …), or a response that is not `text/event-stream`, fails it.
 * The connection opens on the first read; stop reading (`break`) to close it. For tokenrelay
 * endpoints use {@link streamTokens}, which knows the events.
 *
 * @param input - The URL of the stream (relative URLs resolve against the page in browsers).
 * @example
 * ```ts
 * for await (const { event, data, lastEventId } of streamEvents('https://example.com/feed')) {
 *   console.log(event, data, lastEventId);
 * }
 * ```
 */
export function streamEvents(input: string | URL, options: StreamEventsOptions = {}): ClientEventStream {
  const config = resolveConfig(input, options, STREAM_EVENTS_OPTIONS);
  const engine = new EventSourceEngine(config);
  return new ClientStream(engine, readEvents(engine), config.signal);
}

async function* readEvents(engine: EventSourceEngine): AsyncGenerator<ServerSentEvent, void, undefined> {
  for await (const event of engine.events()) {
    engine.progress();
    yield event;
  }
}
