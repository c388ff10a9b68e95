// Plain node:http: POST /chat streams the answer as SSE.
//   npm run example:node-http   then   curl -N -X POST localhost:3001/chat -d '{"prompt":"hi"}'
import { createServer } from 'node:http';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { createLlm, messagesFrom } from './shared/llm.ts';

const { llm, name, close } = await createLlm();

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  const messages = messagesFrom(await readJson(req));
  const { outcome, metrics } = await sendSSE(req, res, (signal) => llm(messages, signal), {
    timeout: { firstTokenMs: 30_000, idleMs: 15_000 },
  });
  console.log(`${outcome}: ${metrics.outputTokens} tokens, ttft ${metrics.ttftMs?.toFixed(0) ?? '-'} ms`);
});

async function readJson(req: AsyncIterable<Buffer>): Promise<unknown> {
  let text = '';
  for await (const part of req) text += part.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const port = Number(process.env.PORT ?? 3001);
server.listen(port, () => console.log(`node:http example on http://localhost:${port}/chat, answering with ${name}`));
process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 2000 });
  await close();
});
