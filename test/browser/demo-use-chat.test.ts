// The demo's second page, /use-chat (examples/use-chat/app.tsx: React, `useChat` of @ai-sdk/react),
// in a real Chromium against the demo's own server (examples/express.ts, `protocol: 'ai-sdk'`):
// an answer streams and renders as Markdown, with the server's metrics; Stop stops the provider;
// Regenerate replaces the answer.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Relay } from 'tokenrelay/relay';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';
import { createChatApp } from '../../examples/express.ts';
import { mockLlm, tokenize } from '../../examples/shared/llm.ts';

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

const ANSWER = 'Streaming keeps people **reading** while the model is still writing, one token at a time, until the very last word of the answer.';
const RENDERED = ANSWER.replace(/\*\*/g, '');

describe.skipIf(!available)("the demo's useChat page in Chromium", () => {
  let provider: MockProvider;
  let relay: Relay;
  let server: Server;
  let url: string;
  let profile: string;
  let context: BrowserContext;

  beforeAll(async () => {
    // About 1 s per answer: long enough to act in the middle of it.
    provider = await startMockProvider({ script: { tokens: tokenize(ANSWER), delayMs: 40, firstTokenDelayMs: 100 } });
    const chat = await createChatApp({ llm: mockLlm(provider), log: () => {} });
    relay = chat.relay;
    server = await new Promise<Server>((resolve) => {
      const listening = chat.app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/use-chat`;
    profile = await mkdtemp(join(tmpdir(), 'tokenrelay-demo-use-chat-'));
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
    await new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await provider?.close();
  }, 30_000);

  async function withPage(name: string, body: (page: Page) => Promise<void>): Promise<void> {
    const page = await context.newPage();
    try {
      await page.goto(url);
      await page.waitForSelector('#status[data-status="ready"]');
      await body(page);
    } catch (error) {
      await mkdir('test-results', { recursive: true });
      await page.screenshot({ path: join('test-results', `demo-use-chat-${name}.png`), fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await page.close();
    }
  }

  const answer = async (page: Page): Promise<string> => (await page.locator('#answer').textContent()) ?? '';

  it('streams an answer, renders it as Markdown, then shows what the server measured', async () => {
    await withPage('stream', async (page) => {
      await page.click('#send');
      const partial = await page.waitForFunction(() => {
        const text = document.getElementById('answer')?.textContent ?? '';
        return document.getElementById('status')?.dataset.status === 'streaming' && text.length > 0 ? text : undefined;
      });
      const seen = (await partial.jsonValue()) as string;
      expect(seen.length).toBeLessThan(RENDERED.length);
      await page.waitForFunction(
        (whole) => document.getElementById('answer')?.textContent === whole && document.getElementById('status')?.dataset.status === 'ready',
        RENDERED,
        { timeout: 10_000 },
      );
      expect(await page.locator('#answer strong').innerText()).toBe('reading');
      expect(await page.locator('.message.user').innerText()).toBe('Why stream LLM answers token by token?');
      await page.waitForFunction(() => (document.querySelector('.message.assistant .meta')?.textContent ?? '').includes('$'));
      expect(await page.locator('.message.assistant .meta').innerText()).toMatch(/^mock-model · first token \d+ ms · [\d.]+ tokens\/s · \d+ tokens · \$[\d.e-]+$/);
      expect(await page.locator('#error').innerText()).toBe('');
      // The chat id went into the URL, so a reload would resume this chat.
      expect(new URL(page.url()).searchParams.get('chat')).toMatch(/^[\w-]+$/);
    });
  }, 30_000);

  it('Stop stops the provider', async () => {
    await withPage('stop', async (page) => {
      const before = provider.requests.length;
      await page.click('#send');
      await page.waitForFunction(() => (document.getElementById('answer')?.textContent ?? '').length > 20);
      await page.click('#stop');
      const { end } = await (await provider.request(before + 1)).ended;
      expect(end).toBe('client-closed');
      await page.waitForSelector('#status[data-status="ready"]');
      const stopped = await answer(page);
      expect(stopped.length).toBeLessThan(RENDERED.length);
      expect(RENDERED.startsWith(stopped)).toBe(true);
    });
  }, 30_000);

  it('Regenerate replaces the answer with a new one', async () => {
    await withPage('regenerate', async (page) => {
      const before = provider.requests.length;
      await page.click('#send');
      await page.waitForFunction((whole) => document.getElementById('answer')?.textContent === whole, RENDERED, { timeout: 10_000 });
      await page.waitForSelector('#status[data-status="ready"]');
      provider.setScript({ tokens: tokenize('Another *answer*.'), delayMs: 20 });
      try {
        await page.click('#regenerate');
        await page.waitForFunction(() => document.getElementById('answer')?.textContent === 'Another answer.', undefined, { timeout: 10_000 });
      } finally {
        provider.setScript({ tokens: tokenize(ANSWER), delayMs: 40, firstTokenDelayMs: 100 });
      }
      expect(await page.locator('#answer em').innerText()).toBe('answer');
      expect(await page.locator('.message.assistant').count()).toBe(1);
      expect(provider.requests.length).toBe(before + 2);
      expect((await provider.request(before + 2)).body['messages']).toEqual([{ role: 'user', content: 'Why stream LLM answers token by token?' }]);
    });
  }, 30_000);
});
