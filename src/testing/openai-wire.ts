import type { Usage } from '../core/types.js';
import { OPENAI_SCENARIOS, type OpenAIScenario, type OpenAIScenarioName } from './openai-scenarios.js';
import type { MockFault, MockRequest, MockScript, MockToolCall, WireFrame, WireResponse } from './script.js';
import { createPacer, scriptFinishReason, scriptTokens, scriptUsage, sseFrame, structuralFrame } from './wire-format.js';

type JsonObject = Record<string, unknown>;
type StreamFault = Exclude<MockFault, { kind: 'http-error' }>;
type ErrorEventFault = Extract<MockFault, { kind: 'error-event' }>;

/** Seconds since the epoch stamped as `created`: fixed so the output is deterministic. */
const CREATED_AT = 1_735_689_600;

const CHAT_FINISH_REASONS = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool_calls',
  'content-filter': 'content_filter',
} as const;

/**
 * OpenAI's Chat Completions streaming answer to `request`, byte for byte: one
 * `data: {chat.completion.chunk}` frame per delta, a frame with the `finish_reason`, the
 * usage frame (`choices: []`) when the request asked for `stream_options.include_usage`,
 * and `data: [DONE]`. Script reasoning is not sent: OpenAI's Chat Completions has none.
 *
 * @example
 * ```ts
 * const wire = openaiChatWire({ tokens: ['Hel', 'lo'] }, { api: 'openai-chat', path: '/v1/chat/completions', headers: {}, body });
 * ```
 */
export function openaiChatWire(script: MockScript, request: MockRequest): WireResponse {
  const ids = createIds(script, request);
  if (script.fault?.kind === 'http-error') return httpErrorWire(script.fault, request, ids);
  if (script.openaiScenario !== undefined) return scenarioWire(script, request, ids, 'openai-chat');
  const includeUsage = (request.body['stream_options'] as JsonObject | null | undefined)?.['include_usage'] === true;
  const chunk = (choices: unknown[], usage: unknown = null): JsonObject => ({
    id: `chatcmpl-${ids.digest}`,
    object: 'chat.completion.chunk',
    created: CREATED_AT,
    model: modelOf(script, request),
    service_tier: 'default',
    system_fingerprint: `fp_${ids.digest.slice(0, 10)}`,
    choices,
    ...(includeUsage ? { usage } : {}),
  });
  const delta = (fields: JsonObject, finishReason: string | null = null) =>
    chunk([{ index: 0, delta: fields, logprobs: null, finish_reason: finishReason }]);
  const writer = new FrameWriter(script, chatErrorFrame);

  writer.structural(delta({ role: 'assistant', content: '', refusal: null }));
  for (const token of scriptTokens(script)) writer.content(delta({ content: token }));
  for (const token of script.refusal ?? []) writer.content(delta({ refusal: token }));
  for (const [index, call] of (script.toolCalls ?? []).entries()) {
    const first = { index, id: callId(call, index), type: 'function', function: { name: call.name, arguments: '' } };
    writer.structural(delta({ tool_calls: [first] }));
    for (const fragment of call.arguments) writer.content(delta({ tool_calls: [{ index, function: { arguments: fragment } }] }));
  }
  writer.settle();
  writer.structural(delta({}, CHAT_FINISH_REASONS[scriptFinishReason(script)]));
  if (includeUsage) writer.structural(chunk([], chatUsage(scriptUsage(script))));
  writer.structural('[DONE]');
  return writer.response(streamHeaders(ids));
}

/**
 * OpenAI's Responses API streaming answer to `request`, byte for byte: `event:` and `data:`
 * lines for `response.created`, `response.in_progress`, a reasoning item (summary deltas), a
 * message item (text, then refusal), function call items, and `response.completed` — or
 * `response.incomplete` when the script ends with `'length'` or `'content-filter'`.
 *
 * @example
 * ```ts
 * const wire = openaiResponsesWire({ reasoning: ['Think'], tokens: ['Hi'] }, { api: 'openai-responses', path: '/v1/responses', headers: {}, body });
 * ```
 */
