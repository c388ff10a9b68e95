// Elysia on Bun (the `bun` dev dependency), serving examples/elysia.ts through `tokenrelay/web`:
// a Bun child process runs test/fixtures/elysia-server.ts from source (Bun runs TypeScript and
// follows tsconfig.json `paths`), and this Node test reads it over loopback, with the mock
// provider here, so the provider's own record says when its request closed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider, type MockScript } from 'tokenrelay/testing';
import { manyTokens, openSSE, tokenEvents, tokenText } from '../helpers/sse-client.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bun = fileURLToPath(new URL('../../node_modules/.bin/bun', import.meta.url));
const require = createRequire(import.meta.url);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface BunServer {
  url: string;
  bunVersion: string;
  /** The next `{ outcome, outputTokens }` the app's monitor printed. */
  nextFinish(): Promise<{ outcome: string; outputTokens: number }>;
}

async function startProvider(script: MockScript): Promise<MockProvider> {
  const provider = await startMockProvider({ script });
  cleanups.push(() => provider.close());
  return provider;
}

async function startElysia(provider: MockProvider): Promise<BunServer> {
  const child: ChildProcess = spawn(bun, ['test/fixtures/elysia-server.ts'], {
    cwd: root,
    env: { ...process.env, TOKENRELAY_OPENAI_BASE_URL: provider.openaiBaseURL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`The Bun server exited: ${stderr}`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  const first = await nextLine();
  return {
    url: `http://127.0.0.1:${String(first.port)}`,
    bunVersion: String(first.bun),
    nextFinish: () => nextLine() as Promise<{ outcome: string; outputTokens: number }>,
  };
}

const chat = { messages: [{ role: 'user', content: 'Hi from Elysia' }] };

describe('Elysia on Bun through tokenrelay/web', () => {
  it('runs Elysia 1.4 on the Bun dev dependency', async () => {
    expect((require('elysia/package.json') as { version: string }).version.startsWith('1.4.')).toBe(true);
    const server = await startElysia(await startProvider({ tokens: ['x'] }));
    expect(server.bunVersion).toMatch(/^1\./);
  });

  it('streams a POST answer whole, with the SSE headers, the request body reaching the provider', async () => {
    const provider = await startProvider({ tokens: manyTokens(40), delayMs: 1 });
    const server = await startElysia(provider);
    const client = await openSSE(`${server.url}/chat`, { method: 'POST', body: chat });
    await client.ended;
    expect(client.response.statusCode).toBe(200);
    expect(client.response.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    expect(tokenText(client.events)).toBe(manyTokens(40).join(''));
    expect(client.events.at(-1)?.event).toBe('done');
    expect((await provider.request(1)).body.messages).toEqual(chat.messages);
    expect(await server.nextFinish()).toEqual({ outcome: 'completed', outputTokens: 40 });
  });

  it('stops the provider request when the client disconnects mid-stream', async () => {
    const provider = await startProvider({ tokens: manyTokens(300), delayMs: 10 });
    const server = await startElysia(provider);
    const client = await openSSE(`${server.url}/chat`, { method: 'POST', body: chat });
    await client.until((events) => tokenEvents(events).length >= 3);
    const disconnectedAt = client.disconnect();
    const record = await (await provider.request(1)).ended;
    expect(record.end).toBe('client-closed');
    console.info(`elysia on bun: disconnect → provider request closed: ${(record.endedAt! - disconnectedAt).toFixed(1)} ms`);
    expect(record.endedAt! - disconnectedAt).toBeLessThan(2000);
    const finish = await server.nextFinish();
    expect(finish.outcome).toBe('aborted');
    expect(finish.outputTokens).toBeGreaterThanOrEqual(3);
    expect(finish.outputTokens).toBeLessThan(300);
  });
});
