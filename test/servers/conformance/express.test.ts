import http from 'node:http';
import express5 from 'express';
import express4Module from 'express4';
import { closeAllStreams, sse } from 'tokenrelay/express';
import { listen, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

// Express 4 is still widely deployed, and `sse()` takes it too.
const express4 = express4Module as unknown as typeof express5;

for (const [major, express] of [['5', express5], ['4', express4]] as const) {
  const descriptor: AdapterDescriptor = {
    name: `express ${major} sse()`,
    transport: 'sse',
    http2: false,
    writeTimeout: true,
    asyncFactory: true,
    results: false,
    closeAllStreams,
    isNative: (native) => typeof (native as express5.Request).get === 'function' && (native as express5.Request).app !== undefined,
    serve: (route) => {
      const app = express();
      app.get('/chat', (req, res, next) => {
        const { factory, options } = route();
        sse(factory, options)(req, res, next);
      });
      return listen(http.createServer(app));
    },
  };
  runConformance(descriptor);
}
