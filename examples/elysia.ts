// Elysia on Bun, through `tokenrelay/web`: the handler returns the `Response` that `toResponse`
// makes, and Elysia sends it as it is. Bun aborts `request.signal` (and cancels the body) when
// the client goes away, which stops the provider request.
//   bun examples/elysia.ts   then
//   curl -N -X POST localhost:3005/chat -H 'content-type: application/json' -d '{"prompt":"hi"}'
import { Elysia } from 'elysia';
import { toResponse, type ToResponseOptions } from 'tokenrelay/web';
import { createLlm, messagesFrom, type Llm } from './shared/llm.ts';

/** The chat app: `POST /chat` with `{ messages }` or `{ prompt }` streams the answer as SSE. */
export function createChatApp(llm: Llm, options: Omit<ToResponseOptions, 'request'> = {}) {
  return new Elysia().post('/chat', ({ request, body }) =>
    toResponse((signal) => llm(messagesFrom(body), signal), {
      timeout: { firstTokenMs: 30_000, idleMs: 30_000 },
      ...options,
      // Pass the request: its signal is how Bun says the client left.
      request,
    }),
  );
}

async function main(): Promise<void> {
  const { llm, name, close } = await createLlm();
  const port = Number(process.env.PORT ?? 3005);
  const app = createChatApp(llm).listen(port);
  console.log(`tokenrelay elysia example on http://localhost:${port}/chat, answering with ${name}`);
  process.once('SIGINT', async () => {
    await app.stop();
    await close();
    process.exit(0);
  });
}

if (import.meta.main) await main();