export function openaiResponsesWire(script: MockScript, request: MockRequest): WireResponse {
  const ids = createIds(script, request);
  if (script.fault?.kind === 'http-error') return httpErrorWire(script.fault, request, ids);
  if (script.openaiScenario !== undefined) return scenarioWire(script, request, ids, 'openai-responses');
  let sequence = 0;
  const event = (type: string, fields: JsonObject): [JsonObject, string] => [
    { type, sequence_number: sequence++, ...fields },
    type,
  ];
  const writer = new FrameWriter(script, (fault) => responsesErrorFrame(fault, sequence++));
  const response = (status: string, output: unknown[], usage: unknown, incomplete: unknown = null) =>
    responseObject(script, request, ids, { status, output, usage, incomplete });
  const output: JsonObject[] = [];
  const reason = scriptFinishReason(script);
  const incomplete = reason === 'length' || reason === 'content-filter';

  writer.structural(...event('response.created', { response: response('in_progress', [], null) }));
  writer.structural(...event('response.in_progress', { response: response('in_progress', [], null) }));
  if (script.reasoning?.length) output.push(writeReasoning(writer, event, ids.item('rs', 0), script.reasoning, 0));
  const tokens = scriptTokens(script);
  if (tokens.length > 0 || script.refusal?.length) {
    const message = { id: ids.item('msg', 0), outputIndex: output.length, status: incomplete ? 'incomplete' : 'completed' };
    output.push(writeMessage(writer, event, message, tokens, script.refusal ?? []));
  }
  for (const [index, call] of (script.toolCalls ?? []).entries()) {
    output.push(writeFunctionCall(writer, event, ids.item('fc', index), output.length, call, callId(call, index)));
  }
  writer.settle();
  const usage = responsesUsage(scriptUsage(script));
  if (incomplete) {
    const details = { reason: reason === 'length' ? 'max_output_tokens' : 'content_filter' };
    writer.structural(...event('response.incomplete', { response: response('incomplete', output, usage, details) }));
  } else {
    writer.structural(...event('response.completed', { response: response('completed', output, usage) }));
  }
  return writer.response(streamHeaders(ids));
}

type EventFactory = (type: string, fields: JsonObject) => [JsonObject, string];

function chatErrorFrame(fault: ErrorEventFault): string {
  return sseFrame({ error: { message: fault.message ?? SERVER_ERROR_MESSAGE, type: fault.type ?? 'server_error', param: null, code: null } });
}

function responsesErrorFrame(fault: ErrorEventFault, sequence: number): string {
  const event = { type: 'error', code: fault.type ?? 'server_error', message: fault.message ?? SERVER_ERROR_MESSAGE, param: null, sequence_number: sequence };
  return sseFrame(event, 'error');
}

/**
 * A named scenario (`script.openaiScenario`, see `OPENAI_SCENARIOS`) instead of the scripted answer.
 * The script's pacing and faults still apply; its content fields are not used.
 */
function scenarioWire(script: MockScript, request: MockRequest, ids: Ids, api: OpenAIScenario['api']): WireResponse {
  const name: string = script.openaiScenario as string;
  const scenario: OpenAIScenario | undefined = Object.hasOwn(OPENAI_SCENARIOS, name)
    ? OPENAI_SCENARIOS[name as OpenAIScenarioName]
    : undefined;
  if (scenario === undefined || scenario.api !== api) {
    const message =
      scenario === undefined
        ? `Unknown OpenAI emulator scenario \`${name}\`; known: ${Object.keys(OPENAI_SCENARIOS).join(', ')}.`
        : `The scenario \`${name}\` answers ${scenario.api === 'openai-chat' ? '/chat/completions' : '/responses'} requests.`;
    const error = { message, type: 'invalid_request_error', param: null, code: null };
    return { status: 400, headers: baseHeaders(ids, 'application/json; charset=utf-8'), body: JSON.stringify({ error }, null, 4) + '\n' };
  }
  let errors = 0;
  const writer = new FrameWriter(script, api === 'openai-chat' ? chatErrorFrame : (fault) => responsesErrorFrame(fault, 10_000 + errors++));
  scenario.write({
    model: modelOf(script, request),
    structural: (data, event) => writer.structural(data, event),
    content: (data, event) => writer.content(data, event),
    response: (state) =>
      responseObject(script, request, ids, { incomplete: null, ...state, usage: state.usage ?? null }),
  });
  writer.settle();
  return writer.response(streamHeaders(ids));
}

function writeReasoning(writer: FrameWriter, event: EventFactory, id: string, deltas: string[], outputIndex: number): JsonObject {
  const text = deltas.join('');
  const at = { item_id: id, output_index: outputIndex, summary_index: 0 };
  writer.structural(...event('response.output_item.added', { output_index: outputIndex, item: { id, type: 'reasoning', summary: [] } }));
  writer.structural(...event('response.reasoning_summary_part.added', { ...at, part: { type: 'summary_text', text: '' } }));
  for (const delta of deltas) writer.content(...event('response.reasoning_summary_text.delta', { ...at, delta }));
  writer.structural(...event('response.reasoning_summary_text.done', { ...at, text }));
  writer.structural(...event('response.reasoning_summary_part.done', { ...at, part: { type: 'summary_text', text } }));
  const item = { id, type: 'reasoning', summary: [{ type: 'summary_text', text }] };
  writer.structural(...event('response.output_item.done', { output_index: outputIndex, item }));
  return item;
}

