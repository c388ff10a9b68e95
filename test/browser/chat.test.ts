// The chat page of `npm run demo` (examples/express.ts) in a real Chromium: tokens render as they
// arrive, Stop reaches the provider, and a dropped connection resumes with every word exactly once.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Relay } from 'tokenrelay';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { createChatApp } from '../../examples/express.ts';
import { MOCK_ANSWER, MOCK_TOKENS, mockLlm } from '../../examples/shared/llm.ts';
import { startCutProxy } from './cut-proxy.ts';

const CHROMIUM = '/usr/bin/chromium';
const SKIP_NOTICE = 'chromium not found: skipping browser tests (install with: apt-get install chromium)';
const available = existsSync(CHROMIUM);
const required = process.env.TOKENRELAY_REQUIRE_BROWSER === '1';

if (!available) {
  if (required) {
    it('needs chromium (TOKENRELAY_REQUIRE_BROWSER=1)', () => {
      throw new Error(`${CHROMIUM} not found and TOKENRELAY_REQUIRE_BROWSER=1: install it with apt-get install chromium`);
    });
  } else {
    console.warn(SKIP_NOTICE);
  }
}

describe.skipIf(!available)('the chat page in Chromium', () => {
  let provider: MockProvider;
  let relay: Relay;
  let server: Server;
  let proxy: Awaited<ReturnType<typeof startCutProxy>>;
  let profile: string;
  let context: BrowserContext;

  beforeAll(async () => {
    // About 1.2 s per answer: long enough to act in the middle of it.
    provider = await startMockProvider({ script: { tokens: MOCK_TOKENS, delayMs: 30, firstTokenDelayMs: 100 } });
    const chat = await createChatApp({ llm: mockLlm(provider), log: () => {} });
    relay = chat.relay;
    server = await new Promise<Server>((resolve) => {
      const listening = chat.app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    proxy = await startCutProxy((server.address() as AddressInfo).port);
    profile = await mkdtemp(join(tmpdir(), 'tokenrelay-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
    await proxy?.close();
    await relay?.close();
    await new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await provider?.close();
  }, 30_000);

  /** Opens the page for one test; on failure, a screenshot goes to test-results/. */
  async function withPage(name: string, body: (page: Page, requests: Request[]) => Promise<void>): Promise<void> {
    const page = await context.newPage();
    const requests: Request[] = [];
    page.on('request', (request) => requests.push(request));
    try {
      await page.goto(proxy.url);
      await body(page, requests);
    } catch (error) {
      await mkdir('test-results', { recursive: true });
      await page.screenshot({ path: join('test-results', `browser-${name}.png`), fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await page.close();
    }
  }

  const answer = (page: Page): Promise<string> => page.locator('#answer').innerText();
  const state = (page: Page): Promise<string | null> => page.locator('#status').getAttribute('data-state');

  it('renders tokens as they arrive, then the whole answer, with TTFT and tokens/s', async () => {
    await withPage('tokens', async (page) => {
      await page.click('#send');
      // Seen from inside the page, in one go: some text while the answer is still streaming.
      const partial = await page.waitForFunction(() => {
        const text = document.getElementById('answer')?.textContent ?? '';
        const streaming = document.getElementById('status')?.dataset.state === 'streaming';
        return streaming && text.length > 0 ? text : undefined;
      });
      const seen = (await partial.jsonValue()) as string;
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.length).toBeLessThan(MOCK_ANSWER.length);
      expect(MOCK_ANSWER.startsWith(seen)).toBe(true);
      await page.waitForSelector('#status[data-state="done"]', { timeout: 10_000 });
      expect(await answer(page)).toBe(MOCK_ANSWER);
      expect(await page.locator('#ttft').innerText()).toMatch(/^\d+ ms$/);
      expect(Number(await page.locator('#rate').innerText())).toBeGreaterThan(0);
      expect(await page.locator('#count').innerText()).toBe(String(MOCK_TOKENS.length));
    });
  }, 30_000);

  it('Stop aborts the stream and the provider sees its request closed', async () => {
    await withPage('stop', async (page) => {
      const before = provider.requests.length;
      await page.click('#send');
      await page.waitForFunction(() => (document.getElementById('answer')?.textContent ?? '').length > 20);
      const clickedAt = performance.now();
      await page.click('#stop');
      const request = await provider.request(before + 1);
      const { end, endedAt = Infinity } = await request.ended;
      expect(end).toBe('client-closed');
      // Not the relay's 10 s of grace: the cancel reached the provider at once.
      expect(endedAt - clickedAt).toBeLessThan(2_000);
      await page.waitForSelector('#status[data-state="stopped"]');
      const stopped = await answer(page);
      expect(stopped.length).toBeLessThan(MOCK_ANSWER.length);
      expect(MOCK_ANSWER.startsWith(stopped)).toBe(true);
    });
  }, 30_000);

  it('a dropped connection shows "reconnecting…", then resumes with the full text exactly once', async () => {
    await withPage('reconnect', async (page, requests) => {
      const before = provider.requests.length;
      await page.click('#send');
      await page.waitForFunction(() => (document.getElementById('answer')?.textContent ?? '').length > 20);
      proxy.hold();
      expect(proxy.cut()).toBeGreaterThan(0);
      await page.waitForSelector('#status[data-state="reconnecting"]');
      expect(await page.locator('#status').innerText()).toMatch(/^reconnecting…/);
      proxy.release();
      await page.waitForSelector('#status[data-state="done"]', { timeout: 15_000 });
      expect(await answer(page)).toBe(MOCK_ANSWER);
      // It resumed the same answer (GET /chat/:id after its Last-Event-ID), not a new one.
      expect(provider.requests.length).toBe(before + 1);
      const chat = requests.filter((request) => new URL(request.url()).pathname.startsWith('/chat/'));
      expect(chat.length).toBeGreaterThan(0);
      for (const request of chat) {
        expect(request.method()).toBe('GET');
        expect(Number((await request.allHeaders())['last-event-id'])).toBeGreaterThan(0);
      }
      expect(await state(page)).toBe('done');
    });
  }, 30_000);
});
