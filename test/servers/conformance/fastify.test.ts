import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { closeAllStreams, sendSSE, sse } from 'tokenrelay/fastify';
import type { AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

function descriptor(entry: 'sse()' | 'sendSSE'): AdapterDescriptor {
  return {
    name: `fastify ${entry}`,
    transport: 'sse',
    http2: true,
    writeTimeout: true,
    asyncFactory: true,
    results: entry === 'sendSSE',
    closeAllStreams,
    isNative: (native) => typeof native === 'object' && native !== null && 'raw' in native && typeof (native as FastifyRequest).routeOptions === 'object',
    serve: async (route, { http2 }) => {
      // Typed as the HTTP/1.1 instance: the routes below are the same on both.
      const app = (http2 ? Fastify({ http2: true }) : Fastify()) as unknown as FastifyInstance;
      if (entry === 'sse()') {
        app.get('/chat', (request, reply) => {
          const { factory, options } = route();
          return sse(factory, options).call(app as never, request as never, reply as never);
        });
      } else {
        app.get('/chat', async (request, reply) => {
          const { factory, options, onResult } = route();
          const result = await sendSSE(request, reply, (signal) => factory(request, signal) as AsyncIterable<never>, options);
          onResult?.(result);
        });
      }
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as { port: number };
      return {
        url: `http://127.0.0.1:${port}`,
        server: app.server,
        close: async () => {
          (app.server as { closeAllConnections?(): void }).closeAllConnections?.();
          await app.close();
        },
      };
    },
  };
}

runConformance(descriptor('sse()'));
runConformance(descriptor('sendSSE'));
