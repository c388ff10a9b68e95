/**
 * The clients of the server benchmarks: readers that time every token, clients that disconnect
 * at a random point, and a reader that never reads. They run in a process of their own (see
 * load-process.ts), never in the server's.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';
import type { MockRecorder, RecordedRequest } from '../../src/testing/recorder.ts';
import { createRandom } from '../../src/testing/wire-stream.ts';
import { percentiles, type Percentiles } from './percentiles.ts';
import type { ProviderKind } from './provider-servers.ts';
import type { AdapterKind } from './servers.ts';

// ` @<ms>`, as the fast provider stamps its tokens (fast-provider.ts).
const STAMP = /@(\d{10,}\.\d{3})/g;

export interface ReadStreamsOptions {
  /** `http://127.0.0.1:<port>/chat` */
  url: string;
  clients: number;
  /** Tokens each stream should bring: sizes the latency buffer; a stream with fewer is incomplete. */
  tokensPerStream: number;
  /** Gives up (and reports what came) after this long. */
  maxMs: number;
}

export interface ReadStreamsResult {
  /** Streams that ended normally with every token. */
  completed: number;
  /** Stamped tokens received, over all streams. */
  tokens: number;
  bytes: number;
  /** Receipt − emit of every stamped token, in ms. */
  latency: Percentiles;
  wallMs: number;
  /** This (the load) process's CPU time over wall time: near 1, it is the bottleneck and latencies mean little. */
  clientLoad: number;
}

/**
 * Opens `clients` streams at once (one connection each, as browser tabs do) with `POST` and a
 * JSON body, reads them to the end and times every stamped token: the time of the network read
 * that completed its frame, minus the stamp, on the same clock (`timeOrigin + now`).
 */
export async function readStreams(options: ReadStreamsOptions): Promise<ReadStreamsResult> {
  const { url, clients, tokensPerStream, maxMs } = options;
  const latencies = new Float64Array(clients * tokensPerStream);
  let tokens = 0;
  let bytes = 0;
  let completed = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const body = JSON.stringify({ prompt: 'Tell me a long story.' });

  const one = () =>
    new Promise<void>((resolve) => {
      let count = 0;
      let carry = '';
      const timer = setTimeout(() => req.destroy(), maxMs);
      const req = httpRequest(
        url,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (text: string) => {
            const received = performance.timeOrigin + performance.now();
            bytes += Buffer.byteLength(text);
            carry += text;
            const end = carry.lastIndexOf('\n\n');
            if (end === -1) return;
            for (const match of carry.slice(0, end).matchAll(STAMP)) {
              if (tokens < latencies.length) latencies[tokens] = received - Number(match[1]);
              tokens++;
              count++;
            }
            carry = carry.slice(end + 2);
          });
          res.on('end', () => {
            if (res.statusCode === 200 && count === tokensPerStream) completed++;
          });
          res.on('close', () => {
            clearTimeout(timer);
            resolve();
          });
        },
      );
      req.on('error', () => {
        clearTimeout(timer);
        resolve();
      });
      req.end(body);
    });

  await Promise.all(Array.from({ length: clients }, one));
  const wallMs = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  return {
    completed,
    tokens,
    bytes,
    latency: percentiles(latencies.subarray(0, Math.min(tokens, latencies.length))),
    wallMs,
    clientLoad: (user + system) / 1000 / wallMs,
  };
}

// --- disconnects ---------------------------------------------------------------------------

export interface AbortClientsOptions {
  /** The adapter's server: `http://127.0.0.1:<port>`. */
  url: string;
  /** A server adapter serving OpenAI, or a provider adapter behind node `sendSSE`: only `ws` changes the client. */
  kind: AdapterKind | ProviderKind;
  count: number;
  concurrency: number;
  /** Each client disconnects after the first token plus a random delay in [0, maxDelayMs). */
  maxDelayMs: number;
  seed: number;
  /** A provider request still open this long after its client left counts as never closed. */
  giveUpMs: number;
}

export interface AbortClientsResult {
  /** Client disconnect → the provider saw its request closed, ms, for every one that closed. */
  latencies: number[];
  /** Provider requests still open `giveUpMs` after their client left. */
  neverClosed: number;
  /** Clients that could not disconnect mid-stream (error, or the stream ended first). */
  failed: string[];
}

