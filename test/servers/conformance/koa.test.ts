import http from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import { closeAllStreams, sendSSE, sse } from 'tokenrelay/koa';
import { listen, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

function descriptor(entry: 'sse()' | 'sendSSE'): AdapterDescriptor {
  return {
    name: `koa ${entry}`,
    transport: 'sse',
    http2: false,
    writeTimeout: true,
    asyncFactory: true,
    results: entry === 'sendSSE',
    closeAllStreams,
    isNative: (native) => typeof native === 'object' && native !== null && 'app' in native && 'req' in native && 'res' in native,
    serve: (route) => {
      const app = new Koa();
      const router = new Router();
      if (entry === 'sse()') {
        router.get('/chat', (ctx, next) => {
          const { factory, options } = route();
          return sse(factory, options)(ctx, next);
        });
      } else {
        router.get('/chat', async (ctx) => {
          const { factory, options, onResult } = route();
          const result = await sendSSE(ctx, (signal) => factory(ctx, signal) as AsyncIterable<never>, options);
          onResult?.(result);
        });
      }
      app.use(router.routes());
      return listen(http.createServer(app.callback()));
    },
  };
}

runConformance(descriptor('sse()'));
runConformance(descriptor('sendSSE'));
