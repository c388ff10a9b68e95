import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { closeAllStreams, sendOverWebSocket } from 'tokenrelay/ws';
import { listen, pipelineOptions, type AdapterDescriptor } from './adapter.js';
import { runConformance } from './suite.js';

const ws: AdapterDescriptor = {
  name: 'ws sendOverWebSocket',
  transport: 'websocket',
  http2: false,
  // Only `maxBufferedAmount`, which waits for the socket forever: no write timeout yet.
  writeTimeout: false,
  asyncFactory: true,
  results: true,
  // Its result's outcome is the stream's (`metrics.outcome`), not the response's.
  outcomes: { completed: 'completed', 'http-error': 'error', 'client-closed': 'aborted', shutdown: 'aborted' },
  closeAllStreams,
  isNative: (native) => native instanceof WebSocket,
  serve: async (route) => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => {
      socket.on('error', () => undefined);
      const { factory, options, onResult } = route();
      sendOverWebSocket(socket, (signal) => factory(socket, signal) as AsyncIterable<never>, { ...pipelineOptions(options), closeOnEnd: true }).then(
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
