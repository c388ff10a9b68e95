/**
 * The real HTTP (and WebSocket) servers the server benchmarks measure, all reading an OpenAI
 * Chat Completions stream from a provider URL through the real `openai` SDK:
 *
 * - {@link handWritten}: what an endpoint written by hand does — `res.write` per token, SSE
 *   framed by hand, regardless of `write()`'s return value (it aborts the SDK request when the
 *   response closes, which is more than many do);
 * - {@link relayedNode}: tokenrelay's `sendSSE` with a source factory;
 * - {@link aiSdk}: the Vercel AI SDK's `streamText` → `pipeUIMessageStreamToResponse`;
 * - {@link startAdapter}: every tokenrelay server adapter on its own server (node, express,
 *   hono and web over `@hono/node-server`, ws).
 *
 * Every request carries a JSON body `{ "prompt": "…" }`, sent to the provider as the user message.
 */
import { createAdaptorServer } from '@hono/node-server';
import { streamText } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import express from 'express';
import { Hono } from 'hono';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { WebSocketServer } from 'ws';
import { sse } from '../../src/servers/express.ts';
import { sendSSE as sendHonoSSE } from '../../src/servers/hono.ts';
import { sendSSE, type SendSSEOptions, type SendSSEResult } from '../../src/servers/node.ts';
import { toResponse } from '../../src/servers/web.ts';
import { sendOverWebSocket } from '../../src/servers/ws.ts';
import { streamOpenAI, type OpenAIChatParams } from '../../src/providers/openai.ts';

export const MODEL = 'gpt-4o-mini';

/** An `openai` client for a mock provider: no retries, so a failure shows at once. */
export function createOpenAI(baseURL: string): OpenAI {
  return new OpenAI({ apiKey: 'sk-bench', baseURL, maxRetries: 0, timeout: 120_000 });
}

export function chatParams(prompt: string): OpenAIChatParams {
  return { model: MODEL, messages: [{ role: 'user', content: prompt }] };
}

/** A `node:http` request handler; it resolves when it has nothing more to do. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

/** (a) The hand-written endpoint. Its frames carry the same JSON fields as tokenrelay's. */
export function handWritten(openai: OpenAI): NodeHandler {
  return async (req, res) => {
    const { prompt } = await readJson(req);
    const request = new AbortController();
    res.on('close', () => request.abort());
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
    });
    let index = 0;
    let finishReason: string | null = null;
    let usage: unknown;
    try {
      const stream = await openai.chat.completions.create(
        { ...chatParams(prompt), stream: true, stream_options: { include_usage: true } },
        { signal: request.signal },
      );
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const token = choice?.delta.content;
        if (token) {
          const data = JSON.stringify({ token, index, timestamp: performance.now(), type: 'text', model: chunk.model, provider: 'openai' });
          res.write(`id: ${index}\nevent: token\ndata: ${data}\n\n`);
          index++;
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
      }
      const done = JSON.stringify({ finishReason, index, usage, model: MODEL, provider: 'openai' });
      res.end(`id: ${index}\nevent: done\ndata: ${done}\n\n`);
    } catch {
      res.end();
    }
  };
}

/** (b) tokenrelay: `sendSSE` with the factory form; resolves with its result. */
export function relayedNode(openai: OpenAI, options: SendSSEOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<SendSSEResult> {
  return async (req, res) => {
    const { prompt } = await readJson(req);
    return sendSSE(req, res, (signal) => streamOpenAI(openai, chatParams(prompt), { signal }), options);
  };
}

/**
 * (c) The Vercel AI SDK: `streamText` → `pipeUIMessageStreamToResponse(res)`, as its Node
 * `http` guide does. `@ai-sdk/openai` is not installed, so the model is the `ai/test` mock
 * (`MockLanguageModelV4`) whose `doStream` reads the provider through the same `openai` SDK
 * and maps its chunks to the model's stream parts: the provider's bytes are parsed by the same
 * code in all three variants. (`@ai-sdk/openai` parses them with its own SSE parser and schema
 * validation instead.) Cancelling the model stream returns the SDK stream, which aborts its request.
 */
export function aiSdk(openai: OpenAI): NodeHandler {
  return async (req, res) => {
    const { prompt } = await readJson(req);
    const result = streamText({ model: openaiModel(openai), prompt, onError: () => {} });
    return result.pipeUIMessageStreamToResponse(res);
  };
}

type ModelStream = Awaited<ReturnType<MockLanguageModelV4['doStream']>>['stream'];
type ModelPart = ModelStream extends ReadableStream<infer Part> ? Part : never;

function openaiModel(openai: OpenAI): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    provider: 'openai',
    modelId: MODEL,
    doStream: async ({ prompt, abortSignal }) => {
      const text = prompt.flatMap((message) => (message.role === 'user' ? message.content : []));
      const content = text.map((part) => (part.type === 'text' ? part.text : '')).join('');
      const stream = await openai.chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content }], stream: true, stream_options: { include_usage: true } },
        abortSignal === undefined ? {} : { signal: abortSignal },
      );
      return { stream: modelParts(stream) };
    },
  });
}

