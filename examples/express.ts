// Express 5: POST /chat streams the answer as SSE. `npm run demo` runs this file.
//   curl -N -X POST localhost:3000/chat -H 'content-type: application/json' \
//     -d '{"messages":[{"role":"user","content":"hi"}]}'
import express from 'express';
import { closeAllStreams, sse } from 'tokenrelay/express';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();
const app = express();
app.use(express.json());

app.post(
  '/chat',
  sse((req, signal) => llm(messagesFrom(req.body), signal), {
    timeout: { firstTokenMs: 30_000, idleMs: 15_000 },
    monitor: {
      onFinish: (m) => {
        const ttft = m.ttftMs === undefined ? '-' : `${m.ttftMs.toFixed(0)} ms`;
        console.log(`stream ${m.outcome}: ttft ${ttft}, ${m.outputTokens} tokens in ${m.durationMs.toFixed(0)} ms`);
      },
    },
  }),
);

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, () => {
  console.log(`tokenrelay express example on http://localhost:${port}, answering with ${name}`);
  console.log(
    `try: curl -N -X POST localhost:${port}/chat -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}'`,
  );
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    server.close();
    await closeAllStreams({ retryMs: 2000, reason: 'The server is restarting' });
    await close();
    process.exit(0);
  });
}
