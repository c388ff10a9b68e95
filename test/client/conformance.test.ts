// The WHATWG event-stream parsing rules, case by case after the web-platform-tests
// `eventsource/format-*` tests (their streams rebuilt here, as their server helper sends them),
// each fed to the client whole and one byte per read.
import { describe, expect, it } from 'vitest';
import { isStreamConnectionError, streamEvents, type ServerSentEvent } from 'tokenrelay/client';
import { fakeFetch, fromByteString, type Split } from './fake-fetch.ts';

/** WPT's message helper ends every message with "\n\n\n", or "\n" with `newline=none`. */
const message = (text: string): string => `${text}\n\n\n`;
const unterminated = (text: string): string => `${text}\n`;

type Expected = Partial<ServerSentEvent> & { data: string };

interface Case {
  name: string;
  body: string | Uint8Array;
  contentType?: string;
  events: Expected[];
}

const comment = 'x'.repeat(2048);

const cases: Case[] = [
  { name: 'format-bom: a leading BOM is dropped, a BOM later is part of the field name', body: message('\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3'), events: [{ data: '1' }, { data: '3' }] },
  { name: 'format-bom-2: only one BOM is dropped', body: message('\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3'), events: [{ data: '2' }, { data: '3' }] },
  {
    name: 'format-comments: comments of any length, after CR, LF or CRLF',
    body: unterminated(`data:1\r:\0\n:\r\ndata:2\n:${comment}\rdata:3\n:data:fail\r:${comment}\ndata:4\n`),
    events: [{ data: '1\n2\n3\n4' }],
  },
  {
    name: 'format-data-before-final-empty-line: an event cut off by the end of the body is discarded',
    body: unterminated('retry:1000\ndata:test1\n\nid:test\ndata:test2'),
    events: [{ data: 'test1', lastEventId: '' }],
  },
  { name: 'format-field-data: empty data lines', body: message('data:\n\ndata\ndata\n\ndata:test'), events: [{ data: '' }, { data: '\n' }, { data: 'test' }] },
  { name: 'format-field-event-empty: an empty event name means message', body: message('event: \ndata:data'), events: [{ event: 'message', data: 'data' }] },
  {
    name: 'format-field-event: a custom event name applies to its event only',
    body: message('event:test\ndata:x\n\ndata:x'),
    events: [{ event: 'test', data: 'x' }, { event: 'message', data: 'x' }],
  },
  {
    name: 'format-field-id-3: the last event id persists across events',
    body: 'id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n',
    events: [
      { data: '1', lastEventId: '1' },
      { data: '2', lastEventId: '1' },
      { data: '3', lastEventId: '2' },
      { data: '4', lastEventId: '2' },
    ],
  },
  {
    name: 'format-field-id-3: an empty id resets it',
    body: 'id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n',
    events: [{ data: '1', lastEventId: '1' }, { data: '2', lastEventId: '' }, { data: '3', lastEventId: '' }],
  },
  {
    name: 'format-field-id-3: an id line without a colon resets it',
    body: 'id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n',
    events: [{ data: '1', lastEventId: '1' }, { data: '2', lastEventId: '' }, { data: '3', lastEventId: '' }],
  },
  {
    name: 'an id in a block without data still becomes the last event id (dispatch: empty data)',
    body: 'id: 1\ndata: a\n\nid: 2\n\ndata: b\n\nid: 3\r\n\r\ndata: c\r\rid\n\ndata: d\n\n',
    events: [
      { data: 'a', lastEventId: '1' },
      { data: 'b', lastEventId: '2' },
      { data: 'c', lastEventId: '3' },
      { data: 'd', lastEventId: '' },
    ],
  },
  {
    name: 'an id-only block with NUL in its id, or cut off by the end of the body, changes nothing',
    body: 'id: 1\ndata: a\n\nid: 2\u00003\n\ndata: b\n\nid: 4\n',
    events: [
      { data: 'a', lastEventId: '1' },
      { data: 'b', lastEventId: '1' },
    ],
  },
  {
    name: 'format-field-parsing: only exact field names count; the first space after the colon goes',
    body: unterminated('data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n'),
    events: [{ data: '\0\n 2\n1\n3\n\n4' }],
  },
  { name: 'format-field-retry-empty: a retry line without a value is ignored', body: message('retry\ndata:test'), events: [{ data: 'test' }] },
  {
    name: 'format-field-unknown: unknown fields and lines without a colon are ignored',
    body: message('data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test'),
    events: [{ data: 'test\n\ntest' }],
  },
  { name: 'format-leading-space: only one space is removed; a tab is kept', body: message('data:\ttest\rdata: \ndata:test'), events: [{ data: '\ttest\n\ntest' }] },
  { name: 'format-newlines: CR, LF and CRLF mixed', body: unterminated('data:test\r\ndata\ndata:test\r\n\r'), events: [{ data: 'test\n\ntest' }] },
  { name: 'format-null-character: NUL in data is kept', body: message('data:\0\n'), events: [{ data: '\0' }] },
  {
    name: 'format-utf-8: always UTF-8, whatever the charset parameter says',
    body: Uint8Array.from([...new TextEncoder().encode('data:ok'), 0xe2, 0x80, 0xa6, 0x0a, 0x0a, 0x0a]),
    contentType: 'text/event-stream;charset=windows-1252',
    events: [{ data: 'ok…' }],
  },
  { name: 'format-mime-trailing-semicolon: text/event-stream; is valid', body: message('data: data'), contentType: 'text/event-stream;', events: [{ data: 'data' }] },
  {
    name: 'multibyte text split anywhere stays whole',
    body: message('data: 世界 👋 é\n\ndata: ☃'),
    events: [{ data: '世界 👋 é' }, { data: '☃' }],
  },
];

