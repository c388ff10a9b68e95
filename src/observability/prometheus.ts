import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';
import type { Price } from '../cost.js';
import type { MonitorOptions, StreamMetrics } from '../operators/monitored.js';
import { assertFunction, describeValue } from '../core/validate.js';
import { Labeler, normalizeModelName, normalizeProviderName, type LabelOption } from './labels.js';

export { normalizeModelName, normalizeProviderName } from './labels.js';
export type { LabelOption, LabelOptions } from './labels.js';

/** Options of {@link prometheusMonitor}. */
export interface PrometheusMonitorOptions {
  /**
   * Where the metrics are registered. Calling `prometheusMonitor` again with the same registry
   * (and prefix) reuses the metrics already there.
   * @defaultValue prom-client's global `register`
   */
  registry?: Registry | undefined;
  /**
   * Put before every metric name.
   * @defaultValue `'tokenrelay_'`
   */
  prefix?: string | undefined;
  /**
   * How the `model` and `provider` label values are made, so the series stay few whatever names
   * a source reports: a function of the raw name, or `{ normalize, allow, maxValues }`.
   * @defaultValue `{ model: normalizeModelName, provider: normalizeProviderName }`, at most 20 values each
   * @example
   * ```ts
   * labels: { model: { allow: ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5'] } }
   * ```
   */
  labels?:
    | {
        /** The `model` label. @defaultValue `normalizeModelName`, at most 20 values */
        model?: LabelOption | undefined;
        /** The `provider` label. @defaultValue `normalizeProviderName`, at most 20 values */
        provider?: LabelOption | undefined;
      }
    | undefined;
  /**
   * Prices by model, for the cost counter; `undefined` for a model you have no price for.
   * tokenrelay ships no price list.
   * @defaultValue no cost
   * @example
   * ```ts
   * pricing: (model) => prices[model ?? '']
   * ```
   */
  pricing?: ((model: string | undefined) => Price | undefined) | undefined;
  /**
   * Histogram buckets: time to first token and duration in seconds, throughput in tokens/s.
   * @defaultValue 50 ms to 30 s for `timeToFirstToken`, 0.25 s to 10 min for `duration`, 1 to 1000 tokens/s
   */
  buckets?:
    | {
        /** Time to first token, in seconds. @defaultValue 50 ms to 30 s */
        timeToFirstToken?: number[] | undefined;
        /** Stream duration, in seconds. @defaultValue 0.25 s to 10 min */
        duration?: number[] | undefined;
        /** Output tokens per second. @defaultValue 1 to 1000 */
        tokensPerSecond?: number[] | undefined;
      }
    | undefined;
}

const TTFT_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30];
const DURATION_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600];
const TPS_BUCKETS = [1, 2.5, 5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000];
const LABELS = ['provider', 'model', 'outcome'] as const;
const PRICED_LABELS = ['provider', 'model', 'outcome', 'estimated'] as const;
const PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/**
 * Records every stream in Prometheus metrics, labelled by provider, model and outcome: time to
 * first token, throughput and duration histograms, streams and token counters, the estimated
 * cost, and the streams in flight. Pass the result as a server adapter's `monitor` option (or to
 * `monitored`), alone or through `composeMonitors`.
 *
 * @example
 * ```ts
 * app.post('/chat', sse(factory, { monitor: prometheusMonitor({ pricing: (model) => prices[model ?? ''] }) }));
 * app.get('/metrics', async (_req, res) => res.type(register.contentType).send(await register.metrics()));
 * ```
 */
export function prometheusMonitor(options: PrometheusMonitorOptions = {}): MonitorOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const { registry = register, prefix = 'tokenrelay_', labels = {}, pricing } = options;
  if (registry === null || typeof registry !== 'object' || typeof registry.getSingleMetric !== 'function') {
    throw new TypeError(`Expected \`registry\` to be a prom-client Registry, got ${describeValue(registry)}`);
  }
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(`Expected \`prefix\` to be a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${describeValue(prefix)}`);
  }
  if (pricing !== undefined) assertFunction('pricing', pricing);
  if (labels === null || typeof labels !== 'object') {
    throw new TypeError(`Expected \`labels\` to be an object, got ${describeValue(labels)}`);
  }
  const metrics = metricsOf(registry, prefix, options.buckets ?? {});
  const model = new Labeler('model', labels.model, normalizeModelName, metrics.models);
  const provider = new Labeler('provider', labels.provider, normalizeProviderName, metrics.providers);

  const monitor: MonitorOptions = {
    onStart: () => void metrics.inFlight.inc(),
    onFinish: (report: StreamMetrics) => {
      metrics.inFlight.dec();
      const base = { provider: provider.value(report.provider), model: model.value(report.model), outcome: report.outcome };
      const priced = { ...base, estimated: report.estimated === true ? 'true' : 'false' };
      const usage = report.usage;
      metrics.streams.inc(base);
      metrics.duration.observe(base, report.durationMs / 1000);
      if (report.ttftMs !== undefined) metrics.ttft.observe(base, report.ttftMs / 1000);
      if (report.tokensPerSecond !== undefined) metrics.tokensPerSecond.observe(base, report.tokensPerSecond);
      metrics.inputTokens.inc(base, usage?.inputTokens ?? 0);
      metrics.cachedInputTokens.inc(base, usage?.cachedInputTokens ?? 0);
      metrics.reasoningTokens.inc(base, usage?.reasoningTokens ?? 0);
      metrics.outputTokens.inc(priced, report.outputTokens);
      if (report.cost !== undefined) metrics.cost.inc(priced, report.cost.total);
    },
  };
  if (pricing !== undefined) monitor.price = pricing;
  return monitor;
}

