// The 'ag-ui' protocol read by the real clients, through real listening servers (node sendSSE,
// Express sse()) and through toResponse: @ag-ui/client's HttpAgent (which checks every event with
// @ag-ui/core's schemas and its own sequence verifier) and @tanstack/ai-client's ChatClient with
// fetchServerSentEvents. Every exit path must end with the protocol's terminal event, leave
// nothing open on the server, and make no client complain.
import { once } from 'node:events';
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';
import { ChatClient, fetchServerSentEvents } from '@tanstack/ai-client';
import express from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProviderError, type TokenChunk } from 'tokenrelay';
import { sse } from 'tokenrelay/express';
import { closeAllStreams, sendSSE, type SendSSEResult } from 'tokenrelay/node';
import { toResponse } from 'tokenrelay/web';
import { readRunAgentInput } from 'tokenrelay/protocols';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

/** What a scenario's source did: whether its `finally` ran and whether its signal was aborted. */
interface SourceState {
  finallyRan: boolean;
  aborted: boolean;
  started: Promise<void>;
}

type Scenario = (signal: AbortSignal, state: SourceState) => AsyncIterable<TokenChunk>;

const call = { id: 'call_1', name: 'get_weather', index: 0 };
const ARGS = '{"city":"Paris","unit":"°C"}';

/** Text, then a tool call whose arguments come in three fragments, then `tool-calls`. */
async function* answer(): AsyncGenerator<TokenChunk> {
  let index = 0;
  for (const token of ['Let me ', 'check ', 'the weather 🌤.']) yield { token, index: index++, timestamp: 0, type: 'text' };
  for (const token of ['{"city":', '"Paris",', '"unit":"°C"}']) yield { token, index: index++, timestamp: 0, type: 'tool-call', toolCall: call };
  yield { token: '', index: index++, timestamp: 0, type: 'text', finishReason: 'tool-calls', usage: { inputTokens: 9, outputTokens: 12 } };
}

/** Wraps a scenario so its `finally` and its signal are observed. */
function observed(scenario: Scenario): { state: SourceState; start: (signal: AbortSignal) => AsyncIterable<TokenChunk> } {
  let started!: () => void;
  const state: SourceState = { finallyRan: false, aborted: false, started: new Promise((resolve) => (started = resolve)) };
  async function* run(signal: AbortSignal): AsyncGenerator<TokenChunk> {
    started();
    try {
      yield* scenario(signal, state);
    } finally {
      state.finallyRan = true;
      state.aborted = signal.aborted;
    }
  }
  return { state, start: run };
}

/** A token, then nothing until the signal aborts (bounded: it never yields again). */
async function* stallAfterFirst(signal: AbortSignal): AsyncGenerator<TokenChunk> {
  yield { token: 'Hel', index: 0, timestamp: 0, type: 'text' };
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

async function readJSON(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const part of req) text += String(part);
  return JSON.parse(text);
}

