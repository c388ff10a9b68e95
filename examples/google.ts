// Gemini through @google/genai: POST /chat streams the answer (thoughts included) as SSE.
//   npm run example:google   then   curl -N -X POST localhost:3005/chat -d '{"prompt":"hi"}'
// With GEMINI_API_KEY (or GOOGLE_API_KEY) set it calls the Gemini API; with GOOGLE_GENAI_USE_VERTEXAI=true
// and GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION, Vertex AI. Otherwise it answers from the
// embedded mock provider, a loopback server speaking Gemini's wire format, through the real SDK.
import { createServer } from 'node:http';
import { GoogleGenAI } from '@google/genai';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { streamGoogle } from 'tokenrelay/google';
import { startMockProvider } from 'tokenrelay/testing';

const model = process.env.GEMINI_MODEL ?? 'gemini-2.5-flash';
const live = Boolean(process.env.GEMINI_API_KEY ?? process.env.GOOGLE_API_KEY) || process.env.GOOGLE_GENAI_USE_VERTEXAI === 'true';
const provider = live
  ? undefined
  : await startMockProvider({
      script: {
        reasoning: ['The user greets me. ', 'A short, friendly answer fits.'],
        tokens: ['Hello', ' from', ' Gemini', ' (well, ', 'the tokenrelay', ' mock)', ' 👋'],
        usage: { inputTokens: 9, outputTokens: 19, reasoningTokens: 12 },
        delayMs: 40,
        firstTokenDelayMs: 250,
      },
    });
// The SDK reads its key, or Vertex AI settings, from the environment when they are set.
const ai = provider === undefined ? new GoogleGenAI({}) : new GoogleGenAI({ apiKey: 'mock', httpOptions: { baseUrl: provider.googleBaseURL } });

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  const prompt = await readPrompt(req);
  const { outcome, metrics } = await sendSSE(
    req,
    res,
    (signal) => streamGoogle(ai, { model, contents: prompt, config: { thinkingConfig: { includeThoughts: true } } }, { signal }),
    { timeout: { firstTokenMs: 30_000, idleMs: 15_000 } },
  );
  console.log(`${outcome}: ${metrics.outputTokens} tokens, ttft ${metrics.ttftMs?.toFixed(0) ?? '-'} ms`);
});

async function readPrompt(req: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const part of req) text += part.toString('utf8');
  try {
    const { prompt } = JSON.parse(text) as { prompt?: unknown };
    if (typeof prompt === 'string' && prompt !== '') return prompt;
  } catch {
    // Not JSON: fall through to the greeting.
  }
  return 'Say hello.';
}

const port = Number(process.env.PORT ?? 3005);
server.listen(port, () =>
  console.log(`Gemini example on http://localhost:${port}/chat, answering with ${provider === undefined ? model : `the embedded mock provider at ${provider.url}`}`),
);
process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 2000 });
  await provider?.close();
});
