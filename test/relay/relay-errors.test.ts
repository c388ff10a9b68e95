import { describe, expect, it } from 'vitest';
import {
  isTokenRelayError,
  ProviderError,
  StreamAbortedError,
  StreamTimeoutError,
  TokenRelayError,
} from 'tokenrelay';
import {
  InvalidCursorError,
  isInvalidCursorError,
  isProducerLostError,
  isStreamLimitError,
  isStreamNotFoundError,
  ProducerLostError,
  StreamLimitError,
  StreamNotFoundError,
} from 'tokenrelay/relay';
import { deserializeError, serializeError } from '../../src/relay/store.js';
import { toHttpError } from '../../src/servers/internal/http-error.js';

describe('relay errors', () => {
  it('have a literal code, their own name, and the base class', () => {
    const cases = [
      [new StreamNotFoundError(), 'not-found', 'StreamNotFoundError', isStreamNotFoundError],
      [new ProducerLostError(), 'producer-lost', 'ProducerLostError', isProducerLostError],
      [new InvalidCursorError(), 'invalid-cursor', 'InvalidCursorError', isInvalidCursorError],
      [new StreamLimitError(), 'limit', 'StreamLimitError', isStreamLimitError],
    ] as const;
    for (const [error, code, name, guard] of cases) {
      expect(error).toBeInstanceOf(TokenRelayError);
      expect(error.code).toBe(code);
      expect(error.name).toBe(name);
      expect(guard(error)).toBe(true);
      expect(isTokenRelayError(error)).toBe(true);
      const foreign = Object.assign(new Error('other copy'), { name, code });
      expect(guard(foreign)).toBe(true);
      expect(isTokenRelayError(foreign)).toBe(true);
    }
    expect(new StreamLimitError('x', { retryAfterMs: 5, limit: 'bytes' })).toMatchObject({ retryAfterMs: 5, limit: 'bytes' });
  });

  it('map to HTTP answers: 400, 404, 429 with Retry-After', () => {
    expect(toHttpError(new InvalidCursorError(), false).status).toBe(400);
    expect(toHttpError(new StreamNotFoundError(), false).status).toBe(404);
    const limited = toHttpError(new StreamLimitError('Too many open streams', { retryAfterMs: 1_500 }), false);
    expect(limited.status).toBe(429);
    expect(limited.headers['Retry-After']).toBe('2');
    expect(JSON.parse(limited.body)).toEqual({ error: { code: 'limit', message: 'Too many open streams', limit: 'per-key', retryAfterMs: 1500 } });
    expect(toHttpError(new StreamLimitError(), false).headers['Retry-After']).toBeUndefined();
    expect(toHttpError(new ProducerLostError(), false).status).toBe(500);
  });

  it('survive the store: serialized to JSON and rebuilt with their type and fields', () => {
    const roundTrip = (error: unknown) => deserializeError(JSON.parse(JSON.stringify(serializeError(error))));
    const provider = roundTrip(new ProviderError('overloaded', { status: 529, retryable: true, providerType: 'overloaded_error', provider: 'anthropic', cause: new Error('secret') }));
    expect(provider).toBeInstanceOf(ProviderError);
    expect(provider).toMatchObject({ status: 529, retryable: true, providerType: 'overloaded_error', provider: 'anthropic', message: 'overloaded' });
    expect(provider.cause).toBeUndefined();
    const timeout = roundTrip(new StreamTimeoutError('idle', 15_000));
    expect(timeout).toBeInstanceOf(StreamTimeoutError);
    expect(timeout).toMatchObject({ phase: 'idle', timeoutMs: 15_000 });
    expect(roundTrip(new StreamLimitError('full', { limit: 'chunks' }))).toMatchObject({ limit: 'chunks', code: 'limit' });
    expect(roundTrip(new StreamAbortedError('The stream was cancelled'))).toBeInstanceOf(StreamAbortedError);
    const plain = roundTrip(new TypeError('x'.repeat(2_000)));
    expect(plain.name).toBe('TypeError');
    expect(plain.message.length).toBeLessThanOrEqual(501);
    expect(roundTrip('a string was thrown').message).toBe('a string was thrown');
  });
});
