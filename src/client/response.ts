import { errorFromPayload } from './errors.js';

const MAX_ERROR_BODY = 64 * 1024;
const noop = (): void => {};

/** Releases a response's connection without reading its body. */
export function cancelBody(response: Response): void {
  response.body?.cancel().then(noop, noop);
}

/** The typed error of a tokenrelay JSON error body (`{ error: { code, message } }`), if it is one. */
export async function errorOfBody(response: Response, signal: AbortSignal): Promise<Error | undefined> {
  const type = response.headers.get('content-type') ?? '';
  const length = Number(response.headers.get('content-length') ?? 0);
  if (!/\bjson\b/i.test(type) || length > MAX_ERROR_BODY) {
    cancelBody(response);
    return undefined;
  }
  try {
    const text = await untilAborted(response.text(), signal);
    if (text.length > MAX_ERROR_BODY) return undefined;
    const body = JSON.parse(text) as { error?: unknown };
    const error = body?.error;
    if (error === null || typeof error !== 'object' || typeof (error as { code?: unknown }).code !== 'string') return undefined;
    return errorFromPayload(error);
  } catch {
    return undefined;
  }
}

/** Settles like `promise`, or rejects with the abort reason as soon as `signal` aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
      // A response that still arrives is nobody's: release its connection.
      promise.then((value) => {
        if (value instanceof Response) cancelBody(value);
      }, noop);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
