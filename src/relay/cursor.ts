import { InvalidCursorError } from '../core/errors.js';
import { describeValue } from '../core/validate.js';

/**
 * A request as `resumeCursor` reads it: a fetch `Request`, or anything shaped like Node's
 * `IncomingMessage` (Express and Hono's Node requests included).
 */
export type ResumeRequest =
  | {
      /** The request's `Headers`: the cursor is read with `get('last-event-id')`. */
      headers: {
        /** The header's value (case-insensitive name), `null` when absent. */
        get(name: string): string | null;
      };
      /** The request's URL, absolute: its `lastEventId` query parameter is the cursor when the header is absent or empty. */
      url: string;
    }
  | {
      /** Node's header object, lower-case names: the cursor is `headers['last-event-id']`; an array (the header given twice) is rejected. */
      headers: Record<string, string | string[] | undefined>;
      /** The request's path and query (Node's `req.url`): its `lastEventId` query parameter is the cursor when the header is absent or empty. */
      url?: string | undefined;
    };

const CANONICAL_INTEGER = /^(?:0|[1-9][0-9]{0,15})$/;

/**
 * Reads an untrusted resume cursor: the index of the last chunk a client received. Empty or
 * missing means "from the start" (`undefined`). Anything but a non-negative safe integer written
 * the canonical way (no sign, no leading zero, no spaces, no exponent) throws an
 * `InvalidCursorError`, whose message never repeats the value.
 *
 * @example
 * ```ts
 * parseCursor('41'); // 41
 * parseCursor(null); // undefined
 * parseCursor('041'); // throws InvalidCursorError
 * ```
 */
export function parseCursor(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !CANONICAL_INTEGER.test(value)) throw new InvalidCursorError();
  const cursor = Number(value);
  if (!Number.isSafeInteger(cursor)) throw new InvalidCursorError();
  return cursor;
}

/**
 * The resume cursor of a request: its `Last-Event-ID` header (what `EventSource` sends when it
 * reconnects), else its `lastEventId` query parameter (for clients that cannot set headers).
 * Validated by {@link parseCursor}; a header or parameter given twice is rejected too.
 *
 * @example
 * ```ts
 * app.get('/chat/:id/stream', (req, res) => {
 *   const after = resumeCursor(req); // throws InvalidCursorError → 400
 *   return toResponse((signal) => relay.subscribe(req.params.id, { after, signal }));
 * });
 * ```
 */
export function resumeCursor(request: ResumeRequest): number | undefined {
  if (request === null || typeof request !== 'object' || request.headers === null || typeof request.headers !== 'object') {
    throw new TypeError(`Expected \`request\` to be a fetch Request or a Node IncomingMessage, got ${describeValue(request)}`);
  }
  const header = headerOf(request);
  if (header !== undefined && header !== null && header !== '') return parseCursor(header);
  const query = queryOf(request.url);
  if (query === undefined) return undefined;
  const values = new URLSearchParams(query).getAll('lastEventId');
  if (values.length > 1) throw new InvalidCursorError();
  return parseCursor(values[0]);
}

function headerOf(request: ResumeRequest): string | null | undefined {
  const { headers } = request;
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get('last-event-id');
  const value = (headers as Record<string, string | string[] | undefined>)['last-event-id'];
  if (Array.isArray(value)) throw new InvalidCursorError();
  return value;
}

function queryOf(url: string | undefined): string | undefined {
  if (typeof url !== 'string') return undefined;
  const start = url.indexOf('?');
  if (start === -1) return undefined;
  const end = url.indexOf('#', start);
  return url.slice(start + 1, end === -1 ? undefined : end);
}
