import { createRequire } from 'node:module';
import type { MessageHeaders } from '@smithy/eventstream-codec';
import type { MockFault, MockRequest, MockScript, MockToolCall, WireFrame, WireResponse } from './script.js';
import { createPacer, scriptFinishReason, scriptTokens, scriptUsage } from './wire-format.js';

/** @inline */
type JsonObject = Record<string, unknown>;
type StreamFault = Exclude<MockFault, { kind: 'http-error' }>;

const REQUEST_ID = '5f0c9e4e-7d1a-4c55-9b0e-70c3e1a0b000';
const SIGNATURE = 'EqoBCkgIBxABGAIiQHRva2VucmVsYXltb2Nrc2lnbmF0dXJl';
/** What Bedrock's `x-amzn-errortype` header adds after the exception name. */
const ERROR_NAMESPACE = ':http://internal.amazon.com/coral/com.amazon.bedrock/';
/** Bedrock pads every event with a `p` field of varying length, so sizes do not leak the text. */
const PADDING = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

const STOP_REASONS = {
  stop: 'end_turn',
  length: 'max_tokens',
  'tool-calls': 'tool_use',
  'content-filter': 'content_filtered',
} as const;

/** The exception names Bedrock answers with, by HTTP status, and its usual message. */
const HTTP_ERRORS: Readonly<Record<number, [name: string, message: string]>> = {
  400: ['ValidationException', 'The provided model identifier is invalid.'],
  403: ['AccessDeniedException', "You don't have access to the model with the specified model ID."],
  404: ['ResourceNotFoundException', 'Could not resolve the foundation model from the provided model identifier.'],
  408: ['ModelTimeoutException', 'Model has timed out in processing the request.'],
  424: ['ModelErrorException', 'The model returned an error.'],
  429: ['ThrottlingException', 'Too many requests, please wait before trying again.'],
  500: ['InternalServerException', 'The server encountered an internal error while processing the request.'],
  503: ['ServiceUnavailableException', 'The service is temporarily unable to handle the request.'],
};

const STREAM_ERROR_MESSAGES: Readonly<Record<string, string>> = {
  throttlingException: 'Too many tokens, please wait before trying again.',
  modelStreamErrorException: 'The model stream was interrupted.',
  validationException: 'The input is not valid for this model.',
  serviceUnavailableException: 'The service is temporarily unable to handle the request.',
  internalServerException: 'The system encountered an unexpected error during processing. Try your request again.',
};

/** A frame plus whether it carries a content delta (what `afterTokens` of a fault counts). */
interface PlannedFrame {
  frame: WireFrame;
  content: boolean;
}

/**
 * Bedrock's answer to a `ConverseStream` request (`POST /model/{modelId}/converse-stream`), as
 * the binary event stream the API sends (`application/vnd.amazon.eventstream`), encoded with
 * `@smithy/eventstream-codec` (an optional peer, loaded on the first call): `messageStart`, a
 * reasoning block (`reasoningContent` text deltas, then its signature), a text block, one
 * `toolUse` block per tool call (`contentBlockStart`, input deltas), each closed by
 * `contentBlockStop`, then `messageStop` with the stop reason and `metadata` with the usage.
 * Every event carries Bedrock's `p` padding field. Faults answer with the HTTP error Bedrock
 * sends (`x-amzn-errortype`), or cut the stream after `afterTokens` content deltas with an
 * exception message (`fault.type` names it, e.g. `'throttlingException'`), a reset or silence.
 * Each frame's `bytes` is what goes on the wire; its `text` is a readable rendering.
 *
 * @example
 * ```ts
 * const wire = bedrockConverseWire({ tokens: ['Hel', 'lo'] }, request);
 * const response = wireToResponse(wire);
 * ```
 */
export function bedrockConverseWire(script: MockScript, request: MockRequest): WireResponse {
  const fault = script.fault;
  if (fault?.kind === 'http-error') return httpErrorResponse(fault);
  const codec = loadCodec('bedrockConverseWire');
  const planned = planFrames(script, codec);
  return { status: 200, headers: streamHeaders(), ...applyFault(planned, fault, codec) };
}

/**
 * One binary event-stream message as Bedrock sends it: an `event` (`:event-type` is the union
 * member, e.g. `'contentBlockDelta'`) or an `exception` (`:exception-type`, e.g.
 * `'throttlingException'`), with a JSON payload. For hand-made streams in tests.
 *
 * @example
 * ```ts
 * const frame = bedrockEventFrame('messageStop', { stopReason: 'guardrail_intervened' });
 * ```
 */
export function bedrockEventFrame(type: string, payload: JsonObject, kind: 'event' | 'exception' = 'event', delayMs = 0): WireFrame {
  return encodeFrame(loadCodec('bedrockEventFrame'), type, payload, kind, delayMs);
}

