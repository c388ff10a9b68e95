/**
 * One server variant in a fresh process, for measurements of the server's memory (its RSS must
 * not carry what an earlier variant left). It samples `process.memoryUsage().rss` and the bytes
 * queued in its responses every 50 ms, and records how each response ended. Forked with
 * `forkChild<ServerApi>(new URL('./lib/server-process.ts', import.meta.url))`.
 */
import type { ServerResponse } from 'node:http';
import { serveParent } from './child-process.ts';
import { aiSdk, createOpenAI, handWritten, relayedNode, startHttpServer, type Listening, type NodeHandler } from './servers.ts';

export type ServerVariant = 'hand-written' | 'tokenrelay' | 'ai-sdk';

export interface ServerStart {
  variant: ServerVariant;
  /** The provider's `baseURL` for the `openai` client. */
  baseURL: string;
  /** tokenrelay's `writeTimeoutMs`. */
  writeTimeoutMs: number;
}

export interface ResponseEnd {
  /** `sendSSE`'s outcome for tokenrelay; else `'finished'`, `'closed'` (before finishing) or `'open'`. */
  outcome: string;
  /** When it ended, ms after sampling started; `undefined` while open. */
  atMs: number | undefined;
}

export interface MemoryReport {
  baselineRss: number;
  peakRss: number;
  /** The most bytes queued in the server's responses (`res.writableLength`, socket included) at any sample. */
  peakQueued: number;
  /** Heap and external memory after a full GC, at the start of sampling and now (only with `final`). */
  baselineHeld: number;
  held: number | undefined;
  responses: ResponseEnd[];
}

const SAMPLE_MS = 50;
let server: Listening | undefined;
const live = new Set<ServerResponse>();
const ends: ResponseEnd[] = [];
let startedAt = performance.now();
let baselineRss = 0;
let baselineHeld = 0;
let peakRss = 0;
let peakQueued = 0;
let sampler: ReturnType<typeof setInterval> | undefined;

function handlerFor({ variant, baseURL, writeTimeoutMs }: ServerStart): NodeHandler {
  const openai = createOpenAI(baseURL);
  if (variant === 'hand-written') return handWritten(openai);
  if (variant === 'ai-sdk') return aiSdk(openai);
  const relay = relayedNode(openai, { writeTimeoutMs });
  return async (req, res) => {
    const result = await relay(req, res);
    return result.outcome;
  };
}

/** Heap plus memory outside it (Buffers), after a full GC. */
function held(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

function sample(): void {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  let queued = 0;
  for (const res of live) queued += res.writableLength;
  peakQueued = Math.max(peakQueued, queued);
}

const api = {
  /** Starts the variant's server; resolves with its port. */
  async start(options: ServerStart): Promise<number> {
    const handler = handlerFor(options);
    server = await startHttpServer(async (req, res) => {
      const end: ResponseEnd = { outcome: 'open', atMs: undefined };
      ends.push(end);
      live.add(res);
      res.on('close', () => {
        live.delete(res);
        end.atMs = performance.now() - startedAt;
        if (end.outcome === 'open') end.outcome = res.writableFinished ? 'finished' : 'closed';
      });
      const outcome = await handler(req, res);
      if (typeof outcome === 'string') end.outcome = outcome;
    });
    return server.port;
  },
  /** Forgets the responses so far, takes the baseline (after a full GC) and starts sampling. */
  startSampling(): void {
    ends.length = 0;
    baselineHeld = held();
    baselineRss = process.memoryUsage.rss();
    peakRss = baselineRss;
    startedAt = performance.now();
    sampler = setInterval(sample, SAMPLE_MS);
  },
  /** What was measured so far; `final` also collects garbage and measures what is still held. */
  report(final = false): MemoryReport {
    sample();
    const now = final ? held() : undefined;
    return { baselineRss, peakRss, peakQueued, baselineHeld, held: now, responses: ends.map((end) => ({ ...end })) };
  },
  async stop(): Promise<void> {
    clearInterval(sampler);
    await server?.close();
  },
};

export type ServerApi = typeof api;

serveParent(api);
