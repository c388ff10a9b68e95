export { streamTokens } from './stream-tokens.js';
export { streamEvents } from './stream-events.js';
export { StreamConnectionError, StreamServerError, isStreamConnectionError, isStreamServerError } from './errors.js';
export type { StreamConnectionErrorOptions } from './errors.js';
export type {
  ClientEventNames,
  ClientEventStream,
  ClientStreamState,
  ClientTokenStream,
  FetchLike,
  ReconnectOptions,
  ReconnectReason,
  RetryInfo,
  ServerSentEvent,
  StreamEventsOptions,
  StreamTokensOptions,
} from './types.js';
