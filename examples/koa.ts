// Koa 3 with @koa/router and koa-compress: `sse()` is the route's middleware, and the stream
// passes koa-compress untouched (it is `no-transform`, and written raw with `ctx.respond = false`).
//   npm run example:koa   then   curl -N -X POST localhost:3007/chat -d '{"prompt":"hi"}'
import { text } from 'node:stream/consumers';
import Router from '@koa/router';
import Koa from 'koa';
import compress from 'koa-compress';
// Until package.json maps `tokenrelay/koa` (and tsconfig.json its path), import it from source.
import { closeAllStreams, sse } from 'tokenrelay/koa';
import { createLlm, messagesFrom, type ChatMessage } from './shared/llm.ts';

const { llm, name, close } = await createLlm();
const app = new Koa();
const router = new Router<Koa.DefaultState, { messages: ChatMessage[] }>();

app.use(compress());
router.post(
  '/chat',
  async (ctx, next) => {
    // Any body parser does; reading the body is not mistaken for a disconnect.
    const body = await text(ctx.req);
    ctx.messages = messagesFrom(body === '' ? undefined : JSON.parse(body));
    await next();
  },
  sse((ctx, signal) => llm(ctx.messages, signal), { timeout: { firstTokenMs: 30_000, idleMs: 15_000 } }),
);
app.use(router.routes());

const port = Number(process.env.PORT ?? 3007);
const server = app.listen(port, () => console.log(`koa example on http://localhost:${port}/chat, answering with ${name}`));

process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 2000 });
  await close();
});
