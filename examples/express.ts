// Express 5 chat server with resumable streams, and two chat pages. `npm run demo` runs this file;
// open http://localhost:3000 (tokenrelay/client) or http://localhost:3000/use-chat (the AI SDK's
// useChat), or watch the tokens with curl:
//   curl -N -X POST localhost:3000/chat -H 'content-type: application/json' \
//     -d '{"messages":[{"role":"user","content":"hi"}]}'
//
// The protocol (docs/client.md): POST /chat starts the answer in a relay and streams it as SSE,
// naming the stream in `X-Stream-Id`; GET /chat/:id resumes it after `Last-Event-ID`; POST
// /chat/:id/cancel stops the provider. `tokenrelay/client` speaks it (examples/chat/app.ts).
// The useChat page speaks the AI SDK's protocol (docs/protocols.md): POST /api/chat, GET
// /api/chat/:chatId/stream to resume, DELETE /api/chat/:chatId/stream to stop.
// GET /chat/:id/metrics and /api/chat/:chatId/metrics: what the server measured of an answer at
// the provider (time to first token, tokens/s, tokens, cost), as JSON, once it has ended.
// GET /metrics serves Prometheus metrics: time to first token, tokens/s, outcomes, tokens, cost.
import type { UIMessage } from 'ai';
import express, { type Express } from 'express';
import { Registry } from 'prom-client';
import { composeMonitors, monitored, pipe, type Price, type StreamMetrics } from 'tokenrelay';
import { createRelay, resumeCursor, type Relay } from 'tokenrelay/relay';
import { sse } from 'tokenrelay/express';
import { normalizeModelName, prometheusMonitor } from 'tokenrelay/prometheus';
import { closeAllStreams, sendSSE, type SendSSEOptions } from 'tokenrelay/node';
import { bundleChatPage, bundleUseChatPage } from './chat/bundle.ts';
import { answerMetrics } from './shared/answer-metrics.ts';
import { createLlm, messagesFrom, type ChatMessage, type Llm } from './shared/llm.ts';

// Example prices in USD per million tokens: tokenrelay ships no price list (prices change), so
// supply your own. The mock model's prices are made up so the demo's cost metric moves.
const PRICES: Record<string, Price> = {
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 },
  'claude-haiku-4-5': { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1 },
  'gemini-2.5-flash': { inputPerMTok: 0.3, outputPerMTok: 2.5, cachedInputPerMTok: 0.075 },
  'amazon.nova-lite-v1:0': { inputPerMTok: 0.06, outputPerMTok: 0.24 },
  'mistral-small-latest': { inputPerMTok: 0.1, outputPerMTok: 0.3 },
  'mock-model': { inputPerMTok: 1, outputPerMTok: 2 },
};

/** Options of {@link createChatApp}. */
export interface ChatAppOptions {
  /** The model. */
  llm: Llm;
  /**
   * Where answers run, detached from the responses that carry them.
   * @defaultValue `createRelay()`: memory store, 10 s of grace for a client to come back
   */
  relay?: Relay | undefined;
  /**
   * Where each response's metrics line goes.
   * @defaultValue `console.log`
   */
  log?: ((line: string) => void) | undefined;
}

const priceOf = (model: string | undefined): Price | undefined => PRICES[normalizeModelName(model)];

