/**
 * The servers the concurrency benchmark compares, what they are called in its tables and charts,
 * and how a client finds the tokens and the end in each one's frames. Plain data: the
 * orchestrator, the server and the clients all read it.
 */

/** How a client reads one variant's stream without parsing it. */
export interface Framing {
  /** What precedes a token's text (its scheduled time in ms, digits up to a `"`). */
  tokenMarker: string;
  /** Present in the last frame of a stream. */
  doneMarker: string;
}

/**
 * - `baseline`: hand-written endpoints, what the machine allows;
 * - `tokenrelay`: `sendSSE` from `tokenrelay/node`, the reference of every ratio;
 * - `adapter`: tokenrelay's other server adapters, with the same pipeline options;
 * - `peer`: another library's SSE helper, written as its users write it.
 */
export type VariantGroup = 'baseline' | 'tokenrelay' | 'adapter' | 'peer';

/** What the tables, the charts and the clients need to know of a variant. */
export interface VariantInfo {
  label: string;
  /** A short name for the charts' legends. */
  short: string;
  group: VariantGroup;
  framing: Framing;
  /**
   * How far the bytes the clients received may be from `sendSSE`'s (relative), `Infinity` for
   * frames of another format. tokenrelay's frames, written by hand: the same bytes but for the
   * timestamps' digits (3 %).
   */
  bytesTolerance: number;
  /** Why the tolerance is not the 3 % of tokenrelay's frames. */
  bytesNote?: string;
}

const SSE: Framing = { tokenMarker: '"token":"', doneMarker: 'event: done\n' };
const AI_SDK: Framing = { tokenMarker: '"delta":"', doneMarker: 'data: [DONE]' };

/** Every variant, in the order of the tables and the charts' legends. */
export const VARIANTS = {
  hand: { label: 'hand-written: a timer writes each frame', short: 'hand: timer', group: 'baseline', framing: SSE, bytesTolerance: 0.03 },
  'hand-iter': { label: 'hand-written: `for await` over the source', short: 'hand: for await', group: 'baseline', framing: SSE, bytesTolerance: 0.03 },
  tokenrelay: { label: 'tokenrelay `sendSSE` (node:http)', short: 'tokenrelay sendSSE', group: 'tokenrelay', framing: SSE, bytesTolerance: 0.03 },
  'tokenrelay-hono': { label: 'tokenrelay/hono `sse()` on @hono/node-server', short: 'tokenrelay/hono', group: 'adapter', framing: SSE, bytesTolerance: 0.03 },
  'tokenrelay-web': { label: 'tokenrelay/web `toResponse` on @hono/node-server', short: 'tokenrelay/web', group: 'adapter', framing: SSE, bytesTolerance: 0.03 },
  'tokenrelay-express': { label: 'tokenrelay/express `sse()`', short: 'tokenrelay/express', group: 'adapter', framing: SSE, bytesTolerance: 0.03 },
  'tokenrelay-fastify': { label: 'tokenrelay/fastify `sse()`', short: 'tokenrelay/fastify', group: 'adapter', framing: SSE, bytesTolerance: 0.03 },
  'tokenrelay-koa': { label: 'tokenrelay/koa `sse()`', short: 'tokenrelay/koa', group: 'adapter', framing: SSE, bytesTolerance: 0.03 },
  'peer-hono': { label: 'Hono `streamSSE` on @hono/node-server', short: 'Hono streamSSE', group: 'peer', framing: SSE, bytesTolerance: 0.03 },
  'peer-better-sse': {
    label: 'better-sse `createSession` + `push`',
    short: 'better-sse',
    group: 'peer',
    framing: SSE,
    bytesTolerance: 0.05,
    bytesNote: 'its own headers, a `retry:` field first and a keep-alive comment every 10 s: about 70 bytes more per stream (4 % of a 15-token stream, 0.6 % of a 100-token one)',
  },
  'peer-ai-sdk': {
    label: 'AI SDK `createUIMessageStream` → `pipeUIMessageStreamToResponse`',
    short: 'AI SDK',
    group: 'peer',
    framing: AI_SDK,
    bytesTolerance: Infinity,
    bytesNote: 'another format (the UI message stream protocol: `data: {"type":"text-delta","id":…,"delta":…}` frames, start and finish frames, `data: [DONE]`): not compared',
  },
} as const satisfies Record<string, VariantInfo>;

/** Every variant the concurrency benchmark can run. */
export type Variant = keyof typeof VARIANTS;

/** Every variant's name, in {@link VARIANTS}' order. */
export const ALL_VARIANTS = Object.keys(VARIANTS) as Variant[];

/** Whether `name` is a variant's (for `BENCH_VARIANTS` and the scripts' arguments). */
export function isVariant(name: string): name is Variant {
  return Object.hasOwn(VARIANTS, name);
}
