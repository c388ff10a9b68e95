import { assertFunction, assertNumber, assertOptionalNumber, assertOptions, assertSignal, describeValue } from '../core/validate.js';
import type { Backoff } from './backoff.js';
import { checkURL, planRequest, type RequestPlan } from './request.js';
import type { FetchLike, ReconnectOptions, RetryInfo, StreamEventsOptions, StreamTokensOptions } from './types.js';

/** Everything a client stream needs, checked once. */
export interface ClientConfig {
  request: RequestPlan;
  signal: AbortSignal | undefined;
  resume: string | ((streamId: string) => string | URL) | undefined;
  backoff: Backoff;
  onRetry: ((info: RetryInfo) => void) | undefined;
  idleTimeoutMs: number;
  fetch: FetchLike | undefined;
  onOpen: ((response: Response) => void) | undefined;
}

const MAX_DELAY = 2_147_483_647;

/** The option names `streamEvents` knows; any other key is a typo and fails. */
export const STREAM_EVENTS_OPTIONS = [
  'method',
  'headers',
  'body',
  'signal',
  'resume',
  'reconnect',
  'idleTimeoutMs',
  'fetch',
  'onOpen',
] as const satisfies ReadonlyArray<keyof StreamEventsOptions>;

/** The option names `streamTokens` knows. */
export const STREAM_TOKENS_OPTIONS = [...STREAM_EVENTS_OPTIONS, 'events'] as const satisfies ReadonlyArray<keyof StreamTokensOptions>;

const RECONNECT_OPTIONS = ['retries', 'initialDelayMs', 'maxDelayMs', 'random', 'onRetry'] as const satisfies ReadonlyArray<
  keyof ReconnectOptions
>;

/**
 * Validates the input and options of `streamEvents` / `streamTokens` (`known`: the option names
 * the caller takes); bad ones throw a `TypeError`.
 */
export function resolveConfig(input: unknown, options: StreamEventsOptions, known: readonly string[]): ClientConfig {
  if (typeof input !== 'string' && !(input instanceof URL)) {
    throw new TypeError(`Expected \`input\` to be a URL string or a URL, got ${describeValue(input)}`);
  }
  // Not narrowed: the options' own type is more precise than what the check proves.
  assertOptions('options', options as unknown, known);
  checkURL('`input`', input);
  const { method, signal, resume, reconnect, idleTimeoutMs, fetch, onOpen } = options;
  if (method !== undefined && (typeof method !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method))) {
    throw new TypeError(`Expected \`method\` to be an HTTP method such as 'POST', got ${describeValue(method)}`);
  }
  if (signal !== undefined) assertSignal('signal', signal);
  if (resume !== undefined && typeof resume !== 'string' && typeof resume !== 'function') {
    throw new TypeError(`Expected \`resume\` to be a URL template with {id} or a function (streamId) => url, got ${describeValue(resume)}`);
  }
  assertOptionalNumber('idleTimeoutMs', idleTimeoutMs, { allowInfinity: true });
  if (fetch !== undefined) assertFunction('fetch', fetch);
  if (onOpen !== undefined) assertFunction('onOpen', onOpen);
  const timeout = idleTimeoutMs ?? 45_000;
  return {
    request: planRequest(input, method, options.headers, options.body),
    signal,
    resume,
    ...resolveReconnect(reconnect),
    // 0 turns it off, like `heartbeatMs`; beyond the largest timer delay it could never fire.
    idleTimeoutMs: timeout === 0 || timeout > MAX_DELAY ? Infinity : timeout,
    fetch,
    onOpen,
  };
}

function resolveReconnect(reconnect: ReconnectOptions | false | undefined): Pick<ClientConfig, 'backoff' | 'onRetry'> {
  if (reconnect === false) {
    return { backoff: { retries: 0, initialDelayMs: 0, maxDelayMs: 0, random: Math.random }, onRetry: undefined };
  }
  if (reconnect !== undefined && (reconnect === null || typeof reconnect !== 'object')) {
    throw new TypeError(`Expected \`reconnect\` to be an object or false, got ${describeValue(reconnect)}`);
  }
  assertOptions('reconnect', reconnect as unknown, RECONNECT_OPTIONS);
  const { retries = 8, initialDelayMs = 1000, maxDelayMs = 30_000, random = Math.random, onRetry } = reconnect ?? {};
  assertNumber('reconnect.retries', retries, { integer: true, allowInfinity: true });
  assertNumber('reconnect.initialDelayMs', initialDelayMs);
  assertNumber('reconnect.maxDelayMs', maxDelayMs);
  assertFunction('reconnect.random', random);
  if (onRetry !== undefined) assertFunction('reconnect.onRetry', onRetry);
  return { backoff: { retries, initialDelayMs, maxDelayMs, random }, onRetry };
}
