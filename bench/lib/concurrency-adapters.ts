/**
 * tokenrelay's other server adapters in the concurrency benchmark, each mounted the way its
 * framework's users mount it, over the same source and with the same pipeline options as the
 * `sendSSE` variant. Hono and `toResponse` run on `@hono/node-server`; Express, Fastify and Koa
 * on the benchmark's own `node:http` server.
 */
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import type { ServerResponse } from 'node:http';
import { sse as expressSSE } from '../../src/servers/express.ts';
import { sse as fastifySSE } from '../../src/servers/fastify.ts';
import { sse as honoSSE } from '../../src/servers/hono.ts';
import { sse as koaSSE } from '../../src/servers/koa.ts';
import { toResponse } from '../../src/servers/web.ts';
import { pipelineOptions, track, type AttachVariant } from './concurrency-baselines.ts';

/** `app.get('/stream', sse((c, signal) => source, options))` on `@hono/node-server`. */
export const attachHono: AttachVariant = (server, context) => {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.use(async (c, next) => {
    track(context, c.env.outgoing);
    await next();
  });
  app.get('/stream', honoSSE(() => context.timerSource(Date.now()), pipelineOptions(context)));
  server.on('request', getRequestListener(app.fetch));
};

/** A fetch handler returning `toResponse(source, { request, ...options })`, on `@hono/node-server`. */
export const attachWeb: AttachVariant = (server, context) => {
  const options = pipelineOptions(context);
  // The benchmark's server is HTTP/1.1: the bindings are `node:http`'s.
  const listener = getRequestListener((request: Request, env: HttpBindings | Http2Bindings) => {
    track(context, env.outgoing as ServerResponse);
    return toResponse(() => context.timerSource(Date.now()), { ...options, request });
  });
  server.on('request', listener);
};

/** `app.get('/stream', sse((req, signal) => source, options))` on Express. */
export const attachExpress: AttachVariant = (server, context) => {
  const app = express();
  app.get('/stream', (_req, res, next) => {
    track(context, res);
    next();
  }, expressSSE(() => context.timerSource(Date.now()), pipelineOptions(context)));
  server.on('request', app);
};

/** `app.get('/stream', sse((request, signal) => source, options))` on Fastify (its `serverFactory` is the benchmark's server). */
export const attachFastify: AttachVariant = async (server, context) => {
  const app = Fastify({
    serverFactory: (handler) => {
      server.on('request', handler);
      return server;
    },
  });
  app.addHook('onRequest', async (_request, reply) => {
    track(context, reply.raw);
  });
  app.get('/stream', fastifySSE(() => context.timerSource(Date.now()), pipelineOptions(context)));
  await app.ready();
};

/** `app.use(sse((ctx, signal) => source, options))` on Koa. */
export const attachKoa: AttachVariant = (server, context) => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    track(context, ctx.res);
    await next();
  });
  app.use(koaSSE(() => context.timerSource(Date.now()), pipelineOptions(context)));
  server.on('request', app.callback());
};
