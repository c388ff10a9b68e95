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

/**
 * An options object (or `undefined`) whose keys are all in `known`: a typo such as `idleMS`
 * fails at the call with a suggestion, instead of being silently ignored.
 */
export function assertOptions(
  name: string,
  value: unknown,
  known: readonly string[],
): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${describeValue(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closestName(key, known);
    const hint = guess === undefined ? `; known options: ${known.map((item) => `\`${item}\``).join(', ')}` : `; did you mean \`${guess}\`?`;
    throw new TypeError(`Unknown option \`${key}\` in \`${name}\`${hint}`);
  }
}

/** The known name nearest to `key` (case-insensitive edit distance ≤ 2, or a case-only change). */
function closestName(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of known) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
