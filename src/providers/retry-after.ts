/** Response headers as SDKs expose them: a fetch `Headers` object or a plain record. */
export type HeadersLike =
  | { get(name: string): string | null | undefined }
  | Record<string, string | string[] | null | undefined>;

/**
 * How long a provider asked the client to wait before retrying, in ms: `retry-after-ms`
 * (milliseconds, sent by OpenAI) wins over `retry-after` (seconds, or an HTTP date).
 * Returns `undefined` when neither header is present or readable.
 *
 * @example
 * ```ts
 * parseRetryAfter(new Headers({ 'retry-after': '2' })); // 2000
 * ```
 */
export function parseRetryAfter(headers: HeadersLike | null | undefined, now: number = Date.now()): number | undefined {
  if (headers === null || headers === undefined || typeof headers !== 'object') return undefined;
  const milliseconds = parseDelay(readHeader(headers, 'retry-after-ms'));
  if (milliseconds !== undefined) return milliseconds;
  const value = readHeader(headers, 'retry-after');
  const seconds = parseDelay(value);
  if (seconds !== undefined) return seconds * 1000;
  return parseDate(value, now);
}

/** Reads one header case-insensitively from either shape. */
export function readHeader(headers: HeadersLike, name: string): string | undefined {
  if (typeof headers.get === 'function') {
    return (headers as { get(name: string): string | null | undefined }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | null | undefined>;
  const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : (value ?? undefined);
}

function parseDelay(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value);
}

function parseDate(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
