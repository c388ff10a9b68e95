import { anthropicMessagesWire } from './anthropic-wire.js';
import { bedrockConverseWire } from './bedrock-wire.js';
import { googleGenerateContentWire } from './google-wire.js';
import { mistralChatWire } from './mistral-wire.js';
import { openaiChatWire, openaiResponsesWire } from './openai-wire.js';
import type { MockRequest, MockScriptInput, WireResponse } from './script.js';

/** Which wire format a request path asks for, by the providers' own endpoint names. */
/** Mistral's path is OpenAI's (`/v1/chat/completions`): the loopback server serves it under this prefix. */
export const MISTRAL_PATH_PREFIX = '/mistral';

export function apiForPath(path: string): MockRequest['api'] | undefined {
  if (path.startsWith(`${MISTRAL_PATH_PREFIX}/`) && path.endsWith('/chat/completions')) return 'mistral-chat';
  if (path.endsWith('/chat/completions')) return 'openai-chat';
  if (path.endsWith('/responses')) return 'openai-responses';
  if (path.endsWith('/messages')) return 'anthropic-messages';
  // Gemini API and Vertex AI, any API version: `…/models/<model>:streamGenerateContent`.
  if (/\/models\/[^/]+:(stream)?[gG]enerateContent$/.test(path)) return 'google-generate-content';
  // Bedrock's ConverseStream: `/model/<modelId, URL-encoded>/converse-stream`.
  if (/\/model\/[^/]+\/converse-stream$/.test(path)) return 'bedrock-converse-stream';
  return undefined;
}

/** Builds the provider's answer to a request from the script. */
export async function answerRequest(request: MockRequest, script: MockScriptInput): Promise<WireResponse> {
  const streamed =
    request.api === 'google-generate-content'
      ? request.path.endsWith(':streamGenerateContent')
      : request.api === 'bedrock-converse-stream' || request.body.stream === true;
  if (!streamed) {
    return jsonError(400, request.api, 'The tokenrelay mock provider only answers streamed requests (`stream: true`).');
  }
  const resolved = typeof script === 'function' ? await script(request) : script;
  if (request.api === 'openai-chat') return openaiChatWire(resolved, request);
  if (request.api === 'openai-responses') return openaiResponsesWire(resolved, request);
  if (request.api === 'mistral-chat') return mistralChatWire(resolved, request);
  if (request.api === 'google-generate-content') return googleGenerateContentWire(resolved, request);
  if (request.api === 'bedrock-converse-stream') return bedrockConverseWire(resolved, request);
  return anthropicMessagesWire(resolved, request);
}

/** A provider-shaped JSON error for requests the mock cannot serve. */
export function jsonError(status: number, api: MockRequest['api'] | undefined, message: string): WireResponse {
  if (api === 'google-generate-content') {
    const error = { code: status, message, status: status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT' };
    return { status, headers: { 'content-type': 'application/json; charset=UTF-8' }, body: `${JSON.stringify({ error }, null, 2)}\n` };
  }
  if (api === 'bedrock-converse-stream') {
    const type = status === 404 ? 'ResourceNotFoundException' : 'ValidationException';
    const headers = { 'content-type': 'application/json', 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` };
    return { status, headers, body: JSON.stringify({ message }) };
  }
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
