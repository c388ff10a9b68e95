import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { closeAllStreams, sendOverWebSocket } from 'tokenrelay/ws';
import { listen, pipelineOptions, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

const ws: AdapterDescriptor = {
  name: 'ws sendOverWebSocket',
  transport: 'websocket',
  http2: false,
  // `writeTimeoutMs`: how long `bufferedAmount` may stay above `maxBufferedAmount`.
  writeTimeout: true,
  asyncFactory: true,
  results: true,
  // Its result's outcome is the stream's (`metrics.outcome`), not the response's.
  outcomes: { completed: 'completed', 'http-error': 'error', 'client-closed': 'aborted', 'write-timeout': 'aborted', shutdown: 'aborted' },
  closeAllStreams,
  isNative: (native) => native instanceof WebSocket,
  serve: async (route) => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => {
      socket.on('error', () => undefined);
      const { factory, options, onResult } = route();
      const { writeTimeoutMs } = options;
      const own = writeTimeoutMs === undefined ? {} : { writeTimeoutMs };
      sendOverWebSocket(socket, (signal) => factory(socket, signal) as AsyncIterable<never>, { ...pipelineOptions(options), ...own, closeOnEnd: true }).then(
        onResult,
        () => socket.terminate(),
      );
    });
    const served = await listen(server, 'ws');
    return {
      ...served,
      close: async () => {
        for (const socket of wss.clients) socket.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await served.close();
      },
    };
  },
};

runConformance(ws);
