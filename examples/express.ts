// Express 5 chat server with resumable streams, and a chat page. `npm run demo` runs this file;
// open http://localhost:3000, or watch the tokens with curl:
//   curl -N -X POST localhost:3000/chat -H 'content-type: application/json' \
//     -d '{"messages":[{"role":"user","content":"hi"}]}'
//
// The protocol (docs/client.md): POST /chat starts the answer in a relay and streams it as SSE,
// naming the stream in `X-Stream-Id`; GET /chat/:id resumes it after `Last-Event-ID`; POST
// /chat/:id/cancel stops the provider. `tokenrelay/client` speaks it (examples/chat/app.ts).
// GET /metrics serves Prometheus metrics: time to first token, tokens/s, outcomes, tokens, cost.
import express, { type Express } from 'express';
import { Registry } from 'prom-client';
import { composeMonitors, createRelay, resumeCursor, type Price, type Relay } from 'tokenrelay';
import { normalizeModelName, prometheusMonitor } from 'tokenrelay/prometheus';
import { closeAllStreams, sendSSE, type SendSSEOptions } from 'tokenrelay/node';
import { bundleChatPage } from './chat/bundle.ts';
import { createLlm, messagesFrom, type Llm } from './shared/llm.ts';

// Example prices in USD per million tokens: tokenrelay ships no price list (prices change), so
// supply your own. The mock model's prices are made up so the demo's cost metric moves.
const PRICES: Record<string, Price> = {
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 },
  'claude-haiku-4-5': { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1 },
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

/** The chat server: the page, and the three routes of the resumable-stream protocol. */
export async function createChatApp({ llm, relay = createRelay(), log = console.log }: ChatAppOptions): Promise<{ app: Express; relay: Relay }> {
  const page = await bundleChatPage();
  const metrics = new Registry();
  const streamOptions: SendSSEOptions = {
    timeout: { firstTokenMs: 30_000, idleMs: 15_000 },
    monitor: composeMonitors(
      prometheusMonitor({ registry: metrics, pricing: (model) => PRICES[normalizeModelName(model)] }),
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

  // Start the answer in the relay (it outlives this response), then stream it to this client.
  app.post('/chat', express.json(), async (req, res) => {
    const messages = messagesFrom(req.body);
    const { id } = await relay.start((signal) => llm(messages, signal));
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

  return { app, relay };
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
