import type {
  ConverseStreamCommand,
  ConverseStreamCommandInput,
  ConverseStreamCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { ProviderError, StreamAbortedError } from '../../core/errors.js';
import type { TokenChunk } from '../../core/types.js';
import { assertOptions, assertSignal, describeValue } from '../../core/validate.js';
import { toBedrockError, type BedrockErrorContext } from './bedrock-errors.js';
import { BedrockEventReader, type BedrockStreamEvent } from './bedrock-events.js';

export type { BedrockStreamEvent } from './bedrock-events.js';

/**
 * Options of {@link fromBedrock}.
 *
 * @example
 * ```ts
 * const response = await client.send(new ConverseStreamCommand(input), { abortSignal: signal });
 * fromBedrock(response.stream!, { signal, model: input.modelId });
 * ```
 */
export interface FromBedrockOptions {
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'bedrock'`
   */
  provider?: string | undefined;
  /**
   * The `model` stamped on every chunk: ConverseStream does not say which model answered.
   * @defaultValue none: chunks carry no `model`
   * @example
   * ```ts
   * fromBedrock(response.stream!, { model: 'anthropic.claude-3-5-haiku-20241022-v1:0' });
   * ```
   */
  model?: string | undefined;
  /**
   * The `abortSignal` you gave `client.send`. When it has fired, the stream's failure or early
   * end is reported as a `StreamAbortedError` whose `cause` is `signal.reason`.
   * @defaultValue none: only the SDK's own `AbortError` is recognised as an abort
   */
  signal?: AbortSignal | undefined;
}

/**
 * Options of {@link streamBedrock}.
 *
 * @example
 * ```ts
 * const source: TokenSourceFactory = (signal) => streamBedrock(bedrock, input, { signal });
 * ```
 */
export interface StreamBedrockOptions {
  /**
   * Cancels the HTTP request (it is passed on as the `abortSignal` of `client.send`). Pass the
   * signal of the source factory, so a client that goes away stops the bill. Optional, as in
   * `streamOpenAI`: breaking out of the loop cancels the request either way.
   * @defaultValue none
   */
  signal?: AbortSignal | undefined;
  /**
   * The `provider` stamped on every chunk and named in error messages.
   * @defaultValue `'bedrock'`
   */
  provider?: string | undefined;
}

/**
 * What {@link streamBedrock} needs of a client: `send`, as `BedrockRuntimeClient` of any
 * `@aws-sdk/client-bedrock-runtime` 3.x has it.
 */
export interface BedrockRuntimeClientLike {
  /** Sends the `ConverseStreamCommand`; `abortSignal` cancels its HTTP request. */
  send(command: ConverseStreamCommand, options?: { abortSignal?: AbortSignal }): Promise<ConverseStreamCommandOutput>;
}

/** The request of {@link streamBedrock}: `ConverseStreamCommand`'s input (`modelId`, `messages`, `system`, `toolConfig`…). */
export type BedrockStreamInput = ConverseStreamCommandInput;

/**
 * Normalizes the `stream` of a `ConverseStreamCommand` response into TokenChunks: text deltas,
 * reasoning (`reasoningContent.text`), tool-call input fragments (a tool Bedrock ran itself,
 * `type: 'server_tool_use'`, carries `toolCall.providerExecuted: true`), citations (as `'source'`
 * chunks), then one final chunk with the `finishReason` of `messageStop` and the usage of
 * `metadata`. Exceptions inside the stream (`throttlingException`, `modelStreamErrorException`…)
 * are thrown as `ProviderError`, `retryable` for throttling, service-unavailable and
 * internal-server; a stream that ends before `messageStop` throws a retryable `ProviderError`.
 * Breaking out of the loop ends the SDK stream, which closes its HTTP response.
 *
 * @example
 * ```ts
 * const response = await bedrock.send(new ConverseStreamCommand(input), { abortSignal: signal });
 * for await (const chunk of fromBedrock(response.stream!, { signal })) process.stdout.write(chunk.token);
 * ```
 */
export function fromBedrock(
  stream: AsyncIterable<BedrockStreamEvent>,
  options: FromBedrockOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`stream\` to be the \`stream\` of a ConverseStream response (an async iterable), got ${describe(stream)}`);
  }
  assertBedrockOptions(options, FROM_OPTION_KEYS);
  const { model } = options;
  if (model !== undefined && (typeof model !== 'string' || model === '')) {
    throw new TypeError(`Expected \`options.model\` to be a non-empty string, got ${describeValue(model)}`);
  }
  return relayEvents(stream, { provider: options.provider ?? 'bedrock', signal: options.signal }, model);
}

/**
 * Sends a `ConverseStreamCommand` and relays its stream as TokenChunks (see {@link fromBedrock}),
 * with `modelId` as each chunk's `model`. `@aws-sdk/client-bedrock-runtime` is loaded on the
 * first `next()`, when the request is sent; bad arguments throw a `TypeError` at once.
 *
 * Errors are typed: an abort through `signal` throws `StreamAbortedError` (its `cause` is the
 * signal's reason); service exceptions before the stream throw `ProviderError` with the HTTP
 * `status` and the exception's name as `providerType` (`retryable` for 408, 429, 5xx and
 * throttling); timeouts and broken connections throw a retryable `ProviderError`. Messages
 * never contain credentials.
 *
 * @example
 * ```ts
 * const bedrock = new BedrockRuntimeClient({ region: 'us-east-1' });
 * const source: TokenSourceFactory = (signal) =>
 *   streamBedrock(bedrock, { modelId: 'amazon.nova-lite-v1:0', messages: [{ role: 'user', content: [{ text: 'Hi' }] }] }, { signal });
 * ```
 */
