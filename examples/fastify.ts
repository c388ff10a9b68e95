// Fastify 5 with @fastify/cors: the CORS headers it sets go out on the stream too.
//   npm run example:fastify   then   curl -N -X POST localhost:3006/chat -H 'content-type: application/json' -d '{"prompt":"hi"}'
import cors from '@fastify/cors';
import Fastify from 'fastify';
// Until package.json maps `tokenrelay/fastify` (and tsconfig.json its path), import it from source.
import { closeAllStreams, sse } from 'tokenrelay/fastify';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();
const app = Fastify();
await app.register(cors, { origin: 'http://localhost:5173' });

// `reply.hijack()` happens inside: the disconnect (the raw response closing) aborts the model.
app.post(
  '/chat',
  sse((request, signal) => llm(messagesFrom(request.body), signal), {
    timeout: { firstTokenMs: 30_000, idleMs: 15_000 },
    monitor: { onFinish: (m) => app.log.info({ outcome: m.outcome, ttftMs: m.ttftMs, tokens: m.outputTokens }) },
  }),
);

const port = Number(process.env.PORT ?? 3006);
await app.listen({ port });
console.log(`fastify example on http://localhost:${port}/chat, answering with ${name}`);

process.once('SIGINT', async () => {
  const closing = app.close();
  // Each open stream gets a `shutdown` event, so clients reconnect elsewhere; then app.close() can finish.
  await closeAllStreams({ server: app.server, retryMs: 2000 });
  await closing;
  await close();
});
