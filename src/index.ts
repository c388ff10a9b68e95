export type { ChunkType, FinishReason, Operator, SourceInfo, TokenChunk, TokenSourceFactory, ToolCallInfo, Usage } from './core/types.js';
export {
  BackpressureError,
  InvalidJSONError,
  ProviderError,
  StreamAbortedError,
  StreamTimeoutError,
  TokenRelayError,
  isBackpressureError,
  isInvalidJSONError,
  isProviderError,
  isStreamAbortedError,
  isStreamTimeoutError,
  isTokenRelayError,
} from './core/errors.js';
export type { ProviderErrorOptions, TimeoutPhase, TokenRelayErrorCode } from './core/errors.js';
export { pipe } from './core/pipe.js';
export { fromAsyncIterable, tokens } from './from-async-iterable.js';
export type { TokenInput, FromAsyncIterableOptions } from './from-async-iterable.js';
export { withAbort } from './operators/with-abort.js';
export { withTimeout } from './operators/with-timeout.js';
export type { WithTimeoutOptions } from './operators/with-timeout.js';
export { withBackpressure } from './operators/with-backpressure.js';
export type { WithBackpressureOptions } from './operators/with-backpressure.js';
export { withRate } from './operators/with-rate.js';
export type { WithRateOptions } from './operators/with-rate.js';
export { withHeartbeat } from './operators/with-heartbeat.js';
export type { WithHeartbeatOptions } from './operators/with-heartbeat.js';
export { toSSE } from './operators/to-sse.js';
export type { ToSSEOptions, SSEEventNames } from './operators/to-sse.js';
export { monitored } from './operators/monitored.js';
export type { MonitorHooks, MonitorOptions, MonitorHookName, StreamMetrics, StreamOutcome, FirstTokenEvent } from './operators/monitored.js';
export { estimateCost } from './cost.js';
export type { Price, Cost } from './cost.js';
export { partialJSON, partialToolCalls } from './operators/partial-json.js';
export type { PartialJSONResult, PartialToolCall, PartialDeep } from './operators/partial-json.js';
export { tap } from './operators/tap.js';
export { map } from './operators/map.js';
export { collectText } from './collect-text.js';
export { composeMonitors } from './observability/compose.js';
export type { StreamObserver } from './operators/monitored.js';
