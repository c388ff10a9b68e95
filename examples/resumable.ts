// Resumable streams with plain node:http. POST /chat starts an answer that runs detached from
// the response and names it in X-Stream-Id; GET /chat/:id resumes it after Last-Event-ID (or
// ?lastEventId=), on this instance or any other that shares the store. Memory store by default;
// set REDIS_URL to share streams between instances through Redis.
//   npm run example:resumable
//   curl -N -X POST localhost:3005/chat -d '{"prompt":"hi"}' -D -        # note X-Stream-Id, stop it
//   curl -N localhost:3005/chat/<id> -H 'Last-Event-ID: 5'               # the rest, from index 6
import { createServer, type IncomingMessage } from 'node:http';
import { createRelay, memoryStore, resumeCursor } from 'tokenrelay/relay';
import type { RelayStore } from 'tokenrelay/store';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { createLlm, messagesFrom } from './shared/llm.ts';

async function openStore(): Promise<{ store: RelayStore; name: string; close(): Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (url === undefined) return { store: memoryStore(), name: 'the memory store', close: async () => {} };
  const { Redis } = await import('ioredis');
  const { redisStore } = await import('tokenrelay/redis');
  const client = new Redis(url);
  const store = redisStore(client, { prefix: 'tokenrelay-example:' });
  return {
    store,
    name: `Redis at ${url}`,
    close: async () => {
      await store.close();
      client.disconnect();
    },
  };
}

const { llm, name, close } = await createLlm();
const storage = await openStore();
// A closed tab stops the provider after 10 s unless the client comes back.
const relay = createRelay({ store: storage.store, graceMs: 10_000 });

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const resume = /^\/chat\/([\w-]+)$/.exec(url.pathname);
  if (req.method === 'POST' && url.pathname === '/chat') {
    const messages = messagesFrom(await readJson(req));
    const { id } = await relay.start((signal) => llm(messages, signal));
    await sendSSE(req, res, (signal) => relay.subscribe(id, { signal }), { headers: { 'X-Stream-Id': id } });
  } else if (req.method === 'GET' && resume !== null) {
    // An invalid cursor is answered 400, an unknown or expired stream 404: both inside the factory.
    await sendSSE(req, res, (signal) => relay.subscribe(resume[1]!, { after: resumeCursor(req), signal }));
  } else {
    res.writeHead(404).end();
  }
});

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const part of req) text += String(part);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const port = Number(process.env.PORT ?? 3005);
server.listen(port, () => console.log(`resumable example on http://localhost:${port}/chat with ${storage.name}, answering with ${name}`));
process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 1000 });
  await relay.close();
  await storage.close();
  await close();
});
