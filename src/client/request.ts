import { describeValue } from '../core/validate.js';

/** The first request, normalized once so it can be sent again on reconnect. */
export interface RequestPlan {
  url: string | URL;
  method: string;
  headers: Headers;
  body: BodyInit | null;
}

/** Builds the first request from the options; a body that cannot be sent twice is refused. */
export function planRequest(
  url: string | URL,
  method: string | undefined,
  headersInit: HeadersInit | undefined,
  body: unknown,
): RequestPlan {
  let headers: Headers;
  try {
    headers = new Headers(headersInit);
  } catch (error) {
    throw new TypeError(`Expected \`headers\` to be a Headers, a record or a list of pairs, got ${describeValue(headersInit)}`, {
      cause: error,
    });
  }
  if (!headers.has('accept')) headers.set('accept', 'text/event-stream');
  let payload: BodyInit | null = null;
  if (body !== undefined && body !== null) {
    if (isPlainData(body)) {
      payload = JSON.stringify(body);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    } else if (isResendable(body)) {
      payload = body;
    } else {
      throw new TypeError(
        `Expected \`body\` to be a string, Blob, ArrayBuffer, typed array, FormData, URLSearchParams or a plain object, got ${describeValue(body)}`,
      );
    }
  }
  return { url, method: method ?? (payload === null ? 'GET' : 'POST'), headers, body: payload };
}

/** The URL of a resume request, from the `resume` option and the server's stream id. */
export function resumeURL(resume: string | ((streamId: string) => string | URL), streamId: string): string | URL {
  if (typeof resume === 'string') return resume.replaceAll('{id}', encodeURIComponent(streamId));
  const url = resume(streamId);
  if (typeof url !== 'string' && !(url instanceof URL)) {
    throw new TypeError(`Expected \`resume\` to return a string or a URL, got ${describeValue(url)}`);
  }
  return url;
}

/**
 * Checks that a URL can be fetched from here: absolute, or relative to the page (`location`) in
 * a browser or worker. Returns it unchanged. Catching this early keeps a typo from being retried
 * as a network error.
 */
export function checkURL(name: string, url: string | URL): string | URL {
  if (url instanceof URL) return url;
  try {
    new URL(url, baseURL());
  } catch {
    throw new TypeError(`Expected ${name} to be an absolute URL (or one relative to the page), got ${describeValue(url)}`);
  }
  return url;
}

function baseURL(): string | undefined {
  try {
    return (globalThis as { location?: { href?: string } }).location?.href;
  } catch {
    // Deno without --location throws on access.
    return undefined;
  }
}

/**
 * A header value carrying the id the way `EventSource` sends it: UTF-8 bytes. `Headers` only
 * takes byte strings, so each byte becomes the code point of the same value.
 */
export function lastEventIdHeader(id: string): string {
  if (/^[\x00-\x7f]*$/.test(id)) return id;
  let header = '';
  for (const byte of new TextEncoder().encode(id)) header += String.fromCharCode(byte);
  return header;
}

/** True when the response's MIME type essence is `text/event-stream` (parameters ignored). */
export function isEventStream(response: Response): boolean {
  const type = response.headers.get('content-type') ?? '';
  return type.split(';', 1)[0]?.trim().toLowerCase() === 'text/event-stream';
}

/** `Retry-After` (delta-seconds or an HTTP date) in ms, if present and valid. */
export function retryAfterMs(response: Response, now = Date.now()): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function isPlainData(value: unknown): value is object {
  if (Array.isArray(value)) return true;
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isResendable(value: unknown): value is BodyInit {
  return (
    typeof value === 'string' ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    (typeof Blob !== 'undefined' && value instanceof Blob) ||
    (typeof FormData !== 'undefined' && value instanceof FormData) ||
    (typeof URLSearchParams !== 'undefined' && value instanceof URLSearchParams)
  );
}
