// AWS Bedrock (ConverseStream) behind plain node:http: POST /chat streams the answer as SSE.
//   npm run example:bedrock   then   curl -N -X POST localhost:3002/chat -d '{"prompt":"hi"}'
// With AWS credentials and BEDROCK_MODEL_ID set (and AWS_REGION), it asks Bedrock; otherwise the
// embedded mock provider answers in Bedrock's own binary event-stream format, through the real SDK.
import { createServer } from 'node:http';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { streamBedrock } from 'tokenrelay/bedrock';
import { closeAllStreams, sendSSE } from 'tokenrelay/node';
import { startMockProvider } from 'tokenrelay/testing';
import { MOCK_TOKENS, messagesFrom } from './shared/llm.ts';

const modelId = process.env.BEDROCK_MODEL_ID;
const provider = modelId === undefined ? await startMockProvider({ script: { tokens: MOCK_TOKENS, delayMs: 40, firstTokenDelayMs: 250 } }) : undefined;
const bedrock =
  provider === undefined
    ? new BedrockRuntimeClient({ region: process.env.AWS_REGION ?? 'us-east-1' })
    : new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: provider.bedrockEndpoint,
        credentials: { accessKeyId: 'mock', secretAccessKey: 'mock' },
        maxAttempts: 1,
        // The client's default handler speaks HTTP/2 only; the mock provider speaks HTTP/1.1.
        requestHandler: new NodeHttpHandler(),
      });

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  const messages = messagesFrom(await readJson(req)).map(({ role, content }) => ({ role, content: [{ text: content }] }));
  const input = { modelId: modelId ?? 'amazon.nova-lite-v1:0', messages, inferenceConfig: { maxTokens: 1024 } };
  const { outcome, metrics } = await sendSSE(req, res, (signal) => streamBedrock(bedrock, input, { signal }), {
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

const port = Number(process.env.PORT ?? 3002);
const name = provider === undefined ? `Bedrock (${modelId})` : `the embedded mock provider at ${provider.url} (set BEDROCK_MODEL_ID for a real model)`;
server.listen(port, () => console.log(`Bedrock example on http://localhost:${port}/chat, answering with ${name}`));
process.once('SIGINT', async () => {
  server.close();
  await closeAllStreams({ server, retryMs: 2000 });
  bedrock.destroy();
  await provider?.close();
});
