import { monitored, type MonitorHookName, type MonitorOptions, type StreamObserver } from '../operators/monitored.js';
import { describeValue } from '../core/validate.js';

const HOOKS = ['onFirstToken', 'onChunk', 'onError', 'onFinish'] as const;
type Listener = (arg: never) => unknown;
type Hooks = Partial<Record<(typeof HOOKS)[number], Listener>>;

/**
 * Combines several monitors into the one `monitor` option a server adapter (or `monitored`)
 * takes: each hook runs for every monitor that has it, and one that throws is reported to its
 * own monitor's `onHookError` without keeping the others from running. The first `price` given
 * is used (so every monitor sees the same `metrics.cost`); `keepText` is on if any monitor asks.
 *
 * @example
 * ```ts
 * sendSSE(req, res, factory, {
 *   monitor: composeMonitors(prometheusMonitor({ pricing }), otelMonitor({ tracer }), { onFinish: audit }),
 * });
 * ```
 */
export function composeMonitors(...monitors: MonitorOptions[]): MonitorOptions {
  monitors.forEach((monitor, i) => {
    if (monitor === null || typeof monitor !== 'object') {
      throw new TypeError(`Expected monitor ${i} to be an object of monitor options, got ${describeValue(monitor)}`);
    }
    monitored(monitor); // checks its hooks and price
  });
  const priceOwner = monitors.find((monitor) => monitor.price !== undefined);
  const composed: MonitorOptions = {};
  if (priceOwner !== undefined) {
    composed.price = priceOwner.price;
    composed.onHookError = (error, hook) => report(priceOwner, error, hook);
  }
  if (monitors.some((monitor) => monitor.keepText === true)) composed.keepText = true;
  joinHooks(composed as Hooks, monitors.map((monitor) => [monitor, monitor as Hooks]));
  const starters = monitors.filter((monitor) => monitor.onStart !== undefined);
  if (starters.length > 0) composed.onStart = () => start(starters);
  return composed;
}

/** Runs every `onStart`, and joins the observers they return into one for this stream. */
function start(starters: MonitorOptions[]): StreamObserver | undefined {
  const observers: Array<readonly [MonitorOptions, StreamObserver]> = [];
  for (const monitor of starters) {
    const observer = run(monitor, 'onStart', monitor.onStart as Listener, undefined);
    if (observer != null && typeof (observer as PromiseLike<void>).then !== 'function') {
      observers.push([monitor, observer as StreamObserver]);
    }
  }
  if (observers.length === 0) return undefined;
  const joined: StreamObserver = {};
  joinHooks(joined as Hooks, observers as Array<readonly [MonitorOptions, Hooks]>);
  return joined;
}

/** Sets each hook of `target` that some part has to one that calls it on every part. */
function joinHooks(target: Hooks, parts: ReadonlyArray<readonly [MonitorOptions, Hooks]>): void {
  for (const hook of HOOKS) {
    const listeners = parts.flatMap(([monitor, hooks]) => (hooks[hook] === undefined ? [] : [[monitor, hooks[hook]] as const]));
    if (listeners.length === 0) continue;
    target[hook] = (arg: never) => {
      for (const [monitor, listener] of listeners) run(monitor, hook, listener, arg);
    };
  }
}

/** Calls one monitor's hook; what it throws or rejects with goes to that monitor's `onHookError`. */
function run(monitor: MonitorOptions, hook: MonitorHookName, fn: Listener, arg: unknown): unknown {
  try {
    const result = fn(arg as never);
    if (result != null && typeof (result as PromiseLike<void>).then === 'function') {
      (result as PromiseLike<void>).then(undefined, (error: unknown) => report(monitor, error, hook));
    }
    return result;
  } catch (error) {
    report(monitor, error, hook);
    return undefined;
  }
}

function report(monitor: MonitorOptions, error: unknown, hook: MonitorHookName): void {
  try {
    if (monitor.onHookError !== undefined) monitor.onHookError(error, hook);
    else console.error(`tokenrelay: the monitored() ${hook} hook threw`, error);
  } catch {
    // An error handler that throws has nowhere left to report to; the stream must go on.
  }
}
