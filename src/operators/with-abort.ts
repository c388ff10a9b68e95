import { isTokenRelayError, StreamAbortedError } from '../core/errors.js';
import type { Operator } from '../core/types.js';
import { assertSignal } from '../core/validate.js';
import { Interruptible } from '../core/kernel.js';

/**
 * Ends the stream as soon as `signal` aborts: a pending read rejects at once with a
 * {@link StreamAbortedError} whose `cause` is `signal.reason`, and the source is asked to
 * `return()` without waiting for it. A signal that is already aborted ends the stream before
 * the first read (the source is still returned). A reason that is itself a tokenrelay error —
 * such as the `StreamTimeoutError` that `withTimeout` aborts its controller with — is thrown
 * as it is, so the outcome stays a timeout wherever in the pipeline the abort is noticed.
 *
 * The one `abort` listener it adds per iteration is removed on every exit path (end, error,
 * abort, consumer `break`), so a long-lived signal can be shared by any number of streams.
 *
 * @param signal - Stops the stream when it aborts, e.g. the request's client-disconnect signal.
 * @example
 * ```ts
 * const controller = new AbortController();
 * res.on('close', () => controller.abort());
 * const stream = pipe(streamOpenAI(openai, params, { signal: controller.signal }), withAbort(controller.signal));
 * ```
 */
export function withAbort<T>(signal: AbortSignal): Operator<T, T> {
  assertSignal('signal', signal);
  return (source) => ({
    [Symbol.asyncIterator]: () => abortable(source, signal),
  });
}

/**
 * What a read ends with when `signal` aborts: a reason that is itself a tokenrelay error (a
 * timeout) as it is, anything else as the `cause` of a {@link StreamAbortedError}.
 */
export function abortErrorOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return isTokenRelayError(reason) ? reason : new StreamAbortedError(undefined, { cause: reason });
}

function abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncIterableIterator<T> {
  const onAbort = (): void => iterator.stop(abortErrorOf(signal));
  const iterator = new Interruptible(source, () => signal.removeEventListener('abort', onAbort));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return iterator;
}