/** A node:http server answering each POST with `sendSSE(..., { protocol: 'ag-ui' })`; its results. */
async function nodeServer(
  start: (signal: AbortSignal) => AsyncIterable<TokenChunk>,
  options: { timeout?: { idleMs: number } } = {},
): Promise<{ url: string; results: Array<Promise<SendSSEResult>> }> {
  const results: Array<Promise<SendSSEResult>> = [];
  const server = http.createServer((req, res) => {
    const result = readJSON(req).then((body) =>
      sendSSE(
        req,
        res,
        (signal) => {
          readRunAgentInput(body, { signal });
          return start(signal);
        },
        { protocol: 'ag-ui', heartbeatMs: false, statusWindowMs: 0, ...options },
      ),
    );
    results.push(result);
  });
  return { url: await listen(server), results };
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/agent`;
}

/** Runs an HttpAgent against `url` (or through `fetchImpl`); every event it delivered, validated again. */
async function runAgent(
  url: string,
  options: { fetchImpl?: typeof fetch; onContent?: (agent: HttpAgent) => void } = {},
): Promise<{ agent: HttpAgent; events: Array<Record<string, unknown>>; error: unknown }> {
  const agent = new HttpAgent({
    url,
    threadId: 'thread-7',
    initialMessages: [{ id: 'u1', role: 'user', content: 'Weather in Paris?' }],
    ...(options.fetchImpl === undefined ? {} : { fetch: options.fetchImpl }),
  });
  const events: Array<Record<string, unknown>> = [];
  let error: unknown;
  try {
    await agent.runAgent(
      { runId: 'run-7', tools: [{ name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object' } }] },
      {
        onEvent: ({ event }) => {
          events.push(event as unknown as Record<string, unknown>);
          expect(EventSchemas.safeParse(event).success).toBe(true);
        },
        onTextMessageContentEvent: () => options.onContent?.(agent),
      },
    );
  } catch (caught) {
    error = caught;
  }
  return { agent, events, error };
}

/** console.warn and console.error of the clients: none may fire ("[ag-ui][enforce] Removed …" would mean a stripped field). */
function watchConsole(): () => unknown[][] {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  return () => [...warn.mock.calls, ...error.mock.calls];
}

const types = (events: Array<Record<string, unknown>>) => events.map((event) => event.type);

describe("@ag-ui/client HttpAgent reads 'ag-ui'", () => {
  it('completed (node sendSSE): exact text and tool call, the request ids, usage, nothing left open', async () => {
    const complaints = watchConsole();
    const source = observed(answer);
    const { url, results } = await nodeServer(source.start);
    const { agent, events, error } = await runAgent(url);
    expect(error).toBeUndefined();
    expect(types(events)).toEqual([
      'RUN_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'RUN_FINISHED',
    ]);
    expect(events[0]).toMatchObject({ threadId: 'thread-7', runId: 'run-7' });
    expect(events.at(-1)).toMatchObject({ threadId: 'thread-7', runId: 'run-7', usage: [{ inputTokens: 9, outputTokens: 12, totalTokens: 21 }] });
    const assistant = agent.messages.find((message) => message.role === 'assistant') as {
      content: string;
      toolCalls: Array<{ id: string; function: { name: string; arguments: string } }>;
    };
    expect(assistant.content).toBe('Let me check the weather 🌤.');
    expect(assistant.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: ARGS } }]);
    const result = await results[0];
    expect(result?.outcome).toBe('completed');
    expect(source.state.finallyRan).toBe(true);
    expect(complaints()).toEqual([]);
  });

  it('completed (Express sse() and toResponse): the same events', async () => {
    const complaints = watchConsole();
    const app = express();
    app.post(
      '/agent',
      express.json(),
      sse((req, signal) => {
        readRunAgentInput(req.body, { signal });
        return answer();
      }, { protocol: 'ag-ui', heartbeatMs: false }),
    );
    const expressRun = await runAgent(await listen(http.createServer(app)));
    const webRun = await runAgent('http://local/agent', {
      fetchImpl: async (input, init) => {
        const request = new Request(input, init);
        const body: unknown = await request.json();
        return toResponse(
          (signal) => {
            readRunAgentInput(body, { signal });
            return answer();
          },
          { protocol: 'ag-ui', request, heartbeatMs: false },
        );
      },
    });
    for (const run of [expressRun, webRun]) {
      expect(run.error).toBeUndefined();
      expect(types(run.events).at(-1)).toBe('RUN_FINISHED');
      expect(run.events[0]).toMatchObject({ threadId: 'thread-7', runId: 'run-7' });
      const assistant = run.agent.messages.find((message) => message.role === 'assistant') as { content: string; toolCalls: unknown[] };
      expect(assistant.content).toBe('Let me check the weather 🌤.');
      expect(assistant.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: ARGS } }]);
    }
    expect(complaints()).toEqual([]);
  });

  it('client abort: the provider request is aborted and the source closed; the agent ends its run', async () => {
    const source = observed((signal) => stallAfterFirst(signal));
    const { url, results } = await nodeServer(source.start);
    const { events } = await runAgent(url, { onContent: (agent) => agent.abortRun() });
    const result = await results[0];
    expect(result?.outcome).toBe('client-closed');
    expect(source.state).toMatchObject({ finallyRan: true, aborted: true });
    // The server never got to write a terminal event: HttpAgent's transport reports the abort itself.
    expect(types(events).at(-1)).toBe('RUN_ERROR');
    expect(events.at(-1)).toMatchObject({ code: 'abort' });
  });

  it('provider error before the first token: an HTTP 429 whose body is a RUN_ERROR', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const source = observed(async function* () {
      yield* [];
      throw new ProviderError('rate limited', { status: 429 });
    });
    const { url, results } = await nodeServer(source.start);
    const { events, error } = await runAgent(url);
    expect(events).toEqual([]);
    expect(error).toMatchObject({ status: 429, payload: { type: 'RUN_ERROR', code: 'provider', message: 'The provider failed' } });
    expect((await results[0])?.outcome).toBe('http-error');
    expect(source.state.finallyRan).toBe(true);
  });

  it('provider error after the first token: TEXT_MESSAGE_END then RUN_ERROR with code provider', async () => {
    const complaints = watchConsole();
    const source = observed(async function* () {
      yield { token: 'Hel', index: 0, timestamp: 0, type: 'text' };
      throw new ProviderError('overloaded', { status: 529 });
    });
    const { url, results } = await nodeServer(source.start);
    const { events, error } = await runAgent(url);
    expect(error).toBeUndefined();
    expect(types(events)).toEqual(['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_ERROR']);
    expect(events.at(-1)).toMatchObject({ code: 'provider' });
    expect((await results[0])?.outcome).toBe('completed');
    expect(source.state.finallyRan).toBe(true);
    expect(complaints()).toEqual([]);
  });

  it('timeout: RUN_ERROR with code timeout, the provider request aborted', async () => {
    const complaints = watchConsole();
    const source = observed((signal) => stallAfterFirst(signal));
    const { url } = await nodeServer(source.start, { timeout: { idleMs: 50 } });
    const { events, error } = await runAgent(url);
    expect(error).toBeUndefined();
    expect(types(events).slice(-2)).toEqual(['TEXT_MESSAGE_END', 'RUN_ERROR']);
    expect(events.at(-1)).toMatchObject({ code: 'timeout' });
    expect(source.state).toMatchObject({ finallyRan: true, aborted: true });
    expect(complaints()).toEqual([]);
  });

  it('shutdown (closeAllStreams): RUN_ERROR with code shutdown, the provider request aborted', async () => {
    const complaints = watchConsole();
    const source = observed((signal) => stallAfterFirst(signal));
    const { url, results } = await nodeServer(source.start);
    const run = runAgent(url, { onContent: () => void closeAllStreams({ retryMs: 500, reason: 'deploy' }) });
    const { events, error } = await run;
    expect(error).toBeUndefined();
    expect(types(events)).toEqual(['RUN_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'RUN_ERROR']);
    expect(events.at(-1)).toMatchObject({ code: 'shutdown', message: 'deploy' });
    expect((await results[0])?.outcome).toBe('shutdown');
    expect(source.state).toMatchObject({ finallyRan: true, aborted: true });
    expect(complaints()).toEqual([]);
  });
});

describe("@tanstack/ai-client ChatClient (fetchServerSentEvents) reads 'ag-ui'", () => {
  /** The client's fetch, teeing each response body so the wire itself can be checked too. */
  function recording(inner: typeof fetch, bodies: Array<Promise<string>>): typeof fetch {
    return async (input, init) => {
      const response = await inner(input, init);
      if (response.body === null) return response;
      const [mine, theirs] = response.body.tee();
      bodies.push(new Response(theirs).text().catch(() => '(aborted)'));
      return new Response(mine, response);
    };
  }

  async function chat(url: string, options: { fetchClient?: typeof fetch; stopOnChunk?: boolean } = {}) {
    const chunks: Array<Record<string, unknown>> = [];
    const errors: Error[] = [];
    const bodies: Array<Promise<string>> = [];
    const fetchClient = recording(options.fetchClient ?? fetch, bodies);
    const client: ChatClient = new ChatClient({
      connection: fetchServerSentEvents(url, { fetchClient }),
      onChunk: (chunk) => {
        chunks.push(chunk as unknown as Record<string, unknown>);
        if (options.stopOnChunk === true && chunk.type === 'TEXT_MESSAGE_CONTENT') queueMicrotask(() => client.stop());
      },
      onError: (error) => errors.push(error),
    });
    await client.sendMessage('Weather in Paris?');
    return { client, chunks, errors, wire: await Promise.all(bodies) };
  }

  it('completed (node sendSSE and toResponse): exact text and tool call in the assistant message', async () => {
    const complaints = watchConsole();
    const source = observed(answer);
    const { url, results } = await nodeServer(source.start);
    const runs = [
      await chat(url),
      await chat('http://local/agent', {
        fetchClient: async (input, init) => {
          const request = new Request(input, init);
          const body: unknown = await request.json();
          return toResponse(
            (signal) => {
              readRunAgentInput(body, { signal });
              return answer();
            },
            { protocol: 'ag-ui', request, heartbeatMs: false },
          );
        },
      }),
    ];
    for (const { client, chunks, errors, wire } of runs) {
      expect(errors).toEqual([]);
      // TanStack hands onChunk its own reshaping (e.g. `usage`), so the schemas check the wire.
      expect(wire).toHaveLength(1);
      const events = (wire[0] ?? '').split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as unknown);
      expect(events).toHaveLength(chunks.length);
      for (const event of events) expect(EventSchemas.safeParse(event).success, JSON.stringify(event)).toBe(true);
      expect(chunks[0]?.type).toBe('RUN_STARTED');
      expect(chunks.at(-1)?.type).toBe('RUN_FINISHED');
      // The request's own run id (TanStack's runContext) came back.
      expect(chunks.at(-1)?.runId).toBe(chunks[0]?.runId);
      const assistant = client.getMessages().find((message) => message.role === 'assistant');
      const parts = assistant?.parts as Array<{ type: string; content?: string; id?: string; name?: string; arguments?: string }>;
      expect(parts.filter((part) => part.type === 'text').map((part) => part.content).join('')).toBe('Let me check the weather 🌤.');
      expect(parts.filter((part) => part.type === 'tool-call').map(({ id, name, arguments: args }) => ({ id, name, args }))).toEqual([
        { id: 'call_1', name: 'get_weather', args: ARGS },
      ]);
      expect(client.getStatus()).not.toBe('error');
    }
    expect((await results[0])?.outcome).toBe('completed');
    expect(complaints()).toEqual([]);
  });

  it('provider error after the first token: the error reaches onError with its code; no reconnect', async () => {
    const source = observed(async function* () {
      yield { token: 'Hel', index: 0, timestamp: 0, type: 'text' };
      throw new ProviderError('overloaded', { status: 529 });
    });
    const { url, results } = await nodeServer(source.start);
    const { chunks, errors } = await chat(url);
    expect(chunks.at(-1)).toMatchObject({ type: 'RUN_ERROR', code: 'provider' });
    expect(errors).toHaveLength(1);
    expect(results).toHaveLength(1);
    expect(source.state.finallyRan).toBe(true);
  });

  it('client stop: the provider request is aborted and the source closed', async () => {
    const source = observed((signal) => stallAfterFirst(signal));
    const { url, results } = await nodeServer(source.start);
    await chat(url, { stopOnChunk: true });
    expect((await results[0])?.outcome).toBe('client-closed');
    expect(source.state).toMatchObject({ finallyRan: true, aborted: true });
  });
});
