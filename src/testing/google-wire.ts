import type { Usage } from '../core/types.js';
import type { MockFault, MockRequest, MockScript, WireFrame, WireResponse } from './script.js';
import { createPacer, scriptFinishReason, scriptTokens, scriptUsage } from './wire-format.js';

/** @inline */
type JsonObject = Record<string, unknown>;

const RESPONSE_ID = 'tRlYaPmOcKgEmInIrEsPoNsE';
const CREATE_TIME = '2026-01-01T00:00:00.000000Z';
const SIGNATURE = 'CiQBVKhc7mock0thought0signature0tokenrelay==';

const FINISH_REASONS = {
  stop: 'STOP',
  length: 'MAX_TOKENS',
  // Gemini ends an answer that calls functions with STOP.
  'tool-calls': 'STOP',
  'content-filter': 'SAFETY',
} as const;

/** Google's canonical statuses, by HTTP status, with the message Gemini sends by default. */
const STATUSES: Readonly<Record<number, [status: string, message: string]>> = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  401: ['UNAUTHENTICATED', 'Request had invalid authentication credentials.'],
  403: ['PERMISSION_DENIED', 'The caller does not have permission'],
  404: ['NOT_FOUND', 'Requested entity was not found.'],
  429: ['RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).'],
  500: ['INTERNAL', 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting'],
  503: ['UNAVAILABLE', 'The model is overloaded. Please try again later.'],
  504: ['DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.'],
};

/**
 * A Gemini answer given response by response, in the API's own shapes, for `MockScript.google`:
 * each item is one streamed `GenerateContentResponse` (`candidates`, `promptFeedback`,
 * `usageMetadata`…). `modelVersion` and `responseId` are filled in where missing. See
 * `googleScenarios` for ready-made ones.
 *
 * @example
 * ```ts
 * const blocked: GoogleMockAnswer = {
 *   responses: [{ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 } }],
 * };
 * ```
 */
export interface GoogleMockAnswer {
  /** The streamed responses, in order; those with candidate parts are content (paced, counted by faults). */
  responses: JsonObject[];
}

interface PlannedFrame {
  frame: WireFrame;
  content: boolean;
}

/**
 * Gemini's answer to a `streamGenerateContent?alt=sse` request (Gemini API or Vertex AI), byte for
 * byte: one `data: {GenerateContentResponse}` event per delta, CRLF-delimited as Google sends
 * them, each with the running `usageMetadata`; thought parts first, then text parts (the first
 * one after thoughts carrying a `thoughtSignature`), then one part per function call (with its
 * `id` only when the script gives one, as Gemini 2.x sends none), and a last response with the
 * `finishReason` and the final usage. Vertex AI paths (`/publishers/`) get Vertex's fields
 * (`createTime`, `trafficType`, no candidate `index`). A fault replaces the answer with Google's
 * JSON error (`RetryInfo` on 429 when a `retry-after` header is scripted), or cuts it after
 * `afterTokens` content responses with an in-stream `{ error }` object, a reset, or silence.
 *
 * @example
 * ```ts
 * const wire = googleGenerateContentWire({ tokens: ['Hel', 'lo'] }, request);
 * const response = wireToResponse(wire);
 * ```
 */
export function googleGenerateContentWire(script: MockScript, request: MockRequest): WireResponse {
  const fault = script.fault;
  if (fault?.kind === 'http-error') return httpErrorResponse(fault);
  const vertex = request.path.includes('/publishers/');
  const stamp = stamper(modelOf(script, request), vertex);
  const planned = script.google === undefined ? scriptedFrames(script, stamp, vertex) : customFrames(script, script.google, stamp);
  return { status: 200, headers: streamHeaders(), ...applyFault(planned, fault) };
}

type Stamp = (response: JsonObject) => JsonObject;

function stamper(model: string, vertex: boolean): Stamp {
  return (response) => ({
    ...response,
    ...(vertex ? { createTime: CREATE_TIME } : {}),
    modelVersion: response['modelVersion'] ?? model,
    responseId: response['responseId'] ?? RESPONSE_ID,
  });
}

function scriptedFrames(script: MockScript, stamp: Stamp, vertex: boolean): PlannedFrame[] {
  const pacer = createPacer(script);
  const usage = scriptUsage(script);
  const parts: JsonObject[] = [];
  for (const text of script.reasoning ?? []) parts.push({ text, thought: true });
  const signed = (part: JsonObject): JsonObject => (script.reasoning?.length && !parts.some((p) => 'thoughtSignature' in p) ? { ...part, thoughtSignature: SIGNATURE } : part);
  for (const text of scriptTokens(script)) parts.push(signed({ text }));
  for (const call of script.toolCalls ?? []) {
    const json = call.arguments.join('');
    const args: unknown = json.trim() === '' ? {} : JSON.parse(json);
    parts.push(signed({ functionCall: { ...(call.id === undefined ? {} : { id: call.id }), name: call.name, args } }));
  }
  const candidate = (fields: JsonObject): JsonObject => (vertex ? fields : { ...fields, index: 0 });
  const frames = parts.map((part, sent) => ({
    frame: frame(stamp({ candidates: [candidate({ content: { parts: [part], role: 'model' } })], usageMetadata: usageMetadata(usage, vertex, sent + 1) }), pacer.next()),
    content: true,
  }));
  const reason = FINISH_REASONS[scriptFinishReason(script)];
  const last =
    reason === 'SAFETY'
      ? candidate({ finishReason: reason, safetyRatings: [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true }] })
      : candidate({ content: { parts: [{ text: '' }], role: 'model' }, finishReason: reason });
  frames.push({ frame: frame(stamp({ candidates: [last], usageMetadata: usageMetadata(usage, vertex) }), 0), content: false });
  return frames;
}

