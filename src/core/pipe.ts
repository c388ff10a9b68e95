import type { Operator } from './types.js';
import { describeValue } from './validate.js';

/**
 * Composes a source with operators, left to right, with each step's type inferred from the
 * one before.
 *
 * @example
 * ```ts
 * const frames = pipe(
 *   streamOpenAI(openai, params, { signal }),
 *   withTimeout({ idleMs: 30_000 }),
 *   toSSE(),
 * );
 * ```
 */
export function pipe<A>(source: AsyncIterable<A>): AsyncIterable<A>;
export function pipe<A, B>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>,
): AsyncIterable<B>;
export function pipe<A, B, C>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>,
): AsyncIterable<C>;
export function pipe<A, B, C, D>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>,
): AsyncIterable<D>;
export function pipe<A, B, C, D, E>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>,
): AsyncIterable<E>;
export function pipe<A, B, C, D, E, F>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>,
): AsyncIterable<F>;
export function pipe<A, B, C, D, E, F, G>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>, op6: Operator<F, G>,
): AsyncIterable<G>;
export function pipe<A, B, C, D, E, F, G, H>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>, op6: Operator<F, G>, op7: Operator<G, H>,
): AsyncIterable<H>;
export function pipe<A, B, C, D, E, F, G, H, I>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>, op6: Operator<F, G>, op7: Operator<G, H>, op8: Operator<H, I>,
): AsyncIterable<I>;
export function pipe<A, B, C, D, E, F, G, H, I, J>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>, op6: Operator<F, G>, op7: Operator<G, H>, op8: Operator<H, I>, op9: Operator<I, J>,
): AsyncIterable<J>;
export function pipe<A, B, C, D, E, F, G, H, I, J, K>(
  source: AsyncIterable<A>,
  op1: Operator<A, B>, op2: Operator<B, C>, op3: Operator<C, D>, op4: Operator<D, E>, op5: Operator<E, F>, op6: Operator<F, G>, op7: Operator<G, H>, op8: Operator<H, I>, op9: Operator<I, J>, op10: Operator<J, K>,
): AsyncIterable<K>;
export function pipe(
  source: AsyncIterable<unknown>,
  ...operators: Operator<unknown, unknown>[]
): AsyncIterable<unknown>;
export function pipe(
  source: AsyncIterable<unknown>,
  ...operators: Operator<unknown, unknown>[]
): AsyncIterable<unknown> {
  let stream = source;
  for (const operator of operators) {
    if (typeof operator !== 'function') {
      throw new TypeError(`Expected every operator passed to pipe() to be a function, got ${describeValue(operator)}`);
    }
    stream = operator(stream);
  }
  return stream;
}
