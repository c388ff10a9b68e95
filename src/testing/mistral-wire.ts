import type { Usage } from '../core/types.js';
import { MISTRAL_SCENARIOS, type MistralScenarioName } from './mistral-scenarios.js';
import type { MockFault, MockRequest, MockScript, WireFrame, WireResponse } from './script.js';
import { createPacer, scriptFinishReason, scriptTokens, scriptUsage, sseFrame, structuralFrame } from './wire-format.js';

/** @inline */
type Json = Record<string, unknown>;
type StreamFault = Exclude<MockFault, { kind: 'http-error' }>;

/** Seconds since the epoch stamped as `created`: fixed so the output is deterministic. */
const CREATED_AT = 1_735_689_600;

/** Mistral has no content-filter finish reason (moderation is a separate API): it ends with `stop`. */
const FINISH_REASONS = { stop: 'stop', length: 'length', 'tool-calls': 'tool_calls', 'content-filter': 'stop' } as const;

/** Where a Mistral answer writes its frames: a chunk factory, and the writer that paces and faults. */
export interface MistralWireWriter {
  /** The model to report (the script's `model`, else the request's). */
  readonly model: string;
  /** A `chat.completion.chunk` for the first choice; `extra` goes on the chunk (`usage`). */
  chunk(delta: Json, finishReason?: string | null, extra?: Json): Json;
  /** A tool call id as Mistral makes them: nine letters and digits. */
  callId(index: number): string;
  /** A frame that carries no content: sent without a pause, never where a fault cuts. */
  structural(data: unknown): void;
  /** A content delta: paced by the script and counted by a fault's `afterTokens`. */
  content(data: unknown): void;
  /** Call before the closing frames: fires a fault whose `afterTokens` is at or beyond the deltas sent. */
  settle(): void;
}

/**
 * Mistral's streaming chat completion answer to `request` (`POST /v1/chat/completions` with
 * `stream: true`), byte for byte: a first chunk with the role, one chunk per delta (`content` as a
 * string; as typed `thinking` and `text` parts when the script has `reasoning`, as magistral models
 * send it), tool calls (the first delta of a call has its id and name, the following ones only the
 * index and more arguments), a last chunk with `finish_reason` and `usage` (with
 * `prompt_tokens_details.cached_tokens`), and `data: [DONE]`.
 *
 * @example
 * ```ts
 * const wire = mistralChatWire({ tokens: ['Bon', 'jour'] }, { api: 'mistral-chat', path: '/v1/chat/completions', headers: {}, body });
 * ```
 */
export function mistralChatWire(script: MockScript, request: MockRequest): WireResponse {
  const digest = digestOf(script, request);
  if (script.fault?.kind === 'http-error') return httpErrorWire(script.fault, digest);
  const writer = new MistralFrameWriter(script, modelOf(script, request), digest);
  if (script.mistralScenario !== undefined) {
    const name: string = script.mistralScenario;
    const scenario = Object.hasOwn(MISTRAL_SCENARIOS, name) ? MISTRAL_SCENARIOS[name as MistralScenarioName] : undefined;
    if (scenario === undefined) {
      const message = `Unknown Mistral emulator scenario \`${name}\`; known: ${Object.keys(MISTRAL_SCENARIOS).join(', ')}.`;
      return errorWire(400, { object: 'error', message, type: 'invalid_request_error', param: null, code: null }, digest);
    }
    scenario.write(writer);
  } else {
    writeScripted(writer, script);
  }
  writer.settle();
  return writer.response(digest);
}

function writeScripted(writer: MistralFrameWriter, script: MockScript): void {
  const reasoning = script.reasoning ?? [];
  writer.structural(writer.chunk({ role: 'assistant', content: '' }));
  for (const text of reasoning) writer.content(writer.chunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text }] }] }));
  for (const [position, token] of scriptTokens(script).entries()) {
    // After thinking, magistral models send the first text as a typed part, then plain strings.
    const content = reasoning.length > 0 && position === 0 ? [{ type: 'text', text: token }] : token;
    writer.content(writer.chunk({ content }));
  }
  for (const [index, call] of (script.toolCalls ?? []).entries()) {
    const id = call.id ?? writer.callId(index);
    for (const [position, fragment] of call.arguments.entries()) {
      // Only the first delta of a call has its id; later ones come without (the SDK then says "null").
      const toolCall = position === 0 ? { id, function: { name: call.name, arguments: fragment }, index } : { function: { name: '', arguments: fragment }, index };
      writer.content(writer.chunk({ tool_calls: [toolCall] }));
    }
  }
  writer.settle();
  const usage = usageOf(scriptUsage(script));
  writer.structural(writer.chunk({ content: '' }, FINISH_REASONS[scriptFinishReason(script)], { usage }));
  writer.structural('[DONE]');
}

