/**
 * tokenrelay's provider adapters behind the same server, for the abort-latency benchmark: node
 * `sendSSE` streaming `streamGoogle` (`@google/genai`), `streamBedrock`
 * (`@aws-sdk/client-bedrock-runtime`) or `streamMistral` (`@mistralai/mistralai`), each real SDK
 * pointed at the testing kit's mock provider as test/providers/*-servers.test.ts do. `POST /chat`
 * with `{ "prompt" }`, sent to the provider as the user message.
 */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { GoogleGenAI } from '@google/genai';
import { Mistral } from '@mistralai/mistralai';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { IncomingMessage } from 'node:http';
import { streamBedrock } from '../../src/providers/bedrock/index.ts';
import { streamGoogle } from '../../src/providers/google/index.ts';
import { streamMistral } from '../../src/providers/mistral/index.ts';
import { sendSSE } from '../../src/servers/node.ts';
import type { TokenChunk } from '../../src/core/types.ts';
import { startHttpServer, type Listening } from './servers.ts';

/** The provider adapters measured besides OpenAI's (which every server adapter row uses). */
export type ProviderKind = 'google' | 'bedrock' | 'mistral';

export const PROVIDERS: readonly ProviderKind[] = ['google', 'bedrock', 'mistral'];

/** Where the mock provider serves each provider's API (its `MockProvider` properties). */
export interface MockProviderURLs {
  googleBaseURL: string;
  bedrockEndpoint: string;
  mistralServerURL: string;
}

/** Starts `sendSSE` on `node:http` streaming from `kind`'s adapter and SDK. */
export async function startProviderServer(kind: ProviderKind, urls: MockProviderURLs): Promise<Listening> {
  const { source, close } = providerSource(kind, urls);
  const server = await startHttpServer(async (req, res) => {
    const prompt = await readPrompt(req);
    return sendSSE(req, res, (signal) => source(prompt, signal));
  });
  return {
    url: server.url,
    port: server.port,
    close: async () => {
      await server.close();
      close();
    },
  };
}

type Source = (prompt: string, signal: AbortSignal) => AsyncIterable<TokenChunk>;

function providerSource(kind: ProviderKind, urls: MockProviderURLs): { source: Source; close(): void } {
  switch (kind) {
    case 'google': {
      const ai = new GoogleGenAI({ apiKey: 'AIza-bench', httpOptions: { baseUrl: urls.googleBaseURL } });
      return { source: (prompt, signal) => streamGoogle(ai, { model: 'gemini-2.5-flash', contents: prompt }, { signal }), close() {} };
    }
    case 'bedrock': {
      const bedrock = new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: urls.bedrockEndpoint,
        credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' },
        maxAttempts: 1,
        // The client's default handler speaks HTTP/2 only; the mock provider speaks HTTP/1.1.
        requestHandler: new NodeHttpHandler(),
      });
      return {
        source: (prompt, signal) =>
          streamBedrock(bedrock, { modelId: 'amazon.nova-lite-v1:0', messages: [{ role: 'user', content: [{ text: prompt }] }] }, { signal }),
        close: () => bedrock.destroy(),
      };
    }
    case 'mistral': {
      const mistral = new Mistral({ apiKey: 'mistral-bench', serverURL: urls.mistralServerURL });
      return {
        source: (prompt, signal) => streamMistral(mistral, { model: 'mistral-small-latest', messages: [{ role: 'user', content: prompt }] }, { signal }),
        close() {},
      };
    }
  }
}

async function readPrompt(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { prompt?: unknown };
  return String(body.prompt ?? '');
}
