// A Next.js-style route handler: `POST(request) => Response`. The same function works in
// Deno, Bun and Cloudflare Workers; here a tiny node:http bridge serves it.
//   npm run example:web-response   then   curl -N -X POST localhost:3003/api/chat -d '{"prompt":"hi"}'
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { toResponse } from 'tokenrelay/web';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();

// app/api/chat/route.ts in a Next.js app would export exactly this.
export async function POST(request: Request): Promise<Response> {
  const messages = messagesFrom(await request.json().catch(() => undefined));
  return toResponse((signal) => llm(messages, signal), { request, timeout: { firstTokenMs: 30_000 } });
}

const server = createServer(async (req, res) => {
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  const body = req.method === 'POST' ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null;
  const request = new Request(`http://localhost${req.url}`, {
    method: req.method ?? 'GET',
    headers: req.headers as Record<string, string>,
    body,
    duplex: 'half',
    signal: controller.signal,
  } as RequestInit);
  const response = req.url === '/api/chat' && req.method === 'POST' ? await POST(request) : new Response(null, { status: 404 });
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body === null) return void res.end();
  const reader = response.body.getReader();
  res.on('close', () => void reader.cancel());
  for (let read = await reader.read(); !read.done; read = await reader.read()) res.write(read.value);
  res.end();
});

const port = Number(process.env.PORT ?? 3003);
server.listen(port, () => console.log(`web Response example on http://localhost:${port}/api/chat, answering with ${name}`));
process.once('SIGINT', async () => {
  server.close();
  await close();
});
