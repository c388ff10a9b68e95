// Picks the model behind the examples: OpenAI or Anthropic when their API key is set, and the
// embedded mock provider (a real loopback server speaking OpenAI's wire format) otherwise, so
// every example runs with no key and still goes through the real SDK.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { TokenChunk } from 'tokenrelay';
import { streamAnthropic } from 'tokenrelay/anthropic';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider } from 'tokenrelay/testing';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export type Llm = (messages: ChatMessage[], signal: AbortSignal) => AsyncIterable<TokenChunk>;

/** What the embedded mock provider answers. */
export const MOCK_ANSWER =
  'Streaming keeps people reading while the model is still writing. tokenrelay carries each token ' +
  'from the provider to the browser as it is produced, stops the provider the moment the reader ' +
  'leaves, and tells you how long the first token took.';

/** {@link MOCK_ANSWER} as the mock provider streams it: one word (with its trailing space) per token. */
export const MOCK_TOKENS: string[] = MOCK_ANSWER.match(/\S+\s*/g) ?? [MOCK_ANSWER];

export async function createLlm(): Promise<{ llm: Llm; name: string; close(): Promise<void> }> {
  if (process.env.OPENAI_API_KEY) {
    const openai = new OpenAI();
    const model = process.env.OPENAI_MODEL ?? 'gpt-4o-mini';
    return {
      name: `OpenAI (${model})`,
      llm: (messages, signal) => streamOpenAI(openai, { model, messages }, { signal }),
      close: async () => {},
    };
  }
  if (process.env.ANTHROPIC_API_KEY) {
    const anthropic = new Anthropic();
    const model = process.env.ANTHROPIC_MODEL ?? 'claude-haiku-4-5';
    return {
      name: `Anthropic (${model})`,
      llm: (messages, signal) => streamAnthropic(anthropic, { model, max_tokens: 1024, messages }, { signal }),
      close: async () => {},
    };
  }
  const provider = await startMockProvider({ script: { tokens: MOCK_TOKENS, delayMs: 40, firstTokenDelayMs: 250 } });
  return {
    name: `the embedded mock provider at ${provider.url} (set OPENAI_API_KEY or ANTHROPIC_API_KEY for a real model)`,
    llm: mockLlm(provider),
    close: () => provider.close(),
  };
}

/** The model behind a running mock provider, through the real OpenAI SDK (tests bring their own provider). */
export function mockLlm(provider: MockProvider): Llm {
  const openai = new OpenAI({ apiKey: 'mock', baseURL: provider.openaiBaseURL, maxRetries: 0 });
  return (messages, signal) => streamOpenAI(openai, { model: 'mock-model', messages }, { signal });
}

/** Reads `{ messages }` or `{ prompt }` from a parsed JSON body; falls back to a greeting. */
export function messagesFrom(body: unknown): ChatMessage[] {
  if (body !== null && typeof body === 'object') {
    const { messages, prompt } = body as { messages?: unknown; prompt?: unknown };
    if (Array.isArray(messages) && messages.every(isMessage)) return messages;
    if (typeof prompt === 'string' && prompt.length > 0) return [{ role: 'user', content: prompt }];
  }
  return [{ role: 'user', content: 'Say hello.' }];
}

function isMessage(value: unknown): value is ChatMessage {
  if (value === null || typeof value !== 'object') return false;
  const { role, content } = value as { role?: unknown; content?: unknown };
  return (role === 'user' || role === 'assistant') && typeof content === 'string';
}
