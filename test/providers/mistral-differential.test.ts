import { Mistral } from '@mistralai/mistralai';
import { HTTPClient } from '@mistralai/mistralai/lib/http.js';
import fc from 'fast-check';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError, type TokenChunk } from 'tokenrelay';
import { streamMistral } from 'tokenrelay/mistral';
import { streamOpenAI } from 'tokenrelay/openai';
import { MISTRAL_SCENARIOS, mistralScenarios, type MistralScenarioName } from '../../src/testing/mistral-scenarios.js';
import { mistralChatWire } from '../../src/testing/mistral-wire.js';
import type { MockRequest, MockScript } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

/**
 * The same Mistral wire, cut at random places, read two ways: `@mistralai/mistralai` +
 * `streamMistral`, and the `openai` SDK pointed at Mistral + `streamOpenAI` (the OpenAI-compatible
 * path). Both must relay the same chunks, and fail the same way.
 */

const MODEL = 'mistral-medium-latest';
const RUNS_PER_SCENARIO = 4;
const FAST_CHECK_SEED = 20_260_516;
const messages = [{ role: 'user' as const, content: 'Bonjour' }];

const scripted: Array<[string, MockScript]> = [
  ['text', { tokens: ['Bon', 'jour', ' 世界 🙂', ' naïve'] }],
  ['reasoning and text', { reasoning: ['Pensons', ' 🤔'], tokens: ['Voilà', '.'], usage: { inputTokens: 30, outputTokens: 12, cachedInputTokens: 16 } }],
  [
    'streamed tool calls',
    { tokens: ['Je vérifie.'], toolCalls: [{ name: 'get_weather', arguments: ['{"city"', ': "Zürich"}'] }, { id: 'Tk4mZ81qa', name: 'get_time', arguments: ['{}'] }] },
  ],
  ['length', { tokens: ['Coupé'], finishReason: 'length' }],
  ['error object mid-stream', { tokens: ['a', 'b', 'c'], fault: { kind: 'error-event', afterTokens: 2 } }],
  ['connection reset', { tokens: ['a', 'b', 'c'], fault: { kind: 'reset', afterTokens: 1 } }],
];

const named: Array<[string, MockScript]> = Object.keys(MISTRAL_SCENARIOS).map((name) => [name, mistralScenarios[name as MistralScenarioName]]);


function answer(script: MockScript, seed: number) {
  return (url: string, init: RequestInit | undefined, signal: AbortSignal | undefined) => {
    const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
    const request: MockRequest = { api: 'mistral-chat', path: new URL(url).pathname, headers: {}, body };
    return wireToResponse(mistralChatWire(script, request), { signal, split: { seed } });
  };
}

async function viaMistral(script: MockScript, seed: number) {
  const respond = answer(script, seed);
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    return respond(request.url, { body: await request.text() }, request.signal);
  };
  const client = new Mistral({ apiKey: 'mistral-test', httpClient: new HTTPClient({ fetcher }) });
  return settle(streamMistral(client, { model: MODEL, messages }));
}

async function viaOpenAI(script: MockScript, seed: number) {
  const respond = answer(script, seed);
  const client = new OpenAI({
    apiKey: 'mistral-test',
    baseURL: 'https://api.mistral.ai/v1',
    maxRetries: 0,
    fetch: async (url, init) => respond(String(url), init, init?.signal ?? undefined),
  });
  return settle(streamOpenAI(client, { model: MODEL, messages }, { provider: 'mistral' }));
}

async function settle(stream: AsyncIterable<TokenChunk>): Promise<{ chunks: Array<Omit<TokenChunk, 'timestamp'>>; error?: unknown }> {
  const chunks: Array<Omit<TokenChunk, 'timestamp'>> = [];
  try {
    for await (const { timestamp: _timestamp, ...chunk } of stream) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks };
}

function expectInvariants(chunks: Array<Omit<TokenChunk, 'timestamp'>>, failed: boolean): void {
  expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
  for (const chunk of chunks) {
    expect(chunk.provider).toBe('mistral');
    if (chunk.type === 'tool-call') expect(chunk.toolCall?.id).toMatch(/^[A-Za-z0-9]{9}$/);
  }
  const terminal = chunks.filter((chunk) => chunk.finishReason !== undefined);
  expect(terminal).toHaveLength(failed ? 0 : 1);
}

describe('the Mistral wire gives the same chunks through @mistralai/mistralai and through the openai SDK', () => {
  it.each([...scripted, ...named])('%s', async (name, script) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
        const mistral = await viaMistral(script, seed);
        const openai = await viaOpenAI(script, seed);
        expectInvariants(mistral.chunks, mistral.error !== undefined);
        expect(mistral.chunks).toEqual(openai.chunks);
        if (script.fault === undefined) {
          expect(mistral.error).toBeUndefined();
          expect(openai.error).toBeUndefined();
          return;
        }
        // A failure inside the stream: both paths throw a retryable ProviderError.
        for (const error of [mistral.error, openai.error]) {
          expect(isProviderError(error)).toBe(true);
          expect((error as ProviderError).retryable).toBe(true);
        }
      }),
      { seed: FAST_CHECK_SEED, numRuns: RUNS_PER_SCENARIO },
    );
  });

  it('covers every named scenario', () => {
    expect(named.map(([name]) => name).sort()).toEqual(Object.keys(MISTRAL_SCENARIOS).sort());
  });
});
