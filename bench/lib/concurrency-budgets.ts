/**
 * The concurrency benchmark's budgets. Each compares two variants measured in the same run (a
 * ratio, or a difference with a stated tolerance), so the machine's speed and its noise weigh on
 * both sides alike. They are judged at 5,000 streams (memory and CPU) and 10,000 (delivery and
 * loop delay); a run without that size (quick mode, a development run) shows them at its own
 * size without judging them. Quick mode judges only loose absolute bounds at 200 streams.
 */
import type { Measures } from './concurrency-measures.ts';
import { VARIANTS, type Variant } from './concurrency-variants.ts';

/** One row of the budget table. */
export interface Budget {
  label: string;
  value: string;
  bound: string;
  /** `ok`, `**MISSED**`, or why it was not judged. */
  status: string;
  /** What it was compared with, as measured in the same run. */
  reference: string;
  /** `undefined` when a measure is missing. */
  met: boolean | undefined;
  /** Whether a miss fails the benchmark. */
  fails: boolean;
}

/** The runs to judge: `find` looks one up by variant and size. */
export interface BudgetInput {
  find(variant: Variant, streams: number): Measures | undefined;
  sizes: readonly number[];
  variants: readonly Variant[];
  quick: boolean;
  devRun: boolean;
}

/** Memory and CPU ratios are judged here: enough streams for the fixed costs to weigh little, below saturation. */
export const RATIO_STREAMS = 5_000;
/** Delivery and loop delay are judged here: the load at which they start to give. */
export const DELIVERY_STREAMS = 10_000;
/** tokenrelay's heap per stream against the hand-written `for await` endpoint's. */
export const HEAP_RATIO_MAX = 1.25;
/** tokenrelay's RSS per stream against the hand-written `for await` endpoint's. */
export const RSS_RATIO_MAX = 1.15;
/** The fetch-style adapters' CPU per token against `sendSSE`'s. */
export const ADAPTER_CPU_RATIO_MAX = 1.2;
/** Every peer's CPU per token against `sendSSE`'s. */
export const PEER_CPU_RATIO_MIN = 1.5;
/** How much higher `sendSSE`'s loop delay p99 may be than the timer endpoint's: one step of the histogram's 10 ms resolution. */
export const LOOP_TOLERANCE_MS = 10;
/** The on-time share `sendSSE` may lose against the timer endpoint: 0.1 percentage point. */
export const ON_TIME_TOLERANCE = 0.001;
/** Quick mode, 200 streams on a shared CI machine: fails only on what no noise explains. */
export const QUICK_BOUND = { loopP99Ms: 250, onTime: 0.99 };

const x = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '—');
const pct = (value: number) => `${(value * 100).toFixed(2)}%`;
const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : '—');
const count = (value: number) => value.toLocaleString('en-US');

