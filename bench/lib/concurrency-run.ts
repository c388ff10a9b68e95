/**
 * One run of the concurrency benchmark: a fresh server process for one variant and one number of
 * streams, and the client processes that read them (one per {@link STREAMS_PER_CLIENT} streams).
 * Used by bench/concurrency.bench.ts and bench/heap-breakdown.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withFileLimit, type ClientPlan, type ClientResult, type ServerPlan, type ServerReady, type ServerResult } from './concurrency-shared.ts';
import { VARIANTS, type Variant } from './concurrency-variants.ts';

/** New connections per second, all client processes together. */
export const CONNECT_RATE = 4_000;
/** One client process reads up to this many streams; more streams get a second process. */
export const STREAMS_PER_CLIENT = 5_000;

/** The shape of every stream of a run. */
export interface StreamPlan {
  tokens: number;
  intervalMs: number;
  /** A token counts as on time when it arrives at most this long after its scheduled time. */
  onTimeMs: number;
}

export interface Run {
  variant: Variant;
  streams: number;
  ready: ServerReady;
  server: ServerResult;
  clients: ClientResult[];
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const fromSource = `${root}/scripts/run-from-source.mjs`;
const serverScript = `${root}/bench/lib/concurrency-server.ts`;
const clientScript = `${root}/bench/lib/concurrency-client.ts`;

/** Throws if the open-files limit cannot hold `streams` connections (the server holds one per stream). */
export function assertFileLimit(streams: number): void {
  const limit = Number(spawnSync('bash', withFileLimit(['bash', '-c', 'ulimit -n']), { encoding: 'utf8' }).stdout.trim());
  if (Number.isFinite(limit) && limit < streams + 256) {
    throw new Error(`The open-files limit is ${limit}; ${streams} streams need more (raise the hard limit: ulimit -Hn)`);
  }
}

function start(args: readonly string[]): ChildProcess {
  return spawn('bash', withFileLimit([process.execPath, ...args]), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The next message of a child, or a rejection if it exits first. */
function nextMessage<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`The ${what} exited (${signal ?? `code ${code}`}) before reporting`));
    child.once('exit', onExit);
    child.once('message', (message) => {
      child.off('exit', onExit);
      resolve(message as T);
    });
  });
}

function exited(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Runs `streams` streams of `variant` and resolves with what the server and the clients measured.
 * `serverFlags` go to the server's `node` (e.g. `--cpu-prof`). Bounded: the server reports at the
 * latest a minute after the planned end, the clients 30 s after it, and a process that does not
 * exit 10 s after reporting is killed.
 */
export async function runConcurrency(variant: Variant, streams: number, plan: StreamPlan, serverFlags: readonly string[] = []): Promise<Run> {
  const durationMs = plan.tokens * plan.intervalMs;
  const server = start(['--expose-gc', ...serverFlags, '--import', fromSource, serverScript]);
  const children = [server];
  try {
    const serverPlan: ServerPlan = {
      type: 'plan',
      variant,
      streams,
      tokens: plan.tokens,
      intervalMs: plan.intervalMs,
      rampMs: (streams / CONNECT_RATE) * 1000,
    };
    const ready = nextMessage<ServerReady>(server, 'server');
    server.send(serverPlan);
    const { port } = await ready;
    const count = Math.ceil(streams / STREAMS_PER_CLIENT);
    const clients = Array.from({ length: count }, () => start([clientScript]));
    children.push(...clients);
    const serverResult = nextMessage<ServerResult>(server, 'server');
    const clientResults = clients.map((client, i) => {
      const share = Math.floor(streams / count) + (i < streams % count ? 1 : 0);
      const result = nextMessage<ClientResult>(client, 'client');
      const clientPlan: ClientPlan = {
        type: 'plan',
        port,
        streams: share,
        connectRate: CONNECT_RATE / count,
        onTimeMs: plan.onTimeMs,
        deadlineMs: (streams / CONNECT_RATE) * 1000 + durationMs + 30_000,
        framing: VARIANTS[variant].framing,
      };
      client.send(clientPlan);
      return result;
    });
    const [serverDone, clientsDone] = await Promise.all([serverResult, Promise.all(clientResults)]);
    return { variant, streams, ready: await ready, server: serverDone, clients: clientsDone };
  } finally {
    // The processes exit by themselves once they reported; only a stuck one is killed.
    await Promise.all(children.map((child) => exited(child, 10_000)));
  }
}
