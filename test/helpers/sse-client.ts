// An SSE reader on node:http for the framework tests: events as they come, and a disconnect that
// destroys the connection (what a closed tab does).
import http, { type IncomingMessage } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { TokenChunk } from 'tokenrelay';

export interface SSEClient {
  response: IncomingMessage;
  events: EventSourceMessage[];
  /** Resolves once `predicate(events)` holds; rejects if the stream ends before. */
  until(predicate: (events: EventSourceMessage[]) => boolean): Promise<void>;
  ended: Promise<void>;
  /** Destroys the connection; returns when (performance.now()). */
  disconnect(): number;
}

export function openSSE(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<SSEClient> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const request = http.request(url, { method: init.method ?? 'GET', headers, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      request.on('error', () => undefined);
      response.on('error', () => undefined);
      const events: EventSourceMessage[] = [];
      const waiters = new Set<() => void>();
      const parser = createParser({
        onEvent: (event) => {
          events.push(event);
          for (const check of waiters) check();
        },
      });
      response.setEncoding('utf8');
      response.on('data', (text: string) => parser.feed(text));
      const ended = new Promise<void>((done) => {
        response.once('end', done);
        response.once('close', done);
      });
      resolve({
        response,
        events,
        ended,
        until: (predicate) =>
          new Promise<void>((resolveWait, rejectWait) => {
            const check = () => {
              if (!predicate(events)) return;
              waiters.delete(check);
              resolveWait();
            };
            waiters.add(check);
            check();
            void ended.then(() => {
              if (waiters.delete(check)) rejectWait(new Error(`The stream ended with ${events.length} events`));
            });
          }),
        disconnect: () => {
          const at = performance.now();
          request.destroy();
          return at;
        },
      });
    });
    request.end(init.body === undefined ? undefined : JSON.stringify(init.body));
  });
}

export const tokenEvents = (events: EventSourceMessage[]): EventSourceMessage[] => events.filter((event) => event.event === 'token');

export const tokenText = (events: EventSourceMessage[]): string =>
  tokenEvents(events)
    .map((event) => (JSON.parse(event.data) as TokenChunk).token)
    .join('');

export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

export const manyTokens = (n: number): string[] => Array.from({ length: n }, (_, i) => ` t${i}`);
