export type * from './types.js';
export * from './errors.js';
export { pipe } from './pipe.js';
export { fromAsyncIterable, tokens } from './from-async-iterable.js';
export type { TokenInput, FromAsyncIterableOptions } from './from-async-iterable.js';
