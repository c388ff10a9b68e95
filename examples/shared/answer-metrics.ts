// What the demo's server measured of one answer (its producer, through `monitored`), as the two
// chat pages read it from GET /chat/:id/metrics and GET /api/chat/:chatId/metrics.
import type { StreamMetrics } from 'tokenrelay';

export interface AnswerMetrics {
  outcome: StreamMetrics['outcome'];
  model: string | null;
  provider: string | null;
  ttftMs: number | null;
  tokensPerSecond: number | null;
  inputTokens: number | null;
  outputTokens: number;
  /** USD, from the demo's example prices; `null` for a model it has no price for. */
  costUsd: number | null;
  /** The output (and so the cost) is estimated from the text: the answer was cut short before the provider's usage came. */
  estimated: boolean;
}

export function answerMetrics(metrics: StreamMetrics): AnswerMetrics {
  return {
    outcome: metrics.outcome,
    model: metrics.model ?? null,
    provider: metrics.provider ?? null,
    ttftMs: metrics.ttftMs ?? null,
    tokensPerSecond: metrics.tokensPerSecond ?? null,
    inputTokens: metrics.usage?.inputTokens ?? null,
    outputTokens: metrics.outputTokens,
    costUsd: metrics.cost?.total ?? null,
    estimated: metrics.estimated === true,
  };
}

/** `$0.000123`, `≈ $0.000050` when estimated, `–` without a price. */
export function formatCost(metrics: Pick<AnswerMetrics, 'costUsd' | 'estimated'>): string {
  if (metrics.costUsd === null) return '–';
  const usd = metrics.costUsd >= 0.01 ? metrics.costUsd.toFixed(4) : metrics.costUsd.toPrecision(2);
  return `${metrics.estimated ? '≈ ' : ''}$${usd}`;
}

/** One line under an answer: model, time to first token, tokens/s, tokens, cost, as the server measured them. */
export function describeMetrics(metrics: AnswerMetrics): string {
  const parts = [metrics.model ?? metrics.provider ?? 'unknown model'];
  if (metrics.ttftMs !== null) parts.push(`first token ${Math.round(metrics.ttftMs)} ms`);
  if (metrics.tokensPerSecond !== null) parts.push(`${metrics.tokensPerSecond.toFixed(1)} tokens/s`);
  parts.push(`${metrics.outputTokens} tokens${metrics.estimated ? ' (estimated)' : ''}`);
  parts.push(formatCost(metrics));
  if (metrics.outcome !== 'completed') parts.push(metrics.outcome);
  return parts.join(' · ');
}
