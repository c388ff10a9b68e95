// The routes docs/protocols.md documents for `useChat`, as an Express app: POST /api/chat starts
// the answer in a relay under the chat id and streams it; GET /api/chat/:chatId/stream resumes the
// chat's active stream from its start (204 when none); DELETE /api/chat/:chatId/stream stops it.
// POST /api/direct streams without a relay, for the exit paths of a plain response.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import type { UIMessage } from 'ai';
import type { TokenChunk } from 'tokenrelay';
import type { Relay } from 'tokenrelay/relay';
import { sse } from 'tokenrelay/express';
import { sendSSE, type SendSSEOptions } from 'tokenrelay/node';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export type Llm = (messages: ChatMessage[], signal: AbortSignal) => AsyncIterable<TokenChunk>;

/** The text of UI messages, as chat messages for a provider. */
export function toChatMessages(messages: UIMessage[]): ChatMessage[] {
  return messages
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => ({
      role: message.role as 'user' | 'assistant',
      content: message.parts.map((part) => (part.type === 'text' ? part.text : '')).join(''),
    }));
}

export function createUseChatApp(relay: Relay, llm: Llm, options: SendSSEOptions = {}): Express {
  const streamOptions: SendSSEOptions = { ...options, protocol: 'ai-sdk' };
  const app = express();

  app.post(
    '/api/chat',
    express.json(),
    sse(async (req, signal) => {
      const { id: chatId, messages } = req.body as { id: string; messages: UIMessage[] };
      const { id } = await relay.start((producerSignal) => llm(toChatMessages(messages), producerSignal), { key: chatId });
      return relay.subscribe(id, { signal });
    }, streamOptions),
  );

  app.get('/api/chat/:chatId/stream', async (req, res) => {
    const source = await relay.resume(req.params.chatId);
    if (source === undefined) return void res.status(204).end();
    await sendSSE(req, res, source, streamOptions);
  });

  app.delete('/api/chat/:chatId/stream', async (req, res) => {
    const id = await relay.active(req.params.chatId);
    res.status(id !== undefined && (await relay.cancel(id)) ? 204 : 404).end();
  });

  app.post(
    '/api/direct',
    express.json(),
    sse((req, signal) => llm(toChatMessages((req.body as { messages: UIMessage[] }).messages), signal), streamOptions),
  );

  return app;
}

/** Listens on loopback; `close` ends every connection. */
export async function listen(app: Express): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
