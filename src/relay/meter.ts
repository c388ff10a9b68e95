import { estimateCost, estimateOutputTokens, type Price } from '../cost.js';
import { BudgetExceededError } from '../core/errors.js';
import type { TokenChunk, Usage } from '../core/types.js';
import type { RateStore, RateUsage, RateWindow } from './store.js';

/** @internal */
export interface MeterConfig {
  store: Required<RateStore>;
  key: string;
  tokens: RateWindow | undefined;
  cost: RateWindow | undefined;
  price: Price | ((model: string | undefined) => Price | undefined) | undefined;
  /** The windows' usage when the request was checked. */
  used: RateUsage;
}

// While a stream is under budget its charges go out at most this often; once the budget looks
// used up, before every chunk that carries text.
const SYNC_MS = 200;

/**
 * Charges one stream's tokens and cost to its key's windows as they arrive, and stops the stream
 * before a chunk once the windows (every stream of the key, as of the last charge) are used up.
 * The charge is the running estimate (text seen, and any usage reported so far) until the
 * provider's final usage replaces it.
 * @internal
 */
export class Meter {
  readonly #config: MeterConfig;
  #characters = 0;
  #chunks = 0;
  #usage: Usage | undefined;
  #finishReason = false;
  #model: string | undefined;
  #charged: RateUsage = { tokens: 0, cost: 0 };
  #used: RateUsage;
  #syncing: Promise<void> = Promise.resolve();
  #lastSync = performance.now();
  #finished = false;

  constructor(config: MeterConfig) {
    this.#config = config;
    this.#used = { ...config.used };
  }

  async *run(source: AsyncIterable<TokenChunk>, controller: AbortController): AsyncGenerator<TokenChunk, void, undefined> {
    for await (const chunk of source) {
      if (this.#finished) return;
      if (chunk.token !== '' && this.#usedUp() !== undefined) {
        await this.#sync();
        const limit = this.#usedUp();
        if (limit !== undefined) {
          const error = new BudgetExceededError(
            limit === 'tokens' ? 'The token budget of the window is used up' : 'The cost budget of the window is used up',
            { limit },
          );
          controller.abort(error);
          throw error;
        }
      }
      this.#observe(chunk);
      if (performance.now() - this.#lastSync >= SYNC_MS) void this.#sync();
      yield chunk;
    }
  }

  /** The stream ended, any way: charge what it produced (the real usage when it came). Once. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    void this.#sync();
  }

  #observe(chunk: TokenChunk): void {
    if (chunk.token !== '') {
      this.#characters += chunk.token.length;
      this.#chunks++;
    }
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.finishReason !== undefined) this.#finishReason = true;
    if (chunk.model !== undefined) this.#model = chunk.model;
  }

  /** Which budget is used up by what is known now, if any. */
  #usedUp(): 'tokens' | 'cost' | undefined {
    const { tokens, cost } = this.#config;
    const running = this.#running();
    if (tokens !== undefined && this.#used.tokens + running.tokens - this.#charged.tokens >= tokens.max) return 'tokens';
    if (cost !== undefined && this.#used.cost + running.cost - this.#charged.cost >= cost.max) return 'cost';
    return undefined;
  }

  /** This stream's usage: the provider's final count once it came, else the estimate from the text seen. */
  #running(): RateUsage {
    const usage = this.#usage;
    const estimated = estimateOutputTokens(this.#characters, this.#chunks);
    const final = usage !== undefined && this.#finishReason;
    const outputTokens = final ? usage.outputTokens : Math.max(usage?.outputTokens ?? 0, estimated);
    const inputTokens = usage?.inputTokens ?? 0;
    let cost = 0;
    const { price } = this.#config;
    const priced = typeof price === 'function' ? price(this.#model) : price;
    if (this.#config.cost !== undefined && priced !== undefined) {
      const counted: Usage = { inputTokens, outputTokens };
      if (usage?.cachedInputTokens !== undefined) counted.cachedInputTokens = usage.cachedInputTokens;
      if (final && usage.reasoningTokens !== undefined) counted.reasoningTokens = usage.reasoningTokens;
      cost = estimateCost(counted, priced).total;
    }
    return { tokens: inputTokens + outputTokens, cost };
  }

  /** Sends the charge not sent yet, after the one in flight; learns the windows' usage. Never rejects. */
  #sync(): Promise<void> {
    this.#syncing = this.#syncing.then(() => this.#charge());
    return this.#syncing;
  }

  async #charge(): Promise<void> {
    const { store, key, tokens, cost } = this.#config;
    const running = this.#running();
    this.#lastSync = performance.now();
    try {
      const usage = await store.chargeRate(key, {
        tokens: tokens === undefined ? undefined : { amount: running.tokens - this.#charged.tokens, windowMs: tokens.windowMs },
        cost: cost === undefined ? undefined : { amount: running.cost - this.#charged.cost, windowMs: cost.windowMs },
      });
      this.#charged = running;
      this.#used = usage;
    } catch {
      // The store is out: keep counting here; the next charge sends what this one did not.
    }
  }
}
