import http from 'node:http';
import express from 'express';
import { closeAllStreams, sendSSE } from 'tokenrelay/express';
import { listen, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

// `sendSSE` inside an Express handler you already have (the route is `sse()`'s, in express.test.ts).
const descriptor: AdapterDescriptor = {
  name: 'express 5 sendSSE',
  transport: 'sse',
  http2: false,
  writeTimeout: true,
  asyncFactory: true,
  results: true,
  closeAllStreams,
  isNative: (native) => typeof (native as express.Request).get === 'function' && (native as express.Request).app !== undefined,
  serve: (route) => {
    const app = express();
    app.get('/chat', (req, res, next) => {
      const { factory, options, onResult } = route();
      sendSSE(req, res, (signal) => factory(req, signal) as AsyncIterable<never>, options).then(onResult, next);
    });
    return listen(http.createServer(app));
  },
};

runConformance(descriptor);