function planFrames(script: MockScript, codec: Codec): { body: PlannedFrame[]; tail: PlannedFrame[] } {
  const pacer = createPacer(script);
  const body: PlannedFrame[] = [];
  let padding = 0;
  const planned = (type: string, payload: JsonObject, content = false): PlannedFrame => {
    // The padding's length varies from event to event, as Bedrock's does.
    const padded = { ...payload, p: PADDING.slice(0, 1 + ((padding++ * 7) % PADDING.length)) };
    return { frame: encodeFrame(codec, type, padded, 'event', content ? pacer.next() : 0), content };
  };
  const event = (type: string, payload: JsonObject, content = false): void => void body.push(planned(type, payload, content));
  event('messageStart', { role: 'assistant' });
  let index = 0;
  if (script.reasoning?.length) {
    for (const text of script.reasoning) event('contentBlockDelta', { contentBlockIndex: index, delta: { reasoningContent: { text } } }, true);
    event('contentBlockDelta', { contentBlockIndex: index, delta: { reasoningContent: { signature: SIGNATURE } } });
    event('contentBlockStop', { contentBlockIndex: index++ });
  }
  const tokens = scriptTokens(script);
  if (tokens.length > 0) {
    for (const text of tokens) event('contentBlockDelta', { contentBlockIndex: index, delta: { text } }, true);
    event('contentBlockStop', { contentBlockIndex: index++ });
  }
  for (const [position, call] of (script.toolCalls ?? []).entries()) {
    event('contentBlockStart', { contentBlockIndex: index, start: { toolUse: { toolUseId: toolUseId(call, position), name: call.name } } });
    for (const input of call.arguments) event('contentBlockDelta', { contentBlockIndex: index, delta: { toolUse: { input } } }, true);
    event('contentBlockStop', { contentBlockIndex: index++ });
  }
  const tail = [planned('messageStop', { stopReason: STOP_REASONS[scriptFinishReason(script)] }), planned('metadata', metadata(script))];
  return { body, tail };
}

function metadata(script: MockScript): JsonObject {
  const usage = scriptUsage(script);
  const cached = usage.cachedInputTokens ?? 0;
  const wire: JsonObject = {
    inputTokens: usage.inputTokens - cached,
    outputTokens: usage.outputTokens,
    totalTokens: usage.inputTokens + usage.outputTokens,
  };
  if (usage.cachedInputTokens !== undefined) Object.assign(wire, { cacheReadInputTokens: cached, cacheWriteInputTokens: 0 });
  return { usage: wire, metrics: { latencyMs: 200 } };
}

function toolUseId(call: MockToolCall, position: number): string {
  return call.id ?? `tooluse_tokenrelay${String(position).padStart(6, '0')}`;
}

/** Cuts the answer right before content delta number `afterTokens + 1` (or before `messageStop`). */
function applyFault(
  planned: { body: PlannedFrame[]; tail: PlannedFrame[] },
  fault: StreamFault | undefined,
  codec: Codec,
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
  const member = memberName(fault.type ?? 'internalServerException');
  const payload: JsonObject = { message: fault.message ?? STREAM_ERROR_MESSAGES[member] ?? 'The request failed.' };
  if (member === 'modelStreamErrorException') Object.assign(payload, { originalStatusCode: 500, originalMessage: 'Internal server error' });
  frames.push(encodeFrame(codec, member, payload, 'exception', 0));
  return { frames, end: 'close' };
}

function httpErrorResponse(fault: Extract<MockFault, { kind: 'http-error' }>): WireResponse {
  const [defaultName, defaultMessage] =
    HTTP_ERRORS[fault.status] ?? (fault.status >= 500 ? HTTP_ERRORS[500] : HTTP_ERRORS[400]) ?? ['ValidationException', 'Error'];
  const name = fault.type === undefined ? defaultName : className(fault.type);
  return {
    status: fault.status,
    headers: {
      'content-type': 'application/json',
      'x-amzn-requestid': REQUEST_ID,
      'x-amzn-errortype': `${name}${ERROR_NAMESPACE}`,
      ...fault.headers,
    },
    body: JSON.stringify({ message: fault.message ?? defaultMessage }),
  };
}

function streamHeaders(): Record<string, string> {
  return { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': REQUEST_ID };
}

/** `ThrottlingException` or `throttlingException` → the event member name `throttlingException`. */
function memberName(type: string): string {
  return type.charAt(0).toLowerCase() + type.slice(1);
}

function className(type: string): string {
  return type.charAt(0).toUpperCase() + type.slice(1);
}

interface Codec {
  encode(message: { headers: MessageHeaders; body: Uint8Array }): Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeFrame(codec: Codec, type: string, payload: JsonObject, kind: 'event' | 'exception', delayMs: number): WireFrame {
  const json = JSON.stringify(payload);
  const headers: MessageHeaders = {
    [kind === 'event' ? ':event-type' : ':exception-type']: { type: 'string', value: type },
    ':content-type': { type: 'string', value: 'application/json' },
    ':message-type': { type: 'string', value: kind },
  };
  return { text: `${kind} ${type} ${json}\n`, bytes: codec.encode({ headers, body: encoder.encode(json) }), delayMs };
}

let codec: Codec | undefined;

// @smithy/eventstream-codec is an optional peer, loaded on the first Bedrock answer rather than
// when `tokenrelay/testing` is imported, the same way msw is (see msw.ts).
function loadCodec(caller: string): Codec {
  if (codec !== undefined) return codec;
  try {
    const { EventStreamCodec } = createRequire(import.meta.url)('@smithy/eventstream-codec') as typeof import('@smithy/eventstream-codec');
    codec = new EventStreamCodec(
      (bytes) => decoder.decode(bytes),
      (text) => encoder.encode(text),
    );
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const missing = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
    throw new Error(
      missing
        ? `\`${caller}\` needs @smithy/eventstream-codec, an optional peer dependency of tokenrelay: install it (\`npm install --save-dev @smithy/eventstream-codec\`)`
        : `\`${caller}\` could not load @smithy/eventstream-codec: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return codec;
}
