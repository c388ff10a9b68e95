// Response headers, the same way for every adapter: checked once in the plan, merged per response.
import { describeValue } from '../../core/validate.js';

// A stream has no length.
const DROPPED = new Set(['content-length']);
// Connection-specific headers: forbidden on HTTP/2, and the runtime's own business in fetch runtimes.
const DROPPED_MANAGED = new Set([...DROPPED, 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

// RFC 9110 `token` and `field-value` (what node:http and the fetch `Headers` accept).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Whether a user header with this name is dropped: a stream has no `Content-Length`, and where
 * the connection is managed for us (HTTP/2, fetch runtimes) no connection-specific header either.
 */
export function isDroppedHeader(name: string, connectionManaged: boolean): boolean {
  return (connectionManaged ? DROPPED_MANAGED : DROPPED).has(name.toLowerCase());
}

/**
 * The response headers: the user's first, then the stream's own (`own`), which win over a user
 * header of the same name in any case and so cannot be overridden. User headers a stream cannot
 * carry are dropped ({@link isDroppedHeader}). Returns `own` itself when there are no user headers.
 */
export function mergeHeaders(
  user: Readonly<Record<string, string>> | undefined,
  own: Record<string, string>,
  connectionManaged: boolean,
): Record<string, string> {
  if (user === undefined) return own;
  const taken = new Set<string>();
  for (const name in own) taken.add(name.toLowerCase());
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(user)) {
    const lower = name.toLowerCase();
    if (!taken.has(lower) && !isDroppedHeader(lower, connectionManaged)) headers[name] = value;
  }
  return Object.assign(headers, own);
}

/**
 * Checks the `headers` option: an object of valid header names and string values. Throws a
 * `TypeError` that names the bad header.
 */
export function checkHeaders(headers: unknown): Readonly<Record<string, string>> | undefined {
  if (headers === undefined) return undefined;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new TypeError(`Expected \`headers\` to be an object of header names and string values, got ${describeValue(headers)}`);
  }
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') {
      throw new TypeError(`Expected header \`${name}\` to be a string, got ${describeValue(value)}`);
    }
    if (!TOKEN.test(name)) {
      throw new TypeError(`Expected header name \`${name}\` to be a valid HTTP token, got one with other characters`);
    }
    if (INVALID_VALUE.test(value)) {
      throw new TypeError(`Expected header \`${name}\` to have no control characters (CR, LF, NUL, …), got ${describeValue(value)}`);
    }
    checked[name] = value;
  }
  return Object.freeze(checked);
}
