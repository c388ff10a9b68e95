import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { encodeSSEFrame, sseHeaders } from 'tokenrelay/sse';
import { describe, expect, it } from 'vitest';

function parse(text: string) {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const errors: Error[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (retry) => retries.push(retry),
    onError: (error) => errors.push(error),
  });
  parser.feed(text);
  return { events, comments, retries, errors };
}

describe('encodeSSEFrame', () => {
  it('writes the fields in a fixed order and ends the frame with a blank line', () => {
    expect(encodeSSEFrame({ data: '{"a":1}', event: 'token', id: 7, retry: 2500, comment: 'hi' })).toBe(
      ': hi\nretry: 2500\nid: 7\nevent: token\ndata: {"a":1}\n\n',
    );
    expect(encodeSSEFrame({ data: '' })).toBe('data: \n\n');
    expect(encodeSSEFrame({ retry: 0 })).toBe('retry: 0\n\n');
  });

  it('splits data on CRLF, CR and LF, and never splits a CRLF into two lines', () => {
    expect(encodeSSEFrame({ data: 'a\r\nb\rc\nd' })).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(encodeSSEFrame({ data: '\n' })).toBe('data: \ndata: \n\n');
    expect(encodeSSEFrame({ data: 'x\r\n\r\ny' })).toBe('data: x\ndata: \ndata: y\n\n');
    expect(encodeSSEFrame({ data: 'a\u2028b' })).toBe('data: a\u2028b\n\n');
  });

  it('keeps a payload that tries to inject fields or events inside one event', () => {
    const data = 'x\n\nid: 99\nevent: evil\ndata: owned\r\rretry: 1\r\n: comment';
    const { events, retries, comments } = parse(encodeSSEFrame({ id: 1, event: 'token', data }));
    expect(events).toEqual([{ id: '1', event: 'token', data: data.replace(/\r\n|\r/g, '\n') }]);
    expect(retries).toEqual([]);
    expect(comments).toEqual([]);
  });

  it('round-trips data with leading spaces, colons and NUL through a real parser', () => {
    const data = '  two spaces\n:colon first\n\0nul';
    expect(parse(encodeSSEFrame({ data })).events).toEqual([{ id: undefined, event: undefined, data }]);
  });

  it('writes a comment as one comment line per line, which clients ignore', () => {
    const text = encodeSSEFrame({ comment: 'one\r\ntwo\nthree' });
    expect(text).toBe(': one\n: two\n: three\n\n');
    const { events, comments } = parse(text);
    expect(events).toEqual([]);
    expect(comments).toEqual(['one', 'two', 'three']);
  });

  it.each<[unknown, string]>([
    ['', ''],
    ['a\nb', 'LF'],
    ['a\rb', 'CR'],
    ['a\0b', 'NUL'],
    ['a\uD800', 'a lone surrogate'],
    [42, 'a number'],
  ])('rejects the event name %j (%s)', (event) => {
    expect(() => encodeSSEFrame({ event: event as string, data: 'x' })).toThrow(TypeError);
    expect(() => encodeSSEFrame({ event: event as string, data: 'x' })).toThrow(
      /^Expected `event` to be a non-empty string without CR, LF, NUL or lone surrogates, got /,
    );
  });

  it('accepts an event name with spaces, colons and astral characters', () => {
    const event = ' tök:en 😀';
    expect(parse(encodeSSEFrame({ event, data: 'x' })).events[0]?.event).toBe(event);
  });

  it.each([-1, 1.5, NaN, Infinity, 2 ** 53, '1'])('rejects the id and retry %j', (value) => {
    expect(() => encodeSSEFrame({ id: value as number })).toThrow('Expected `id` to be an integer >= 0, got ');
    expect(() => encodeSSEFrame({ retry: value as number })).toThrow('Expected `retry` to be an integer >= 0, got ');
  });

  it('rejects non-string data and comments, empty frames and non-objects', () => {
    expect(() => encodeSSEFrame({ data: 1 as unknown as string })).toThrow('Expected `data` to be a string, got 1');
    expect(() => encodeSSEFrame({ comment: null as unknown as string })).toThrow('Expected `comment` to be a string');
    expect(() => encodeSSEFrame({})).toThrow(TypeError);
    expect(() => encodeSSEFrame(null as never)).toThrow('Expected `frame` to be an object, got null');
  });
});

describe('sseHeaders', () => {
  const base = {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  };

  it('adds Connection: keep-alive only on HTTP/1.x', () => {
    expect(sseHeaders('1.1')).toEqual({ ...base, Connection: 'keep-alive' });
    expect(sseHeaders('1.0')).toEqual({ ...base, Connection: 'keep-alive' });
    expect(sseHeaders('2.0')).toEqual(base);
    expect(sseHeaders('2')).toEqual(base);
    expect(sseHeaders('3')).toEqual(base);
    expect(sseHeaders()).toEqual(base);
  });

  it('never sets Transfer-Encoding, and returns a fresh object each call', () => {
    const headers = sseHeaders('1.1');
    expect(Object.keys(headers).map((name) => name.toLowerCase())).not.toContain('transfer-encoding');
    headers['X-Extra'] = 'yes';
    expect(sseHeaders('1.1')).not.toHaveProperty('X-Extra');
  });

  it('rejects a malformed version', () => {
    expect(() => sseHeaders('1.1\r\nX: y')).toThrow("Expected `httpVersion` to be a version such as '1.1' or '2.0', got ");
    expect(() => sseHeaders(2 as unknown as string)).toThrow(TypeError);
  });
});
