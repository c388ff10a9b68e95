import type { MockScript } from './script.js';

// Ready-made Gemini answers, one per wire shape the adapter must handle. Ids, URLs, signatures
// and counts are made up; the shapes follow Google's documented and observed streams.

type JsonObject = Record<string, unknown>;

const SIGNATURE = 'CiQBVKhc7mockSignature==';

/** One streamed response whose candidate 0 carries `parts` (and any other candidate fields). */
const parts = (list: JsonObject[], extra: JsonObject = {}): JsonObject => ({
  candidates: [{ content: { parts: list, role: 'model' }, index: 0, ...extra }],
});

/** The last response: the finish reason, the final usage, and whatever else the candidate ends with. */
const last = (finishReason: string, usage: JsonObject, candidate: JsonObject = {}, content: JsonObject[] | undefined = [{ text: '' }]): JsonObject => ({
  candidates: [{ ...(content === undefined ? {} : { content: { parts: content, role: 'model' } }), finishReason, index: 0, ...candidate }],
  usageMetadata: usage,
});

const usage = (prompt: number, candidates: number, extra: JsonObject = {}): JsonObject => ({
  promptTokenCount: prompt,
  candidatesTokenCount: candidates,
  totalTokenCount: prompt + candidates + Number(extra['thoughtsTokenCount'] ?? 0) + Number(extra['toolUsePromptTokenCount'] ?? 0),
  promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
  ...extra,
});

const SCENARIOS = {
  text: { tokens: ['Hé', 'llo ', '🙂🚀', ' 漢字'], usage: { inputTokens: 9, outputTokens: 4 } },
  thinking: {
    reasoning: ['**Counting**\n\nSix', ' times seven.'],
    tokens: ['42'],
    usage: { inputTokens: 20, outputTokens: 9, reasoningTokens: 6 },
  },
  'parallel-function-calls': {
    google: {
      responses: [
        parts([
          { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: SIGNATURE },
          { functionCall: { name: 'get_time', args: { tz: 'CET' } } },
        ]),
        last('STOP', usage(30, 14), {}, undefined),
      ],
    },
  },
  'function-call-with-id': {
    google: {
      responses: [
        parts([{ text: 'Looking it up.', thoughtSignature: SIGNATURE }]),
        parts([{ functionCall: { id: 'fc_7c1d2e', name: 'lookup', args: { term: 'marée', limit: 3 } } }]),
        last('STOP', usage(25, 11), {}, undefined),
      ],
    },
  },
  'empty-args': {
    google: { responses: [parts([{ functionCall: { name: 'get_time' } }]), last('STOP', usage(12, 3))] },
  },
  'google-search': {
    google: {
      responses: [
        parts([{ text: 'High tide in Brest' }]),
        parts([{ text: ' is at 06:12.' }]),
        last('STOP', usage(40, 9, { toolUsePromptTokenCount: 120 }), {
          groundingMetadata: {
            webSearchQueries: ['brest tide times'],
            searchEntryPoint: { renderedContent: '<style>.container{}</style><div class="container">…</div>' },
            groundingChunks: [
              { web: { uri: 'https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9mock1', title: 'tides.example' } },
              { web: { uri: 'https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9mock2', title: 'ports.example' } },
              { web: { uri: 'https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9mock1', title: 'tides.example' } },
            ],
            groundingSupports: [
              { segment: { startIndex: 0, endIndex: 31, text: 'High tide in Brest is at 06:12.' }, groundingChunkIndices: [0, 1], confidenceScores: [0.92, 0.71] },
            ],
          },
        }),
      ],
    },
  },
  retrieval: {
    google: {
      responses: [
        parts([{ text: 'The warranty lasts two years.' }]),
        last('STOP', usage(300, 8), {
          groundingMetadata: {
            retrievalQueries: ['warranty length'],
            groundingChunks: [{ retrievedContext: { uri: 'gs://docs-mock/warranty.pdf', title: 'warranty.pdf', text: 'All devices carry a two-year warranty.' } }],
          },
        }),
      ],
    },
  },
  recitation: {
    google: {
      responses: [
        parts([{ text: 'It was the best of times, ' }]),
        last('RECITATION', usage(10, 7), {
          citationMetadata: { citationSources: [{ startIndex: 0, endIndex: 26, uri: 'https://books.example/two-cities', license: '' }] },
        }, undefined),
      ],
    },
  },
  'prompt-blocked': {
    google: {
      responses: [
        {
          promptFeedback: {
            blockReason: 'SAFETY',
            safetyRatings: [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH' }],
          },
          usageMetadata: usage(7, 0),
        },
      ],
    },
  },
  'max-tokens': { google: { responses: [parts([{ text: 'A long answer that gets' }]), last('MAX_TOKENS', usage(5, 6), {}, [{ text: ' cut' }])] } },
  'malformed-function-call': {
    google: {
      responses: [last('MALFORMED_FUNCTION_CALL', usage(50, 0), { finishMessage: 'Malformed function call: print(lookup(term=))' }, undefined)],
    },
  },
  'code-execution': {
    google: {
      responses: [
        parts([{ text: 'Let me compute it.' }]),
        parts([{ executableCode: { language: 'PYTHON', code: 'print(sum(range(101)))' } }]),
        parts([{ codeExecutionResult: { outcome: 'OUTCOME_OK', output: '5050\n' } }]),
        parts([{ text: 'The sum is 5050.' }]),
        last('STOP', usage(30, 40)),
      ],
    },
  },
  'empty-parts': {
    google: {
      responses: [
        parts([{ text: '', thoughtSignature: SIGNATURE }]),
        { candidates: [{ content: { role: 'model' }, index: 0 }], usageMetadata: usage(6, 0) },
        parts([{ text: 'Fine.' }]),
        last('STOP', usage(6, 2)),
      ],
    },
  },
  'two-candidates': {
    google: {
      responses: [
        { candidates: [{ content: { parts: [{ text: 'Second.' }], role: 'model' }, index: 1 }, { content: { parts: [{ text: 'First.' }], role: 'model' }, index: 0 }] },
        {
          candidates: [
            { content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 },
            { content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'MAX_TOKENS', index: 1 },
          ],
          usageMetadata: usage(8, 4),
        },
      ],
    },
  },
  'finish-with-text': {
    google: { responses: [parts([{ text: 'Short' }]), parts([{ text: ' answer.' }], { finishReason: 'STOP' })] },
  },
} satisfies Record<string, MockScript>;

/** The names of {@link googleScenarios}. */
export type GoogleScenarioName = keyof typeof SCENARIOS;

/**
 * Ready-made scripts for the Google emulator, one per wire shape: multibyte text, thoughts,
 * parallel function calls without ids, a call with an id, Google Search and retrieval grounding,
 * recitation with citations, a blocked prompt, `MAX_TOKENS`, `MALFORMED_FUNCTION_CALL`, code
 * execution, empty parts, two candidates, and a finish reason on the last text.
 *
 * @example
 * ```ts
 * const provider = await startMockProvider({ script: googleScenarios['google-search'] });
 * ```
 */
export const googleScenarios: Readonly<Record<GoogleScenarioName, MockScript>> = SCENARIOS;
