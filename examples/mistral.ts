// Mistral through its own SDK: POST /chat streams the answer (reasoning included) as SSE.
//   npm run example:mistral   then   curl -N -X POST localhost:3002/chat -d '{"prompt":"hi"}'
// With MISTRAL_API_KEY set it asks Mistral (MISTRAL_MODEL, default mistral-small-latest); without
// it, the embedded mock provider answers in Mistral's wire format, through the same real SDK.
import { createServer } from 'node:http';
import { Mistral } from '@mistralai/mistralai';
import { streamMistral } from 'tokenrelay/mistral';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { startMockProvider } from 'tokenrelay/testing';

const apiKey = process.env.MISTRAL_API_KEY;
const model = process.env.MISTRAL_MODEL ?? 'mistral-small-latest';
const mock = apiKey
  ? undefined
  : await startMockProvider({
      script: {
        reasoning: ['The user greets me;', ' a short, friendly answer fits.'],
        tokens: ['Bonjour', ' ! ', 'Ce', ' texte', ' vient', ' du', ' fournisseur', ' simulé', ' 🙂'],
        delayMs: 40,
        firstTokenDelayMs: 250,
      },
    });
const mistral = new Mistral(mock ? { apiKey: 'mock', serverURL: mock.mistralServerURL } : { apiKey });

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  const content = promptFrom(await readText(req));
  const { outcome, metrics } = await sendSSE(
    req,
    res,
    // The signal closes the request to Mistral as soon as the client goes away.
    (signal) => streamMistral(mistral, { model, messages: [{ role: 'user', content }] }, { signal }),
    { timeout: { firstTokenMs: 30_000, idleMs: 15_000 } },
  );
  console.log(`${outcome}: ${metrics.outputTokens} tokens, ttft ${metrics.ttftMs?.toFixed(0) ?? '-'} ms`);
});

function promptFrom(text: string): string {
  try {
    const { prompt } = JSON.parse(text) as { prompt?: unknown };
    if (typeof prompt === 'string' && prompt !== '') return prompt;
  } catch {
    // not JSON: fall through to the default prompt
  }
  return 'Say hello.';
}

async function readText(req: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const part of req) text += part.toString('utf8');
  return text;
}

const port = Number(process.env.PORT ?? 3002);
const source = mock ? `the embedded mock provider at ${mock.mistralServerURL} (set MISTRAL_API_KEY for Mistral)` : `Mistral (${model})`;
server.listen(port, () => console.log(`Mistral example on http://localhost:${port}/chat, answering with ${source}`));
process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 2000 });
  await mock?.close();
});
