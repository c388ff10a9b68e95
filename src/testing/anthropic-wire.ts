import type { Usage } from '../core/types.js';
import type { MockFault, MockRequest, MockScript, MockToolCall, WireFrame, WireResponse } from './script.js';
import { createPacer, scriptFinishReason, scriptTokens, scriptUsage, sseFrame, structuralFrame } from './wire-format.js';

const MESSAGE_ID = 'msg_01TokenRelayMockMessage000';
const REQUEST_ID = 'req_01TokenRelayMockRequest000';
const SIGNATURE = 'EqQBCkYIBxgCKkDtokenrelaymocksignature';

const STOP_REASONS = {
  stop: 'end_turn',
  length: 'max_tokens',
  'tool-calls': 'tool_use',
  'content-filter': 'refusal',
} as const;

/**
 * One content block of an Anthropic answer, in the API's own shapes: what `content_block_start`
 * carries, then the `delta` of each `content_block_delta` that follows.
 *
 * @example
 * ```ts
 * const search: AnthropicMockBlock = {
 *   start: { type: 'server_tool_use', id: 'srvtoolu_01', name: 'web_search', input: {} },
 *   deltas: [{ type: 'input_json_delta', partial_json: '{"query":"tides"}' }],
 * };
 * ```
 */
export interface AnthropicMockBlock {
  /** The `content_block` of `content_block_start`, e.g. `{ type: 'text', text: '' }`. */
  start: Record<string, unknown>;
  /**
   * The deltas, e.g. `{ type: 'text_delta', text }`, `{ type: 'citations_delta', citation }`.
   * Each is a content delta (paced, and counted by a fault's `afterTokens`), except `signature_delta`.
   * @defaultValue none: the block arrives whole
   */
  deltas?: Record<string, unknown>[] | undefined;
}

/**
 * An Anthropic answer given block by block (server tools, citations, redacted thinking, inputs
 * that arrive whole…), for `MockScript.anthropic`. See `anthropicScenarios` for ready-made ones.
 */
export interface AnthropicMockMessage {
  /** The content blocks, in order. */
  content: AnthropicMockBlock[];
  /**
   * `'stream'`: each block as `content_block_*` events, then `message_delta`. `'message-start'`:
   * the whole message (complete blocks, `stop_reason`, final usage) in `message_start`, then
   * `message_stop` alone, as Anthropic answers with programmatic tool calling.
   * @defaultValue `'stream'`
   */
  delivery?: 'stream' | 'message-start' | undefined;
  /**
   * The raw `stop_reason`, e.g. `'pause_turn'`.
   * @defaultValue from the script's `finishReason`; else `'tool_use'` when a block is a `tool_use`, `'end_turn'` otherwise
   */
  stopReason?: string | undefined;
  /** The final usage's `server_tool_use`, e.g. `{ web_search_requests: 1 }`. */
  serverToolUse?: Record<string, number> | undefined;
}

/** A frame plus whether it carries a content delta (what `afterTokens` of a fault counts). */
interface PlannedFrame {
  frame: WireFrame;
  content: boolean;
}

/**
 * Builds Anthropic's answer to a streamed Messages request, byte for byte as the API sends it:
 * `message_start`, a `ping`, one content block per kind (thinking, text, each tool call) with
 * its `content_block_start` / `content_block_delta` / `content_block_stop` events,
 * `message_delta` with the stop reason and output tokens, and `message_stop`. A fault in the
 * script replaces the answer with an HTTP error, or cuts it short after `afterTokens` content
 * deltas with an `error` event, a reset connection, or silence. Ids are fixed, so the bytes are
 * the same on every run.
 *
 * @example
 * ```ts
 * const wire = anthropicMessagesWire({ tokens: ['Hel', 'lo'] }, request);
 * const response = wireToResponse(wire);
 * ```
 */
export function anthropicMessagesWire(script: MockScript, request: MockRequest): WireResponse {
  const fault = script.fault;
  if (fault?.kind === 'http-error') return httpErrorResponse(fault);
  const planned = planFrames(script, modelOf(script, request));
  return { status: 200, headers: streamHeaders(), ...applyFault(planned, fault) };
}

