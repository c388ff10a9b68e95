import { describe, expect, it } from 'vitest';
import { createRelay, resumeCursor } from 'tokenrelay/relay';
import { toResponse } from 'tokenrelay/web';
import { tokenSource } from './helpers.js';

/** The GET route of a resumable chat: what a user writes with a fetch-runtime adapter. */
function route(relay: ReturnType<typeof createRelay>) {
  return (request: Request, id: string) =>
    toResponse((signal) => relay.subscribe(id, { after: resumeCursor(request), signal }), { request });
}

describe('a relay subscription behind the web adapter', () => {
  it('streams the chunks after Last-Event-ID, each with its index as the SSE id', async () => {
    const relay = createRelay();
    const { id, done } = await relay.start(tokenSource(['a', 'b', 'c']));
    await done;
    const response = await route(relay)(new Request('http://x/s', { headers: { 'Last-Event-ID': '0' } }), id);
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(body).toContain('id: 1\n');
    expect(body).toContain('id: 2\n');
    expect(body).not.toContain('id: 0\n');
    await relay.close();
  });

  it('answers 400 to a bad cursor and 404 to an unknown stream, without echoing either', async () => {
    const relay = createRelay();
    const { id, done } = await relay.start(tokenSource(['a']));
    await done;
    const tampered = await route(relay)(new Request('http://x/s?lastEventId=%3Cscript%3E'), id);
    expect(tampered.status).toBe(400);
    const text = await tampered.text();
    expect(JSON.parse(text).error.code).toBe('invalid-cursor');
    expect(text).not.toContain('script');
    const beyond = await route(relay)(new Request('http://x/s', { headers: { 'Last-Event-ID': '99' } }), id);
    expect(beyond.status).toBe(400);
    const missing = await route(relay)(new Request('http://x/s'), 'no-such-stream');
    expect(missing.status).toBe(404);
    expect(await missing.text()).not.toContain('no-such-stream');
    await relay.close();
  });
});
