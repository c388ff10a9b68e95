import { assertFunction, assertNumber, describeValue } from '../core/validate.js';

/** What every label value outside the allowed set becomes. */
export const OTHER = 'other';
/** The label value when the stream did not say (no `model` or `provider` on its chunks). */
export const UNKNOWN = 'unknown';

const MAX_LENGTH = 64;
const SAFE = /^[a-z0-9][a-z0-9._:/@-]*$/;
// `-2024-08-06`, `-20241022`, `@20240620` (Vertex), optionally before a `-v2:0` (Bedrock) suffix.
const DATE_SUFFIX = /[-@](?:\d{4}-\d{2}-\d{2}|20\d{6})(?=$|-v\d+(?::\d+)?$)/;
// `-0613`, `-0125`: OpenAI's month-day snapshots.
const MONTH_DAY_SUFFIX = /-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$/;

/**
 * The default model label: lower-cased, with a snapshot date suffix removed
 * (`gpt-4o-2024-08-06` → `gpt-4o`, `claude-3-5-sonnet-20241022` → `claude-3-5-sonnet`,
 * `gpt-4-0613` → `gpt-4`), `'unknown'` when there is none, and `'other'` for anything longer
 * than 64 characters or with characters outside `a-z 0-9 . _ : / @ -`.
 *
 * @example
 * ```ts
 * normalizeModelName('GPT-4o-mini-2024-07-18'); // → 'gpt-4o-mini'
 * normalizeModelName('<script>');               // → 'other'
 * ```
 */
export function normalizeModelName(model: string | undefined): string {
  if (typeof model !== 'string' || model === '') return UNKNOWN;
  const name = model.trim().toLowerCase().replace(DATE_SUFFIX, '').replace(MONTH_DAY_SUFFIX, '');
  return safeLabel(name);
}

/**
 * The default provider label: lower-cased, `'unknown'` when there is none, `'other'` when it is
 * longer than 64 characters or has characters outside `a-z 0-9 . _ : / @ -`.
 *
 * @example
 * ```ts
 * normalizeProviderName('OpenAI'); // → 'openai'
 * ```
 */
export function normalizeProviderName(provider: string | undefined): string {
  return typeof provider !== 'string' || provider === '' ? UNKNOWN : safeLabel(provider.trim().toLowerCase());
}

/** `value` when it is a short, plain label value, else `'other'`. */
export function safeLabel(value: unknown): string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_LENGTH && SAFE.test(value) ? value : OTHER;
}

/**
 * Keeps the values of one label few: how names are mapped, which are allowed, and a hard cap on
 * how many distinct values may ever appear.
 */
export interface LabelOptions {
  /**
   * Maps the raw value (`undefined` when the stream did not say) to the label value. The result
   * is still checked like any value (safe characters, ≤ 64 characters, else `'other'`).
   * @defaultValue {@link normalizeModelName} for models; the value as is for providers
   */
  normalize?: ((value: string | undefined) => string) | undefined;
  /**
   * The only values allowed after normalization; every other value becomes `'other'`.
   * @defaultValue any value, up to `maxValues`
   * @example
   * ```ts
   * { allow: ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5'] }
   * ```
   */
  allow?: readonly string[] | undefined;
  /**
   * How many distinct values may appear; later new values become `'other'`, so a source that
   * reports arbitrary names cannot blow up the number of series.
   * @defaultValue `20`
   */
  maxValues?: number | undefined;
}

/** A label's options, or just its normalizer. */
export type LabelOption = ((value: string | undefined) => string) | LabelOptions;

/** Turns raw values into bounded label values. */
export class Labeler {
  readonly #normalize: (value: string | undefined) => string;
  readonly #allow: ReadonlySet<string> | undefined;
  readonly #maxValues: number;
  readonly #seen: Set<string>;

  /**
   * @param seen - The values already in use, shared by every labeler of the same metrics so the
   *   cap holds however many monitors write to them.
   */
  constructor(name: string, option: LabelOption | undefined, fallback: (value: string | undefined) => string, seen: Set<string>) {
    const options: LabelOptions = typeof option === 'function' ? { normalize: option } : (option ?? {});
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`Expected \`labels.${name}\` to be a function or an object, got ${describeValue(option)}`);
    }
    if (options.normalize !== undefined) assertFunction(`labels.${name}.normalize`, options.normalize);
    if (options.allow !== undefined && !(Array.isArray(options.allow) && options.allow.every((v) => typeof v === 'string'))) {
      throw new TypeError(`Expected \`labels.${name}.allow\` to be an array of strings, got ${describeValue(options.allow)}`);
    }
    const maxValues = options.maxValues ?? 20;
    assertNumber(`labels.${name}.maxValues`, maxValues, { integer: true, min: 1 });
    this.#normalize = options.normalize ?? fallback;
    this.#allow = options.allow === undefined ? undefined : new Set(options.allow);
    this.#maxValues = maxValues;
    this.#seen = seen;
  }

  /** The label value of `raw`: normalized, allowed, and within the cap, else `'other'`. */
  value(raw: string | undefined): string {
    const value = safeLabel(this.#normalize(raw));
    if (value === OTHER || value === UNKNOWN) return value;
    if (this.#allow !== undefined) return this.#allow.has(value) ? value : OTHER;
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.#maxValues) return OTHER;
    this.#seen.add(value);
    return value;
  }
}
