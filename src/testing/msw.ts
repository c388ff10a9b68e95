import { createRequire } from 'node:module';
import type { HttpHandler } from 'msw';
import { MockRecorder } from './recorder.js';
import { answerRequest, apiForPath, jsonError, parseBody } from './router.js';
import type { MockRequest, MockScriptInput } from './script.js';
import { wireToResponse } from './wire-stream.js';

/** Options of {@link openaiHandlers} and {@link anthropicHandlers}. */
export interface MockHandlerOptions {
  /**
   * The API base URL the handlers intercept.
   * @defaultValue `'https://api.openai.com/v1'` / `'https://api.anthropic.com/v1'` / `'https://api.mistral.ai'`
   */
  baseURL?: string | undefined;
  /** Cut the streamed bytes into random pieces with this seed (see `wireToStream`). */
  split?:
    | {
        /** Seeds the random cuts: the same seed gives the same pieces. */
        seed: number;
      }
    | undefined;
  /** Records each request and how its answer ended (to prove a cancellation reached the provider). */
  recorder?: MockRecorder | undefined;
}

/**
 * msw handlers that answer OpenAI's streamed Chat Completions and Responses requests with the
 * real wire format, driven by a script. msw (an optional peer) is loaded on the first call; without
 * it, this throws an `Error` that says to install it.
 *
 * @example
 * ```ts
 * const server = setupServer(...openaiHandlers({ tokens: ['Hel', 'lo'] }));
 * server.listen();
 * ```
 */
export function openaiHandlers(script: MockScriptInput = {}, options: MockHandlerOptions = {}): HttpHandler[] {
  const http = loadMswHttp('openaiHandlers');
  const base = trimSlash(options.baseURL ?? 'https://api.openai.com/v1');
  return [
    http.post(`${base}/chat/completions`, ({ request }) => respond(request, script, options)),
    http.post(`${base}/responses`, ({ request }) => respond(request, script, options)),
  ];
}

/**
 * msw handlers that answer Anthropic's streamed Messages requests with the real wire format
 * (`event:` lines, pings), driven by a script. msw is loaded on the first call, as for
 * {@link openaiHandlers}.
 *
 * @example
 * ```ts
 * const server = setupServer(...anthropicHandlers({ tokens: ['Hi'], delayMs: 5 }));
 * ```
 */
export function anthropicHandlers(script: MockScriptInput = {}, options: MockHandlerOptions = {}): HttpHandler[] {
  const http = loadMswHttp('anthropicHandlers');
  const base = trimSlash(options.baseURL ?? 'https://api.anthropic.com/v1');
  return [http.post(`${base}/messages`, ({ request }) => respond(request, script, options))];
}

/**
 * msw handlers that answer Mistral's streamed chat completions (`@mistralai/mistralai`
 * `chat.stream()`, or the `openai` SDK pointed at Mistral) with Mistral's wire format, driven by a
 * script. `baseURL` is the server URL without `/v1`. msw is loaded on the first call, as for
 * {@link openaiHandlers}.
 *
 * @example
 * ```ts
 * const server = setupServer(...mistralHandlers({ tokens: ['Bon', 'jour'] }));
 * ```
 */
export function mistralHandlers(script: MockScriptInput = {}, options: MockHandlerOptions = {}): HttpHandler[] {
  const http = loadMswHttp('mistralHandlers');
  const base = trimSlash(options.baseURL ?? 'https://api.mistral.ai');
  return [http.post(`${base}/v1/chat/completions`, ({ request }) => respond(request, script, options, 'mistral-chat'))];
}

/** Gemini API and every Vertex AI host (global, regional, multi-regional `rep`). */
const GOOGLE_HOSTS = /^https:\/\/(?:generativelanguage|aiplatform|[a-z0-9-]+-aiplatform|aiplatform\.[a-z0-9-]+\.rep)\.googleapis\.com\//;

/**
 * msw handlers that answer `@google/genai` `models.generateContentStream` with Gemini's wire
 * format, driven by a script: the Gemini API and Vertex AI (`vertexai: true`), under any API
 * version (`/v1/…`, `/v1beta/…`, `/v1beta1/…`). By default they intercept
 * `generativelanguage.googleapis.com` and every `aiplatform` host; `baseURL` narrows them to one
 * (the SDK's `httpOptions.baseUrl`). msw is loaded on the first call, as for {@link openaiHandlers}.
 *
 * @example
 * ```ts
 * const server = setupServer(...googleHandlers({ reasoning: ['Hm.'], tokens: ['Hi'] }));
 * ```
 */
