/** Fail-fast argument checks with messages that say what was expected and what came. */

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** A finite number >= `min` (or `undefined` when `optional`). Infinity is allowed with `allowInfinity`. */
export function assertNumber(
  name: string,
  value: unknown,
  { min = 0, integer = false, allowInfinity = false }: { min?: number; integer?: boolean; allowInfinity?: boolean } = {},
): asserts value is number {
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    value >= min &&
    (Number.isFinite(value) ? !integer || Number.isInteger(value) : allowInfinity && value > 0);
  if (!ok) {
    const kind = integer ? 'an integer' : allowInfinity ? 'a number' : 'a finite number';
    throw new TypeError(`Expected \`${name}\` to be ${kind} >= ${min}, got ${describeValue(value)}`);
  }
}

export function assertOptionalNumber(
  name: string,
  value: unknown,
  options?: { min?: number; integer?: boolean; allowInfinity?: boolean },
): asserts value is number | undefined {
  if (value !== undefined) assertNumber(name, value, options);
}

export function assertSignal(name: string, value: unknown): asserts value is AbortSignal {
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as AbortSignal).aborted !== 'boolean' ||
    typeof (value as AbortSignal).addEventListener !== 'function'
  ) {
    throw new TypeError(`Expected \`${name}\` to be an AbortSignal, got ${describeValue(value)}`);
  }
}

export function assertFunction(name: string, value: unknown): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') {
    throw new TypeError(`Expected \`${name}\` to be a function, got ${describeValue(value)}`);
  }
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (!allowed.includes(value as T)) {
    const list = allowed.map((item) => `'${item}'`).join(', ');
    throw new TypeError(`Expected \`${name}\` to be one of ${list}, got ${describeValue(value)}`);
  }
}
