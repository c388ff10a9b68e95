/**
 * Named Mistral wire scenarios: shapes a script cannot express, from what Mistral documents and
 * was seen to send. Each writes through the emulator's writer, so `delayMs`, `firstTokenDelayMs`
 * and faults apply to them as to scripted answers.
 */

import type { MistralWireWriter } from './mistral-wire.js';
import type { MockScript } from './script.js';

/** A named scenario of the Mistral emulator. */
export interface MistralScenario {
  /** What it reproduces. */
  description: string;
  write(writer: MistralWireWriter): void;
}

const USAGE = { prompt_tokens: 2048, total_tokens: 2112, completion_tokens: 64, prompt_tokens_details: { cached_tokens: 1536 } };

const thinking = (text: string) => ({ type: 'thinking', thinking: [{ type: 'text', text }] });

/** Every named scenario of the Mistral emulator, by name. */
export const MISTRAL_SCENARIOS = {
  'model-length': {
    description: 'The answer is cut by the model\'s context window: `finish_reason: "model_length"` (relayed as `length`).',
    write(writer) {
      writer.structural(writer.chunk({ role: 'assistant', content: '' }));
      writer.content(writer.chunk({ content: 'Il était' }));
      writer.content(writer.chunk({ content: ' une fois…' }));
      writer.settle();
      writer.structural(writer.chunk({ content: '' }, 'model_length', { usage: { ...USAGE, completion_tokens: 2, total_tokens: 2050 } }));
      writer.structural('[DONE]');
    },
  },
  'whole-tool-calls': {
    description:
      'Two tool calls sent whole in one delta (id, name and complete arguments each), on the chunk that also has `finish_reason: "tool_calls"` and the usage.',
    write(writer) {
      writer.structural(writer.chunk({ role: 'assistant', content: '' }));
      const calls = [
        { id: writer.callId(0), function: { name: 'get_weather', arguments: '{"city": "Zürich"}' }, index: 0 },
        { id: writer.callId(1), function: { name: 'get_time', arguments: '{"tz": "Asia/Tokyo"}' }, index: 1 },
      ];
      writer.settle();
      writer.structural(writer.chunk({ content: '', tool_calls: calls }, 'tool_calls', { usage: USAGE }));
      writer.structural('[DONE]');
    },
  },
  'thinking-parts': {
    description:
      'A magistral model: `content` as typed parts, `thinking` parts (text parts inside) split over several chunks, a `reference` part, two `text` parts in one chunk, then plain strings; cached prompt tokens in the usage.',
    write(writer) {
      writer.structural(writer.chunk({ role: 'assistant', content: '' }));
      writer.content(writer.chunk({ content: [thinking('L\'utilisateur')] }));
      writer.content(writer.chunk({ content: [thinking(' dit bonjour 👋.')] }));
      writer.content(writer.chunk({ content: [{ type: 'text', text: 'Bonjour' }] }));
      writer.content(writer.chunk({ content: [{ type: 'reference', reference_ids: [0] }] }));
      writer.content(writer.chunk({ content: [{ type: 'text', text: ' à' }, { type: 'text', text: ' vous' }] }));
      writer.content(writer.chunk({ content: ' ! 日本語も' }));
      writer.settle();
      writer.structural(writer.chunk({ content: '' }, 'stop', { usage: USAGE }));
      writer.structural('[DONE]');
    },
  },
  'finish-error': {
    description: 'The provider ends the answer with `finish_reason: "error"` (relayed as the finish reason `error`, not thrown).',
    write(writer) {
      writer.structural(writer.chunk({ role: 'assistant', content: '' }));
      writer.content(writer.chunk({ content: 'Partial' }));
      writer.settle();
      writer.structural(writer.chunk({ content: '' }, 'error', { usage: { ...USAGE, completion_tokens: 1, total_tokens: 2049 } }));
      writer.structural('[DONE]');
    },
  },
} satisfies Record<string, MistralScenario>;

/** The name of a scenario of the Mistral emulator. */
export type MistralScenarioName = keyof typeof MISTRAL_SCENARIOS;

/**
 * Every Mistral scenario as a ready script: pass it to `mistralHandlers` or `startMockProvider`,
 * or spread it with pacing and faults (`{ ...mistralScenarios['thinking-parts'], delayMs: 5 }`).
 *
 * @example
 * ```ts
 * const server = setupServer(...mistralHandlers(mistralScenarios['model-length']));
 * ```
 */
export const mistralScenarios = Object.fromEntries(
  Object.keys(MISTRAL_SCENARIOS).map((name) => [name, { mistralScenario: name as MistralScenarioName }]),
) as Record<MistralScenarioName, MockScript>;
