// What an adapter tells the conformance suite (suite.ts) about itself: one small descriptor per
// adapter, in its own `<adapter>.test.ts` next to this file, which calls `runConformance`.
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import type { StreamMetrics, TokenChunk } from 'tokenrelay';
import type { CloseAllStreamsOptions, SendSSEOptions } from 'tokenrelay/node';

/** The stream of one request, as the test sets it: every request to the served route reads it anew. */
export interface Route {
  /** Called with the framework's own request object (or context, or socket) and the stream's signal. */
  factory: (native: unknown, signal: AbortSignal) => AsyncIterable<TokenChunk> | PromiseLike<AsyncIterable<TokenChunk>>;
  /** Every option any adapter takes; a descriptor passes on those its adapter knows. */
  options: SendSSEOptions;
  /** Where the adapter's call resolves with how the response ended: what it resolved with. */
  onResult?: ((result: AdapterResult) => void) | undefined;
}

/** What `sendSSE` (or `sendOverWebSocket`) resolved with, where the descriptor's entry returns it. */
export interface AdapterResult {
  outcome: string;
  status?: number | undefined;
  metrics: StreamMetrics;
}

/** A running server that serves `GET /chat` (and, over WebSocket, every connection). */
export interface Served {
  /** `http://127.0.0.1:<port>` (or `ws://…`). */
  url: string;
  /** The `node:http` (or `node:http2`) server under it: the suite counts its connections. */
  server: Server;
  close(): Promise<void>;
}

export interface AdapterDescriptor {
  /** The name in the test titles, e.g. `'fastify sse()'`. */
  name: string;
  /** `'sse'`: Server-Sent Events over HTTP; `'websocket'`: JSON messages over a WebSocket. */
  transport: 'sse' | 'websocket';
  /** Also serves HTTP/2 (h2c), with the `http2` flag of {@link serve}. */
  http2: boolean;
  /** Takes `writeTimeoutMs` and ends the response of a client that stopped reading. */
  writeTimeout: boolean;
  /** The factory may return a promise of the stream. */
  asyncFactory: boolean;
  /** Its entry resolves with an outcome (`sendSSE`), reported through `Route.onResult`. */
  results: boolean;
  /** The outcome `Route.onResult` gets for each way a response ends, where {@link results}. */
  outcomes?: Partial<Record<'completed' | 'http-error' | 'client-closed' | 'write-timeout' | 'shutdown', string>>;
  /** The adapter module's own `closeAllStreams`. */
  closeAllStreams(options?: CloseAllStreamsOptions): Promise<void>;
  /** True for what the factory must receive: the framework's request, context, or socket. */
  isNative(native: unknown): boolean;
  /** Starts a server on 127.0.0.1 whose route streams `route()` (read per request). */
  serve(route: () => Route, options: { http2: boolean }): Promise<Served>;
}

/** The server's URL once it listens on 127.0.0.1, and a close that drops every connection. */
export async function listen(server: Server & { closeAllConnections?(): void }, scheme = 'http'): Promise<Served> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

/** The options a non-SSE adapter cannot take: SSE shaping, headers, the status window, the write timeout. */
export function pipelineOptions(options: SendSSEOptions): SendSSEOptions {
  const { timeout, backpressure, monitor, logger } = options;
  return Object.fromEntries(Object.entries({ timeout, backpressure, monitor, logger }).filter(([, value]) => value !== undefined));
}
