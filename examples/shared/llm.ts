// Picks the model behind the examples from the environment, and falls back to the embedded mock
// provider (a real loopback server speaking each provider's wire format), so every example runs
// with no key and still goes through a real SDK:
//
//   OPENAI_API_KEY                          OpenAI          (OPENAI_MODEL, default gpt-4o-mini)
//   ANTHROPIC_API_KEY                       Anthropic       (ANTHROPIC_MODEL, default claude-haiku-4-5)
//   GEMINI_API_KEY or GOOGLE_API_KEY        Gemini          (GEMINI_MODEL, default gemini-2.5-flash)
//   AWS_REGION with AWS credentials         Bedrock         (BEDROCK_MODEL_ID, default amazon.nova-lite-v1:0)
//   MISTRAL_API_KEY                         Mistral         (MISTRAL_MODEL, default mistral-small-latest)
//
// The first one set wins; `LLM_PROVIDER=openai|anthropic|google|bedrock|mistral|mock` chooses
// when several are. Only the chosen provider's SDK is loaded.
import OpenAI from 'openai';
import type { TokenChunk } from 'tokenrelay';
import { streamOpenAI } from 'tokenrelay/openai';
import { startMockProvider, type MockProvider, type MockRequest, type MockScript } from 'tokenrelay/testing';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export type Llm = (messages: ChatMessage[], signal: AbortSignal) => AsyncIterable<TokenChunk>;

/** Where {@link createLlm} sends the questions. */
export type ProviderName = 'openai' | 'anthropic' | 'google' | 'bedrock' | 'mistral' | 'mock';

const PROVIDERS: readonly ProviderName[] = ['openai', 'anthropic', 'google', 'bedrock', 'mistral', 'mock'];

/** A short plain answer (one word, with its trailing space, per token): what the tests stream. */
export const MOCK_ANSWER =
  'Streaming keeps people reading while the model is still writing. tokenrelay carries each token ' +
  'from the provider to the browser as it is produced, stops the provider the moment the reader ' +
  'leaves, and tells you how long the first token took.';

/** {@link MOCK_ANSWER} as the mock provider streams it: one word (with its trailing space) per token. */
export const MOCK_TOKENS: string[] = tokenize(MOCK_ANSWER);

/** What the demo's mock provider answers, in turn (so Regenerate gives another answer): Markdown. */
export const MOCK_ANSWERS: readonly string[] = [
  `Streaming keeps people **reading** while the model is still writing. tokenrelay carries each token from the provider to the browser:

1. the client disconnects, and the provider request is *aborted* at once;
2. a dropped connection resumes after \`Last-Event-ID\`, every token exactly once;
3. the time to first token and the cost are measured for every answer.

\`\`\`ts
app.post('/chat', sse((req, signal) => streamOpenAI(openai, params, { signal })));
\`\`\`

More on [Server-Sent Events](https://developer.mozilla.org/docs/Web/API/Server-sent_events).`,
  `A second take: without streaming, a reader stares at a spinner for the **whole** answer. With it, the first words show in a few hundred milliseconds, and:

- *Stop* cancels the provider, so nobody pays for tokens nobody reads;
- a slow reader never grows the server's memory;
- a stalled provider hits \`idleMs\` and ends the stream.`,
  `One more: every answer here went through a real SDK to a loopback server speaking the provider's own wire format, so **no key** is needed. Set \`OPENAI_API_KEY\`, \`ANTHROPIC_API_KEY\`, \`GEMINI_API_KEY\`, \`MISTRAL_API_KEY\` or AWS credentials with \`AWS_REGION\` to talk to a real model.`,
];

export interface LlmChoice {
  llm: Llm;
  /** Which provider answers, for the start-up line. */
  name: string;
  provider: ProviderName;
  close(): Promise<void>;
}

