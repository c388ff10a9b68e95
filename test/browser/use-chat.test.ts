// A real `useChat` page (React, @ai-sdk/react, bundled with esbuild) in Chromium, against the
// 'ai-sdk' routes of docs/protocols.md: a streamed answer renders, Stop stops the provider, and a
// reload mid-answer resumes the same answer with `resume: true`.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import OpenAI from 'openai';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, type Relay } from 'tokenrelay/relay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { MOCK_ANSWER, MOCK_TOKENS } from '../../examples/shared/llm.ts';
import { createUseChatApp, listen } from '../protocols/ai-sdk-app.ts';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const required = process.env.TOKENRELAY_REQUIRE_BROWSER === '1';

if (!available) {
  if (required) {
    it('needs chromium (TOKENRELAY_REQUIRE_BROWSER=1)', () => {
      throw new Error(`${CHROMIUM} not found and TOKENRELAY_REQUIRE_BROWSER=1: install it with apt-get install chromium`);
    });
  } else {
    console.warn('chromium not found: skipping browser tests (install with: apt-get install chromium)');
  }
}

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./use-chat-page.js', import.meta.url))],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none',
    logLevel: 'silent',
  });
  const script = result.outputFiles[0]?.text;
  if (script === undefined) throw new Error('esbuild produced no output for use-chat-page.js');
  return script;
}

const HTML = '<!doctype html><html><head><meta charset="utf-8"><title>useChat</title></head><body><div id="root"></div><script type="module" src="/page.js"></script></body></html>';

describe.skipIf(!available)('a useChat page in Chromium', () => {
  let provider: MockProvider;
  let relay: Relay;
  let served: Awaited<ReturnType<typeof listen>>;
  let profile: string;
  let context: BrowserContext;

  beforeAll(async () => {
    // About 1.2 s per answer: long enough to act in the middle of it.
    provider = await startMockProvider({ script: { tokens: MOCK_TOKENS, delayMs: 30, firstTokenDelayMs: 100 } });
    const openai = new OpenAI({ apiKey: 'mock', baseURL: provider.openaiBaseURL, maxRetries: 0 });
    relay = createRelay();
    const app = createUseChatApp(relay, (messages, signal) => streamOpenAI(openai, { model: 'mock-model', messages }, { signal }));
    const script = await bundlePage();
    app.get('/', (_req, res) => void res.type('html').send(HTML));
    app.get('/page.js', (_req, res) => void res.type('text/javascript').send(script));
    served = await listen(app);
    profile = await mkdtemp(join(tmpdir(), 'tokenrelay-use-chat-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
    await relay?.close();
    await served?.close();
    await provider?.close();
  }, 30_000);

  async function withPage(name: string, body: (page: Page, url: string) => Promise<void>): Promise<void> {
    const page = await context.newPage();
    const url = `${served.url}/?chat=${crypto.randomUUID()}`;
    try {
      await page.goto(url);
      await page.waitForSelector('#status[data-status="ready"]');
      await body(page, url);
    } catch (error) {
      await mkdir('test-results', { recursive: true });
      await page.screenshot({ path: join('test-results', `use-chat-${name}.png`), fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await page.close();
    }
  }

  /** Waits until the answer has more than `length` characters while it still streams, and returns it. */
  async function partialAnswer(page: Page, length: number): Promise<string> {
    const handle = await page.waitForFunction((min) => {
      const text = document.getElementById('answer')?.textContent ?? '';
      const streaming = document.getElementById('status')?.dataset.status === 'streaming';
      return streaming && text.length > min ? text : undefined;
    }, length);
    return (await handle.jsonValue()) as string;
  }

  const answer = (page: Page): Promise<string> => page.locator('#answer').innerText();

  it('renders the answer as it streams, then whole', async () => {
    await withPage('stream', async (page) => {
      await page.click('#send');
      const seen = await partialAnswer(page, 0);
      expect(seen.length).toBeLessThan(MOCK_ANSWER.length);
      expect(MOCK_ANSWER.startsWith(seen)).toBe(true);
      await page.waitForFunction(
        (whole) => document.getElementById('answer')?.textContent === whole && document.getElementById('status')?.dataset.status === 'ready',
        MOCK_ANSWER,
        { timeout: 10_000 },
      );
      expect(await page.locator('#error').innerText()).toBe('');
    });
  }, 30_000);

  it('Stop aborts the provider request', async () => {
    await withPage('stop', async (page) => {
      const before = provider.requests.length;
      await page.click('#send');
      await partialAnswer(page, 20);
      await page.click('#stop');
      const { end } = await (await provider.request(before + 1)).ended;
      expect(end).toBe('client-closed');
      await page.waitForSelector('#status[data-status="ready"]');
      const stopped = await answer(page);
      expect(stopped.length).toBeLessThan(MOCK_ANSWER.length);
      expect(MOCK_ANSWER.startsWith(stopped)).toBe(true);
    });
  }, 30_000);

  it('a reload mid-answer resumes the same answer (resume: true)', async () => {
    await withPage('reload', async (page) => {
      const before = provider.requests.length;
      await page.click('#send');
      await partialAnswer(page, 20);
      const messageId = await page.locator('#answer').getAttribute('data-message-id');
      expect(messageId).toMatch(/^msg-/);
      const resumes: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'GET' && new URL(request.url()).pathname.endsWith('/stream')) resumes.push(request.url());
      });
      await page.reload();
      await page.waitForFunction(
        (whole) => document.getElementById('answer')?.textContent === whole && document.getElementById('status')?.dataset.status === 'ready',
        MOCK_ANSWER,
        { timeout: 15_000 },
      );
      // The same answer: one provider request, and the message id the first response gave it.
      expect(provider.requests.length).toBe(before + 1);
      expect(await page.locator('#answer').getAttribute('data-message-id')).toBe(messageId);
      expect(resumes.length).toBeGreaterThan(0);
      expect((await (await provider.request(before + 1)).ended).end).toBe('completed');
    });
  }, 30_000);
});
