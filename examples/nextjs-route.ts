// A Next.js App Router route handler: this file is `app/api/chat/route.ts` as it would be in a
// Next.js app (in yours, the model comes from your own module, e.g. `@/lib/llm`). Next.js gives
// the handler a `Request` whose `signal` aborts when the client goes away; `toResponse` hands
// that to the provider SDK, so a closed tab stops the provider request at once.
//
// The client reads it with `streamTokens('/api/chat', { body: { messages } })` from
// `tokenrelay/client`, or with `fetch` and an SSE parser.
import { toResponse } from 'tokenrelay/web';
import { createLlm, messagesFrom } from './shared/llm.ts';

// The Node.js runtime (the OpenAI and Anthropic SDKs need it); `toResponse` runs on the edge
// runtime too. Never cached or prerendered: every request is a new answer.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';
// On Vercel, how long the function may run (seconds): a long answer needs more than the default.
export const maxDuration = 60;

// Created once per server instance, on the first request.
let model: ReturnType<typeof createLlm> | undefined;

export async function POST(request: Request): Promise<Response> {
  const body: unknown = await request.json().catch(() => undefined);
  const { llm } = await (model ??= createLlm());
  return toResponse((signal) => llm(messagesFrom(body), signal), {
    request,
    timeout: { firstTokenMs: 30_000, idleMs: 30_000 },
    // One structured record per stream, at its end: outcome, time to first token, tokens, cost.
    logger: console,
  });
}