function writeMessage(
  writer: FrameWriter,
  event: EventFactory,
  { id, outputIndex, status }: { id: string; outputIndex: number; status: string },
  tokens: readonly string[],
  refusal: readonly string[],
): JsonObject {
  const added = { id, type: 'message', status: 'in_progress', content: [], role: 'assistant' };
  writer.structural(...event('response.output_item.added', { output_index: outputIndex, item: added }));
  const parts: JsonObject[] = [];
  const part = (contentIndex: number) => ({ item_id: id, output_index: outputIndex, content_index: contentIndex });
  if (tokens.length > 0) {
    const at = part(parts.length);
    const text = tokens.join('');
    writer.structural(...event('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } }));
    for (const delta of tokens) writer.content(...event('response.output_text.delta', { ...at, delta, logprobs: [] }));
    writer.structural(...event('response.output_text.done', { ...at, text, logprobs: [] }));
    parts.push({ type: 'output_text', annotations: [], logprobs: [], text });
    writer.structural(...event('response.content_part.done', { ...at, part: parts[parts.length - 1] }));
  }
  if (refusal.length > 0) {
    const at = part(parts.length);
    const text = refusal.join('');
    writer.structural(...event('response.content_part.added', { ...at, part: { type: 'refusal', refusal: '' } }));
    for (const delta of refusal) writer.content(...event('response.refusal.delta', { ...at, delta }));
    writer.structural(...event('response.refusal.done', { ...at, refusal: text }));
    parts.push({ type: 'refusal', refusal: text });
    writer.structural(...event('response.content_part.done', { ...at, part: parts[parts.length - 1] }));
  }
  const item = { id, type: 'message', status, content: parts, role: 'assistant' };
  writer.structural(...event('response.output_item.done', { output_index: outputIndex, item }));
  return item;
}

function writeFunctionCall(
  writer: FrameWriter,
  event: EventFactory,
  id: string,
  outputIndex: number,
  call: MockToolCall,
  callIdValue: string,
): JsonObject {
  const text = call.arguments.join('');
  const at = { item_id: id, output_index: outputIndex };
  const added = { id, type: 'function_call', status: 'in_progress', arguments: '', call_id: callIdValue, name: call.name };
  writer.structural(...event('response.output_item.added', { output_index: outputIndex, item: added }));
  for (const delta of call.arguments) writer.content(...event('response.function_call_arguments.delta', { ...at, delta }));
  writer.structural(...event('response.function_call_arguments.done', { ...at, arguments: text }));
  const item = { ...added, status: 'completed', arguments: text };
  writer.structural(...event('response.output_item.done', { output_index: outputIndex, item }));
  return item;
}

/**
 * Collects the frames of a streamed answer and injects the script's fault: once `afterTokens`
 * content deltas are out, it sends the error frame (if any) and nothing more.
 */
class FrameWriter {
  readonly #frames: WireFrame[] = [];
  readonly #pacer: ReturnType<typeof createPacer>;
  readonly #fault: StreamFault | undefined;
  readonly #errorFrame: (fault: ErrorEventFault) => string;
  #stopped = false;
  #end: WireResponse['end'] = 'close';

  constructor(script: MockScript, errorFrame: (fault: ErrorEventFault) => string) {
    this.#pacer = createPacer(script);
    this.#fault = script.fault?.kind === 'http-error' ? undefined : script.fault;
    this.#errorFrame = errorFrame;
  }

  structural(data: unknown, event?: string): void {
    if (!this.#stopped) this.#frames.push(structuralFrame(data, event));
  }

  content(data: unknown, event?: string): void {
    if (this.#fault !== undefined && this.#pacer.sent >= this.#fault.afterTokens) this.#inject(this.#fault);
    if (!this.#stopped) this.#frames.push({ text: sseFrame(data, event), delayMs: this.#pacer.next() });
  }

  /** Fires a fault whose `afterTokens` is at or beyond the number of content deltas. */
  settle(): void {
    if (this.#fault !== undefined) this.#inject(this.#fault);
  }

  response(headers: Record<string, string>): WireResponse {
    return { status: 200, headers, frames: this.#frames, end: this.#end };
  }

  #inject(fault: StreamFault): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (fault.kind === 'error-event') this.#frames.push({ text: this.#errorFrame(fault), delayMs: 0 });
    this.#end = fault.kind === 'error-event' ? 'close' : fault.kind;
  }
}

const SERVER_ERROR_MESSAGE = 'The server had an error while processing your request. Sorry about that!';

/** OpenAI's usual `type`, `code` and message for an HTTP error status. */
function httpErrorDefaults(status: number, request: MockRequest): { type: string; code: string | null; message: string } {
  if (status === 401) {
    const key = (request.headers['authorization'] ?? '').replace(/^Bearer\s+/i, '');
    const message = `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
    return { type: 'invalid_request_error', code: 'invalid_api_key', message };
  }
  if (status === 404) {
    const message = `The model \`${String(request.body['model'])}\` does not exist or you do not have access to it.`;
    return { type: 'invalid_request_error', code: 'model_not_found', message };
  }
  if (status === 429) {
    return { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests. Please try again later.' };
  }
  if (status >= 500) return { type: 'server_error', code: null, message: SERVER_ERROR_MESSAGE };
  return { type: 'invalid_request_error', code: null, message: 'Invalid request.' };
}

function httpErrorWire(fault: Extract<MockFault, { kind: 'http-error' }>, request: MockRequest, ids: Ids): WireResponse {
  const defaults = httpErrorDefaults(fault.status, request);
  const error = { message: fault.message ?? defaults.message, type: fault.type ?? defaults.type, param: null, code: defaults.code };
  return {
    status: fault.status,
    headers: { ...baseHeaders(ids, 'application/json; charset=utf-8'), ...fault.headers },
    body: JSON.stringify({ error }, null, 4) + '\n',
  };
}

/** OpenAI shows the start and the last four characters of a rejected key, never all of it. */
function maskKey(key: string): string {
  if (key.length <= 11) return '*'.repeat(key.length);
  return `${key.slice(0, 7)}${'*'.repeat(key.length - 11)}${key.slice(-4)}`;
}

function streamHeaders(ids: Ids): Record<string, string> {
  return baseHeaders(ids, 'text/event-stream; charset=utf-8');
}

function baseHeaders(ids: Ids, contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'no-cache, must-revalidate',
    'openai-version': '2020-10-01',
    'openai-processing-ms': '25',
    'x-request-id': `req_${ids.digest}`,
  };
}

function responseObject(
  script: MockScript,
  request: MockRequest,
  ids: Ids,
  state: { status: string; output: unknown[]; usage: unknown; incomplete: unknown; error?: unknown },
): JsonObject {
  const body = request.body;
  const echo = (key: string, fallback: unknown) => body[key] ?? fallback;
  return {
    id: `resp_${ids.digest}`,
    object: 'response',
    created_at: CREATED_AT,
    status: state.status,
    background: false,
    error: state.error ?? null,
    incomplete_details: state.incomplete,
    instructions: echo('instructions', null),
    max_output_tokens: echo('max_output_tokens', null),
    max_tool_calls: echo('max_tool_calls', null),
    model: modelOf(script, request),
    output: state.output,
    parallel_tool_calls: echo('parallel_tool_calls', true),
    previous_response_id: echo('previous_response_id', null),
    prompt_cache_key: echo('prompt_cache_key', null),
    reasoning: echo('reasoning', { effort: null, summary: null }),
    safety_identifier: echo('safety_identifier', null),
    service_tier: 'default',
    store: echo('store', true),
    temperature: echo('temperature', 1),
    text: echo('text', { format: { type: 'text' }, verbosity: 'medium' }),
    tool_choice: echo('tool_choice', 'auto'),
    tools: echo('tools', []),
    top_logprobs: echo('top_logprobs', 0),
    top_p: echo('top_p', 1),
    truncation: echo('truncation', 'disabled'),
    usage: state.usage,
    user: echo('user', null),
    metadata: echo('metadata', {}),
  };
}

function chatUsage(usage: Usage): JsonObject {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: usage.reasoningTokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function responsesUsage(usage: Usage): JsonObject {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cachedInputTokens ?? 0 },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens ?? 0 },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

function modelOf(script: MockScript, request: MockRequest): string {
  const model = request.body['model'];
  return script.model ?? (typeof model === 'string' ? model : 'gpt-4o-mini');
}

function callId(call: MockToolCall, index: number): string {
  return call.id ?? `call_${index + 1}`;
}

interface Ids {
  /** 24 hex digits derived from the script and the request body. */
  digest: string;
  item(prefix: string, index: number): string;
}

/** Ids derived from what was asked, so the same request always gets the same bytes. */
function createIds(script: MockScript, request: MockRequest): Ids {
  const seed = JSON.stringify([script, request.path, request.body]);
  const digest = [0x811c9dc5, 0x01000193, 0x5bd1e995].map((basis) => fnv1a(seed, basis)).join('');
  return { digest, item: (prefix, index) => `${prefix}_${digest}${index.toString(16).padStart(2, '0')}` };
}

function fnv1a(text: string, basis: number): string {
  let hash = basis >>> 0;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