export function streamBedrock(
  client: BedrockRuntimeClientLike,
  input: BedrockStreamInput,
  options: StreamBedrockOptions = {},
): AsyncGenerator<TokenChunk, void, undefined> {
  if (typeof (client as Partial<BedrockRuntimeClientLike> | null | undefined)?.send !== 'function') {
    throw new TypeError(`Expected \`client\` to be a BedrockRuntimeClient (with \`send\`), got ${describe(client)}`);
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TypeError(`Expected \`input\` to be the ConverseStreamCommand input (an object), got ${describe(input)}`);
  }
  if (typeof input.modelId !== 'string' || input.modelId === '') {
    throw new TypeError(`Expected \`input.modelId\` to be a non-empty string, got ${describeValue(input.modelId)}`);
  }
  assertBedrockOptions(options, STREAM_OPTION_KEYS);
  return requestStream(client, input, { provider: options.provider ?? 'bedrock', signal: options.signal });
}

async function* requestStream(
  client: BedrockRuntimeClientLike,
  input: BedrockStreamInput,
  context: BedrockErrorContext,
): AsyncGenerator<TokenChunk, void, undefined> {
  const { signal } = context;
  if (signal?.aborted === true) throw new StreamAbortedError('The stream was aborted', { cause: signal.reason });
  // Our own controller, so that leaving the loop early (break, error) also closes the request.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let completed = false;
  try {
    const Command = await loadConverseStreamCommand();
    let output: ConverseStreamCommandOutput;
    try {
      output = await client.send(new Command(input), { abortSignal: controller.signal });
    } catch (error) {
      throw toBedrockError(error, context);
    }
    if (output?.stream == null) {
      throw new ProviderError(`${context.provider === 'bedrock' ? 'Bedrock' : context.provider} answered without a stream`, {
        retryable: false,
        provider: context.provider,
      });
    }
    yield* relayEvents(output.stream, context, input.modelId);
    completed = true;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!completed) controller.abort(new StreamAbortedError('The stream was closed before it ended'));
  }
}

async function* relayEvents(
  stream: AsyncIterable<BedrockStreamEvent>,
  context: BedrockErrorContext,
  model: string | undefined,
): AsyncGenerator<TokenChunk, void, undefined> {
  const reader = new BedrockEventReader(context, model);
  const chunks: TokenChunk[] = [];
  try {
    for await (const event of stream) {
      reader.read(event, chunks);
      if (chunks.length === 1) yield chunks.pop() as TokenChunk;
      else if (chunks.length > 1) yield* chunks.splice(0);
    }
  } catch (error) {
    throw toBedrockError(error, context);
  }
  // An aborted request can end the body quietly: that is an abort, not a truncated answer.
  if (context.signal?.aborted === true && !reader.stopped) {
    throw new StreamAbortedError('The stream was aborted', { cause: context.signal.reason });
  }
  yield reader.finish();
}

type CommandClass = new (input: ConverseStreamCommandInput) => ConverseStreamCommand;
let commandClass: Promise<CommandClass> | undefined;

// The SDK is an optional peer: loaded when the first request is sent, never at import.
function loadConverseStreamCommand(): Promise<CommandClass> {
  commandClass ??= import('@aws-sdk/client-bedrock-runtime').then(
    (sdk) => sdk.ConverseStreamCommand,
    (error: unknown) => {
      commandClass = undefined;
      const code = (error as { code?: unknown } | null)?.code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
      throw new Error(
        missing
          ? '`streamBedrock` needs @aws-sdk/client-bedrock-runtime, an optional peer dependency of tokenrelay: install it (`npm install @aws-sdk/client-bedrock-runtime`)'
          : `\`streamBedrock\` could not load @aws-sdk/client-bedrock-runtime: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    },
  );
  return commandClass;
}

const FROM_OPTION_KEYS = ['provider', 'model', 'signal'] as const;
const STREAM_OPTION_KEYS = ['provider', 'signal'] as const;

function assertBedrockOptions(options: unknown, known: readonly string[]): void {
  assertOptions('options', options, known);
  const { provider, signal } = (options ?? {}) as FromBedrockOptions;
  if (signal !== undefined) assertSignal('options.signal', signal);
  if (provider !== undefined && (typeof provider !== 'string' || provider === '')) {
    throw new TypeError(`Expected \`options.provider\` to be a non-empty string, got ${describeValue(provider)}`);
  }
}

function describe(value: unknown): string {
  if (typeof (value as { then?: unknown } | null | undefined)?.then === 'function') return 'a Promise (did you forget `await`?)';
  if (value !== null && typeof value === 'object' && 'stream' in value && '$metadata' in value) {
    return 'the whole ConverseStream response (pass its `stream`)';
  }
  return describeValue(value);
}
