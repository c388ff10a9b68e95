import { describe, expect, it } from 'vitest';
import { fromAsyncIterable, tokens, type TokenChunk } from 'tokenrelay';

async function collect(source: AsyncIterable<TokenChunk>): Promise<TokenChunk[]> {
  const chunks: TokenChunk[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return chunks;
}

const strip = ({ timestamp: _timestamp, ...rest }: TokenChunk) => rest;

describe('fromAsyncIterable and tokens', () => {
  it('stamps gap-free indexes and ends with exactly one finish chunk', async () => {
    const chunks = await collect(tokens(['Hel', 'lo', ' 世界 👋'], { provider: 'langchain', model: 'm1' }));
    expect(chunks.map(strip)).toEqual([
      { token: 'Hel', index: 0, type: 'text', model: 'm1', provider: 'langchain' },
      { token: 'lo', index: 1, type: 'text', model: 'm1', provider: 'langchain' },
      { token: ' 世界 👋', index: 2, type: 'text', model: 'm1', provider: 'langchain' },
      { token: '', index: 3, type: 'text', finishReason: 'stop', model: 'm1', provider: 'langchain' },
    ]);
    const times = chunks.map((chunk) => chunk.timestamp);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('reads async sources and partial chunks, and ends at a chunk with a finishReason', async () => {
    async function* source() {
      yield 'a';
      yield { token: '{"q":', type: 'tool-call' as const, toolCall: { id: 'c1', name: 'search', index: 0 } };
      yield { finishReason: 'tool-calls' as const, usage: { inputTokens: 5, outputTokens: 2 } };
      throw new Error('never read');
    }
    const chunks = await collect(fromAsyncIterable(source()));
    expect(chunks.map(strip)).toEqual([
      { token: 'a', index: 0, type: 'text' },
      { token: '{"q":', index: 1, type: 'tool-call', toolCall: { id: 'c1', name: 'search', index: 0 } },
      { token: '', index: 2, type: 'text', finishReason: 'tool-calls', usage: { inputTokens: 5, outputTokens: 2 } },
    ]);
  });

  it('uses the given finishReason when the source ends without one', async () => {
    const chunks = await collect(tokens([], { finishReason: 'length' }));
    expect(chunks.map(strip)).toEqual([{ token: '', index: 0, type: 'text', finishReason: 'length' }]);
  });

  it('runs the source finally when the consumer breaks', async () => {
    let cleaned = false;
    async function* source() {
      try {
        yield 'a';
        yield 'b';
      } finally {
        cleaned = true;
      }
    }
    for await (const _chunk of fromAsyncIterable(source())) break;
    expect(cleaned).toBe(true);
  });

  it('fails fast on a source that is not iterable, and on bad items', async () => {
    expect(() => fromAsyncIterable(42 as never)).toThrow(
      new TypeError('Expected `source` to be an iterable or async iterable, got 42'),
    );
    await expect(collect(fromAsyncIterable([7] as never))).rejects.toThrow(
      'Expected each item to be a string or a chunk object, got 7',
    );
  });
});
