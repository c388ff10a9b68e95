// WebSocket with the `ws` package: each message `{ "prompt": "…" }` gets an answer as JSON
// messages `{ type: 'token' | 'done' | 'error', … }`; closing the socket aborts the provider.
//   npm run example:websocket   then e.g.   npx wscat -c ws://localhost:3004 -x '{"prompt":"hi"}'
import { WebSocketServer } from 'ws';
import { closeAllStreams, sendOverWebSocket } from 'tokenrelay/ws';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();
const port = Number(process.env.PORT ?? 3004);
const wss = new WebSocketServer({ port, host: '127.0.0.1' });

wss.on('connection', (socket) => {
  let streams = 0;
  socket.on('message', (data) => {
    let body: unknown;
    try {
      body = JSON.parse(String(data));
    } catch {
      body = undefined;
    }
    const streamId = String(++streams);
    void sendOverWebSocket(socket, (signal) => llm(messagesFrom(body), signal), { streamId }).then(({ outcome }) =>
      console.log(`stream ${streamId}: ${outcome}`),
    );
  });
});

console.log(`websocket example on ws://localhost:${port}, answering with ${name}`);
process.once('SIGINT', async () => {
  await closeAllStreams({ retryMs: 2000 });
  wss.close();
  await close();
});
