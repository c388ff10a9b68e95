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
  const content = (data: unknown): PlannedFrame => ({
    frame: { text: sseFrame(data, 'content_block_delta'), delayMs: pacer.next() },
    content: true,
  });
  const blocks = contentBlocks(script);
  const body: PlannedFrame[] = [structural(messageStart(script, model), 'message_start')];
  blocks.forEach((block, index) => {
    body.push(structural({ type: 'content_block_start', index, content_block: block.start }, 'content_block_start'));
    if (index === 0) body.push(ping());
    for (const delta of block.deltas) body.push(content({ type: 'content_block_delta', index, delta }));
    for (const delta of block.closingDeltas) {
      body.push(structural({ type: 'content_block_delta', index, delta }, 'content_block_delta'));
    }
    body.push(structural({ type: 'content_block_stop', index }, 'content_block_stop'));
  });
  if (blocks.length === 0) body.push(ping());
  return { body, tail: [structural(messageDelta(script), 'message_delta'), structural({ type: 'message_stop' }, 'message_stop')] };
}

interface ContentBlock {
  start: Record<string, unknown>;
  deltas: Record<string, unknown>[];
  /** Deltas that close a block without content of their own (a thinking block's signature). */
  closingDeltas: Record<string, unknown>[];
}

function contentBlocks(script: MockScript): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (script.reasoning?.length) {
    blocks.push({
      start: { type: 'thinking', thinking: '', signature: '' },
      deltas: script.reasoning.map((thinking) => ({ type: 'thinking_delta', thinking })),
      closingDeltas: [{ type: 'signature_delta', signature: SIGNATURE }],
    });
  }
  const tokens = scriptTokens(script);
  if (tokens.length > 0) {
    blocks.push({
      start: { type: 'text', text: '' },
      deltas: tokens.map((text) => ({ type: 'text_delta', text })),
      closingDeltas: [],
    });
  }
  (script.toolCalls ?? []).forEach((call, position) => blocks.push(toolUseBlock(call, position)));
  return blocks;
}

function toolUseBlock(call: MockToolCall, position: number): ContentBlock {
  return {
    start: { type: 'tool_use', id: call.id ?? `toolu_${position}`, name: call.name, input: {} },
    deltas: call.arguments.map((partial_json) => ({ type: 'input_json_delta', partial_json })),
    closingDeltas: [],
  };
}

function messageStart(script: MockScript, model: string): Record<string, unknown> {
  const usage = scriptUsage(script);
  const cached = usage.cachedInputTokens ?? 0;
  return {
    type: 'message_start',
    message: {
      id: MESSAGE_ID,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: usage.inputTokens - cached,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: cached,
        output_tokens: 1,
      },
    },
  };
}

function messageDelta(script: MockScript): Record<string, unknown> {
  const usage = scriptUsage(script);
  const deltaUsage: Record<string, unknown> = { output_tokens: usage.outputTokens };
  if (usage.reasoningTokens !== undefined) deltaUsage.output_tokens_details = { thinking_tokens: usage.reasoningTokens };
  return {
    type: 'message_delta',
    delta: { stop_reason: STOP_REASONS[scriptFinishReason(script)], stop_sequence: null },
    usage: deltaUsage,
  };
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
