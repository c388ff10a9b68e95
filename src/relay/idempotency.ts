import { InvalidRequestError } from '../core/errors.js';

/**
 * A request as {@link idempotencyKey} reads it: a fetch `Request` (or anything with `Headers`),
 * or anything shaped like Node's `IncomingMessage` (Express, Fastify's `request.raw`, Koa's `ctx.req`).
 */
export type IdempotencyKeyRequest =
  | {
      /** The request's `Headers`: the key is read with `get('idempotency-key')`. */
      headers: {
        /** The header's value (case-insensitive name), `null` when absent; a repeated header comes joined with `", "`, and is refused. */
        get(name: string): string | null;
      };
    }
  | {
      /** Node's header object, lower-case names: the key is `headers['idempotency-key']`; an array of more than one value is refused. */
      headers: Record<string, string | string[] | undefined>;
    };

/** The longest key accepted, in characters (after unquoting). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

// An sf-string (RFC 8941 §3.3.3): DQUOTE, printable ASCII with \" and \\ escaped, DQUOTE.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;
// A bare key, as Stripe-style clients send it: visible ASCII without quotes, commas, semicolons
// or backslashes (so it cannot be confused with a list, parameters or a broken string).
const BARE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/;

/**
 * The `Idempotency-Key` header of a request (IETF draft-ietf-httpapi-idempotency-key-header), for
 * `relay.start(…, { idempotencyKey })`; `undefined` when the request has none.
 *
 * The draft makes the value a Structured Field string: `Idempotency-Key: "8e03978e-40d5-43e8"`.
 * A bare value (`Idempotency-Key: 8e03978e-40d5-43e8`) is accepted too, because that is what
 * Stripe's API and the clients written for it send; it may not contain `"`, `,`, `;`, `\` or
 * whitespace. Anything else (empty, longer than 255 characters, a list, parameters, the header
 * given twice, control or non-ASCII characters) throws an `InvalidRequestError`: a 400 from every
 * server adapter, whose message never repeats the value.
 *
 * @example
 * ```ts
 * const { id, created } = await relay.start(factory, { idempotencyKey: idempotencyKey(request) });
 * ```
 */
export function idempotencyKey(request: IdempotencyKeyRequest): string | undefined {
  const raw = headerOf(request);
  if (raw === undefined) return undefined;
  const value = raw.trim();
  const quoted = SF_STRING.exec(value);
  const key = quoted === null ? (BARE.test(value) ? value : undefined) : quoted[1]!.replace(/\\(["\\])/g, '$1');
  if (key === undefined || key === '' || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new InvalidRequestError(
      `Expected the Idempotency-Key header to be a quoted string (or a bare token) of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`,
    );
  }
  return key;
}

function headerOf(request: IdempotencyKeyRequest): string | undefined {
  const headers = (request as { headers?: unknown } | null | undefined)?.headers;
  if (headers === null || typeof headers !== 'object') {
    throw new TypeError('Expected `request` to have `headers` (a fetch Request or a Node IncomingMessage)');
  }
  if (typeof (headers as { get?: unknown }).get === 'function') {
    // Headers joins a repeated header with ", ", which is no valid key: refused below.
    const value = (headers as { get(name: string): string | null }).get('idempotency-key');
    return value === null ? undefined : value;
  }
  const value = (headers as Record<string, unknown>)['idempotency-key'];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 1 ? String(value[0]) : ',';
  return String(value);
}

/**
 * The store key of an idempotency key: a SHA-256 of the key with the stream's metadata (where
 * `authorize` finds its owner), so one user's key never names another user's stream, and any key
 * is safe in a store key. @internal
 */
export async function scopedIdempotencyKey(key: string, metadata: Readonly<Record<string, string>>): Promise<string> {
  const scope = JSON.stringify(Object.keys(metadata).sort().map((name) => [name, metadata[name]]));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${scope}\n${key}`));
  let binary = '';
  for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}
