import http, { IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { listen, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

const node: AdapterDescriptor = {
  name: 'node sendSSE',
  transport: 'sse',
  http2: true,
  writeTimeout: true,
  asyncFactory: true,
  results: true,
  closeAllStreams,
  isNative: (native) => native instanceof IncomingMessage || native instanceof http2.Http2ServerRequest,
  serve: (route, { http2: h2 }) => {
    const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      const { factory, options, onResult } = route();
      sendSSE(req, res, (signal) => factory(req, signal) as AsyncIterable<never>, options).then(onResult, () => res.destroy());
    };
    return listen(h2 ? http2.createServer(handler) : http.createServer(handler));
  },
};

runConformance(node);
