import type { TokenChunk } from '../../core/types.js';
import type { TokenSourceInput } from './response-stream.js';

/**
 * The factory of a framework's `sse()`: it takes the framework's own request (or context) and
 * the stream's signal, and returns the stream or a promise of it.
 */
export type RouteSourceFactory<Native> = (
  native: Native,
  signal: AbortSignal,
) => AsyncIterable<TokenChunk> | PromiseLike<AsyncIterable<TokenChunk>>;

/**
 * The factory bound to one request, as the pipeline takes it: called on the first read, a throw
 * or a rejected promise fails the stream like an early provider error (an HTTP 500 answer).
 */
export function bindFactory<Native>(factory: RouteSourceFactory<Native>, native: Native): TokenSourceInput {
  return ((signal: AbortSignal) => factory(native, signal)) as TokenSourceInput;
}