function planFrames(script: MockScript, model: string): { body: PlannedFrame[]; tail: PlannedFrame[] } {
  const pacer = createPacer(script);
  const blocks = script.anthropic === undefined ? contentBlocks(script) : script.anthropic.content.map(customBlock);
  const stop = structural({ type: 'message_stop' }, 'message_stop');
  if (script.anthropic?.delivery === 'message-start') {
    const content = blocks.map(completeBlock);
    return { body: [structural(messageStart(script, model, content), 'message_start'), ping()], tail: [stop] };
  }
  const body: PlannedFrame[] = [structural(messageStart(script, model), 'message_start')];
  blocks.forEach((block, index) => {
    body.push(structural({ type: 'content_block_start', index, content_block: block.start }, 'content_block_start'));
    if (index === 0) body.push(ping());
    for (const { delta, content } of block.deltas) {
      const data = { type: 'content_block_delta', index, delta };
      if (!content) body.push(structural(data, 'content_block_delta'));
      else body.push({ frame: { text: sseFrame(data, 'content_block_delta'), delayMs: pacer.next() }, content });
    }
    body.push(structural({ type: 'content_block_stop', index }, 'content_block_stop'));
  });
  if (blocks.length === 0) body.push(ping());
  return { body, tail: [structural(messageDelta(script), 'message_delta'), stop] };
}

interface ContentBlock {
  start: Record<string, unknown>;
  /** `content: false` for a delta that closes a block without content of its own (a thinking block's signature). */
  deltas: { delta: Record<string, unknown>; content: boolean }[];
}

function contentBlocks(script: MockScript): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (script.reasoning?.length) {
    blocks.push({
      start: { type: 'thinking', thinking: '', signature: '' },
      deltas: [
        ...script.reasoning.map((thinking) => ({ delta: { type: 'thinking_delta', thinking }, content: true })),
        { delta: { type: 'signature_delta', signature: SIGNATURE }, content: false },
      ],
    });
  }
  const tokens = scriptTokens(script);
  if (tokens.length > 0) {
    blocks.push({ start: { type: 'text', text: '' }, deltas: tokens.map((text) => ({ delta: { type: 'text_delta', text }, content: true })) });
  }
  (script.toolCalls ?? []).forEach((call, position) => blocks.push(toolUseBlock(call, position)));
  return blocks;
}

function toolUseBlock(call: MockToolCall, position: number): ContentBlock {
  return {
    start: { type: 'tool_use', id: call.id ?? `toolu_${position}`, name: call.name, input: {} },
    deltas: call.arguments.map((partial_json) => ({ delta: { type: 'input_json_delta', partial_json }, content: true })),
  };
}

function customBlock(block: AnthropicMockBlock): ContentBlock {
  return {
    start: block.start,
    deltas: (block.deltas ?? []).map((delta) => ({ delta, content: delta.type !== 'signature_delta' })),
  };
}

/** A block with its deltas applied, as the API puts it in a complete message. */
function completeBlock(block: ContentBlock): Record<string, unknown> {
  const complete: Record<string, unknown> = { ...block.start };
  let json = '';
  for (const { delta } of block.deltas) {
    if (delta.type === 'text_delta') complete.text = `${String(complete.text ?? '')}${String(delta.text)}`;
    else if (delta.type === 'thinking_delta') complete.thinking = `${String(complete.thinking ?? '')}${String(delta.thinking)}`;
    else if (delta.type === 'signature_delta') complete.signature = delta.signature;
    else if (delta.type === 'citations_delta') complete.citations = [...((complete.citations as unknown[] | null) ?? []), delta.citation];
    else if (delta.type === 'input_json_delta') json += String(delta.partial_json);
  }
  if (json !== '') complete.input = JSON.parse(json) as unknown;
  return complete;
}

function messageStart(script: MockScript, model: string, content?: Record<string, unknown>[]): Record<string, unknown> {
  const usage = usageOf(script);
  const cached = usage.cachedInputTokens ?? 0;
  const whole = content !== undefined;
  const wireUsage: Record<string, unknown> = {
    input_tokens: usage.inputTokens - cached,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: whole ? usage.outputTokens : 1,
  };
  if (whole) Object.assign(wireUsage, finalUsageFields(script, usage));
  return {
    type: 'message_start',
    message: {
      id: MESSAGE_ID,
      type: 'message',
      role: 'assistant',
      model,
      content: content ?? [],
      stop_reason: whole ? stopReasonOf(script) : null,
      stop_sequence: null,
      usage: wireUsage,
    },
  };
}

