import { describe, expect, it } from 'vitest';
import { checkHeaders, mergeHeaders } from '../../src/servers/internal/headers.js';

const own = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' };

describe('mergeHeaders', () => {
  it('returns the stream headers themselves when there are no user headers', () => {
    expect(mergeHeaders(undefined, own, false)).toBe(own);
  });

  it('puts user headers first and lets the stream headers win, whatever the case', () => {
    const merged = mergeHeaders({ 'content-type': 'text/plain', 'CACHE-CONTROL': 'max-age=60', 'Access-Control-Allow-Origin': '*' }, own, false);
    expect(merged).toEqual({ 'Access-Control-Allow-Origin': '*', ...own });
    expect(Object.keys(merged)[0]).toBe('Access-Control-Allow-Origin');
    // One value per name: no user header survives beside a stream header in another case.
    const names = Object.keys(merged).map((name) => name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
  });

  it('drops Content-Length always, and the connection-specific headers where the connection is managed (HTTP/2, fetch runtimes)', () => {
    const user = { 'Content-Length': '10', Connection: 'close', 'Keep-Alive': 'timeout=5', 'Transfer-Encoding': 'chunked', Upgrade: 'h2c', 'Proxy-Connection': 'x', 'X-Kept': 'yes' };
    expect(mergeHeaders(user, own, false)).toEqual({
      Connection: 'close',
      'Keep-Alive': 'timeout=5',
      'Transfer-Encoding': 'chunked',
      Upgrade: 'h2c',
      'Proxy-Connection': 'x',
      'X-Kept': 'yes',
      ...own,
    });
    expect(mergeHeaders(user, own, true)).toEqual({ 'X-Kept': 'yes', ...own });
  });

  it('keeps the stream Connection header on HTTP/1.1 over a user one', () => {
    expect(mergeHeaders({ connection: 'close' }, { ...own, Connection: 'keep-alive' }, false)).toEqual({ ...own, Connection: 'keep-alive' });
  });
});

describe('checkHeaders', () => {
  it('accepts valid headers and copies them', () => {
    const user = { 'X-Trace': 'a b\tc', 'Access-Control-Allow-Origin': 'https://example.com' };
    const checked = checkHeaders(user);
    expect(checked).toEqual(user);
    expect(checked).not.toBe(user);
    expect(checkHeaders(undefined)).toBeUndefined();
  });

  it.each([
    [null, /object of header names and string values, got null/],
    [['a'], /object of header names/],
    [{ 'X-Num': 1 }, new TypeError('Expected header `X-Num` to be a string, got 1')],
    [{ 'Bad Name': 'x' }, /header name `Bad Name` to be a valid HTTP token/],
    [{ 'X-Bad': 'a\nb' }, /header `X-Bad` to have no control characters/],
    [{ 'X-Bad': 'a\rb' }, /header `X-Bad` to have no control characters/],
    [{ 'X-Bad': 'a\0b' }, /header `X-Bad` to have no control characters/],
  ])('rejects %j with a TypeError', (headers, error) => {
    expect(() => checkHeaders(headers)).toThrow(error);
    expect(() => checkHeaders(headers)).toThrow(TypeError);
  });
});