interface Metrics {
  ttft: Histogram<string>;
  duration: Histogram<string>;
  tokensPerSecond: Histogram<string>;
  streams: Counter<string>;
  inputTokens: Counter<string>;
  cachedInputTokens: Counter<string>;
  reasoningTokens: Counter<string>;
  outputTokens: Counter<string>;
  cost: Counter<string>;
  inFlight: Gauge<string>;
  /** The label values in use, shared so the cap holds across every monitor of these metrics. */
  models: Set<string>;
  providers: Set<string>;
}

const registered = new WeakMap<Registry, Map<string, Metrics>>();

/** The metrics of `prefix` in `registry`: created once, then reused (also after `registry.clear()`). */
function metricsOf(registry: Registry, prefix: string, buckets: NonNullable<PrometheusMonitorOptions['buckets']>): Metrics {
  let byPrefix = registered.get(registry);
  if (byPrefix === undefined) registered.set(registry, (byPrefix = new Map()));
  const known = byPrefix.get(prefix);
  if (known !== undefined && registry.getSingleMetric(`${prefix}streams_total`) === known.streams) return known;
  const make = new MetricMaker(registry, prefix);
  const metrics: Metrics = {
    ttft: make.histogram('time_to_first_token_seconds', 'Time from the first read of a stream to its first token, in seconds.', checkBuckets('timeToFirstToken', buckets.timeToFirstToken, TTFT_BUCKETS)),
    duration: make.histogram('stream_duration_seconds', 'Time from the first read of a stream to its end, in seconds.', checkBuckets('duration', buckets.duration, DURATION_BUCKETS)),
    tokensPerSecond: make.histogram('output_tokens_per_second', 'Output tokens per second, from the first token to the end of a stream.', checkBuckets('tokensPerSecond', buckets.tokensPerSecond, TPS_BUCKETS)),
    streams: make.counter('streams_total', 'Streams that ended, by outcome.', LABELS),
    inputTokens: make.counter('input_tokens_total', 'Input (prompt) tokens the provider reported, cached ones included.', LABELS),
    cachedInputTokens: make.counter('cached_input_tokens_total', 'Input tokens served from the provider\'s prompt cache.', LABELS),
    reasoningTokens: make.counter('reasoning_tokens_total', 'Output tokens spent on reasoning, as the provider reported them.', LABELS),
    outputTokens: make.counter('output_tokens_total', 'Output tokens: reported by the provider, or estimated="true" from the text of a stream cut short.', PRICED_LABELS),
    cost: make.counter('cost_usd_total', 'Estimated cost in USD, from the prices given to the monitor.', PRICED_LABELS),
    inFlight: make.gauge('streams_in_flight', 'Streams started and not ended yet.'),
    models: new Set(),
    providers: new Set(),
  };
  byPrefix.set(prefix, metrics);
  return metrics;
}

/** Creates each metric, or takes the one of the same name and labels already in the registry. */
class MetricMaker {
  readonly #registry: Registry;
  readonly #prefix: string;

  constructor(registry: Registry, prefix: string) {
    this.#registry = registry;
    this.#prefix = prefix;
  }

  histogram(name: string, help: string, buckets: number[]): Histogram<string> {
    return this.#reuse(name, 'observe', LABELS) ?? new Histogram({ name: this.#prefix + name, help, labelNames: LABELS, buckets, registers: [this.#registry] });
  }

  counter(name: string, help: string, labelNames: readonly string[]): Counter<string> {
    return this.#reuse(name, 'inc', labelNames) ?? new Counter({ name: this.#prefix + name, help, labelNames, registers: [this.#registry] });
  }

  gauge(name: string, help: string): Gauge<string> {
    return this.#reuse(name, 'dec', []) ?? new Gauge({ name: this.#prefix + name, help, registers: [this.#registry] });
  }

  #reuse<M>(name: string, method: string, labelNames: readonly string[]): M | undefined {
    const existing = this.#registry.getSingleMetric(this.#prefix + name) as unknown as Record<string, unknown> | undefined;
    if (existing === undefined) return undefined;
    const names = existing['labelNames'];
    const same = Array.isArray(names) && names.length === labelNames.length && labelNames.every((label) => names.includes(label));
    if (typeof existing[method] !== 'function' || !same) {
      throw new TypeError(
        `Expected metric \`${this.#prefix + name}\` to be free or registered by tokenrelay, got another metric of that name (choose another \`prefix\`)`,
      );
    }
    return existing as M;
  }
}

function checkBuckets(name: string, buckets: unknown, fallback: number[]): number[] {
  if (buckets === undefined) return fallback;
  const ok =
    Array.isArray(buckets) &&
    buckets.length > 0 &&
    buckets.every((bound, i) => typeof bound === 'number' && Number.isFinite(bound) && bound > 0 && (i === 0 || bound > (buckets[i - 1] as number)));
  if (!ok) {
    throw new TypeError(`Expected \`buckets.${name}\` to be increasing finite numbers > 0, got ${describeValue(buckets)}`);
  }
  return buckets as number[];
}
