import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { serve } from '@hono/node-server';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamMetrics } from 'tokenrelay';
import { streamBedrock, type BedrockStreamInput } from 'tokenrelay/bedrock';
import { sendSSE } from 'tokenrelay/node';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { toResponse } from 'tokenrelay/web';

/** A user who leaves after 3 tokens stops the Bedrock request, through each server adapter. */

const INPUT: BedrockStreamInput = { modelId: 'amazon.nova-lite-v1:0', messages: [{ role: 'user', content: [{ text: 'Hi' }] }] };
const tokens = Array.from({ length: 200 }, (_, i) => ` ünï${i} 🙂`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(): Promise<{ provider: MockProvider; bedrock: BedrockRuntimeClient }> {
  const provider = await startMockProvider({ script: { tokens, delayMs: 10 }, split: { seed: 9 } });
  const bedrock = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: provider.bedrockEndpoint,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler(),
  });
  cleanups.push(() => provider.close(), () => bedrock.destroy());
  return { provider, bedrock };
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** Reads SSE from `port` on its own connection until 3 `token` events came, then drops the connection. */
async function readThreeTokensAndLeave(port: number): Promise<void> {
  const request = http.request({ host: '127.0.0.1', port, path: '/chat', agent: false });
  request.on('error', () => undefined);
  request.end();
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  response.on('error', () => undefined);
  response.setEncoding('utf8');
  let text = '';
  for await (const part of response) {
    text += part as string;
    if ((text.match(/^event: token$/gm) ?? []).length >= 3) break;
  }
  request.destroy();
}

describe('a client disconnect reaches Bedrock', () => {
  it('node sendSSE: the provider request is closed and the stream reported aborted', async () => {
    const { provider, bedrock } = await setUp();
    const finished = deferred<StreamMetrics>();
    const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
      void sendSSE(req, res, (signal) => streamBedrock(bedrock, INPUT, { signal }), { monitor: { onFinish: finished.resolve } });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    await readThreeTokensAndLeave((server.address() as AddressInfo).port);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    const metrics = await finished.promise;
    expect(metrics.outcome).toBe('aborted');
    expect(metrics.chunks).toBeGreaterThanOrEqual(3);
  });

  it('web toResponse behind a real listening server: the provider request is closed', async () => {
    const { provider, bedrock } = await setUp();
    const finished = deferred<StreamMetrics>();
    const server = serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (request: Request) =>
        toResponse((signal) => streamBedrock(bedrock, INPUT, { signal }), { request, monitor: { onFinish: finished.resolve } }),
    });
    if (!server.listening) await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      if ('closeAllConnections' in server) server.closeAllConnections();
    }));
    await readThreeTokensAndLeave((server.address() as AddressInfo).port);
    expect((await (await provider.request(1)).ended).end).toBe('client-closed');
    expect((await finished.promise).outcome).toBe('aborted');
  });
});
