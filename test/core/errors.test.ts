import { describe, expect, it } from 'vitest';
import {
  BackpressureError,
  isBackpressureError,
  isProviderError,
  isStreamAbortedError,
  isStreamTimeoutError,
  isTokenRelayError,
  ProviderError,
  StreamAbortedError,
  StreamTimeoutError,
  TokenRelayError,
} from 'tokenrelay';

describe('error hierarchy', () => {
  it('gives every error a literal code, its own name, and the base class', () => {
    const cases = [
      [new ProviderError('failed', { status: 500 }), 'provider', 'ProviderError'],
      [new StreamAbortedError(), 'aborted', 'StreamAbortedError'],
      [new StreamTimeoutError('idle', 100), 'timeout', 'StreamTimeoutError'],
      [new BackpressureError('full'), 'backpressure', 'BackpressureError'],
    ] as const;
    for (const [error, code, name] of cases) {
      expect(error).toBeInstanceOf(TokenRelayError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.name).toBe(name);
      expect(isTokenRelayError(error)).toBe(true);
    }
  });

  it('passes the cause through untouched', () => {
    const reason = new DOMException('user left', 'AbortError');
    const error = new StreamAbortedError(undefined, { cause: reason });
    expect(error.cause).toBe(reason);
    const upstream = new Error('socket hang up');
    expect(new ProviderError('failed', { cause: upstream }).cause).toBe(upstream);
  });

  it('derives retryable from the status unless told', () => {
    expect(new ProviderError('x', { status: 429 }).retryable).toBe(true);
    expect(new ProviderError('x', { status: 503 }).retryable).toBe(true);
    expect(new ProviderError('x', { status: 401 }).retryable).toBe(false);
    expect(new ProviderError('x', { status: 400 }).retryable).toBe(false);
    expect(new ProviderError('x').retryable).toBe(true);
    expect(new ProviderError('x', { status: 500, retryable: false }).retryable).toBe(false);
  });

  it('describes the timeout phase and keeps the deadline', () => {
    const error = new StreamTimeoutError('first-token', 5000);
    expect(error.phase).toBe('first-token');
    expect(error.timeoutMs).toBe(5000);
    expect(error.message).toBe('No first token within 5000 ms');
  });

  it('guards match errors from another copy of the package by name', () => {
    const foreign = Object.assign(new Error('from another bundle'), { name: 'ProviderError', code: 'provider' });
    expect(foreign).not.toBeInstanceOf(ProviderError);
    expect(isProviderError(foreign)).toBe(true);
    expect(isTokenRelayError(foreign)).toBe(true);
    expect(isStreamAbortedError(foreign)).toBe(false);
    expect(isStreamTimeoutError(Object.assign(new Error('t'), { name: 'StreamTimeoutError' }))).toBe(true);
    expect(isBackpressureError(new BackpressureError('full'))).toBe(true);
  });

  it('guards reject look-alikes that are not errors', () => {
    expect(isTokenRelayError({ name: 'ProviderError', code: 'provider' })).toBe(false);
    expect(isTokenRelayError(new Error('plain'))).toBe(false);
    expect(isTokenRelayError(Object.assign(new Error('x'), { name: 'OtherError', code: 'provider' }))).toBe(false);
    expect(isProviderError(undefined)).toBe(false);
  });
});
