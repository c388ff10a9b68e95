// One-shot functions (`sendSSE`) are called with the same options object for every request. The
// plan checked from it is kept, weakly, with a flat copy of what it was made from; a call whose
// options still hold the same values (deeply, for plain objects and arrays) reuses it, so a stream
// holds no copy of its plan, protocol, encoder config and headers of its own.

// Past this many values, options are planned per call rather than copied (a huge price table).
const MAX_VALUES = 512;

interface Planned<P> {
  readonly plan: P;
  // Keys and values in walk order; plain objects and arrays as their length, then their entries.
  readonly values: readonly unknown[];
  // The state outside the options that the plan read (write combining), when it was made.
  readonly outside: unknown;
}

/**
 * Plans from `options` with `make`, once per options object as long as nothing in it changes:
 * the next call with the same object, holding the same values (compared deeply through plain
 * objects and arrays, by identity otherwise), gets the same plan, which must therefore never be
 * changed. `outside` is any other input of `make` (compared by identity). Options that fail
 * `make` are never kept.
 */
export class PlanCache<P> {
  readonly #plans = new WeakMap<object, Planned<P>>();
  readonly #make: (options: never) => P;

  constructor(make: (options: never) => P) {
    this.#make = make;
  }

  /** The plan of `options`, made now or reused. */
  planFor(options: object, outside: unknown): P {
    const planned = this.#plans.get(options);
    if (planned !== undefined && planned.outside === outside && matches(options as Record<string, unknown>, planned.values, 0) === planned.values.length) {
      return planned.plan;
    }
    const plan = this.#make(options as never);
    const values: unknown[] = [];
    if (flatten(options as Record<string, unknown>, values)) this.#plans.set(options, { plan, values, outside });
    else this.#plans.delete(options);
    return plan;
  }
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

// Own enumerable string keys, as `Object.keys` and the option checks see them.
function flatten(object: Record<string, unknown>, into: unknown[]): boolean {
  const keys = Object.keys(object);
  into.push(keys.length);
  for (const key of keys) {
    const value = object[key];
    into.push(key, value);
    if (into.length > MAX_VALUES) return false;
    if (isPlain(value) && !flatten(value, into)) return false;
  }
  return true;
}

// The index after `object`'s part of `values`, or -1 where it differs.
function matches(object: Record<string, unknown>, values: readonly unknown[], at: number): number {
  const expected = values[at];
  let index = at + 1;
  let count = 0;
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    if (++count > (expected as number)) return -1;
    const value = object[key];
    if (values[index] !== key || values[index + 1] !== value) return -1;
    index += 2;
    if (isPlain(value)) {
      index = matches(value, values, index);
      if (index < 0) return -1;
    }
  }
  return count === expected ? index : -1;
}
