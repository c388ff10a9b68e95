import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockRecorder } from './recorder.js';
import { answerRequest, apiForPath, jsonError, MISTRAL_PATH_PREFIX, parseBody } from './router.js';
import type { MockRequest, MockScriptInput, WireResponse } from './script.js';
import { createRandom } from './wire-stream.js';

/** Options of {@link startMockProvider}. */
export interface MockProviderOptions {
  /**
   * The port to listen on, on 127.0.0.1.
   * @defaultValue `0` (a free port)
   */
  port?: number | undefined;
  /**
   * What the provider answers, for every API (a function of the request can tell them apart).
   * @defaultValue a short text answer
   */
  script?: MockScriptInput | undefined;
  /** Write every frame in random small pieces, seeded, to exercise parsers. */
  split?:
    | {
        /** Seeds the random cuts: the same seed gives the same pieces. */
        seed: number;
      }
    | undefined;
}

/** A running loopback mock of the OpenAI and Anthropic streaming APIs. */
export interface MockProvider extends MockRecorder {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Pass as `baseURL` to the `openai` client. */
  readonly openaiBaseURL: string;
  /** Pass as `baseURL` to the `@anthropic-ai/sdk` client. */
  readonly anthropicBaseURL: string;
  /** Pass as `httpOptions.baseUrl` to `@google/genai` (Gemini API or `vertexai: true`; any `apiVersion`). */
  readonly googleBaseURL: string;
  /** Pass as `serverURL` to the `@mistralai/mistralai` client (`<url>/mistral`: Mistral's paths are OpenAI's). */
  readonly mistralServerURL: string;
  /** Pass as `baseURL` to the `openai` client to read the Mistral wire through the OpenAI-compatible path. */
  readonly mistralBaseURL: string;
  /**
   * Pass as `endpoint` to `BedrockRuntimeClient`, with `requestHandler: new NodeHttpHandler()` from
   * `@smithy/node-http-handler` (the client's default handler speaks HTTP/2 only; this server is HTTP/1.1).
   */
  readonly bedrockEndpoint: string;
  /** Replaces the script for the requests that follow. */
  setScript(script: MockScriptInput): void;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/**
 * Starts a real HTTP server on 127.0.0.1 that speaks OpenAI's and Anthropic's streaming wire
 * formats. It records when each request's connection was closed by the client, so a test can
 * prove that a disconnect reached the provider.
 *
 * @example
 * ```ts
 * const provider = await startMockProvider({ script: { tokens: ['Hi'], delayMs: 20 } });
 * const openai = new OpenAI({ apiKey: 'test', baseURL: provider.openaiBaseURL });
 * // …
 * const request = await provider.request(1);
 * expect((await request.ended).end).toBe('client-closed');
 * await provider.close();
 * ```
 */
export async function startMockProvider(options: MockProviderOptions = {}): Promise<MockProvider> {
  const recorder = new MockRecorder();
  let script: MockScriptInput = options.script ?? {};
  const server = createServer((req, res) => {
    handle(req, res, script, recorder, options.split).catch(() => res.destroy());
  });
  await listen(server, options.port ?? 0);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(recorder, {
    url,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    googleBaseURL: url,
    mistralServerURL: `${url}${MISTRAL_PATH_PREFIX}`,
    mistralBaseURL: `${url}${MISTRAL_PATH_PREFIX}/v1`,
    bedrockEndpoint: url,
    setScript(next: MockScriptInput) {
      script = next;
    },
    close: () => close(server),
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  script: MockScriptInput,
  recorder: MockRecorder,
  split: { seed: number } | undefined,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const api = apiForPath(path);
  const body = req.method === 'POST' ? parseBody(await readBody(req)) : undefined;
  if (api === undefined || body === undefined) {
    writeWhole(res, jsonError(api === undefined ? 404 : 400, api, 'Expected a POST with a JSON body to a known endpoint'));
    return;
  }
  const headers = Object.fromEntries(
    Object.entries(req.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]),
  );
  const request: MockRequest = { api, path, headers, body };
  const recording = recorder.start(request);
  res.on('close', () => recording.finish(res.writableFinished ? 'completed' : 'client-closed'));
  const wire = await answerRequest(request, script);
  if (wire.frames === undefined) {
    writeWhole(res, wire);
    return;
  }
  res.writeHead(wire.status, wire.headers);
  res.flushHeaders();
  const random = split === undefined ? undefined : createRandom(split.seed);
  for (const frame of wire.frames) {
    if (frame.delayMs > 0) await sleep(frame.delayMs, res);
    if (res.destroyed) return;
    writePieces(res, frame.bytes ?? frame.text, random);
  }
  if (wire.end === 'reset') {
    recording.finish('reset');
    res.socket?.resetAndDestroy();
  } else if (wire.end !== 'stall') {
    res.end();
  }
}

function writePieces(res: ServerResponse, text: string | Uint8Array, random: (() => number) | undefined): void {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  if (random === undefined) {
    res.write(bytes);
    return;
  }
  for (let start = 0; start < bytes.length; ) {
    const size = 1 + Math.floor(random() * 16);
    res.write(bytes.subarray(start, start + size));
    start += size;
  }
}

function writeWhole(res: ServerResponse, wire: WireResponse): void {
  res.writeHead(wire.status, wire.headers);
  res.end(wire.body ?? '');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** Waits `ms`, or less if the response closes first (a client that left needs no more pauses). */
function sleep(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('close', done);
  });
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
