import { assertNumber, assertOptions, describeValue } from '../../core/validate.js';

/** What a live stream tells its client when the server shuts down. */
export interface ShutdownNotice {
  /** When the client should reconnect, in ms. */
  retryMs: number;
  /** Why, for the client. */
  message: string;
  /** The abort reason for the provider request. */
  reason: Error;
}

/** A live response that can be ended for a graceful shutdown. */
export interface LiveStream {
  /** Sends the notice, aborts the provider, ends the response; resolves when closed. */
  shutdown(notice: ShutdownNotice): Promise<void>;
}

const live = new Set<LiveStream>();

/** Adds a response to the registry; call the returned function when it has ended. */
export function trackStream(stream: LiveStream): () => void {
  live.add(stream);
  return () => live.delete(stream);
}

/** Adds a response to the registry with no function to keep: {@link untrackStream} removes it. */
export function addStream(stream: LiveStream): void {
  live.add(stream);
}

/** Removes a response added with {@link addStream} (or {@link trackStream}), once it has ended. */
export function untrackStream(stream: LiveStream): void {
  live.delete(stream);
}

/** How many streams are live in this process (all adapters together). */
export function liveStreamCount(): number {
  return live.size;
}

/** Options of {@link closeAllStreams}. */
export interface CloseAllStreamsOptions {
  /**
   * When clients should reconnect (sent as the SSE `retry` field and in the event's data).
   * @defaultValue `1000`
   */
  retryMs?: number | undefined;
  /** Why (the abort reason given to each provider request, and the event's `message`). */
  reason?: string | undefined;
  /**
   * Your `node:http` / `node:https` server (Express's `app.listen()` returns one;
   * `@hono/node-server`'s `serve()` too). Once the streams have ended, its idle keep-alive
   * connections are closed (`server.closeIdleConnections()`), so a `server.close()` called before
   * `closeAllStreams` completes at once instead of waiting for the clients' keep-alive timeout
   * (4 s for `fetch`). An HTTP/2 server has no such method: close its sessions yourself.
   */
  server?:
    | {
        /** Closes the connections that carry no request (Node ≥ 18.2). */
        closeIdleConnections(): void;
      }
    | undefined;
}

/**
 * Ends every live stream of this process for a graceful shutdown: each client receives a final
 * `shutdown` event with `retry` so it reconnects (with `Last-Event-ID`) elsewhere, each provider
 * request is aborted, and the promise resolves when all responses are closed.
 *
 * @example
 * ```ts
 * process.once('SIGTERM', async () => {
 *   server.close();
 *   await closeAllStreams({ server, retryMs: 2000, reason: 'deploy' });
 * });
 * ```
 */
export async function closeAllStreams(options: CloseAllStreamsOptions = {}): Promise<void> {
  assertOptions('options', options, ['retryMs', 'reason', 'server']);
  const retryMs = options.retryMs ?? 1000;
  assertNumber('retryMs', retryMs, { integer: true });
  const server = options.server;
  if (server !== undefined && typeof server?.closeIdleConnections !== 'function') {
    throw new TypeError(`Expected \`server\` to be a node:http server (what \`app.listen()\` returns), got ${describeValue(server)}`);
  }
  const message = options.reason ?? 'The server is shutting down';
  const notice: ShutdownNotice = {
    retryMs,
    message,
    reason: new Error(message),
  };
  await Promise.all([...live].map((stream) => stream.shutdown(notice)));
  server?.closeIdleConnections();
}
