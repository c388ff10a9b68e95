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
   * @defaultValue `'https://api.openai.com/v1'` / `'https://api.anthropic.com/v1'`
   */
  baseURL?: string | undefined;
  /** Cut the streamed bytes into random pieces with this seed (see `wireToStream`). */
  split?: { seed: number } | undefined;
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

async function respond(request: Request, script: MockScriptInput, options: MockHandlerOptions): Promise<Response> {
  const path = new URL(request.url).pathname;
  const api = apiForPath(path);
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
