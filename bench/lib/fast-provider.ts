/**
 * A mock OpenAI Chat Completions server faster than the testing kit's `startMockProvider`, for
 * the server benchmarks. Its frames are the testing kit's (`openaiChatWire`, byte for byte); only
 * the pacing differs, since `setTimeout` cannot pause less than 1 ms between tokens:
 *
 * - `paced`: `rate` tokens per second per stream, by the clock. A 1 ms timer tick writes, in one
 *   `res.write`, every token due by then (about 3 at 3,000 tokens/s), as they would come off a
 *   provider's socket. Each token's text is ` @<ms>`: `performance.timeOrigin + performance.now()`
 *   when it was written, so a client on the same machine computes its latency.
 * - `flood`: as fast as the socket takes them, `batch` frames per write, waiting for `drain`
 *   when `write()` returns `false` (a server that stops reading stops the provider), up to
 *   `maxTokens` or for at most `maxMs`; then it stops writing and leaves the response open.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openaiChatWire } from '../../src/testing/openai-wire.ts';
import type { MockRequest } from '../../src/testing/script.ts';

export type FastProviderMode =
  | { kind: 'paced'; tokensPerStream: number; rate: number }
  | { kind: 'flood'; maxTokens: number; maxMs: number; batch?: number | undefined };

/** One answered request. Times are `performance.now()` of the provider's process. */
export interface ProviderStream {
  tokens: number;
  startedAt: number;
  /** When the last token was written. */
  lastTokenAt: number;
  end: 'open' | 'completed' | 'client-closed';
  endedAt: number | undefined;
}

export interface FastProvider {
  readonly openaiBaseURL: string;
  /** How the requests that follow are answered. */
  configure(mode: FastProviderMode): void;
  /** Every request answered since the last {@link FastProvider.clear}. */
  readonly streams: readonly ProviderStream[];
  clear(): void;
  close(): Promise<void>;
}

const MARK = '\u0000MARK\u0000';
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);

/** A stream's frames around its tokens: `head`, then `before + token + after` per token, then `tail`. */
interface Template {
  status: number;
  headers: Record<string, string>;
  head: string;
  before: string;
  after: string;
  tail: string;
}

interface Paced {
  res: ServerResponse;
  record: ProviderStream;
  template: Template;
  total: number;
  rate: number;
}

export async function startFastProvider(): Promise<FastProvider> {
  let mode: FastProviderMode = { kind: 'paced', tokensPerStream: 100, rate: 1000 };
  const streams: ProviderStream[] = [];
  const paced = new Set<Paced>();
  let ticker: ReturnType<typeof setTimeout> | undefined;

  const tick = () => {
    ticker = undefined;
    const now = performance.now();
    const token = ` @${(performance.timeOrigin + now).toFixed(3)}`;
    for (const stream of paced) {
      const { record, template } = stream;
      const due = Math.min(stream.total, 1 + Math.floor(((now - record.startedAt) * stream.rate) / 1000));
      if (due <= record.tokens) continue;
      let text = '';
      for (; record.tokens < due; record.tokens++) text += template.before + token + template.after;
      record.lastTokenAt = now;
      if (record.tokens < stream.total) {
        stream.res.write(text);
        continue;
      }
      stream.res.end(text + template.tail);
      paced.delete(stream);
    }
    if (paced.size > 0) ticker = setTimeout(tick, 1);
  };

  const server = createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    const current = mode;
    const total = current.kind === 'paced' ? current.tokensPerStream : current.maxTokens;
    const template = templateFor({ api: 'openai-chat', path: req.url ?? '/', headers: {}, body }, total);
    const now = performance.now();
    const record: ProviderStream = { tokens: 0, startedAt: now, lastTokenAt: now, end: 'open', endedAt: undefined };
    streams.push(record);
    res.on('close', () => {
      record.end = res.writableFinished ? 'completed' : 'client-closed';
      record.endedAt = performance.now();
    });
    res.writeHead(template.status, template.headers);
    res.write(template.head);
    if (current.kind === 'paced') {
      const stream: Paced = { res, record, template, total, rate: current.rate };
      res.on('close', () => paced.delete(stream));
      paced.add(stream);
      ticker ??= setTimeout(tick, 0);
      return;
    }
    await flood(res, record, template, current);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    openaiBaseURL: `http://127.0.0.1:${port}/v1`,
    configure(next) {
      mode = next;
    },
    streams,
    clear() {
      streams.length = 0;
    },
    close() {
      clearTimeout(ticker);
      paced.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function flood(
  res: ServerResponse,
  record: ProviderStream,
  template: Template,
  mode: Extract<FastProviderMode, { kind: 'flood' }>,
): Promise<void> {
  const batch = mode.batch ?? 64;
  const frame = `${template.before} token${template.after}`;
  const full = frame.repeat(batch);
  const deadline = record.startedAt + mode.maxMs;
  while (record.tokens < mode.maxTokens && !res.destroyed && performance.now() < deadline) {
    const count = Math.min(batch, mode.maxTokens - record.tokens);
    const writable = res.write(count === batch ? full : frame.repeat(count));
    record.tokens += count;
    record.lastTokenAt = performance.now();
    // Yield to the event loop between batches even when the socket takes everything.
    if (writable) await new Promise((resolve) => setImmediate(resolve));
    else await drained(res, deadline);
  }
  if (record.tokens >= mode.maxTokens && !res.destroyed) res.end(template.tail);
}

function drained(res: ServerResponse, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
    res.once('drain', done);
    res.once('close', done);
  });
}

/** The testing kit's frames for a one-token answer, cut around the token. */
function templateFor(request: MockRequest, outputTokens: number): Template {
  const wire = openaiChatWire({ tokens: [MARK], usage: { inputTokens: 12, outputTokens } }, request);
  const frames = (wire.frames ?? []).map((frame) => frame.text);
  const at = frames.findIndex((text) => text.includes(MARK_JSON));
  const [before, after] = (frames[at] ?? '').split(MARK_JSON) as [string, string];
  return {
    status: wire.status,
    headers: wire.headers,
    head: frames.slice(0, at).join(''),
    before,
    after,
    tail: frames.slice(at + 1).join(''),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
