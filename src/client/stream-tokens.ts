import type { FinishReason, TokenChunk, Usage } from '../core/types.js';
import { assertOptions, describeValue } from '../core/validate.js';
import { ClientStream } from './client-stream.js';
import { EventSourceEngine } from './engine.js';
import { errorFromPayload, StreamServerError } from './errors.js';
import { resolveConfig, STREAM_TOKENS_OPTIONS } from './options.js';
import { isRetryableEvent } from './retry-policy.js';
import type { ClientEventNames, ClientTokenStream, StreamTokensOptions } from './types.js';

interface Names {
  token: string;
  done: string;
  error: string;
  shutdown: string;
}

interface TokenState {
  /** The highest index yielded: anything at or below it is a replay. */
  lastIndex: number | undefined;
  lastTimestamp: number;
  text: string;
}

/**
 * Streams a tokenrelay endpoint's answer with `fetch`: POST a prompt (or any request), get the
 * `TokenChunk`s one by one. A broken or idle connection is reconnected with `Last-Event-ID` — to
 * the `resume` URL once the server sent the stream's id in `X-Stream-Id`, else to the same
 * request — with back-off; chunks are de-duplicated by index, so no token is ever seen twice. The
 * `done` event yields a last chunk with `finishReason` and `usage`, then the stream ends; an
 * `error` event is thrown as its typed error (`ProviderError`, `StreamTimeoutError`, …), except
 * `store-unavailable`, which reconnects; a `shutdown` event (server restart) reconnects after its
 * `retryMs`. A terminal answer (`producer-lost`, `not-found`, `invalid-cursor`, 401, 403, …) is
 * thrown at once, never retried. Aborting `signal` closes the connection at once.
 *
 * Not to be confused with `streamTokens` of `tokenrelay/hono`, which serves such a stream.
 *
 * @param input - The URL of the endpoint (relative URLs resolve against the page in browsers).
 * @example
 * ```ts
 * const controller = new AbortController();
 * const stream = streamTokens('/chat', { body: { messages }, resume: '/chat/{id}', signal: controller.signal });
 * for await (const chunk of stream) output.append(chunk.token);
 * ```
 */
export function streamTokens(input: string | URL, options: StreamTokensOptions = {}): ClientTokenStream {
  const config = resolveConfig(input, options, STREAM_TOKENS_OPTIONS);
  const names = resolveNames(options.events);
  const engine = new EventSourceEngine(config);
  const state: TokenState = { lastIndex: undefined, lastTimestamp: 0, text: '' };
  return new TokenStream(engine, readTokens(engine, names, state), config.signal, state);
}

class TokenStream extends ClientStream<TokenChunk> implements ClientTokenStream {
  readonly #state: TokenState;

  constructor(engine: EventSourceEngine, source: AsyncIterable<TokenChunk>, signal: AbortSignal | undefined, state: TokenState) {
    super(engine, source, signal);
    this.#state = state;
  }

  async text(): Promise<string> {
    for await (const _chunk of this);
    return this.#state.text;
  }
}

async function* readTokens(engine: EventSourceEngine, names: Names, state: TokenState): AsyncGenerator<TokenChunk, void, undefined> {
  for await (const { event, data } of engine.events()) {
    if (event === names.token) {
      const chunk = parseChunk(data);
      if (state.lastIndex !== undefined && chunk.index <= state.lastIndex) continue;
      state.lastIndex = chunk.index;
      state.lastTimestamp = chunk.timestamp;
      engine.progress();
      if (chunk.type === 'text') state.text += chunk.token;
      yield chunk;
    } else if (event === names.done) {
      yield finalChunk(parseJSON(data), state);
      return;
    } else if (event === names.error) {
      const error = errorFromPayload(parseJSON(data));
      if (!isRetryableEvent(error)) throw error;
      engine.retryAfterError(error);
    } else if (event === names.shutdown) {
      const retryMs = (parseJSON(data) as { retryMs?: unknown } | undefined)?.retryMs;
      engine.reconnectAfter(typeof retryMs === 'number' && retryMs >= 0 ? retryMs : 0, 'shutdown');
    }
  }
}

function parseJSON(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

function parseChunk(data: string): TokenChunk {
  const chunk = parseJSON(data) as Partial<TokenChunk> | undefined;
  if (
    chunk === null ||
    typeof chunk !== 'object' ||
    typeof chunk.token !== 'string' ||
    !Number.isSafeInteger(chunk.index) ||
    (chunk.index as number) < 0
  ) {
    throw new StreamServerError('protocol', 'Expected the data of a token event to be a TokenChunk as JSON');
  }
  return { ...chunk, type: chunk.type ?? 'text', timestamp: typeof chunk.timestamp === 'number' ? chunk.timestamp : 0 } as TokenChunk;
}

/** The `done` event as the last chunk of the stream: no text, `finishReason` and what is known. */
function finalChunk(done: unknown, state: TokenState): TokenChunk {
  const fields = (done !== null && typeof done === 'object' ? done : {}) as {
    finishReason?: unknown;
    index?: unknown;
    usage?: unknown;
    model?: unknown;
    provider?: unknown;
  };
  const index = Number.isSafeInteger(fields.index) ? (fields.index as number) : (state.lastIndex ?? 0);
  const chunk: TokenChunk = {
    token: '',
    index,
    timestamp: state.lastTimestamp,
    type: 'text',
    finishReason: typeof fields.finishReason === 'string' ? (fields.finishReason as FinishReason) : 'stop',
  };
  if (fields.usage !== null && typeof fields.usage === 'object') chunk.usage = fields.usage as Usage;
  if (typeof fields.model === 'string') chunk.model = fields.model;
  if (typeof fields.provider === 'string') chunk.provider = fields.provider;
  return chunk;
}

function eventName(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || /[\r\n\0]/.test(value)) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string without CR, LF or NUL, got ${describeValue(value)}`);
  }
  return value;
}

function resolveNames(events: ClientEventNames | undefined): Names {
  assertOptions('events', events as unknown, ['token', 'done', 'error', 'shutdown'] satisfies Array<keyof ClientEventNames>);
  return {
    token: eventName('events.token', events?.token ?? 'token'),
    done: eventName('events.done', events?.done ?? 'done'),
    error: eventName('events.error', events?.error ?? 'error'),
    shutdown: eventName('events.shutdown', events?.shutdown ?? 'shutdown'),
  };
}
