import type { Usage } from './core/types.js';
import { assertNumber, assertOptionalNumber, assertOptions, describeValue } from './core/validate.js';

const MILLION = 1_000_000;

/**
 * What a model costs, in USD per million tokens. Look the numbers up on your provider's
 * pricing page; tokenrelay ships no price list because prices change.
 *
 * @example
 * ```ts
 * const price: Price = { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 };
 * ```
 */
export interface Price {
  /** USD per million input (prompt) tokens. */
  inputPerMTok: number;
  /** USD per million output tokens. */
  outputPerMTok: number;
  /**
   * USD per million input tokens served from the provider's prompt cache; they are billed at
   * this rate instead of `inputPerMTok`.
   * @defaultValue `inputPerMTok`
   */
  cachedInputPerMTok?: number | undefined;
  /**
   * USD per million reasoning tokens (which are part of `outputTokens`); they are billed at
   * this rate instead of `outputPerMTok`.
   * @defaultValue `outputPerMTok`
   */
  reasoningPerMTok?: number | undefined;
}

/** An estimated cost in USD, split by direction. */
export interface Cost {
  /** Input tokens, cached ones at their own rate. */
  input: number;
  /** Output tokens, reasoning ones at their own rate. */
  output: number;
  /** `input + output`, summed before the division into USD so it carries no extra rounding. */
  total: number;
}

/**
 * Estimates what a request cost from the usage the provider reported. An estimate: it knows
 * nothing of batch discounts, prompt-cache write surcharges or long-context tiers.
 *
 * @example
 * ```ts
 * estimateCost({ inputTokens: 1_000, outputTokens: 500 }, { inputPerMTok: 3, outputPerMTok: 15 });
 * // → { input: 0.003, output: 0.0075, total: 0.0105 }
 * ```
 */
export function estimateCost(usage: Usage, price: Price): Cost {
  if (usage === null || typeof usage !== 'object') {
    throw new TypeError(`Expected \`usage\` to be an object, got ${describeValue(usage)}`);
  }
  assertPrice(price);
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  const reasoning = Math.min(usage.reasoningTokens ?? 0, usage.outputTokens);
  // Sums of tokens × USD per million, divided once: 1000 × 3 / 1e6 is exactly 0.003, and the
  // total does not pick up the rounding error of adding two already-divided amounts.
  const input =
    price.cachedInputPerMTok === undefined
      ? usage.inputTokens * price.inputPerMTok
      : (usage.inputTokens - cached) * price.inputPerMTok + cached * price.cachedInputPerMTok;
  const output =
    price.reasoningPerMTok === undefined
      ? usage.outputTokens * price.outputPerMTok
      : (usage.outputTokens - reasoning) * price.outputPerMTok + reasoning * price.reasoningPerMTok;
  return { input: input / MILLION, output: output / MILLION, total: (input + output) / MILLION };
}

/** Fails fast on a price that is not a {@link Price}. */
export function assertPrice(price: unknown): asserts price is Price {
  if (price === null || typeof price !== 'object') {
    throw new TypeError(`Expected \`price\` to be an object, got ${describeValue(price)}`);
  }
  assertOptions('price', price, ['inputPerMTok', 'outputPerMTok', 'cachedInputPerMTok', 'reasoningPerMTok']);
  const { inputPerMTok, outputPerMTok, cachedInputPerMTok, reasoningPerMTok } = price as unknown as Price;
  assertNumber('price.inputPerMTok', inputPerMTok);
  assertNumber('price.outputPerMTok', outputPerMTok);
  assertOptionalNumber('price.cachedInputPerMTok', cachedInputPerMTok);
  assertOptionalNumber('price.reasoningPerMTok', reasoningPerMTok);
}


/**
 * Output tokens estimated from the text a stream delivered, for a stream whose provider count
 * never came: the larger of the non-empty chunks and the characters / 4. OpenAI sends about one
 * token per delta, so chunks count well there and in scripts where a character is about a token
 * (CJK), where characters / 4 counts several times too few; Anthropic's deltas and coalesced
 * chunks carry several tokens each, where characters / 4 (the usual rule for English) counts
 * better. Each one undercounts where the other holds, so the larger is the better estimate.
 */
export function estimateOutputTokens(characters: number, chunks: number): number {
  return Math.max(chunks, Math.ceil(characters / 4));
}
