import {
  BackpressureError,
  BudgetExceededError,
  InvalidCursorError,
  InvalidJSONError,
  ProducerLostError,
  ProviderError,
  StoreUnavailableError,
  StreamAbortedError,
  StreamLimitError,
  StreamNotFoundError,
  StreamTimeoutError,
  type StreamLimitKind,
  type TimeoutPhase,
} from '../core/errors.js';

/** Options of {@link StreamConnectionError}. */
export interface StreamConnectionErrorOptions {
  /** The HTTP status of the response that failed, when there was one. */
  status?: number | undefined;
  /** How many connections were tried. */
  attempts?: number | undefined;
  /** The underlying error (e.g. `fetch`'s `TypeError`), passed through untouched. */
  cause?: unknown;
}

/**
 * The client could not get a stream: the connection failed more than `reconnect.retries` times
 * in a row, the server answered a status that is final (4xx other than 408 and 429) without a
 * tokenrelay error body, or it answered something other than `text/event-stream`.
 */
export class StreamConnectionError extends Error {
  /** Always `'StreamConnectionError'`; {@link isStreamConnectionError} matches by it. */
  override name = 'StreamConnectionError';
  /** The HTTP status of the response that failed, when there was one. */
  readonly status: number | undefined;
  /** How many connections were tried. */
  readonly attempts: number;

  constructor(message: string, options: StreamConnectionErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.attempts = options.attempts ?? 1;
  }
}

/**
 * The server ended the stream with an error the client has no typed class for (`code:
 * 'internal'`, or a code it does not know), or sent data it cannot read (`code: 'protocol'`).
 */
export class StreamServerError extends Error {
  /** Always `'StreamServerError'`; {@link isStreamServerError} matches by it. */
  override name = 'StreamServerError';
  /** The code the server sent (`'internal'`, or one this client does not know), or `'protocol'`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** True for a {@link StreamConnectionError}, also from another copy of the package. */
export function isStreamConnectionError(error: unknown): error is StreamConnectionError {
  return error instanceof Error && error.name === 'StreamConnectionError';
}

/** True for a {@link StreamServerError}, also from another copy of the package. */
export function isStreamServerError(error: unknown): error is StreamServerError {
  return error instanceof Error && error.name === 'StreamServerError';
}

const TIMEOUT_MESSAGE = /^No (first token|chunk|end of stream) within (\d+) ms$/;
const PHASES: Record<string, TimeoutPhase> = { 'first token': 'first-token', chunk: 'idle', 'end of stream': 'total' };

/**
 * Rebuilds the typed error of an `error` event or an HTTP error body (`{ code, message, status?,
 * retryable?, retryAfterMs? }`, what the server adapters send). Anything else becomes a
 * `StreamServerError`.
 */
export function errorFromPayload(payload: unknown): Error {
  if (payload === null || typeof payload !== 'object') {
    return new StreamServerError('protocol', 'The server sent an error the client cannot read');
  }
  const fields = payload as Record<string, unknown>;
  const code = typeof fields.code === 'string' ? fields.code : 'internal';
  const message = typeof fields.message === 'string' ? fields.message : 'The stream failed';
  const number = (key: string): number | undefined => (typeof fields[key] === 'number' ? (fields[key] as number) : undefined);
  switch (code) {
    case 'provider':
      return new ProviderError(message, {
        status: number('status'),
        retryable: typeof fields.retryable === 'boolean' ? fields.retryable : undefined,
        retryAfterMs: number('retryAfterMs'),
      });
    case 'aborted':
      return new StreamAbortedError(message);
    case 'timeout': {
      const match = TIMEOUT_MESSAGE.exec(message);
      const error = new StreamTimeoutError(PHASES[match?.[1] ?? ''] ?? 'total', Number(match?.[2] ?? 0));
      error.message = message;
      return error;
    }
    case 'backpressure':
      return new BackpressureError(message);
    case 'invalid-json':
      return new InvalidJSONError(message, number('position') ?? 0);
    case 'limit':
      return new StreamLimitError(message, {
        limit: typeof fields.limit === 'string' ? (fields.limit as StreamLimitKind) : undefined,
        retryAfterMs: number('retryAfterMs'),
      });
    case 'not-found':
      return new StreamNotFoundError(message);
    case 'producer-lost':
      return new ProducerLostError(message);
    case 'invalid-cursor':
      return new InvalidCursorError(message);
    case 'store-unavailable':
      return new StoreUnavailableError(message);
    case 'budget-exceeded':
      return new BudgetExceededError(message, {
        limit: fields.limit === 'cost' ? 'cost' : 'tokens',
        retryAfterMs: number('retryAfterMs'),
      });
    default:
      return new StreamServerError(code, message);
  }
}