function customFrames(script: MockScript, answer: GoogleMockAnswer, stamp: Stamp): PlannedFrame[] {
  const pacer = createPacer(script);
  return answer.responses.map((response) => {
    const candidates = response['candidates'];
    const content = Array.isArray(candidates) && candidates.some((c) => ((c as { content?: { parts?: unknown[] } } | null)?.content?.parts?.length ?? 0) > 0);
    return { frame: frame(stamp(response), content ? pacer.next() : 0), content };
  });
}

/** The running usage: Gemini reports the prompt on every response, and the output so far. */
function usageMetadata(usage: Usage, vertex: boolean, sent?: number): JsonObject {
  const thoughts = usage.reasoningTokens ?? 0;
  const candidates = usage.outputTokens - thoughts;
  const final = sent === undefined;
  const metadata: JsonObject = {
    promptTokenCount: usage.inputTokens,
    candidatesTokenCount: final ? candidates : Math.min(sent, candidates),
    totalTokenCount: usage.inputTokens + (final ? usage.outputTokens : Math.min(sent, usage.outputTokens)),
  };
  if (usage.cachedInputTokens !== undefined) metadata['cachedContentTokenCount'] = usage.cachedInputTokens;
  metadata['promptTokensDetails'] = [{ modality: 'TEXT', tokenCount: usage.inputTokens }];
  if (final && usage.reasoningTokens !== undefined) metadata['thoughtsTokenCount'] = thoughts;
  if (vertex) metadata['trafficType'] = 'ON_DEMAND';
  return metadata;
}

/** Cuts the answer right before content response number `afterTokens + 1` (or before the last response). */
function applyFault(planned: PlannedFrame[], fault: Exclude<MockFault, { kind: 'http-error' }> | undefined): Pick<WireResponse, 'frames' | 'end'> {
  if (fault === undefined) return { frames: planned.map((p) => p.frame), end: 'close' };
  const frames: WireFrame[] = [];
  let sent = 0;
  for (const { frame: next, content } of planned) {
    if (sent === fault.afterTokens && (content || next === planned.at(-1)?.frame)) break;
    if (content) sent += 1;
    frames.push(next);
  }
  if (fault.kind !== 'error-event') return { frames, end: fault.kind };
  const status = fault.type ?? 'UNAVAILABLE';
  const code = Number(Object.entries(STATUSES).find(([, [name]]) => name === status)?.[0] ?? 500);
  const message = fault.message ?? STATUSES[code]?.[1] ?? 'An internal error has occurred.';
  frames.push(frame({ error: { code, message, status } }, 0));
  return { frames, end: 'close' };
}

function httpErrorResponse(fault: Extract<MockFault, { kind: 'http-error' }>): WireResponse {
  const [defaultStatus, defaultMessage] = STATUSES[fault.status] ?? (fault.status >= 500 ? STATUSES[500] : STATUSES[400]) ?? ['UNKNOWN', 'Error'];
  const error: JsonObject = { code: fault.status, message: fault.message ?? defaultMessage, status: fault.type ?? defaultStatus };
  const retryAfter = Object.entries(fault.headers ?? {}).find(([name]) => name.toLowerCase() === 'retry-after')?.[1];
  if (fault.status === 429) {
    error['details'] = [
      { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] },
      ...(retryAfter === undefined ? [] : [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` }]),
    ];
  }
  return {
    status: fault.status,
    headers: { 'content-type': 'application/json; charset=UTF-8', vary: 'Origin, X-Origin, Referer', ...fault.headers },
    // Google pretty-prints its error bodies.
    body: `${JSON.stringify({ error }, null, 2)}\n`,
  };
}

function streamHeaders(): Record<string, string> {
  return {
    'content-type': 'text/event-stream',
    'content-disposition': 'attachment',
    vary: 'Origin, X-Origin, Referer',
    'x-content-type-options': 'nosniff',
  };
}

/** Google ends each event with CRLF CRLF. */
function frame(data: unknown, delayMs: number): WireFrame {
  return { text: `data: ${JSON.stringify(data)}\r\n\r\n`, delayMs };
}

/** The model named in the path (`…/models/gemini-2.5-flash:streamGenerateContent`), unless the script says. */
function modelOf(script: MockScript, request: MockRequest): string {
  if (script.model !== undefined) return script.model;
  const match = /\/models\/([^/:]+):/.exec(request.path);
  return match?.[1] ?? 'gemini-2.5-flash';
}
