// The chat page of `npm run demo` (examples/express.ts) in a real Chromium: tokens render as they
// arrive, as Markdown and safely, with the live metrics and the server's cost; Stop reaches the
// provider; Regenerate asks again; a follow-up question carries the conversation; and a dropped
// connection resumes with every word exactly once.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Relay } from 'tokenrelay/relay';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { createChatApp } from '../../examples/express.ts';
import { MOCK_ANSWER, MOCK_TOKENS, mockLlm, tokenize } from '../../examples/shared/llm.ts';
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

  // The plain answer renders as one paragraph: its text is the answer, without the trailing blank.
  const answer = async (page: Page): Promise<string> => (await page.locator('#answer').textContent()) ?? '';
  const state = (page: Page): Promise<string | null> => page.locator('#status').getAttribute('data-state');
  const script = (tokens: string[]) => provider.setScript({ tokens, delayMs: 30, firstTokenDelayMs: 100 });
  const plain = () => script(MOCK_TOKENS);

  it('renders tokens as they arrive, then the whole answer, with TTFT, tokens/s and the cost', async () => {
    plain();
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
      // The server's figures for the answer, priced with the demo's example prices (mock-model: $1 / $2 per MTok).
      await page.waitForFunction(() => /^\$\d/.test(document.getElementById('cost')?.textContent ?? ''));
      expect(await page.locator('.message.assistant .meta').innerText()).toMatch(/^mock-model · first token \d+ ms · [\d.]+ tokens\/s · \d+ tokens · \$[\d.e-]+$/);
      expect(await page.locator('.message.user').innerText()).toBe('Why stream LLM answers token by token?');
    });
  }, 30_000);

  it('renders Markdown, and HTML in the answer as text', async () => {
    const markdown = [
      'A **bold** claim, *emphasis* and `<b>code</b>`.',
      '',
      '- one <script>window.__pwned = 1</script>',
      '- two <img src=x onerror="window.__pwned = 2">',
      '',
      '```html',
      '<script>window.__pwned = 3</script>',
      '```',
      '',
      '[safe](https://example.com/docs) and [unsafe](javascript:window.__pwned=4) <a href="javascript:alert(1)">raw</a>',
    ].join('\n');
    script(tokenize(markdown));
    await withPage('markdown', async (page) => {
      await page.click('#send');
      await page.waitForSelector('#status[data-state="done"]', { timeout: 10_000 });
      const answer = page.locator('#answer');
      expect(await answer.locator('strong').innerText()).toBe('bold');
      expect(await answer.locator('em').innerText()).toBe('emphasis');
      expect(await answer.locator('p code').first().innerText()).toBe('<b>code</b>');
      expect(await answer.locator('li').allInnerTexts()).toEqual([
        'one <script>window.__pwned = 1</script>',
        'two <img src=x onerror="window.__pwned = 2">',
      ]);
      expect(await answer.locator('pre code').innerText()).toBe('<script>window.__pwned = 3</script>');
      // Only the safe link is a link; nothing of the answer became an element it did not ask for.
      expect(await answer.locator('a').evaluateAll((links) => links.map((link) => link.getAttribute('href')))).toEqual(['https://example.com/docs']);
      expect(await answer.locator('script, img, b').count()).toBe(0);
      expect(await answer.innerText()).toContain('<a href="javascript:alert(1)">raw</a>');
      expect(await page.evaluate(() => (window as { __pwned?: unknown }).__pwned)).toBeUndefined();
    });
  }, 30_000);

  it('Stop aborts the stream and the provider sees its request closed', async () => {
    plain();
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
      expect(await page.locator('.message.assistant').getAttribute('data-state')).toBe('stopped');
      // The server prices what the provider produced before the cancel, estimated from the text.
      await page.waitForFunction(() => (document.getElementById('cost')?.textContent ?? '').startsWith('≈ $'));
      expect(await page.locator('.message.assistant .meta').innerText()).toMatch(/ \(estimated\) · ≈ \$[\d.e-]+ · aborted$/);
      expect(await page.locator('#regenerate').isEnabled()).toBe(true);
    });
  }, 30_000);

  it('Regenerate asks the last question again and replaces the answer', async () => {
    const first = tokenize('The first answer.');
    const second = tokenize('A **second**, different answer.');
    await withPage('regenerate', async (page) => {
      script(first);
      const before = provider.requests.length;
      await page.fill('#prompt', 'Tell me something.');
      await page.click('#send');
      await page.waitForSelector('#status[data-state="done"]', { timeout: 10_000 });
      expect(await answer(page)).toBe('The first answer.');
      script(second);
      await page.click('#regenerate');
      await page.waitForFunction(() => document.getElementById('answer')?.textContent === 'A second, different answer.', undefined, {
        timeout: 10_000,
      });
      await page.waitForSelector('#status[data-state="done"]');
      expect(await page.locator('#answer strong').innerText()).toBe('second');
      // One question and one answer on the page; the provider was asked the same question again, alone.
      expect(await page.locator('.message.user').allInnerTexts()).toEqual(['Tell me something.']);
      expect(await page.locator('.message.assistant').count()).toBe(1);
      expect(provider.requests.length).toBe(before + 2);
      const asked = (await provider.request(before + 2)).body['messages'];
      expect(asked).toEqual([{ role: 'user', content: 'Tell me something.' }]);
    });
  }, 30_000);

  it('a follow-up question sends the conversation so far', async () => {
    script(tokenize('Paris.'));
    await withPage('conversation', async (page) => {
      const before = provider.requests.length;
      await page.fill('#prompt', 'Capital of France?');
      await page.click('#send');
      await page.waitForSelector('#status[data-state="done"]', { timeout: 10_000 });
      script(tokenize('About 2 million people.'));
      await page.fill('#prompt', 'How many live there?');
      await page.click('#send');
      await page.waitForFunction(() => document.getElementById('answer')?.textContent === 'About 2 million people.', undefined, { timeout: 10_000 });
      expect(await page.locator('.message').allInnerTexts()).toEqual(['Capital of France?', 'Paris.', 'How many live there?', 'About 2 million people.'].map((text) => expect.stringContaining(text)));
      expect((await provider.request(before + 2)).body['messages']).toEqual([
        { role: 'user', content: 'Capital of France?' },
        { role: 'assistant', content: 'Paris.' },
        { role: 'user', content: 'How many live there?' },
      ]);
    });
  }, 30_000);

  it('a dropped connection shows "reconnecting…", then resumes with the full text exactly once', async () => {
    plain();
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
      const chat = requests.filter((request) => /^\/chat\/[^/]+$/.test(new URL(request.url()).pathname));
      expect(chat.length).toBeGreaterThan(0);
      for (const request of chat) {
        expect(request.method()).toBe('GET');
        expect(Number((await request.allHeaders())['last-event-id'])).toBeGreaterThan(0);
      }
      expect(await state(page)).toBe('done');
    });
  }, 30_000);
});