/** The SDK chunks as the AI SDK's model stream parts, pulled one SDK chunk at a time. */
function modelParts(stream: AsyncIterable<ChatCompletionChunk>): ReadableStream<ModelPart> {
  const chunks = stream[Symbol.asyncIterator]();
  let started = false;
  let finish: string | null = null;
  let usage = { input: 0, output: 0 };
  return new ReadableStream<ModelPart>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue({ type: 'stream-start', warnings: [] });
        controller.enqueue({ type: 'text-start', id: 'text-0' });
      }
      // A pull that enqueues nothing is not called again: read until there is a part.
      for (;;) {
        const result = await chunks.next();
        if (result.done === true) {
          controller.enqueue({ type: 'text-end', id: 'text-0' });
          controller.enqueue({
            type: 'finish',
            finishReason: { unified: finish === 'length' ? 'length' : 'stop', raw: finish ?? undefined },
            usage: {
              inputTokens: { total: usage.input, noCache: usage.input, cacheRead: undefined, cacheWrite: undefined },
              outputTokens: { total: usage.output, text: usage.output, reasoning: undefined },
            },
          });
          controller.close();
          return;
        }
        const chunk = result.value;
        const choice = chunk.choices[0];
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) usage = { input: chunk.usage.prompt_tokens, output: chunk.usage.completion_tokens };
        const delta = choice?.delta.content;
        if (delta) {
          controller.enqueue({ type: 'text-delta', id: 'text-0', delta });
          return;
        }
      }
    },
    async cancel() {
      await chunks.return?.();
    },
  });
}

// --- servers -------------------------------------------------------------------------------

/** A listening server on 127.0.0.1. */
export interface Listening {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `handler` on a `node:http` server; a handler that throws destroys its response. */
export function startHttpServer(handler: NodeHandler): Promise<Listening> {
  return listening(
    createServer((req, res) => {
      handler(req, res).catch(() => res.destroy());
    }),
  );
}

/** The tokenrelay server adapters, each as a user would mount it. */
export type AdapterKind = 'node' | 'express' | 'hono' | 'web' | 'ws';

export const ADAPTERS: readonly AdapterKind[] = ['node', 'express', 'hono', 'web', 'ws'];

/**
 * Starts `kind` on its own server, streaming from `openai`: `POST /chat` for the HTTP adapters
 * (`sendSSE` on `node:http`, `sse()` on Express 5, `sendSSE` on Hono and a bare
 * `toResponse` fetch handler, both on `@hono/node-server`), and for `ws` a WebSocket server on
 * which each message `{ "prompt" }` starts an answer.
 */
export function startAdapter(kind: AdapterKind, openai: OpenAI): Promise<Listening> {
  const source = (prompt: string) => (signal: AbortSignal) => streamOpenAI(openai, chatParams(prompt), { signal });
  switch (kind) {
    case 'node':
      return startHttpServer(relayedNode(openai));
    case 'express': {
      const app = express();
      app.post('/chat', express.json(), sse((req, signal) => source(String(req.body.prompt))(signal)));
      return listening(createServer(app));
    }
    case 'hono': {
      const app = new Hono();
      app.post('/chat', async (c) => {
        const { prompt } = (await c.req.json()) as { prompt: string };
        return sendHonoSSE(c, source(prompt));
      });
      return listening(createAdaptorServer({ fetch: app.fetch }) as Server);
    }
    case 'web':
      return listening(
        createAdaptorServer({
          fetch: async (request: Request) => {
            const { prompt } = (await request.json()) as { prompt: string };
            return toResponse(source(prompt), { request });
          },
        }) as Server,
      );
    case 'ws': {
      const server = createServer();
      const wss = new WebSocketServer({ server });
      wss.on('connection', (socket) => {
        socket.on('message', (data) => {
          const { prompt } = JSON.parse(String(data)) as { prompt: string };
          void sendOverWebSocket(socket, source(prompt));
        });
      });
      return listening(server, () => {
        for (const client of wss.clients) client.terminate();
        wss.close();
      });
    }
  }
}

async function listening(server: Server, beforeClose?: () => void): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        beforeClose?.();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The request's JSON body `{ "prompt" }`, read to its end. */
export async function readJson(req: IncomingMessage): Promise<{ prompt: string }> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { prompt?: unknown };
  return { prompt: String(body.prompt ?? '') };
}