export async function createLlm(env: NodeJS.ProcessEnv = process.env): Promise<LlmChoice> {
  const provider = chooseProvider(env);
  switch (provider) {
    case 'openai': {
      const openai = new OpenAI({ apiKey: env.OPENAI_API_KEY });
      const model = env.OPENAI_MODEL ?? 'gpt-4o-mini';
      return live(provider, `OpenAI (${model})`, (messages, signal) => streamOpenAI(openai, { model, messages }, { signal }));
    }
    case 'anthropic': {
      const [{ default: Anthropic }, { streamAnthropic }] = await Promise.all([import('@anthropic-ai/sdk'), import('tokenrelay/anthropic')]);
      const anthropic = new Anthropic({ apiKey: env.ANTHROPIC_API_KEY });
      const model = env.ANTHROPIC_MODEL ?? 'claude-haiku-4-5';
      return live(provider, `Anthropic (${model})`, (messages, signal) =>
        streamAnthropic(anthropic, { model, max_tokens: 1024, messages }, { signal }),
      );
    }
    case 'google': {
      const [{ GoogleGenAI }, { streamGoogle }] = await Promise.all([import('@google/genai'), import('tokenrelay/google')]);
      const ai = new GoogleGenAI({ apiKey: (env.GEMINI_API_KEY || env.GOOGLE_API_KEY) ?? '' });
      const model = env.GEMINI_MODEL ?? 'gemini-2.5-flash';
      return live(provider, `Gemini (${model})`, (messages, signal) => streamGoogle(ai, { model, contents: toGoogle(messages) }, { signal }));
    }
    case 'bedrock': {
      const [{ BedrockRuntimeClient }, { streamBedrock }] = await Promise.all([import('@aws-sdk/client-bedrock-runtime'), import('tokenrelay/bedrock')]);
      // Credentials come from the SDK's default chain (environment, profile, SSO, instance role).
      const bedrock = new BedrockRuntimeClient({ region: env.AWS_REGION ?? 'us-east-1' });
      const modelId = env.BEDROCK_MODEL_ID ?? 'amazon.nova-lite-v1:0';
      return {
        ...live(provider, `Bedrock (${modelId})`, (messages, signal) =>
          streamBedrock(bedrock, { modelId, messages: toBedrock(messages), inferenceConfig: { maxTokens: 1024 } }, { signal }),
        ),
        close: async () => bedrock.destroy(),
      };
    }
    case 'mistral': {
      const [{ Mistral }, { streamMistral }] = await Promise.all([import('@mistralai/mistralai'), import('tokenrelay/mistral')]);
      const mistral = new Mistral({ apiKey: env.MISTRAL_API_KEY });
      const model = env.MISTRAL_MODEL ?? 'mistral-small-latest';
      return live(provider, `Mistral (${model})`, (messages, signal) => streamMistral(mistral, { model, messages }, { signal }));
    }
    case 'mock': {
      const mock = await startMockProvider({ script: demoScript() });
      return {
        provider,
        name: `the embedded mock provider at ${mock.url} (set OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, MISTRAL_API_KEY or AWS credentials with AWS_REGION for a real model)`,
        llm: mockLlm(mock),
        close: () => mock.close(),
      };
    }
  }
}

/** The provider the environment asks for: `LLM_PROVIDER`, else the first one with credentials, else the mock. */
export function chooseProvider(env: NodeJS.ProcessEnv): ProviderName {
  const chosen = env.LLM_PROVIDER;
  if (chosen !== undefined && chosen !== '') {
    if (!(PROVIDERS as readonly string[]).includes(chosen)) {
      throw new TypeError(`Expected \`LLM_PROVIDER\` to be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(chosen)}`);
    }
    return chosen as ProviderName;
  }
  if (env.OPENAI_API_KEY) return 'openai';
  if (env.ANTHROPIC_API_KEY) return 'anthropic';
  if (env.GEMINI_API_KEY || env.GOOGLE_API_KEY) return 'google';
  if (env.AWS_REGION && (env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE)) return 'bedrock';
  if (env.MISTRAL_API_KEY) return 'mistral';
  return 'mock';
}

function live(provider: ProviderName, name: string, llm: Llm): LlmChoice {
  return { provider, name, llm, close: async () => {} };
}

/** Chat messages as Gemini contents (`model` is Gemini's name for the assistant). */
export function toGoogle(messages: ChatMessage[]): Array<{ role: 'user' | 'model'; parts: Array<{ text: string }> }> {
  return messages.map(({ role, content }) => ({ role: role === 'assistant' ? 'model' : 'user', parts: [{ text: content }] }));
}

/** Chat messages as Bedrock Converse messages. */
export function toBedrock(messages: ChatMessage[]): Array<{ role: 'user' | 'assistant'; content: Array<{ text: string }> }> {
  return messages.map(({ role, content }) => ({ role, content: [{ text: content }] }));
}

/** The demo's mock answers: {@link MOCK_ANSWERS} in turn, a word per token, about 25 tokens/s. */
export function demoScript(answers: readonly string[] = MOCK_ANSWERS): (request: MockRequest) => MockScript {
  let next = 0;
  return () => {
    const answer = answers[next++ % answers.length] as string;
    const tokens = tokenize(answer);
    return { tokens, delayMs: 40, firstTokenDelayMs: 250, usage: { inputTokens: 24, outputTokens: tokens.length } };
  };
}

/** The model behind a running mock provider, through the real OpenAI SDK (tests bring their own provider). */
export function mockLlm(provider: MockProvider): Llm {
  const openai = new OpenAI({ apiKey: 'mock', baseURL: provider.openaiBaseURL, maxRetries: 0 });
  return (messages, signal) => streamOpenAI(openai, { model: 'mock-model', messages }, { signal });
}

/** Splits a text the way the mock provider streams it: one word, with the blanks after it, per token. */
export function tokenize(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

/** Reads `{ messages }` or `{ prompt }` from a parsed JSON body; falls back to a greeting. */
export function messagesFrom(body: unknown): ChatMessage[] {
  if (body !== null && typeof body === 'object') {
    const { messages, prompt } = body as { messages?: unknown; prompt?: unknown };
    if (Array.isArray(messages) && messages.length > 0 && messages.every(isMessage)) return messages;
    if (typeof prompt === 'string' && prompt.length > 0) return [{ role: 'user', content: prompt }];
  }
  return [{ role: 'user', content: 'Say hello.' }];
}

function isMessage(value: unknown): value is ChatMessage {
  if (value === null || typeof value !== 'object') return false;
  const { role, content } = value as { role?: unknown; content?: unknown };
  return (role === 'user' || role === 'assistant') && typeof content === 'string';
}
