/**
 * A client process of the concurrency benchmark: opens `streams` raw HTTP/1.1 connections to the
 * server at `connectRate` per second, sends one GET on each and reads the SSE responses with as
 * little work as it can (raw `net` sockets, no HTTP or SSE parser): it finds each token's
 * scheduled emit time in its frame (the token text, after the variant's `framing.tokenMarker`:
 * `"token":"` in tokenrelay's frames, `"delta":"` in the AI SDK's) and records how late it arrived.
 * A stream is finished when its `done` frame and the end of the chunked body have come; the
 * client then resets the connection, so no port is left in TIME_WAIT for the next run.
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHistogram, record, type ClientPlan, type ClientResult } from './concurrency-shared.ts';

const FRAME_END = Buffer.from('\n\n');
// The last chunk of a chunked body.
const BODY_END = Buffer.from('\r\n0\r\n\r\n');
const QUOTE = 0x22;

// Never outlives the benchmark that started it.
process.once('disconnect', () => process.exit(0));
const plan = await new Promise<ClientPlan>((resolve) => process.once('message', (message) => resolve(message as ClientPlan)));
const TOKEN = Buffer.from(plan.framing.tokenMarker);
const DONE = Buffer.from(plan.framing.doneMarker);
const request = Buffer.from(`GET /stream HTTP/1.1\r\nHost: 127.0.0.1:${plan.port}\r\nAccept: text/event-stream\r\n\r\n`);

const latency = createHistogram();
let connected = 0;
let errors = 0;
let finished = 0;
let closed = 0;
let tokens = 0;
let onTime = 0;
let bytes = 0;

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const cpu = process.cpuUsage();
const started = performance.now();
let resolveAll!: () => void;
const all = new Promise<void>((resolve) => (resolveAll = resolve));

function open(): void {
  const socket = net.connect({ port: plan.port, host: '127.0.0.1', noDelay: true });
  let rest: Buffer | undefined;
  let done = false;
  socket.once('connect', () => {
    connected++;
    socket.write(request);
  });
  socket.on('data', (data: Buffer) => {
    const now = Date.now();
    bytes += data.length;
    const text = rest === undefined ? data : Buffer.concat([rest, data]);
    // Only whole frames are read; a frame split across two reads waits for its end.
    const last = text.lastIndexOf(FRAME_END);
    const until = last === -1 ? 0 : last + FRAME_END.length;
    let at = text.indexOf(TOKEN);
    while (at !== -1 && at < until) {
      let i = at + TOKEN.length;
      let scheduled = 0;
      for (let byte = text[i] as number; byte !== QUOTE; byte = text[++i] as number) scheduled = scheduled * 10 + byte - 48;
      const late = now - scheduled;
      record(latency, late);
      tokens++;
      if (late <= plan.onTimeMs) onTime++;
      at = text.indexOf(TOKEN, i);
    }
    if (!done) {
      const doneAt = text.indexOf(DONE);
      done = doneAt !== -1 && doneAt < until;
    }
    rest = until === text.length ? undefined : text.subarray(until);
    if (done && text.length >= BODY_END.length && text.subarray(-BODY_END.length).equals(BODY_END)) {
      finished++;
      socket.resetAndDestroy();
    }
  });
  socket.on('error', () => {
    errors++;
  });
  socket.on('close', () => {
    if (++closed === plan.streams) resolveAll();
  });
}

// Connections go out in small batches, as fast as `connectRate` allows.
const batchMs = 10;
const perBatch = Math.max(1, Math.round((plan.connectRate * batchMs) / 1000));
let opened = 0;
const ramp = setInterval(() => {
  for (let i = 0; i < perBatch && opened < plan.streams; i++, opened++) open();
  if (opened === plan.streams) clearInterval(ramp);
}, batchMs);

const deadline = setTimeout(resolveAll, plan.deadlineMs);
await all;
clearTimeout(deadline);
loop.disable();
const used = process.cpuUsage(cpu);
const result: ClientResult = {
  type: 'result',
  connected,
  errors,
  finished,
  tokens,
  onTime,
  bytes,
  latency,
  cpuUs: used.user + used.system,
  loopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - 10), // the delay beyond the 10 ms period
  elapsedMs: performance.now() - started,
};
process.send?.(result, () => process.exit(0));
