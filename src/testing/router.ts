import { anthropicMessagesWire } from './anthropic-wire.js';
import { openaiChatWire, openaiResponsesWire } from './openai-wire.js';
import type { MockRequest, MockScriptInput, WireResponse } from './script.js';

/** Which wire format a request path asks for, by the providers' own endpoint names. */
export function apiForPath(path: string): MockRequest['api'] | undefined {
  if (path.endsWith('/chat/completions')) return 'openai-chat';
  if (path.endsWith('/responses')) return 'openai-responses';
  if (path.endsWith('/messages')) return 'anthropic-messages';
  return undefined;
}

/** Builds the provider's answer to a request from the script. */
export async function answerRequest(request: MockRequest, script: MockScriptInput): Promise<WireResponse> {
  if (request.body.stream !== true) {
    return jsonError(400, request.api, 'The tokenrelay mock provider only answers streamed requests (`stream: true`).');
  }
  const resolved = typeof script === 'function' ? await script(request) : script;
  if (request.api === 'openai-chat') return openaiChatWire(resolved, request);
  if (request.api === 'openai-responses') return openaiResponsesWire(resolved, request);
  return anthropicMessagesWire(resolved, request);
}

/** A provider-shaped JSON error for requests the mock cannot serve. */
export function jsonError(status: number, api: MockRequest['api'] | undefined, message: string): WireResponse {
  const body =
    api === 'anthropic-messages'
      ? { type: 'error', error: { type: 'invalid_request_error', message } }
      : { error: { message, type: 'invalid_request_error', param: null, code: null } };
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** Parses a JSON request body, or `undefined` when it is not a JSON object. */
export function parseBody(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
