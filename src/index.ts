export type * from './core/types.js';
export * from './core/errors.js';
export { pipe } from './core/pipe.js';
export { fromAsyncIterable, tokens } from './from-async-iterable.js';
export type { TokenInput, FromAsyncIterableOptions } from './from-async-iterable.js';
export { withAbort } from './operators/with-abort.js';
export { withTimeout } from './operators/with-timeout.js';
export type { WithTimeoutOptions } from './operators/with-timeout.js';
export { withBackpressure } from './operators/with-backpressure.js';
export type { WithBackpressureOptions } from './operators/with-backpressure.js';
export { toSSE } from './operators/to-sse.js';
export type { ToSSEOptions, SSEEventNames } from './operators/to-sse.js';
export { encodeSSEFrame, sseHeaders } from './sse/encoder.js';
export type { SSEFrame, SSEDonePayload, SSEErrorPayload } from './sse/encoder.js';
export { monitored } from './operators/monitored.js';
export type { MonitorHooks, MonitorOptions, MonitorHookName, StreamMetrics, StreamOutcome, FirstTokenEvent } from './operators/monitored.js';
export { estimateCost } from './cost.js';
export type { Price, Cost } from './cost.js';
export { partialJSON, partialToolCalls } from './operators/partial-json.js';
export type { PartialJSONResult, PartialToolCall, PartialDeep } from './operators/partial-json.js';
export { tap } from './operators/tap.js';
export { map } from './operators/map.js';
export { collectText } from './collect-text.js';
export { createRelay } from './relay/relay.js';
export type { Relay, RelayOptions, RelayStartOptions, RelaySubscribeOptions, RelayCancelOptions, RelayActiveOptions, RelayStream } from './relay/relay.js';
export type { ProducerOutcome, ProducerResult } from './relay/producer.js';
export type { RelayAuthorize, RelayStreamInfo, CursorInput } from './relay/subscription.js';
export { memoryStore } from './relay/memory-store.js';
export type { MemoryStore, MemoryStoreOptions, MemoryStoreStats } from './relay/memory-store.js';
export { limitStreams } from './relay/limit-streams.js';
export type { LimitStreamsOptions, StreamLimiter, StreamSlot } from './relay/limit-streams.js';
export { limitRate } from './relay/limit-rate.js';
export type { LimitRateOptions, RateLimiter, RateLimitWindow, CostLimitWindow } from './relay/limit-rate.js';
export { idempotencyKey } from './relay/idempotency.js';
export type { IdempotencyKeyRequest } from './relay/idempotency.js';
export { parseCursor, resumeCursor } from './relay/cursor.js';
export type { ResumeRequest } from './relay/cursor.js';
export { composeMonitors } from './observability/compose.js';
export type { StreamObserver } from './operators/monitored.js';
export type { ProtocolName } from './protocols/protocol.js';
export { readRunAgentInput } from './protocols/ag-ui-input.js';
export type { RunAgentInput, ReadRunAgentInputOptions, AgUIMessage, AgUITool, AgUIToolCall, AgUIRole } from './protocols/ag-ui-input.js';
export { readChatCompletionRequest } from './protocols/openai-request.js';
export type {
  ChatCompletionRequest,
  ChatCompletionRequestMessage,
  ChatCompletionRequestTool,
  ReadChatCompletionRequestOptions,
} from './protocols/openai-request.js';
