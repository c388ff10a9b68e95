import { InvalidRequestError } from '../core/errors.js';
import { assertSignal, describeValue } from '../core/validate.js';

/** One message of a Chat Completions request, as the client sent it (only `role` is checked). */
export interface ChatCompletionRequestMessage {
  /** `'system'`, `'developer'`, `'user'`, `'assistant'` or `'tool'`. */
  role: string;
  /** A string, an array of content parts, or `null` (an assistant message with tool calls). */
  content?: unknown;
  [key: string]: unknown;
}

/** One tool of a Chat Completions request, as the client sent it (only `type` is checked). */
export interface ChatCompletionRequestTool {
  /** `'function'` (or `'custom'`). */
  type: string;
  [key: string]: unknown;
}

/** What {@link readChatCompletionRequest} reads from a Chat Completions request body. */
export interface ChatCompletionRequest {
  /** The model the client asked for. */
  model: string;
  /** The conversation, in OpenAI's message shapes. */
  messages: ChatCompletionRequestMessage[];
  /** The tools the model may call, or `undefined` when the request has none. */
  tools: ChatCompletionRequestTool[] | undefined;
  /** `stream: true` in the body: the client reads Chat Completions chunks. */
  stream: boolean;
  /** `stream_options.include_usage: true`: the client wants the usage-only chunk before `[DONE]`. */
  includeUsage: boolean;
  /** The whole body, for the fields not read here (`temperature`, `max_tokens`, `tool_choice`, …). */
  body: Record<string, unknown>;
}

/** Options of {@link readChatCompletionRequest}. */
export interface ReadChatCompletionRequestOptions {
  /**
   * The signal the source factory received. When given, the `'openai'` encoder of that stream
   * answers with the request's `model` when the chunks carry none, and sends the usage-only chunk
   * when the request asked for `stream_options.include_usage`.
   * @defaultValue none (no usage-only chunk; the model is the chunks' own)
   */
  signal?: AbortSignal | undefined;
}

/** What a stream's `'openai'` encoder needs to know of its request. */
export interface ChatCompletionHints {
  model: string;
  includeUsage: boolean;
}

const hints = new WeakMap<AbortSignal, ChatCompletionHints>();

/**
 * Reads an OpenAI Chat Completions request body (`POST /v1/chat/completions`): the model, the
 * messages, the tools, and whether the client asked for the usage-only chunk. Pass the source
 * factory's `signal` so that the `'openai'` encoder of this stream knows it. A body that is not
 * a Chat Completions request throws `InvalidRequestError` (`status` 400): thrown in a factory, it
 * is answered `400` with OpenAI's error JSON (`type: 'invalid_request_error'`), before any stream.
 *
 * @example
 * ```ts
 * app.post('/v1/chat/completions', express.json(), sse((req, signal) => {
 *   const request = readChatCompletionRequest(req.body, { signal });
 *   return streamAnthropic(anthropic, toAnthropicParams(request), { signal });
 * }, { protocol: 'openai' }));
 * ```
 */
export function readChatCompletionRequest(body: unknown, options: ReadChatCompletionRequestOptions = {}): ChatCompletionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidRequestError(`Expected a Chat Completions request body to be an object, got ${describeValue(body)}`);
  }
  const fields = body as Record<string, unknown>;
  const { model, messages, tools, stream, stream_options: streamOptions } = fields;
  if (typeof model !== 'string' || model === '') {
    throw new InvalidRequestError(`Expected \`model\` to be a non-empty string, got ${describeValue(model)}`);
  }
  if (!Array.isArray(messages) || messages.some((message) => !hasStringField(message, 'role'))) {
    throw new InvalidRequestError(`Expected \`messages\` to be an array of objects with a string \`role\`, got ${describeValue(messages)}`);
  }
  if (tools !== undefined && tools !== null && (!Array.isArray(tools) || tools.some((tool) => !hasStringField(tool, 'type')))) {
    throw new InvalidRequestError(`Expected \`tools\` to be an array of objects with a string \`type\`, got ${describeValue(tools)}`);
  }
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new InvalidRequestError(`Expected \`stream\` to be a boolean, got ${describeValue(stream)}`);
  }
  const includeUsage = includeUsageOf(streamOptions);
  const { signal } = options;
  if (signal !== undefined) {
    assertSignal('signal', signal);
    hints.set(signal, { model, includeUsage });
  }
  return {
    model,
    messages: messages as ChatCompletionRequestMessage[],
    tools: Array.isArray(tools) ? (tools as ChatCompletionRequestTool[]) : undefined,
    stream: stream === true,
    includeUsage,
    body: fields,
  };
}

/** @internal What {@link readChatCompletionRequest} recorded for the stream of that signal. */
export function chatCompletionHintsFor(signal: AbortSignal | undefined): ChatCompletionHints | undefined {
  return signal === undefined ? undefined : hints.get(signal);
}

function includeUsageOf(streamOptions: unknown): boolean {
  if (streamOptions === undefined || streamOptions === null) return false;
  if (typeof streamOptions !== 'object' || Array.isArray(streamOptions)) {
    throw new InvalidRequestError(`Expected \`stream_options\` to be an object, got ${describeValue(streamOptions)}`);
  }
  const includeUsage = (streamOptions as { include_usage?: unknown }).include_usage;
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') {
    throw new InvalidRequestError(`Expected \`stream_options.include_usage\` to be a boolean, got ${describeValue(includeUsage)}`);
  }
  return includeUsage === true;
}

function hasStringField(value: unknown, field: string): boolean {
  return value !== null && typeof value === 'object' && typeof (value as Record<string, unknown>)[field] === 'string';
}
