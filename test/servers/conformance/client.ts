// The suite's clients: one reads SSE over HTTP/1.1, one over HTTP/2, one reads the WebSocket
// messages; all three give the same view (status, headers, typed events, disconnect, end).
import http, { type Agent, type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import { createParser } from 'eventsource-parser';
import { WebSocket } from 'ws';

/** One message of the stream: the SSE event name (or WebSocket message type) and its parsed data. */
export interface StreamEvent {
  type: string;
  data: unknown;
  /** The SSE `retry` field, where one came. */
  retry?: number | undefined;
}

export interface Client {
  /** The response head (`101` for a WebSocket), once it came. */
  head: Promise<{ status: number; headers: IncomingHttpHeaders }>;
  events: StreamEvent[];
  /** The body as text (an HTTP error's JSON). */
  text(): string;
  /** Resolves once `predicate(events)` holds; rejects if the stream ended first. */
  until(predicate: (events: StreamEvent[]) => boolean): Promise<void>;
  /** Drops the connection (the stream, on HTTP/2) now; returns when, as `performance.now()`. */
  disconnect(): number;
  /** Resolves when the connection (or HTTP/2 stream) has closed. */
  ended: Promise<void>;
}

export interface ConnectOptions {
  transport: 'sse' | 'websocket' | 'sse-http2';
  /** Never read the body (a client that stopped reading): TCP's window fills up. */
  paused?: boolean | undefined;
  /** An HTTP/1.1 agent (keep-alive); none: a connection of its own. */
  agent?: Agent | undefined;
}

export function connect(url: string, options: ConnectOptions): Client {
  if (options.transport === 'websocket') return connectWebSocket(url, options.paused === true);
  if (options.transport === 'sse-http2') return connectHttp2(url);
  return connectHttp1(url, options);
}

/** The bookkeeping every client shares: events, text, waiters, the end. */
function createView(): {
  view: Omit<Client, 'head' | 'disconnect'>;
  push(event: StreamEvent): void;
  append(text: string): void;
  end(): void;
} {
  const events: StreamEvent[] = [];
  let text = '';
  let finished = false;
  let resolveEnded!: () => void;
  const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((check) => check());
  return {
    view: {
      events,
      ended,
      text: () => text,
      until: (predicate) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (predicate(events)) resolve();
            else if (finished) reject(new Error(`The stream ended with ${events.length} events: ${JSON.stringify(events.map((event) => event.type))}`));
            else return;
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        }),
    },
    push(event) {
      events.push(event);
      notify();
    },
    append(chunk) {
      text += chunk;
    },
    end() {
      finished = true;
      resolveEnded();
      notify();
    },
  };
}

function sseParser(push: (event: StreamEvent) => void): (text: string) => void {
  const parser = createParser({
    onEvent: ({ event, data }) => push({ type: event ?? 'message', data: parseJSON(data) }),
    onRetry: (retry) => push({ type: 'retry', data: retry, retry }),
  });
  return (text) => parser.feed(text);
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function connectHttp1(url: string, options: ConnectOptions): Client {
  const { view, push, append, end } = createView();
  const feed = sseParser(push);
  const request = http.request(`${url}/chat`, { agent: options.agent ?? false, headers: { accept: 'text/event-stream' } });
  const head = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    request.on('error', (error) => {
      reject(error);
      end();
    });
    request.on('close', end);
    request.on('response', (response) => {
      response.on('error', () => undefined);
      response.on('close', end);
      resolve({ status: response.statusCode ?? 0, headers: response.headers });
      if (options.paused === true) return;
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        append(chunk);
        feed(chunk);
      });
    });
  });
  head.catch(() => undefined);
  request.end();
  return {
    ...view,
    head,
    disconnect: () => {
      const at = performance.now();
      request.destroy();
      return at;
    },
  };
}

function connectHttp2(url: string): Client {
  const { view, push, append, end } = createView();
  const feed = sseParser(push);
  const session = http2.connect(url);
  session.on('error', () => undefined);
  const stream = session.request({ ':path': '/chat', accept: 'text/event-stream' });
  stream.on('error', () => undefined);
  stream.on('close', () => {
    session.close();
    end();
  });
  const head = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve) => {
    stream.once('response', (headers) => resolve({ status: Number(headers[':status']), headers: headers as IncomingHttpHeaders }));
  });
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    append(chunk);
    feed(chunk);
  });
  return {
    ...view,
    head,
    disconnect: () => {
      const at = performance.now();
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return at;
    },
  };
}

function connectWebSocket(url: string, paused: boolean): Client {
  const { view, push, append, end } = createView();
  const socket = new WebSocket(`${url}/chat`);
  socket.on('error', () => undefined);
  // A client that never reads: its TCP window closes, and the server's `bufferedAmount` grows.
  if (paused) socket.once('open', () => socket.pause());
  socket.on('close', end);
  socket.on('message', (data) => {
    const text = String(data);
    append(text);
    const message = JSON.parse(text) as { type: string; chunk?: unknown };
    push({ type: message.type, data: message.type === 'token' ? message.chunk : message });
  });
  const head = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    socket.once('upgrade', (response) => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
    socket.once('error', reject);
  });
  head.catch(() => undefined);
  return {
    ...view,
    head,
    disconnect: () => {
      const at = performance.now();
      socket.terminate();
      return at;
    },
  };
}
