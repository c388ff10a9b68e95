export { createRelay } from './relay.js';
export type {
  Relay,
  RelayActiveOptions,
  RelayCancelOptions,
  RelayOptions,
  RelayStartOptions,
  RelayStream,
  RelaySubscribeOptions,
} from './relay.js';
export type { ProducerOutcome, ProducerResult } from './producer.js';
export type { CursorInput, RelayAuthorize, RelayStreamInfo } from './subscription.js';
export { memoryStore } from './memory-store.js';
export type { MemoryStore, MemoryStoreOptions, MemoryStoreStats } from './memory-store.js';
export { limitStreams } from './limit-streams.js';
export type { LimitStreamsOptions, StreamLimiter, StreamSlot } from './limit-streams.js';
export { limitRate } from './limit-rate.js';
export type { CostLimitWindow, LimitRateOptions, RateLimiter, RateLimitWindow } from './limit-rate.js';
export { idempotencyKey } from './idempotency.js';
export type { IdempotencyKeyRequest } from './idempotency.js';
export { parseCursor, resumeCursor } from './cursor.js';
export type { ResumeRequest } from './cursor.js';
// Defined with the core errors (one class per error across every entry); exported here, where they are thrown.
export {
  BudgetExceededError,
  InvalidCursorError,
  ProducerLostError,
  StoreUnavailableError,
  StreamLimitError,
  StreamNotFoundError,
  isBudgetExceededError,
  isInvalidCursorError,
  isProducerLostError,
  isStoreUnavailableError,
  isStreamLimitError,
  isStreamNotFoundError,
} from '../core/errors.js';
export type { BudgetExceededErrorOptions, BudgetKind, StreamLimitErrorOptions, StreamLimitKind } from '../core/errors.js';
