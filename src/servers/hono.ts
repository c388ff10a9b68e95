import type { Context } from 'hono';
import { describeValue } from '../validate.js';
import type { TokenSourceInput } from './internal/response-stream.js';
import { toResponse, type ToResponseOptions } from './web.js';

export { closeAllStreams } from './internal/registry.js';
export type { CloseAllStreamsOptions } from './internal/registry.js';
export type { StreamResponseOptions, TokenSourceInput } from './internal/response-stream.js';

/**
 * Options of {@link streamTokens}: those of `toResponse`, without `request` (it is `c.req.raw`).
 *
 * @example
 * ```ts
 * const options: StreamTokensOptions = { timeout: { idleMs: 30_000 }, heartbeatMs: 10_000 };
 * ```
 */
export type StreamTokensOptions = Omit<ToResponseOptions, 'request'>;

/**
 * Answers a Hono request with the stream as Server-Sent Events; the client going away
 * (`c.req.raw.signal`, or the runtime cancelling the body) aborts the source. Works wherever
 * Hono runs: `@hono/node-server`, Bun, Deno, Cloudflare Workers.
 *
 * Like `toResponse` from `tokenrelay/web`, it waits (up to `statusWindowMs`) for the first
 * chunk, so a provider error before it is answered with its own status and a JSON body.
 * Headers set earlier with `c.header()` are kept; the SSE headers win over them.
 *
 * @param source - A factory `(signal) => stream` or `async (signal) => stream` (recommended: the
 *   signal reaches the provider SDK), or a stream.
 * @example
 * ```ts
 * app.post('/chat', async (c) => {
 *   const { messages } = await c.req.json();
 *   return streamTokens(c, (signal) => streamOpenAI(openai, { model: 'gpt-4o-mini', messages }, { signal }));
 * });
 * ```
 */
export async function streamTokens(
  c: Context,
  source: TokenSourceInput,
  options: StreamTokensOptions = {},
): Promise<Response> {
  if (c === null || typeof c !== 'object' || typeof c.newResponse !== 'function' || c.req?.raw === undefined) {
    throw new TypeError(`Expected \`c\` to be a Hono Context, got ${describeValue(c)}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected \`options\` to be an object, got ${describeValue(options)}`);
  }
  const response = await toResponse(source, { ...options, request: c.req.raw });
  // newResponse merges what `c.header()` set before; the body stream is passed on, not copied.
  return c.newResponse(response.body, response);
}
