/**
 * The concurrency benchmark's reference servers on `node:http`: tokenrelay's `sendSSE` with the
 * full pipeline, and the two hand-written endpoints that show what the machine allows (a timer
 * writing each frame; a `for await` over the same source). Also what every variant shares: the
 * {@link StreamContext} the server process hands them, and the pipeline options.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as benchTimeout } from 'node:timers';
import type { TokenChunk } from '../../src/core/types.ts';
import { sendSSE, type SendSSEOptions } from '../../src/servers/node.ts';

/** What the server process gives a variant: the source, and the hooks that count its streams. */
export interface StreamContext {
  readonly tokens: number;
  readonly intervalMs: number;
  /** Call once per request, when it arrives. */
  opening(): void;
  /** Call once per request, when its response is over (`'completed'` if it ran to its end). */
  closing(outcome: string): void;
  /** Records how late a token's timer fired (the hand-written timer endpoint has no source). */
  lagged(ms: number): void;
  /** The provider stand-in: `tokens` chunks, one every `intervalMs`, each token its scheduled time. */
  timerSource(epoch: number): AsyncGenerator<TokenChunk, void, undefined>;
}

/** Attaches a variant's request handling to the (listening) server. */
export type AttachVariant = (server: http.Server, context: StreamContext) => void | Promise<void>;

/** The pipeline every tokenrelay variant runs with: every limit of `withTimeout`, the heartbeat, a monitor. */
export function pipelineOptions(context: StreamContext): SendSSEOptions {
  const durationMs = context.tokens * context.intervalMs;
  return {
    timeout: { firstTokenMs: 10_000, idleMs: 10_000, totalMs: durationMs + 60_000 },
    heartbeatMs: 15_000,
    monitor: { onFinish: () => undefined },
  };
}

/**
 * Counts a request whose library does not say how it ended: completed if the response finished
 * (its last bytes handed to the socket) before it closed.
 */
export function track(context: StreamContext, res: http.ServerResponse): void {
  context.opening();
  res.once('close', () => context.closing(res.writableFinished ? 'completed' : 'client-closed'));
}

/** The SSE headers the hand-written endpoints send (tokenrelay's). */
export const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};

/** tokenrelay: `sendSSE` over the async-generator source, with the full pipeline. */
export const attachTokenrelay: AttachVariant = (server, context) => {
  const options = pipelineOptions(context);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    context.opening();
    const epoch = Date.now();
    sendSSE(req, res, () => context.timerSource(epoch), options).then(
      ({ outcome, metrics }) => context.closing(outcome === 'completed' ? metrics.outcome : outcome),
      () => context.closing('rejected'),
    );
  });
};

/** What a hand-rolled endpoint does at its cheapest: a timer per stream, one `res.write` per frame. */
export const attachHand: AttachVariant = (server, context) => {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    context.opening();
    const epoch = Date.now();
    const start = performance.now();
    res.writeHead(200, HEADERS);
    res.flushHeaders();
    (req.socket as Socket).setNoDelay(true);
    let index = 0;
    let timer: ReturnType<typeof benchTimeout> | undefined;
    let ended = false;
    const tick = () => {
      const due = start + (index + 1) * context.intervalMs;
      context.lagged(performance.now() - due);
      const chunk: TokenChunk = { token: String(epoch + (index + 1) * context.intervalMs), index, timestamp: performance.now(), type: 'text' };
      const frame = `id: ${index}\nevent: token\ndata: ${JSON.stringify(chunk)}\n\n`;
      index++;
      if (index < context.tokens) {
        res.write(frame);
        timer = benchTimeout(tick, Math.max(0, start + (index + 1) * context.intervalMs - performance.now()));
      } else {
        ended = true;
        res.end(`${frame}event: done\ndata: ${JSON.stringify({ finishReason: 'stop', index: index - 1 })}\n\n`);
      }
    };
    timer = benchTimeout(tick, context.intervalMs);
    res.on('close', () => {
      clearTimeout(timer);
      context.closing(ended ? 'completed' : 'client-closed');
    });
  });
};

/**
 * What a hand-rolled endpoint over a provider's stream does: `for await` over the same source as
 * `tokenrelay` (an async generator, as SDK streams are), one `res.write` per frame, the source
 * returned when the client leaves; no timeouts, heartbeat or monitor.
 */
export const attachHandIter: AttachVariant = (server, context) => {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    context.opening();
    const source = context.timerSource(Date.now());
    res.writeHead(200, HEADERS);
    res.flushHeaders();
    (req.socket as Socket).setNoDelay(true);
    let ended = false;
    res.on('close', () => {
      void source.return(undefined);
      context.closing(ended ? 'completed' : 'client-closed');
    });
    void (async () => {
      let index = 0;
      for await (const chunk of source) {
        res.write(`id: ${chunk.index}\nevent: token\ndata: ${JSON.stringify(chunk)}\n\n`);
        index = chunk.index;
      }
      ended = true;
      res.end(`event: done\ndata: ${JSON.stringify({ finishReason: 'stop', index })}\n\n`);
    })();
  });
};