function messageDelta(script: MockScript): Record<string, unknown> {
  const usage = usageOf(script);
  return {
    type: 'message_delta',
    delta: { stop_reason: stopReasonOf(script), stop_sequence: null },
    usage: { output_tokens: usage.outputTokens, ...finalUsageFields(script, usage) },
  };
}

function finalUsageFields(script: MockScript, usage: Usage): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (usage.reasoningTokens !== undefined) fields.output_tokens_details = { thinking_tokens: usage.reasoningTokens };
  if (script.anthropic?.serverToolUse !== undefined) fields.server_tool_use = script.anthropic.serverToolUse;
  return fields;
}

function usageOf(script: MockScript): Usage {
  const message = script.anthropic;
  if (script.usage !== undefined || message === undefined) return scriptUsage(script);
  const deltas = message.content.reduce((sum, block) => sum + (block.deltas?.length ?? 0), 0);
  return { inputTokens: 12, outputTokens: Math.max(1, deltas) };
}

function stopReasonOf(script: MockScript): string {
  const message = script.anthropic;
  if (message?.stopReason !== undefined) return message.stopReason;
  if (message !== undefined && script.finishReason === undefined) {
    return message.content.some((block) => block.start.type === 'tool_use') ? 'tool_use' : 'end_turn';
  }
  return STOP_REASONS[scriptFinishReason(script)];
}

/** Cuts the answer right before content delta number `afterTokens + 1` (or before `message_delta`). */
function applyFault(
  planned: { body: PlannedFrame[]; tail: PlannedFrame[] },
  fault: Exclude<MockFault, { kind: 'http-error' }> | undefined,
): Pick<WireResponse, 'frames' | 'end'> {
  if (fault === undefined) return { frames: [...planned.body, ...planned.tail].map((p) => p.frame), end: 'close' };
  const frames: WireFrame[] = [];
  let sent = 0;
  for (const { frame, content } of planned.body) {
    if (content && sent === fault.afterTokens) break;
    if (content) sent += 1;
    frames.push(frame);
  }
  if (fault.kind !== 'error-event') return { frames, end: fault.kind };
  const error = { type: fault.type ?? 'overloaded_error', message: fault.message ?? 'Overloaded' };
  frames.push(structuralFrame({ type: 'error', error }, 'error'));
  return { frames, end: 'close' };
}

const ERROR_TYPES: Readonly<Record<number, [type: string, message: string]>> = {
  400: ['invalid_request_error', 'Invalid request'],
  401: ['authentication_error', 'invalid x-api-key'],
  402: ['billing_error', 'Your credit balance is too low to access the Anthropic API.'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'The requested resource could not be found.'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'],
  500: ['api_error', 'Internal server error'],
  504: ['timeout_error', 'Request timeout'],
  529: ['overloaded_error', 'Overloaded'],
};

function httpErrorResponse(fault: Extract<MockFault, { kind: 'http-error' }>): WireResponse {
  const [defaultType, defaultMessage] =
    ERROR_TYPES[fault.status] ?? (fault.status >= 500 ? ERROR_TYPES[500] : ERROR_TYPES[400]) ?? ['api_error', 'Error'];
  const error = { type: fault.type ?? defaultType, message: fault.message ?? defaultMessage };
  return {
    status: fault.status,
    headers: { 'content-type': 'application/json', 'request-id': REQUEST_ID, ...fault.headers },
    body: JSON.stringify({ type: 'error', error, request_id: REQUEST_ID }),
  };
}

function streamHeaders(): Record<string, string> {
  return {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'request-id': REQUEST_ID,
  };
}

function modelOf(script: MockScript, request: MockRequest): string {
  if (script.model !== undefined) return script.model;
  return typeof request.body.model === 'string' ? request.body.model : 'claude-haiku-4-5';
}

function structural(data: unknown, event: string): PlannedFrame {
  return { frame: structuralFrame(data, event), content: false };
}

/** The API writes its ping with a space after the colon, unlike every other event. */
function ping(): PlannedFrame {
  return { frame: { text: sseFrame('{"type": "ping"}', 'ping'), delayMs: 0 }, content: false };
}