export function googleHandlers(script: MockScriptInput = {}, options: MockHandlerOptions = {}): HttpHandler[] {
  const http = loadMswHttp('googleHandlers');
  const base = options.baseURL === undefined ? undefined : `${trimSlash(options.baseURL)}/`;
  const matches = (url: string) => (base === undefined ? GOOGLE_HOSTS.test(url) : url.startsWith(base));
  // The method sits after a colon in the path (`models/gemini-2.5-flash:streamGenerateContent`),
  // which msw's path patterns would read as a parameter: match the whole URL instead.
  const pattern = /:(stream)?[gG]enerateContent(\?|$)/;
  return [
    http.post(pattern, ({ request }) =>
      matches(request.url) ? respond(request, script, options, 'google-generate-content') : undefined,
    ),
  ];
}

/** Bedrock runtime endpoints of every region and partition (FIPS included). */
const BEDROCK_HOSTS = /^https:\/\/bedrock-runtime(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?\//;

/**
 * msw handlers that answer `@aws-sdk/client-bedrock-runtime` `ConverseStreamCommand` with Bedrock's
 * binary event stream (see `bedrockConverseWire`), driven by a script. By default they intercept
 * the `bedrock-runtime` endpoint of every region; `baseURL` narrows them to one (the client's
 * `endpoint`). msw intercepts HTTP/1.1 only: give the client `requestHandler: new NodeHttpHandler()`
 * (`@smithy/node-http-handler`), since its default handler speaks HTTP/2. msw is loaded on the
 * first call, as for {@link openaiHandlers}.
 *
 * @example
 * ```ts
 * const server = setupServer(...bedrockHandlers({ tokens: ['Hel', 'lo'] }));
 * const bedrock = new BedrockRuntimeClient({ region: 'us-east-1', requestHandler: new NodeHttpHandler() });
 * ```
 */
export function bedrockHandlers(script: MockScriptInput = {}, options: MockHandlerOptions = {}): HttpHandler[] {
  const http = loadMswHttp('bedrockHandlers');
  const base = options.baseURL === undefined ? undefined : `${trimSlash(options.baseURL)}/`;
  const matches = (url: string) => (base === undefined ? BEDROCK_HOSTS.test(url) : url.startsWith(base));
  return [
    http.post(/\/model\/[^/]+\/converse-stream$/, ({ request }) =>
      matches(request.url) ? respond(request, script, options, 'bedrock-converse-stream') : undefined,
    ),
  ];
}

async function respond(
  request: Request,
  script: MockScriptInput,
  options: MockHandlerOptions,
  known?: MockRequest['api'],
): Promise<Response> {
  const path = new URL(request.url).pathname;
  const api = known ?? apiForPath(path);
  const body = parseBody(await request.text());
  if (api === undefined || body === undefined) {
    return wireToResponse(jsonError(400, api, 'Expected a JSON object body on a known endpoint'));
  }
  const mockRequest: MockRequest = { api, path, headers: Object.fromEntries(request.headers), body };
  const recording = options.recorder?.start(mockRequest);
  const wire = await answerRequest(mockRequest, script);
  return wireToResponse(wire, {
    signal: request.signal,
    split: options.split,
    onEnd: (how) => recording?.finish(how === 'completed' || how === 'reset' ? how : 'client-closed'),
  });
}

type MswHttp = typeof import('msw').http;
let mswHttp: MswHttp | undefined;

// msw is loaded on the first call, not when `tokenrelay/testing` is imported, so that
// startMockProvider and the wire builders work without it. A synchronous require keeps the API
// plain (`setupServer(...openaiHandlers())`): msw 3 is ESM-only and needs Node >= 22.12, which
// can require() an ES module and returns the same instance as `import 'msw/node'` does.
function loadMswHttp(caller: string): MswHttp {
  if (mswHttp !== undefined) return mswHttp;
  try {
    mswHttp = (createRequire(import.meta.url)('msw') as typeof import('msw')).http;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const missing = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
    throw new Error(
      missing
        ? `\`${caller}\` needs msw, an optional peer dependency of tokenrelay: install it (\`npm install --save-dev msw\`)`
        : `\`${caller}\` could not load msw: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return mswHttp;
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}
