// Hono on @hono/node-server (the same route runs unchanged on Bun, Deno and Workers).
//   npm run example:hono   then   curl -N -X POST localhost:3002/chat -d '{"prompt":"hi"}'
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { sse } from 'tokenrelay/hono';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();
const app = new Hono();

app.post(
  '/chat',
  sse(
    async (c, signal) => {
      const messages = messagesFrom(await c.req.json().catch(() => undefined));
      return llm(messages, signal);
    },
    { timeout: { firstTokenMs: 30_000 } },
  ),
);

const port = Number(process.env.PORT ?? 3002);
const server = serve({ fetch: app.fetch, port }, () => {
  console.log(`hono example on http://localhost:${port}/chat, answering with ${name}`);
});
process.once('SIGINT', async () => {
  server.close();
  await close();
});