async function collect(body: string | Uint8Array, split: Split, contentType = 'text/event-stream') {
  // The case's stream, then 204: the client must not reconnect after that.
  const { fetch, requests } = fakeFetch((_request, n) => (n === 1 ? { body, headers: { 'content-type': contentType } } : { status: 204 }), split);
  const retries: number[] = [];
  const events: ServerSentEvent[] = [];
  const stream = streamEvents('http://127.0.0.1/stream', {
    fetch,
    reconnect: {
      random: () => 0,
      onRetry: ({ delayMs }) => {
        retries.push(delayMs);
        // The delay is what is under test: stop rather than wait for it.
        if (delayMs > 0) void stream.return();
      },
    },
  });
  for await (const event of stream) events.push(event);
  return { events, requests, retries };
}

describe.each(['whole', 'bytes'] as const)('event-stream parsing, fed %s', (split) => {
  it.each(cases)('$name', async ({ body, contentType, events: expected }) => {
    const { events, requests, retries } = await collect(body, split, contentType);
    expect(events).toEqual(expected.map((event) => ({ event: 'message', lastEventId: '', ...event })));
    expect(requests).toHaveLength(retries[0] === 0 ? 2 : 1);
  });

  it('format-field-retry: retry sets the reconnection delay, in decimal', async () => {
    const { retries } = await collect(message('retry:03000\ndata:x'), split);
    expect(retries).toEqual([3000]);
  });

  it('format-field-retry-bogus: a retry value that is not all digits is ignored', async () => {
    const { retries } = await collect(message('retry:3000\nretry:1000x\ndata:x'), split);
    expect(retries).toEqual([3000]);
  });

  it('format-field-retry-empty: an empty retry leaves the delay as it was', async () => {
    const { retries } = await collect(message('retry:40\ndata:a\n\nretry\ndata:b'), split);
    expect(retries).toEqual([40]);
  });

  it.each(['x bogus', 'text/x-bogus'])('format-mime: a %s response fails the stream for good', async (type) => {
    const { fetch, requests } = fakeFetch(() => ({ body: message('data: data'), headers: { 'content-type': type } }), split);
    const events: ServerSentEvent[] = [];
    const error = await (async () => {
      for await (const event of streamEvents('http://127.0.0.1/stream', { fetch })) events.push(event);
    })().catch((caught: unknown) => caught);
    expect(isStreamConnectionError(error)).toBe(true);
    expect(events).toEqual([]);
    expect(requests).toHaveLength(1);
    await requests[0]?.cancelled;
  });

  it('format-field-id: the id persists across reconnects and goes back as Last-Event-ID (UTF-8)', async () => {
    // The WPT helper echoes the Last-Event-ID it gets; the id is U+2026, not ASCII.
    const { fetch, requests } = fakeFetch((request, n) => {
      if (n === 3) return { status: 204 };
      const last = request.headers.get('last-event-id');
      return { body: last === null ? 'id: …\nretry: 200\ndata: hello\n\n' : `data: ${fromByteString(last)}\n\n` };
    }, split);
    const events: ServerSentEvent[] = [];
    for await (const event of streamEvents('http://127.0.0.1/stream', { fetch, reconnect: { random: () => 0 }, idleTimeoutMs: 0 })) {
      events.push(event);
    }
    expect(events).toEqual([
      { event: 'message', data: 'hello', lastEventId: '…' },
      { event: 'message', data: '…', lastEventId: '…' },
    ]);
    expect(requests.map((request) => request.headers.get('last-event-id'))).toEqual([null, '\xe2\x80\xa6', '\xe2\x80\xa6']);
  }, 5_000);

  it('an id sent in a block without data goes back as Last-Event-ID on the reconnection', async () => {
    const { fetch, requests } = fakeFetch((_request, n) => (n === 2 ? { status: 204 } : { body: 'retry: 1\ndata: a\n\nid: 7\r\n\r\n' }), split);
    const events: ServerSentEvent[] = [];
    for await (const event of streamEvents('http://127.0.0.1/stream', { fetch, reconnect: { random: () => 0 } })) events.push(event);
    expect(events).toEqual([{ event: 'message', data: 'a', lastEventId: '' }]);
    expect(requests.map((request) => request.headers.get('last-event-id'))).toEqual([null, '7']);
  });

  it.each(['\0\0', 'x\0', '\0x', 'x\0x', ' \0'])('format-field-id-null: an id with NUL (%j) is ignored', async (id) => {
    const { fetch, requests } = fakeFetch((request, n) => {
      if (n === 2) return { status: 204 };
      return { body: `id: ${id}\nretry: 1\ndata: hello\n\n` };
    }, split);
    const events: ServerSentEvent[] = [];
    for await (const event of streamEvents('http://127.0.0.1/stream', { fetch, reconnect: { random: () => 0 } })) events.push(event);
    expect(events).toEqual([{ event: 'message', data: 'hello', lastEventId: '' }]);
    expect(requests[1]?.headers.has('last-event-id')).toBe(false);
  });
});
