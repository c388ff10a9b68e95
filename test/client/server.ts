import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TokenChunk } from 'tokenrelay';
import { encodeSSEFrame } from 'tokenrelay/sse';

/** A request the test server received, and how its response ended. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  receivedAt: number;
  /** Resolves when the response closed; `true` when the client closed it before it finished. */
  closed: Promise<boolean>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => unknown;

/** A real HTTP server on 127.0.0.1 whose every request is answered by `handler` (`n` is 1-based). */
export async function startServer(handler: Handler) {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (text: string) => (body += text));
    req.on('end', () => {
      const seen: SeenRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        receivedAt: performance.now(),
        closed: new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished))),
      };
      requests.push(seen);
      Promise.resolve(handler(req, res, requests.length)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Starts an SSE response. */
export function openStream(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers });
  res.flushHeaders();
}

export const chunk = (index: number, token = `t${index} `): TokenChunk => ({ token, index, timestamp: index, type: 'text' });

/** The `token` frames of the chunks `from` to `to` (inclusive), as tokenrelay writes them. */
export function tokenFrames(from: number, to: number): string {
  let text = '';
  for (let index = from; index <= to; index++) text += encodeSSEFrame({ id: index, event: 'token', data: JSON.stringify(chunk(index)) });
  return text;
}

export const doneFrame = (index: number, extra: Record<string, unknown> = {}): string =>
  encodeSSEFrame({ id: index, event: 'done', data: JSON.stringify({ finishReason: 'stop', index, ...extra }) });

export const errorFrame = (payload: Record<string, unknown>): string => encodeSSEFrame({ event: 'error', data: JSON.stringify(payload) });

/** Writes, then resets the connection once the bytes are handed to the kernel. */
export function writeThenCut(res: ServerResponse, text: string): void {
  res.write(text, () => res.socket?.destroy());
}

/** The text of chunks `from` to `to`. */
export function textOf(from: number, to: number): string {
  let text = '';
  for (let index = from; index <= to; index++) text += chunk(index).token;
  return text;
}
