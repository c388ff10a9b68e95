import type { TokenSourceFactory } from '../core/types.js';

/**
 * The method a wrapped factory (`limitStreams`, `limitRate`) carries to give back what it holds
 * when it will never be called: `relay.start` calls it when an idempotency key joins a stream
 * already started, so a double-click holds no second `limitStreams` slot.
 * @internal
 */
export const DISPOSE: unique symbol = Symbol('tokenrelay.disposeFactory');

interface Disposable {
  [DISPOSE]?: (() => void) | undefined;
}

/** Gives `factory` a dispose step (run at most once). @internal */
export function withDispose(factory: TokenSourceFactory, dispose: () => void): TokenSourceFactory {
  let disposed = false;
  (factory as Disposable)[DISPOSE] = () => {
    if (disposed) return;
    disposed = true;
    dispose();
  };
  return factory;
}

/** Runs the dispose step of a factory that will not be called, if it has one. Never throws. @internal */
export function disposeFactory(factory: TokenSourceFactory): void {
  try {
    (factory as Disposable)[DISPOSE]?.();
  } catch {
    // What it holds expires by its TTL.
  }
}
