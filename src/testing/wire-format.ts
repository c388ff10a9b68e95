import type { Usage } from '../core/types.js';
import { DEFAULT_MOCK_TOKENS, type MockScript, type WireFrame } from './script.js';

/** One SSE frame as providers send it: an optional `event:` line, one `data:` line, a blank line. */
export function sseFrame(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return event === undefined ? `data: ${payload}\n\n` : `event: ${event}\ndata: ${payload}\n\n`;
}

/** A frame that carries no content, sent without a pause. */
export function structuralFrame(data: unknown, event?: string): WireFrame {
  return { text: sseFrame(data, event), delayMs: 0 };
}

/**
 * Paces the content deltas of a script: the first one waits `firstTokenDelayMs`, the others
 * `delayMs`. Call `next()` once per content delta, in order.
 */
export function createPacer(script: MockScript): { next(): number; readonly sent: number } {
  let sent = 0;
  return {
    next() {
      const delay = sent === 0 ? (script.firstTokenDelayMs ?? script.delayMs ?? 0) : (script.delayMs ?? 0);
      sent += 1;
      return delay;
    },
    get sent() {
      return sent;
    },
  };
}

/** The text deltas of a script, defaulted. */
export function scriptTokens(script: MockScript): readonly string[] {
  return script.tokens ?? DEFAULT_MOCK_TOKENS;
}

/** The usage a script reports, defaulted from its deltas. */
export function scriptUsage(script: MockScript): Usage {
  if (script.usage !== undefined) return script.usage;
  const deltas =
    scriptTokens(script).length +
    (script.reasoning?.length ?? 0) +
    (script.refusal?.length ?? 0) +
    (script.toolCalls ?? []).reduce((sum, call) => sum + call.arguments.length, 0);
  return { inputTokens: 12, outputTokens: deltas };
}

/** The finish reason of a script, defaulted. */
export function scriptFinishReason(script: MockScript): NonNullable<MockScript['finishReason']> {
  return script.finishReason ?? (script.toolCalls?.length ? 'tool-calls' : 'stop');
}