/** Mistral's usage object: snake_case, with the cached prompt tokens in `prompt_tokens_details`. */
export function usageOf(usage: Usage): Json {
  return {
    prompt_tokens: usage.inputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    completion_tokens: usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens ?? 0 },
  };
}

/**
 * Collects the frames and injects the script's fault: once `afterTokens` content deltas are out,
 * it sends the in-band error object (if any) and nothing more.
 */
class MistralFrameWriter implements MistralWireWriter {
  readonly model: string;
  readonly #frames: WireFrame[] = [];
  readonly #pacer: ReturnType<typeof createPacer>;
  readonly #fault: StreamFault | undefined;
  readonly #id: string;
  readonly #digest: string;
  #stopped = false;
  #end: WireResponse['end'] = 'close';

  constructor(script: MockScript, model: string, digest: string) {
    this.model = model;
    this.#pacer = createPacer(script);
    this.#fault = script.fault?.kind === 'http-error' ? undefined : script.fault;
    this.#digest = digest;
    this.#id = digest.slice(0, 32);
  }

  chunk(delta: Json, finishReason: string | null = null, extra: Json = {}): Json {
    return {
      id: this.#id,
      object: 'chat.completion.chunk',
      created: CREATED_AT,
      model: this.model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...extra,
    };
  }

  callId(index: number): string {
    const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    let id = '';
    for (let i = 0; i < 9; i++) id += letters[parseInt(this.#digest.slice((i + index * 3) % 30, ((i + index * 3) % 30) + 2), 16) % letters.length];
    return id;
  }

  structural(data: unknown): void {
    if (!this.#stopped) this.#frames.push(structuralFrame(data));
  }

  content(data: unknown): void {
    if (this.#fault !== undefined && this.#pacer.sent >= this.#fault.afterTokens) this.#inject(this.#fault);
    if (!this.#stopped) this.#frames.push({ text: sseFrame(data), delayMs: this.#pacer.next() });
  }

  /** Fires a fault whose `afterTokens` is at or beyond the number of content deltas. */
  settle(): void {
    if (this.#fault !== undefined) this.#inject(this.#fault);
  }

  response(digest: string): WireResponse {
    return { status: 200, headers: headersOf(digest, 'text/event-stream; charset=utf-8'), frames: this.#frames, end: this.#end };
  }

  #inject(fault: StreamFault): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (fault.kind === 'error-event') {
      // Mistral reports a failure inside a stream as its error object on a `data:` line.
      const error = { object: 'error', message: fault.message ?? 'Service unavailable.', type: fault.type ?? 'service_unavailable', param: null, code: null };
      this.#frames.push({ text: sseFrame(error), delayMs: 0 });
    }
    this.#end = fault.kind === 'error-event' ? 'close' : fault.kind;
  }
}

/** Mistral's error bodies: `{ message, request_id }` for 401, its error object otherwise. */
function httpErrorWire(fault: Extract<MockFault, { kind: 'http-error' }>, digest: string): WireResponse {
  const { status } = fault;
  if (status === 401 && fault.type === undefined) {
    const body = { message: fault.message ?? 'Unauthorized', request_id: digest.slice(0, 32) };
    return errorWire(status, body, digest, fault.headers);
  }
  const [type, message] =
    status === 429
      ? ['rate_limited', 'Rate limit exceeded']
      : status >= 500
        ? ['internal_server_error', 'Internal server error']
        : status === 404
          ? ['invalid_model', 'Invalid model']
          : ['invalid_request_error', 'Invalid request'];
  const body = { object: 'error', message: fault.message ?? message, type: fault.type ?? type, param: null, code: null };
  return errorWire(status, body, digest, fault.headers);
}

function errorWire(status: number, body: Json, digest: string, extra: Record<string, string> = {}): WireResponse {
  return { status, headers: { ...headersOf(digest, 'application/json'), ...extra }, body: JSON.stringify(body) };
}

function headersOf(digest: string, contentType: string): Record<string, string> {
  return { 'content-type': contentType, 'cache-control': 'no-cache', 'mistral-correlation-id': digest.slice(0, 32) };
}

function modelOf(script: MockScript, request: MockRequest): string {
  const model = request.body['model'];
  return script.model ?? (typeof model === 'string' ? model : 'mistral-small-latest');
}

/**
 * 32 hex digits derived from the script, the model and the messages, so the same conversation
 * always gets the same bytes, whichever SDK asked (they add different options to the body).
 */
function digestOf(script: MockScript, request: MockRequest): string {
  const seed = JSON.stringify([script, request.body['model'], request.body['messages']]);
  return [0x811c9dc5, 0x01000193, 0x5bd1e995, 0x27d4eb2f].map((basis) => fnv1a(seed, basis)).join('');
}

function fnv1a(text: string, basis: number): string {
  let hash = basis >>> 0;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