/**
 * `count` clients, `concurrency` at a time, each starting an answer, disconnecting abruptly (the
 * socket destroyed, as when a tab or a network goes away) at a random point after its first
 * token, and timing how long until the mock provider (whose recorder runs in this process, on
 * this clock) sees the request closed.
 */
export async function abortClients(recorder: MockRecorder, options: AbortClientsOptions): Promise<AbortClientsResult> {
  const random = createRandom(options.seed);
  const delays = Array.from({ length: options.count }, () => random() * options.maxDelayMs);
  const byPrompt = new Map<string, RecordedRequest>();
  let scanned = 0;
  const find = (prompt: string) => {
    for (; scanned < recorder.requests.length; scanned++) {
      const record = recorder.requests[scanned] as RecordedRequest;
      byPrompt.set(promptOf(record), record);
    }
    return byPrompt.get(prompt);
  };
  const result: AbortClientsResult = { latencies: [], neverClosed: 0, failed: [] };
  let next = 0;

  const worker = async () => {
    while (next < options.count) {
      const n = next++;
      const prompt = `abort-${options.kind}-${options.seed}-${n}`;
      const disconnect = await disconnectOnce(options.kind, options.url, prompt, delays[n] as number);
      if (typeof disconnect === 'string') {
        result.failed.push(disconnect);
        continue;
      }
      const record = find(prompt);
      if (record === undefined) {
        result.failed.push('the provider never saw the request');
        continue;
      }
      const ended = await Promise.race([record.ended, sleep(options.giveUpMs)]);
      if (ended === undefined || record.end !== 'client-closed' || record.endedAt === undefined) result.neverClosed++;
      else result.latencies.push(Math.max(0, record.endedAt - disconnect));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return result;
}

/** Resolves with the time of the disconnect (`performance.now()`), or why there was none. */
function disconnectOnce(kind: AdapterKind | ProviderKind, url: string, prompt: string, delayMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    let armed: ReturnType<typeof setTimeout> | undefined;
    const guard = setTimeout(() => settle('no token within 5 s'), 5000);
    let disconnect = () => {};
    const settle = (outcome: number | string) => {
      clearTimeout(guard);
      clearTimeout(armed);
      disconnect();
      resolve(outcome);
    };
    const arm = () => {
      armed ??= setTimeout(() => {
        const at = performance.now();
        disconnect();
        settle(at);
      }, delayMs);
    };
    const body = JSON.stringify({ prompt });

    if (kind === 'ws') {
      const socket = new WebSocket(url.replace(/^http/, 'ws'));
      disconnect = () => socket.terminate();
      socket.on('open', () => socket.send(body));
      socket.on('message', (data) => {
        const type = (JSON.parse(String(data)) as { type: string }).type;
        if (type === 'token') arm();
        else settle(`the stream ended first (${type})`);
      });
      socket.on('error', (error) => settle(error.message));
      return;
    }
    const req = httpRequest(
      `${url}/chat`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.setEncoding('utf8');
        let seen = '';
        res.on('data', (text: string) => {
          if (armed !== undefined) return;
          seen += text;
          if (seen.includes('event: token')) arm();
        });
        res.on('end', () => settle(`the stream ended first (status ${res.statusCode})`));
      },
    );
    disconnect = () => req.destroy();
    req.on('error', (error) => settle(error.message));
    req.end(body);
  });
}

/** The user message of a recorded request, in any provider's shape (OpenAI and Mistral, Bedrock, Gemini). */
function promptOf(record: RecordedRequest): string {
  const { messages, contents } = record.body as {
    messages?: Array<{ content?: string | Array<{ text?: string }> }>;
    contents?: Array<{ parts?: Array<{ text?: string }> }>;
  };
  const content = messages?.[0]?.content;
  if (typeof content === 'string') return content;
  return String(content?.[0]?.text ?? contents?.[0]?.parts?.[0]?.text ?? '');
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

// --- a reader that never reads -----------------------------------------------------------------

/**
 * Sends `POST /chat` on a raw socket and never reads the answer: the socket is paused before
 * the first byte, so the kernel's buffers fill and the server's `write()` starts returning false.
 */
export function startSlowReader(port: number): Promise<{ close(): void }> {
  const body = JSON.stringify({ prompt: 'Tell me a very long story.' });
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.pause();
      socket.write(
        `POST /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      resolve({ close: () => socket.destroy() });
    });
    socket.pause();
    socket.on('error', reject);
  });
}
