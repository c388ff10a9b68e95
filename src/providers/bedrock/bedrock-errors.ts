// How the Bedrock adapter turns what `@aws-sdk/client-bedrock-runtime` throws (or what the
// stream carries) into typed errors, with no credential in any message.
import { ProviderError, StreamAbortedError, isTokenRelayError } from '../../core/errors.js';
import { parseRetryAfter, type HeadersLike } from '../retry-after.js';

/** Where an error happened. */
export interface BedrockErrorContext {
  /** The `provider` name stamped on chunks, `'bedrock'` unless set. */
  provider: string;
  /** The caller's signal: once aborted, every failure is reported as an abort. */
  signal?: AbortSignal | undefined;
}

/** The fields of the SDK's `BedrockRuntimeServiceException` we read, matched by shape so any SDK copy works. */
interface ServiceExceptionLike {
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown } | undefined;
  $retryable?: unknown;
  $response?: { headers?: unknown } | undefined;
  originalStatusCode?: unknown;
}

/**
 * The exceptions Bedrock sends inside a ConverseStream (by the SDK's class name) and whether
 * sending the same request again may succeed.
 */
const STREAM_EXCEPTIONS: Readonly<Record<string, boolean>> = {
  ThrottlingException: true,
  ServiceUnavailableException: true,
  InternalServerException: true,
  ModelStreamErrorException: false,
  ValidationException: false,
};

/** Exceptions worth retrying whatever their status (the SDK's own retry strategy agrees). */
const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'InternalServerException',
  'ModelNotReadyException',
  'ModelTimeoutException',
]);

const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|ERR_HTTP2_\w+|UND_ERR_\w+)$/;

/**
 * Turns whatever the SDK threw into a tokenrelay error: aborts become `StreamAbortedError`;
 * service exceptions (before the stream, with their HTTP status, or inside it), timeouts and
 * broken connections become `ProviderError`. Errors we do not recognise (bugs, bad arguments)
 * pass through untouched.
 */
export function toBedrockError(error: unknown, context: BedrockErrorContext): unknown {
  if (isTokenRelayError(error)) return error;
  if (context.signal?.aborted === true || hasName(error, 'AbortError')) {
    const cause = context.signal?.aborted === true ? context.signal.reason : ((error as { cause?: unknown }).cause ?? error);
    return new StreamAbortedError('The stream was aborted', { cause });
  }
  if (!(error instanceof Error)) return error;
  const service = error as Error & ServiceExceptionLike;
  const status = service.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 400) return httpError(service, status, context);
  if (typeof service.$fault === 'string' || error.name in STREAM_EXCEPTIONS) {
    return streamException(error.name, { message: error.message, originalStatusCode: service.originalStatusCode }, context, error);
  }
  if (error.name === 'TimeoutError' || hasCode(error, /^(ETIMEDOUT|ESOCKETTIMEDOUT)$/)) {
    return new ProviderError(`The request to ${label(context)} timed out`, { retryable: true, provider: context.provider, cause: error });
  }
  if (hasCode(error, NETWORK_CODES) || hasCode(error.cause, NETWORK_CODES) || /^(aborted|socket hang up|terminated)$/.test(error.message)) {
    const connecting = hasCode(error, /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN)$/);
    const message = connecting ? `Could not connect to ${label(context)}` : `The connection to ${label(context)} was lost`;
    return new ProviderError(message, { retryable: true, provider: context.provider, cause: error });
  }
  return error;
}

/**
 * An exception Bedrock reported inside the stream (`throttlingException`, `modelStreamErrorException`…),
 * thrown by the SDK or met as an event member, as a `ProviderError`. `type` is the SDK's class
 * name or the event member's name.
 */
export function streamException(
  type: string,
  body: { message?: unknown; originalStatusCode?: unknown },
  context: BedrockErrorContext,
  cause: unknown,
): ProviderError {
  const name = type.charAt(0).toUpperCase() + type.slice(1);
  return new ProviderError(`${label(context)} stream failed with ${name}${safeDetail(body.message)}`, {
    retryable: STREAM_EXCEPTIONS[name] ?? RETRYABLE_NAMES.has(name),
    providerType: name,
    provider: context.provider,
    cause,
  });
}

function httpError(error: Error & ServiceExceptionLike, status: number, context: BedrockErrorContext): ProviderError {
  const headers = error.$response?.headers;
  const retryable = status === 408 || status === 429 || status >= 500 || RETRYABLE_NAMES.has(error.name) || isThrottling(error.$retryable);
  return new ProviderError(`${label(context)} request failed with status ${status}${safeDetail(error.message)}`, {
    status,
    retryable,
    providerType: error.name !== 'Error' && error.name !== '' ? error.name : undefined,
    retryAfterMs: headers !== null && typeof headers === 'object' ? parseRetryAfter(headers as HeadersLike) : undefined,
    provider: context.provider,
    cause: error,
  });
}

function isThrottling(retryable: unknown): boolean {
  return retryable !== null && typeof retryable === 'object' && (retryable as { throttling?: unknown }).throttling === true;
}

/**
 * The provider's own explanation, shortened, with anything shaped like an AWS access key id or a
 * SigV4 credential scope blanked out (signature errors echo the canonical request).
 */
function safeDetail(message: unknown): string {
  if (typeof message !== 'string') return '';
  const clean = message
    .replace(/\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g, '[redacted]')
    .replace(/Credential=[^,\s]+/g, 'Credential=[redacted]')
    .replace(/Signature=[0-9a-f]+/g, 'Signature=[redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  if (clean === '') return '';
  return `: ${clean.length > 200 ? `${clean.slice(0, 199)}…` : clean}`;
}

function hasName(error: unknown, name: string): boolean {
  return error !== null && typeof error === 'object' && (error as { name?: unknown }).name === name;
}

function hasCode(error: unknown, pattern: RegExp): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && pattern.test(code);
}

function label(context: BedrockErrorContext): string {
  return context.provider === 'bedrock' ? 'Bedrock' : context.provider;
}
