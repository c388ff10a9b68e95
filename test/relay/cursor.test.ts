import { describe, expect, it } from 'vitest';
import { InvalidCursorError, parseCursor, resumeCursor } from 'tokenrelay/relay';

const invalid = [
  '-1',
  '+1',
  '01',
  '00',
  '1.0',
  '1.5',
  '1e3',
  '0x1f',
  ' 1',
  '1 ',
  '1\n',
  '\n1',
  '１',
  '9007199254740992',
  '99999999999999999999999',
  'abc',
  'NaN',
  'Infinity',
  '1,2',
  '1;id=2',
];

describe('parseCursor', () => {
  it('reads canonical non-negative integers, and nothing as undefined', () => {
    expect(parseCursor('0')).toBe(0);
    expect(parseCursor('41')).toBe(41);
    expect(parseCursor('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseCursor(undefined)).toBeUndefined();
    expect(parseCursor(null)).toBeUndefined();
    expect(parseCursor('')).toBeUndefined();
  });

  it('rejects everything else with an InvalidCursorError that never echoes the value', () => {
    for (const value of invalid) {
      let error: unknown;
      try {
        parseCursor(value);
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(value)).toBeInstanceOf(InvalidCursorError);
      expect((error as InvalidCursorError).code).toBe('invalid-cursor');
      expect((error as Error).message).not.toContain(value.trim() || '\u0000');
    }
    expect(() => parseCursor(5 as never)).toThrow(InvalidCursorError);
  });
});

describe('resumeCursor', () => {
  it('reads Last-Event-ID from a fetch Request, else ?lastEventId=', () => {
    expect(resumeCursor(new Request('http://x/s', { headers: { 'Last-Event-ID': '7' } }))).toBe(7);
    expect(resumeCursor(new Request('http://x/s?lastEventId=8'))).toBe(8);
    expect(resumeCursor(new Request('http://x/s?lastEventId=8', { headers: { 'Last-Event-ID': '9' } }))).toBe(9);
    expect(resumeCursor(new Request('http://x/s'))).toBeUndefined();
    expect(resumeCursor(new Request('http://x/s?other=1#lastEventId=3'))).toBeUndefined();
  });

  it('reads a Node IncomingMessage-like object', () => {
    expect(resumeCursor({ headers: { 'last-event-id': '3' }, url: '/s' })).toBe(3);
    expect(resumeCursor({ headers: {}, url: '/s?a=1&lastEventId=4' })).toBe(4);
    expect(resumeCursor({ headers: {} })).toBeUndefined();
    expect(resumeCursor({ headers: { 'last-event-id': '' }, url: '/s?lastEventId=5' })).toBe(5);
  });

  it('rejects tampered, repeated or ambiguous cursors', () => {
    expect(() => resumeCursor({ headers: { 'last-event-id': ['1', '2'] } })).toThrow(InvalidCursorError);
    expect(() => resumeCursor({ headers: { 'last-event-id': '1, 2' } })).toThrow(InvalidCursorError);
    expect(() => resumeCursor({ headers: {}, url: '/s?lastEventId=1&lastEventId=2' })).toThrow(InvalidCursorError);
    expect(() => resumeCursor({ headers: {}, url: '/s?lastEventId=-1' })).toThrow(InvalidCursorError);
    expect(() => resumeCursor(new Request('http://x/s', { headers: { 'Last-Event-ID': '1e9' } }))).toThrow(
      InvalidCursorError,
    );
  });

  it('says what it expected when given no request', () => {
    expect(() => resumeCursor(undefined as never)).toThrow(
      'Expected `request` to be a fetch Request or a Node IncomingMessage, got undefined',
    );
  });
});