/** The chat server: the two pages, the routes of the resumable-stream protocol and those of `useChat`. */
export async function createChatApp({ llm, relay = createRelay(), log = console.log }: ChatAppOptions): Promise<{ app: Express; relay: Relay }> {
  const [page, useChatPage] = await Promise.all([bundleChatPage(), bundleUseChatPage()]);
  const metrics = new Registry();
  const answers = answerMetricsStore();
  // Each answer runs in the relay, measured where it is produced: a Stop, a reload or a lost
  // connection does not change what the provider was asked for, and bills.
  const start = async (messages: ChatMessage[], key?: string) => {
    const report = answers.expect();
    const { id } = await relay.start(
      (signal) => pipe(llm(messages, signal), monitored({ price: priceOf, onFinish: report.finish })),
      key === undefined ? {} : { key },
    );
    answers.set(id, report.metrics);
    if (key !== undefined) answers.set(`chat:${key}`, report.metrics);
    return id;
  };
  const streamOptions: SendSSEOptions = {
    timeout: { firstTokenMs: 30_000, idleMs: 15_000 },
    monitor: composeMonitors(
      prometheusMonitor({ registry: metrics, pricing: priceOf }),
      {
        onFinish: (m) => {
          const ttft = m.ttftMs === undefined ? '-' : `${m.ttftMs.toFixed(0)} ms`;
          log(`response ${m.outcome}: ttft ${ttft}, ${m.outputTokens} tokens in ${m.durationMs.toFixed(0)} ms`);
        },
      },
    ),
  };
  const app = express();

  app.get('/metrics', async (_req, res) => void res.type(metrics.contentType).send(await metrics.metrics()));

  app.get('/', (_req, res) => void res.type('html').send(page.html));
  app.get('/chat.js', (_req, res) => void res.type('text/javascript').send(page.script));
  app.get('/use-chat', (_req, res) => void res.type('html').send(useChatPage.html));
  app.get('/use-chat.js', (_req, res) => void res.type('text/javascript').send(useChatPage.script));

  // Start the answer in the relay (it outlives this response), then stream it to this client.
  app.post('/chat', express.json(), async (req, res) => {
    const id = await start(messagesFrom(req.body));
    await sendSSE(req, res, (signal) => relay.subscribe(id, { signal }), { ...streamOptions, headers: { 'X-Stream-Id': id } });
  });

  // A client that lost its connection comes back here with the last index it got.
  app.get('/chat/:id', async (req, res) => {
    // Inside the factory, an invalid Last-Event-ID is answered 400 and an unknown id 404.
    await sendSSE(req, res, (signal) => relay.subscribe(req.params.id, { after: resumeCursor(req), signal }), streamOptions);
  });

  // Stop: without it, the relay would keep the provider running for `graceMs`, waiting for a reconnect.
  app.post('/chat/:id/cancel', async (req, res) => {
    res.status((await relay.cancel(req.params.id)) ? 204 : 404).end();
  });

  app.get('/chat/:id/metrics', (req, res) => answers.send(req.params.id, res));

  // useChat: the same relay, under the chat id, so a reload finds the answer in flight.
  const aiSdk: SendSSEOptions = { ...streamOptions, protocol: 'ai-sdk' };
  app.post(
    '/api/chat',
    express.json(),
    sse(async (req, signal) => {
      const { id: chatId, messages } = req.body as { id: string; messages: UIMessage[] };
      const id = await start(toChatMessages(messages), chatId);
      return relay.subscribe(id, { signal });
    }, aiSdk),
  );
  // useChat({ resume: true }) asks when the page loads: 204 when the chat has no answer in flight.
  app.get('/api/chat/:chatId/stream', async (req, res) => {
    const source = await relay.resume(req.params.chatId);
    if (source === undefined) return void res.status(204).end();
    await sendSSE(req, res, source, aiSdk);
  });
  app.delete('/api/chat/:chatId/stream', async (req, res) => {
    const id = await relay.active(req.params.chatId);
    res.status(id !== undefined && (await relay.cancel(id)) ? 204 : 404).end();
  });
  app.get('/api/chat/:chatId/metrics', (req, res) => answers.send(`chat:${req.params.chatId}`, res));

  return { app, relay };
}

/** The text of useChat's messages, as chat messages for the provider. */
export function toChatMessages(messages: UIMessage[]): ChatMessage[] {
  const chat = (Array.isArray(messages) ? messages : [])
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => ({
      role: message.role as ChatMessage['role'],
      content: message.parts.map((part) => (part.type === 'text' ? part.text : '')).join(''),
    }));
  return messagesFrom({ messages: chat });
}

/**
 * The producers' metrics by stream id (and `chat:<chatId>`), kept 10 minutes. A request for an
 * answer still running waits for its end (at most 30 s).
 */
function answerMetricsStore() {
  const KEEP_MS = 10 * 60_000;
  const WAIT_MS = 30_000;
  const byKey = new Map<string, Promise<StreamMetrics>>();
  return {
    expect() {
      let finish!: (metrics: StreamMetrics) => void;
      const metrics = new Promise<StreamMetrics>((resolve) => (finish = resolve));
      return { metrics, finish };
    },
    set(key: string, metrics: Promise<StreamMetrics>) {
      byKey.set(key, metrics);
      setTimeout(() => byKey.get(key) === metrics && byKey.delete(key), KEEP_MS).unref();
    },
    async send(key: string, res: express.Response) {
      const metrics = byKey.get(key);
      if (metrics === undefined) return void res.status(404).json({ error: 'No such answer' });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([metrics, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), WAIT_MS)))]);
      clearTimeout(timer);
      if (ended === undefined) return void res.status(504).json({ error: 'The answer has not ended' });
      res.json(answerMetrics(ended));
    },
  };
}

async function main(): Promise<void> {
  const { llm, name, close } = await createLlm();
  const { app, relay } = await createChatApp({ llm });
  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, () => {
    console.log(`tokenrelay express example on http://localhost:${port}, answering with ${name}`);
    console.log(
      `try: curl -N -X POST localhost:${port}/chat -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}'`,
    );
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      server.close();
      // Each open stream gets a `shutdown` event: clients reconnect with Last-Event-ID elsewhere.
      await closeAllStreams({ server, retryMs: 2000, reason: 'The server is restarting' });
      await relay.close();
      await close();
      process.exit(0);
    });
  }
}

if (import.meta.main) await main();
