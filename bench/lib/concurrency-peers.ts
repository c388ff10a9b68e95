/**
 * Other libraries' SSE helpers in the concurrency benchmark, each written as its documentation
 * shows, over the same timer source as tokenrelay, with the same token texts (and the same frames
 * where the library lets the caller choose them).
 */
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { createUIMessageStream, pipeUIMessageStreamToResponse } from 'ai';
import { createSession } from 'better-sse';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type http from 'node:http';
import { track, type AttachVariant } from './concurrency-baselines.ts';

const done = (index: number) => JSON.stringify({ finishReason: 'stop', index });

/** Hono's `streamSSE`: `stream.writeSSE` per token, the source returned in `stream.onAbort`. */
export const attachHonoStreamSSE: AttachVariant = (server, context) => {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/stream', (c) => {
    track(context, c.env.outgoing);
    return streamSSE(c, async (stream) => {
      const source = context.timerSource(Date.now());
      stream.onAbort(() => void source.return(undefined));
      let index = 0;
      for await (const chunk of source) {
        await stream.writeSSE({ id: String(chunk.index), event: 'token', data: JSON.stringify(chunk) });
        index = chunk.index;
      }
      await stream.writeSSE({ event: 'done', data: done(index) });
    });
  });
  server.on('request', getRequestListener(app.fetch));
};

/** better-sse: `createSession(req, res)`, `session.push(chunk, 'token', id)` per token, `res.end()` after `done`. */
export const attachBetterSSE: AttachVariant = (server, context) => {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    track(context, res);
    void (async () => {
      const session = await createSession(req, res);
      const source = context.timerSource(Date.now());
      session.once('disconnected', () => void source.return(undefined));
      let index = 0;
      for await (const chunk of source) {
        session.push(chunk, 'token', String(chunk.index));
        index = chunk.index;
      }
      session.push({ finishReason: 'stop', index }, 'done');
      res.end();
    })().catch(() => res.destroy());
  });
};

/**
 * The AI SDK: a UI message stream from `createUIMessageStream`, its `execute` writing a text
 * delta per token, piped with `pipeUIMessageStreamToResponse`; the source returned when the
 * response closes early.
 */
export const attachAiSdk: AttachVariant = (server, context) => {
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    track(context, res);
    const source = context.timerSource(Date.now());
    res.once('close', () => void source.return(undefined));
    const stream = createUIMessageStream({
      async execute({ writer }) {
        writer.write({ type: 'text-start', id: 'text-0' });
        for await (const chunk of source) writer.write({ type: 'text-delta', id: 'text-0', delta: chunk.token });
        writer.write({ type: 'text-end', id: 'text-0' });
      },
    });
    pipeUIMessageStreamToResponse({ response: res, stream });
  });
};
