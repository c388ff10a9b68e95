/**
 * (b0) of the server-cpu benchmark: tokenrelay's `sendSSE` fed chunks that are already
 * TokenChunks, as an in-process source hands them over, so no provider bytes are parsed (no
 * HTTP client, no SSE parser, no `openai` SDK). The source paces itself as the fast provider
 * does: a 1 ms timer yields every token due by then, each token's text the same ` @<ms>` stamp.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenChunk } from '../../src/core/types.ts';
import { sendSSE, type SendSSEOptions, type SendSSEResult } from '../../src/servers/node.ts';
import { MODEL, readJson } from './servers.ts';

/** How many tokens each stream gets, and how fast; read when a stream starts, so it can change between runs. */
export interface PacedChunks {
  tokensPerStream: number;
  rate: number;
}

/** `plan.tokensPerStream` chunks at `plan.rate` per second, the last one carrying the finish reason. */
export async function* pacedChunks(plan: PacedChunks, signal: AbortSignal): AsyncGenerator<TokenChunk, void, undefined> {
  const { tokensPerStream, rate } = plan;
  const start = performance.now();
  let index = 0;
  while (index < tokensPerStream && !signal.aborted) {
    await sleep(1);
    const now = performance.now();
    const token = ` @${(performance.timeOrigin + now).toFixed(3)}`;
    const due = Math.min(tokensPerStream, 1 + Math.floor(((now - start) * rate) / 1000));
    for (; index < due; index++) {
      const last = index === tokensPerStream - 1;
      yield { token, index, timestamp: now, type: 'text', model: MODEL, provider: 'openai', ...(last ? { finishReason: 'stop' as const } : {}) };
    }
  }
}

/** (b0) `sendSSE(req, res, (signal) => pacedChunks(plan, signal))`, after reading the request body as (b) does. */
export function relayedParsed(plan: PacedChunks, options: SendSSEOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<SendSSEResult> {
  return async (req, res) => {
    await readJson(req);
    return sendSSE(req, res, (signal) => pacedChunks(plan, signal), options);
  };
}
