import { checkMonitorOptions, type MonitorOptions } from '../../operators/monitored.js';
import { checkSSEOptions, SSE_OPTION_KEYS, type SSEConfig } from '../../operators/to-sse.js';
import { checkBackpressureOptions, type BackpressureConfig } from '../../operators/with-backpressure.js';
import { checkTimeoutOptions, type TimeoutLimits } from '../../operators/with-timeout.js';
import { protocolNamed } from '../../protocols/index.js';
import { assertNumber, assertOptions, describeValue } from '../../core/validate.js';
import type { ChunkStreamOptions, StreamLogRecord, StreamResponseOptions } from './response-stream.js';

/**
 * An adapter's pipeline options, checked deeply once (when a handler is created, or at the call
 * of a one-shot function) and resolved, so each request builds its operators with no checks.
 */
export interface StreamPlan {
  readonly timeout: TimeoutLimits;
  readonly backpressure: BackpressureConfig | false;
  readonly monitor: MonitorOptions | undefined;
  readonly log: ((record: StreamLogRecord) => void) | undefined;
}

/** A {@link StreamPlan} that also encodes SSE and answers early errors with their own status. */
export interface ResponsePlan extends StreamPlan {
  readonly sse: SSEConfig;
  readonly statusWindowMs: number;
  readonly exposeErrors: boolean;
}

/** The keys of {@link ChunkStreamOptions}. */
export const CHUNK_STREAM_KEYS = ['timeout', 'backpressure', 'monitor', 'logger'] as const;

/** The keys of {@link StreamResponseOptions}: the pipeline's, `toSSE`'s, and the response's. */
export const RESPONSE_KEYS = [...CHUNK_STREAM_KEYS, ...SSE_OPTION_KEYS, 'protocol', 'headers', 'statusWindowMs'] as const;

/**
 * Checks the options every adapter takes, and that no key is outside `keys` (the adapter's whole
 * list, so a typo such as `idleMS` or `writeTimeout` fails with a suggestion).
 */
export function planChunkStream(options: ChunkStreamOptions, keys: readonly string[] = CHUNK_STREAM_KEYS): StreamPlan {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  assertOptions('options', options, keys);
  const { timeout, backpressure, monitor, logger } = options;
  if (monitor !== undefined) checkMonitorOptions(monitor, 'monitor');
  return {
    timeout: checkTimeoutOptions(timeout, 'timeout', false),
    backpressure: backpressure === false ? false : checkBackpressureOptions(backpressure ?? {}, 'backpressure'),
    monitor,
    log: loggerOf(logger),
  };
}

/** {@link planChunkStream} for the SSE adapters: also the `toSSE` options and `statusWindowMs`. */
export function planResponse(options: StreamResponseOptions, keys: readonly string[] = RESPONSE_KEYS): ResponsePlan {
  const plan = planChunkStream(options, keys);
  const { statusWindowMs = 500 } = options;
  assertNumber('statusWindowMs', statusWindowMs, { allowInfinity: true });
  const sse = checkSSEOptions(options, false);
  const protocol = protocolNamed(options.protocol, { retryMs: options.retryMs });
  if (protocol !== undefined) {
    for (const key of ['events', 'serialize'] as const) {
      if (options[key] !== undefined) {
        throw new TypeError(`Expected no \`${key}\` with \`protocol: '${protocol.name}'\`: it shapes tokenrelay's own SSE only`);
      }
    }
    sse.protocol = protocol;
  }
  return { ...plan, sse, statusWindowMs, exposeErrors: options.exposeErrors === true };
}

function loggerOf(logger: unknown): ((record: StreamLogRecord) => void) | undefined {
  if (logger === undefined) return undefined;
  if (typeof logger === 'function') return logger as (record: StreamLogRecord) => void;
  if (logger !== null && typeof logger === 'object' && typeof (logger as { info?: unknown }).info === 'function') {
    const target = logger as { info(record: StreamLogRecord): void };
    return (record) => target.info(record);
  }
  throw new TypeError(`Expected \`logger\` to be a function or an object with an info() method, got ${describeValue(logger)}`);
}
