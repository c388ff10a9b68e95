import { describe, expect, it } from 'vitest';
import { checkSSEOptions } from '../../src/operators/to-sse.js';

describe("tokenrelay's protocol object", () => {
  it('is one object for every plan with the default events, retry and serializer', () => {
    const a = checkSSEOptions({}, true).protocol;
    const b = checkSSEOptions({ heartbeatMs: 5_000, exposeErrors: true, events: { token: 'token' } }, true).protocol;
    expect(b).toBe(a);
    expect(a.encoder({ exposeErrors: false }).chunk({ token: 'x', index: 0, timestamp: 0, type: 'text' })).toBe(
      'id: 0\nevent: token\ndata: {"token":"x","index":0,"timestamp":0,"type":"text"}\n\n',
    );
  });

  it('is its own object for renamed events, a retry frame or a serializer', () => {
    const shared = checkSSEOptions({}, true).protocol;
    const renamed = checkSSEOptions({ events: { token: 'tok' } }, true).protocol;
    const retry = checkSSEOptions({ retryMs: 3_000 }, true).protocol;
    const serialized = checkSSEOptions({ serialize: (chunk) => chunk.token }, true).protocol;
    for (const protocol of [renamed, retry, serialized]) expect(protocol).not.toBe(shared);
    expect(renamed.encoder({ exposeErrors: false }).chunk({ token: 'x', index: 0, timestamp: 0, type: 'text' })).toContain('event: tok\n');
    expect(retry.encoder({ exposeErrors: false }).open()).toBe('retry: 3000\n\n');
    expect(serialized.encoder({ exposeErrors: false }).chunk({ token: 'x', index: 0, timestamp: 0, type: 'text' })).toContain('data: x\n');
  });

  it('keeps its methods on the prototype: no closures per plan', () => {
    const protocol = checkSSEOptions({ events: { done: 'end' } }, true);
    expect(Object.keys(protocol.protocol)).toEqual(['name', 'headers', 'heartbeat']);
    expect(protocol.protocol.errorBody({ code: 'provider', message: 'x' })).toBe('{"error":{"code":"provider","message":"x"}}');
    expect(protocol.protocol.shutdownFrame({ retryMs: 1_000, message: 'bye' })).toBe(
      'retry: 1000\nevent: shutdown\ndata: {"retryMs":1000,"message":"bye"}\n\n',
    );
  });
});
