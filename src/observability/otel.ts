import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Exception, type Span, type Tracer } from '@opentelemetry/api';
import type { Price } from '../cost.js';
import type { FirstTokenEvent, MonitorOptions, StreamMetrics, StreamObserver } from '../operators/monitored.js';
import type { FinishReason } from '../core/types.js';
import { assertFunction, describeValue } from '../core/validate.js';

/** Options of {@link otelMonitor}. */
export interface OtelMonitorOptions {
  /**
   * Creates the spans.
   * @defaultValue `trace.getTracer('tokenrelay')` (the global tracer provider)
   */
  tracer?: Tracer | undefined;
  /**
   * Record the completion text on the span as `gen_ai.output.messages`. It may hold personal
   * data; the prompt is never recorded.
   * @defaultValue `false`
   */
  recordContent?: boolean | undefined;
  /**
   * Prices by model, for the `tokenrelay.cost.usd` attribute. tokenrelay ships no price list.
   * @defaultValue no cost
   */
  pricing?: ((model: string | undefined) => Price | undefined) | undefined;
  /**
   * Added to every span when it starts: e.g. `gen_ai.request.model` (the model you asked for;
   * else the model the provider reported is used) or `gen_ai.conversation.id`.
   * @defaultValue none
   * @example
   * ```ts
   * otelMonitor({ tracer, attributes: { 'gen_ai.request.model': 'gpt-4o-mini' } })
   * ```
   */
  attributes?: Attributes | undefined;
}

// tokenrelay's finish reasons in the values of the GenAI conventions.
const FINISH_REASONS: Partial<Record<FinishReason, string>> = {
  'tool-calls': 'tool_call',
  'content-filter': 'content_filter',
};

/**
 * Traces every stream as one client span following the OpenTelemetry GenAI semantic
 * conventions (`chat {model}`, provider, models, token usage, finish reasons), with an event at
 * the first token. The span is a child of the context active when the stream is first read
 * (the request's span, when the server adapter runs inside it). Errors and timeouts set the
 * status to `ERROR` and record the exception; aborted and cancelled streams are not errors and
 * only carry `tokenrelay.outcome`.
 *
 * @example
 * ```ts
 * await sendSSE(req, res, factory, { monitor: otelMonitor({ tracer: trace.getTracer('chat-api') }) });
 * ```
 */
export function otelMonitor(options: OtelMonitorOptions = {}): MonitorOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const { tracer = trace.getTracer('tokenrelay'), recordContent = false, pricing, attributes } = options;
  if (tracer === null || typeof tracer !== 'object' || typeof tracer.startSpan !== 'function') {
    throw new TypeError(`Expected \`tracer\` to be an OpenTelemetry Tracer, got ${describeValue(tracer)}`);
  }
  if (typeof recordContent !== 'boolean') {
    throw new TypeError(`Expected \`recordContent\` to be a boolean, got ${describeValue(recordContent)}`);
  }
  if (pricing !== undefined) assertFunction('pricing', pricing);
  if (attributes !== undefined && (attributes === null || typeof attributes !== 'object')) {
    throw new TypeError(`Expected \`attributes\` to be an object of span attributes, got ${describeValue(attributes)}`);
  }
  const requestModel = attributes?.['gen_ai.request.model'];
  const monitor: MonitorOptions = {
    // Called at the first read, inside the request's async context: the span's parent is there.
    onStart: (): StreamObserver => {
      const span = tracer.startSpan(
        typeof requestModel === 'string' ? `chat ${requestModel}` : 'chat',
        { kind: SpanKind.CLIENT, attributes: { 'gen_ai.operation.name': 'chat', ...attributes } },
        context.active(),
      );
      return {
        onFirstToken: (event: FirstTokenEvent) => {
          span.addEvent('tokenrelay.first_token', { 'tokenrelay.time_to_first_token_ms': event.ttftMs });
        },
        onFinish: (metrics: StreamMetrics) => endSpan(span, metrics, requestModel === undefined, recordContent),
      };
    },
  };
  if (recordContent) monitor.keepText = true;
  if (pricing !== undefined) monitor.price = pricing;
  return monitor;
}

function endSpan(span: Span, metrics: StreamMetrics, nameFromResponse: boolean, recordContent: boolean): void {
  const { provider, model, usage, finishReason, outcome } = metrics;
  if (provider !== undefined) span.setAttributes({ 'gen_ai.provider.name': provider, 'gen_ai.system': provider });
  if (model !== undefined) {
    span.setAttribute('gen_ai.response.model', model);
    if (nameFromResponse) {
      span.setAttribute('gen_ai.request.model', model);
      span.updateName(`chat ${model}`);
    }
  }
  if (usage !== undefined) span.setAttribute('gen_ai.usage.input_tokens', usage.inputTokens);
  span.setAttribute('gen_ai.usage.output_tokens', metrics.outputTokens);
  const reason = finishReason === undefined ? undefined : (FINISH_REASONS[finishReason] ?? finishReason);
  if (reason !== undefined) span.setAttribute('gen_ai.response.finish_reasons', [reason]);
  span.setAttribute('tokenrelay.outcome', outcome);
  if (metrics.estimated === true) span.setAttribute('tokenrelay.usage.estimated', true);
  if (metrics.cost !== undefined) span.setAttribute('tokenrelay.cost.usd', metrics.cost.total);
  if (recordContent && metrics.text !== undefined) {
    const message = { role: 'assistant', parts: [{ type: 'text', content: metrics.text }], finish_reason: reason ?? outcome };
    span.setAttribute('gen_ai.output.messages', JSON.stringify([message]));
  }
  if (outcome === 'error' || outcome === 'timeout') {
    span.setAttribute('error.type', errorType(metrics.error, outcome));
    span.recordException(toException(metrics.error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(metrics.error) });
  }
  span.end();
}

function errorType(error: unknown, outcome: 'error' | 'timeout'): string {
  if (outcome === 'timeout') return 'timeout';
  const { code, name } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; name?: unknown };
  if (typeof name === 'string' && name !== 'Error') return name;
  return typeof code === 'string' ? code : '_OTHER';
}

function toException(error: unknown): Exception {
  return error instanceof Error || typeof error === 'string' ? error : String(error);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
