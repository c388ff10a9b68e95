import http from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { closeAllStreams, toResponse } from 'tokenrelay/web';
import { listen, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

const web: AdapterDescriptor = {
  name: 'web toResponse on node:http',
  transport: 'sse',
  http2: false,
  writeTimeout: true,
  asyncFactory: true,
  results: false,
  closeAllStreams,
  isNative: (native) => native instanceof Request,
  serve: (route) =>
    // @hono/node-server's listener turns node:http's request into a `Request` whose signal follows the client.
    listen(
      http.createServer(
        getRequestListener((request) => {
          const { factory, options } = route();
          return toResponse((signal) => factory(request, signal) as AsyncIterable<never>, { ...options, request });
        }),
      ),
    ),
};

runConformance(web);
