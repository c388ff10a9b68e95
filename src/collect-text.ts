import type { TokenChunk } from './core/types.js';
import { describeValue } from './core/validate.js';

/**
 * Reads a stream to its end and returns its answer text: the `token`s of `'text'` chunks,
 * concatenated (reasoning and tool-call fragments are left out). Errors from the stream
 * reject the promise unchanged.
 *
 * @example
 * ```ts
 * const answer = await collectText(streamOpenAI(openai, params, { signal }));
 * ```
 */
export async function collectText(stream: AsyncIterable<TokenChunk>): Promise<string> {
  if (stream === null || typeof stream !== 'object' || !(Symbol.asyncIterator in stream)) {
    throw new TypeError(`Expected \`stream\` to be an async iterable, got ${describeValue(stream)}`);
  }
  let text = '';
  for await (const chunk of stream) {
    if (chunk.type === 'text') text += chunk.token;
  }
  return text;
}
