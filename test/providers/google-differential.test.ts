import { GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { fromGoogle } from 'tokenrelay/google';
import { googleScenarios, type GoogleScenarioName } from '../../src/testing/google-scenarios.js';
import { googleGenerateContentWire } from '../../src/testing/google-wire.js';
import type { MockScript } from '../../src/testing/script.js';
import { wireToResponse } from '../../src/testing/wire-stream.js';

/**
 * Every Google emulator scenario, through the real SDK, cut at random places: the SDK's own
 * getters (`text`, `functionCalls`) over the responses it yields must say what tokenrelay's
 * chunks say, and the chunks must not depend on where the bytes were cut.
 */

const MODEL = 'gemini-2.5-flash';
const FAST_CHECK_SEED = 20_260_516;

const scripted: Array<[string, MockScript]> = [
  ['scripted: text, reasoning and calls', { reasoning: ['Hm', '…'], tokens: ['Ça ', 'va ', '✓'], toolCalls: [{ name: 'f', arguments: ['{"q":', '"é"}'] }] }],
  ['scripted: length', { tokens: ['Cut'], finishReason: 'length' }],
  ['scripted: content filter', { tokens: ['Hm'], finishReason: 'content-filter' }],
  ['scripted: error object', { tokens: ['a', 'b'], fault: { kind: 'error-event', afterTokens: 1 } }],
];
const cases: Array<[string, MockScript]> = [...scripted, ...Object.entries(googleScenarios)];

/** The SDK's getters read the first candidate of the array, not candidate `index` 0. */
const KNOWN_SDK_DIFFERENCES = new Set<GoogleScenarioName | string>(['two-candidates']);

interface Summary {
  text: string;
  toolCalls: Array<{ name: string; arguments: string }>;
}

function client(script: MockScript, seed: number | undefined): GoogleGenAI {
  return new GoogleGenAI({
    apiKey: 'AIza-test',
    httpOptions: {
      fetch: async (url, init) => {
        const path = new URL(String(url)).pathname;
        const wire = googleGenerateContentWire(script, { api: 'google-generate-content', path, headers: {}, body: {} });
        return wireToResponse(wire, { signal: init?.signal ?? undefined, ...(seed === undefined ? {} : { split: { seed } }) });
      },
    },
  });
}

/** The responses the SDK yields, teed: tokenrelay reads them, and so do the SDK's getters. */
async function relay(script: MockScript, seed: number | undefined) {
  const stream = await client(script, seed).models.generateContentStream({ model: MODEL, contents: 'Hi' });
  const seen: GenerateContentResponse[] = [];
  async function* tee() {
    for await (const response of stream) {
      seen.push(response);
      yield response;
    }
  }
  const chunks: TokenChunk[] = [];
  let error: unknown;
  try {
    for await (const chunk of fromGoogle(tee())) chunks.push(chunk);
  } catch (caught) {
    error = caught;
  }
  const reference: Summary = {
    text: seen.map((response) => response.text ?? '').join(''),
    toolCalls: seen.flatMap((response) => (response.functionCalls ?? []).map((call) => ({ name: call.name ?? '', arguments: JSON.stringify(call.args ?? {}) }))),
  };
  return { chunks, error, reference };
}

function summarize(chunks: TokenChunk[]): Summary {
  return {
    text: chunks.filter((chunk) => chunk.type === 'text').map((chunk) => chunk.token).join(''),
    toolCalls: chunks
      .filter((chunk) => chunk.type === 'tool-call' && chunk.toolCall?.providerExecuted !== true)
      .map((chunk) => ({ name: chunk.toolCall?.name ?? '', arguments: chunk.token })),
  };
}

function expectInvariants(chunks: TokenChunk[], failed: boolean): void {
  expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
  for (const chunk of chunks) {
    if (chunk.type === 'source') expect(chunk.token).toBe('');
    if (chunk.type === 'tool-call') expect(() => JSON.parse(chunk.token) as unknown).not.toThrow();
  }
  expect(chunks.filter((chunk) => chunk.finishReason !== undefined)).toHaveLength(failed ? 0 : 1);
}

const strip = (chunks: TokenChunk[]) => chunks.map(({ timestamp: _timestamp, ...rest }) => rest);

describe('tokenrelay agrees with the @google/genai getters on every Google emulator scenario', () => {
  // The getters warn about non-text parts; the warnings are expected here.
  beforeAll(() => void vi.spyOn(console, 'warn').mockImplementation(() => undefined));
  afterAll(() => vi.restoreAllMocks());

  it.each(cases)('%s', async (name, script) => {
    const whole = await relay(script, undefined);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
        const { chunks, error, reference } = await relay(script, seed);
        expectInvariants(chunks, error !== undefined);
        expect(strip(chunks)).toStrictEqual(strip(whole.chunks));
        expect(String(error)).toBe(String(whole.error));
        if (!KNOWN_SDK_DIFFERENCES.has(name)) expect(summarize(chunks)).toStrictEqual(reference);
      }),
      { seed: FAST_CHECK_SEED, numRuns: 4 },
    );
  });

  it('covers every named scenario', () => {
    expect(Object.keys(googleScenarios).length).toBeGreaterThanOrEqual(15);
  });
});