/** Every budget the runs allow judging, in the table's order, with its verdict. */
export function judgeBudgets({ find, sizes, variants, quick, devRun }: BudgetInput): Budget[] {
  /** Where a budget is measured, and whether it is judged there. */
  const at = (nominal: number) => {
    if (quick) return { streams: sizes[0] as number, judged: false, why: 'quick mode' };
    if (sizes.includes(nominal)) return { streams: nominal, judged: true, why: '' };
    const streams = Math.max(...sizes);
    return { streams, judged: false, why: `${devRun ? 'development run, ' : ''}measured at ${count(streams)} streams` };
  };
  const budgets: Budget[] = [];
  const add = (where: ReturnType<typeof at>, row: Omit<Budget, 'status' | 'fails'>) => {
    const verdict = row.met === undefined ? '—' : row.met ? 'ok' : where.judged ? '**MISSED**' : 'missed';
    budgets.push({ ...row, status: where.judged || row.met === undefined ? verdict : `${verdict} (not judged: ${where.why})`, fails: where.judged });
  };
  const has = (variant: Variant) => variants.includes(variant);

  const ratio = at(RATIO_STREAMS);
  const relay = find('tokenrelay', ratio.streams);
  const handIter = find('hand-iter', ratio.streams);
  if (relay !== undefined && handIter !== undefined) {
    for (const [what, key, max] of [['heap', 'heapKiB', HEAP_RATIO_MAX], ['RSS', 'rssKiB', RSS_RATIO_MAX]] as const) {
      const value = relay[key] / handIter[key];
      add(ratio, {
        label: `${what} per stream at ${count(ratio.streams)} streams, tokenrelay \`sendSSE\` / hand-written \`for await\``,
        value: x(value),
        bound: `≤ ${x(max)}`,
        reference: `${relay[key].toFixed(1)} / ${handIter[key].toFixed(1)} KiB`,
        met: Number.isFinite(value) ? value <= max : undefined,
      });
    }
  }
  if (relay !== undefined) {
    for (const variant of ['tokenrelay-hono', 'tokenrelay-web'] as const) {
      const adapter = find(variant, ratio.streams);
      if (adapter === undefined) continue;
      const value = adapter.cpuUsPerToken / relay.cpuUsPerToken;
      add(ratio, {
        label: `CPU per token at ${count(ratio.streams)} streams, ${VARIANTS[variant].label} / \`sendSSE\``,
        value: x(value),
        bound: `≤ ${x(ADAPTER_CPU_RATIO_MAX)}`,
        reference: `${adapter.cpuUsPerToken.toFixed(1)} / ${relay.cpuUsPerToken.toFixed(1)} µs`,
        met: Number.isFinite(value) ? value <= ADAPTER_CPU_RATIO_MAX : undefined,
      });
    }
    for (const variant of variants.filter((name) => VARIANTS[name].group === 'peer')) {
      const peer = find(variant, ratio.streams);
      if (peer === undefined) continue;
      const value = peer.cpuUsPerToken / relay.cpuUsPerToken;
      add(ratio, {
        label: `CPU per token at ${count(ratio.streams)} streams, ${VARIANTS[variant].label} / tokenrelay \`sendSSE\``,
        value: x(value),
        bound: `≥ ${x(PEER_CPU_RATIO_MIN)}`,
        reference: `${peer.cpuUsPerToken.toFixed(1)} / ${relay.cpuUsPerToken.toFixed(1)} µs`,
        met: Number.isFinite(value) ? value >= PEER_CPU_RATIO_MIN : undefined,
      });
    }
  }

  const delivery = at(DELIVERY_STREAMS);
  for (const variant of ['tokenrelay-hono', 'tokenrelay-web'] as const) {
    const adapter = has(variant) ? find(variant, delivery.streams) : undefined;
    if (adapter === undefined) continue;
    add(delivery, {
      label: `every stream completes and every token arrives at ${count(delivery.streams)} streams, ${VARIANTS[variant].label}`,
      value: `${count(adapter.completed)} streams, ${count(adapter.delivered)} tokens`,
      bound: `${count(delivery.streams)} streams, ${count(adapter.expected)} tokens`,
      reference: '—',
      met: adapter.completed === delivery.streams && adapter.delivered === adapter.expected,
    });
  }
  const relayAt = find('tokenrelay', delivery.streams);
  const hand = find('hand', delivery.streams);
  if (relayAt !== undefined && hand !== undefined) {
    add(delivery, {
      label: `tokens on time (≤ 1 s late) at ${count(delivery.streams)} streams, \`sendSSE\` against the hand-written timer endpoint`,
      value: pct(relayAt.onTimeShare),
      bound: `≥ ${pct(hand.onTimeShare - ON_TIME_TOLERANCE)} (hand − ${(ON_TIME_TOLERANCE * 100).toFixed(1)} pp)`,
      reference: pct(hand.onTimeShare),
      met: relayAt.onTimeShare >= hand.onTimeShare - ON_TIME_TOLERANCE,
    });
    add(delivery, {
      label: `event-loop delay p99 at ${count(delivery.streams)} streams, \`sendSSE\` against the hand-written timer endpoint`,
      value: ms(relayAt.loopP99Ms),
      bound: `≤ ${ms(hand.loopP99Ms + LOOP_TOLERANCE_MS)} (hand + ${LOOP_TOLERANCE_MS} ms)`,
      reference: ms(hand.loopP99Ms),
      met: Number.isFinite(relayAt.loopP99Ms) && Number.isFinite(hand.loopP99Ms) ? relayAt.loopP99Ms <= hand.loopP99Ms + LOOP_TOLERANCE_MS : undefined,
    });
  }

  if (quick) {
    const streams = sizes[0] as number;
    const relayQuick = find('tokenrelay', streams);
    const loose = { streams, judged: true, why: '' };
    if (relayQuick !== undefined) {
      add(loose, {
        label: `quick mode: event-loop delay p99 at ${count(streams)} streams, \`sendSSE\``,
        value: ms(relayQuick.loopP99Ms),
        bound: `< ${QUICK_BOUND.loopP99Ms} ms`,
        reference: '—',
        met: relayQuick.loopP99Ms < QUICK_BOUND.loopP99Ms,
      });
      add(loose, {
        label: `quick mode: tokens on time at ${count(streams)} streams, \`sendSSE\``,
        value: pct(relayQuick.onTimeShare),
        bound: `≥ ${pct(QUICK_BOUND.onTime)}`,
        reference: '—',
        met: relayQuick.onTimeShare >= QUICK_BOUND.onTime,
      });
    }
  }
  return budgets;
}
