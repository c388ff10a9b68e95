import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Context, Hono } from 'hono';
import { closeAllStreams, sendSSE, sse } from 'tokenrelay/hono';
import type { AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

function descriptor(entry: 'sse()' | 'sendSSE'): AdapterDescriptor {
  return {
    name: `hono ${entry} on @hono/node-server`,
    transport: 'sse',
    http2: false,
    writeTimeout: true,
    asyncFactory: true,
    // Both resolve with the `Response`; how it ended is for `monitor` to say.
    results: false,
    closeAllStreams,
    isNative: (native) => native instanceof Context,
    serve: async (route) => {
      const app = new Hono();
      app.get('/chat', (c) => {
        const { factory, options } = route();
        if (entry === 'sse()') return sse(factory, options)(c);
        return sendSSE(c, (signal) => factory(c, signal) as AsyncIterable<never>, options);
      });
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      if (!server.listening) await once(server, 'listening');
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        server,
        close: () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      };
    },
  };
}

runConformance(descriptor('sse()'));
runConformance(descriptor('sendSSE'));
