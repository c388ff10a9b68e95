import type { TokenChunk, ToolCallInfo } from '../core/types.js';

/**
 * The `messageId` of the `start` part: a digest of the stream's first chunk, its monotonic
 * `timestamp` included. The answer to the POST and every replay of the same relayed stream (the
 * same stored chunks) carry the same id, which is how `useChat` knows a resumed stream is the
 * message it already shows; two streams get the same id only with identical first chunks stamped
 * at the same instant.
 */
export function messageIdOf(chunk: TokenChunk): string {
  const { index, timestamp, type, token, toolCall, model, provider } = chunk;
  return `msg-${digest(`${index}\0${timestamp}\0${type}\0${token}\0${toolCall?.id ?? ''}\0${model ?? ''}\0${provider ?? ''}`)}`;
}

/** A 64-bit non-cryptographic digest (two multiply-xorshift lanes), as 14 base-36 digits. */
function digest(text: string): string {
  let a = 0xdeadbeef;
  let b = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 2654435761);
    b = Math.imul(b ^ code, 1597334677);
  }
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  return (b >>> 0).toString(36).padStart(7, '0') + (a >>> 0).toString(36).padStart(7, '0');
}

interface OpenCall {
  readonly id: string;
  readonly name: string;
  readonly providerExecuted: boolean | undefined;
  text: string;
}

/**
 * The tool calls whose input is streaming: `tool-input-start` on a call's first chunk,
 * `tool-input-delta` per fragment, and at the end of the calls the parsed input
 * (`tool-input-available`), or `tool-input-error` when the arguments are not valid JSON.
 * Empty arguments are the empty object, as providers send them for a tool without parameters.
 */
export class ToolInputs {
  // Map order is the order the calls started: their inputs complete in that order.
  readonly #open = new Map<string, OpenCall>();
  readonly #ended = new Set<string>();

  /** The call's input was already completed: a later fragment cannot be expressed. */
  ended(id: string): boolean {
    return this.#ended.has(id);
  }

  /** The parts of one fragment of a call's arguments (`''` only announces the call). */
  add(info: ToolCallInfo, fragment: string): string {
    let call = this.#open.get(info.id);
    let frames = '';
    if (call === undefined) {
      call = { id: info.id, name: info.name, providerExecuted: info.providerExecuted, text: '' };
      this.#open.set(info.id, call);
      frames += part({ type: 'tool-input-start', toolCallId: call.id, toolName: call.name, ...executed(call) });
    }
    if (fragment !== '') {
      call.text += fragment;
      frames += `data: {"type":"tool-input-delta","toolCallId":${JSON.stringify(call.id)},"inputTextDelta":${JSON.stringify(fragment)}}\n\n`;
    }
    return frames;
  }

  /** Completes every open call, in the order they started. */
  endAll(): string {
    if (this.#open.size === 0) return '';
    let frames = '';
    for (const call of this.#open.values()) {
      this.#ended.add(call.id);
      const base = { toolCallId: call.id, toolName: call.name };
      let input: unknown;
      try {
        input = call.text.trim() === '' ? {} : JSON.parse(call.text);
      } catch {
        frames += part({
          type: 'tool-input-error',
          ...base,
          input: call.text,
          ...executed(call),
          errorText: 'The tool call arguments are not valid JSON',
        });
        continue;
      }
      frames += part({ type: 'tool-input-available', ...base, input, ...executed(call) });
    }
    this.#open.clear();
    return frames;
  }
}

function executed(call: OpenCall): { providerExecuted?: boolean } {
  return call.providerExecuted === undefined ? {} : { providerExecuted: call.providerExecuted };
}

function part(value: object): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}
