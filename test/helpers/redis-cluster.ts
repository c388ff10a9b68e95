import { execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { findRedisServer, freePort, INSTALL_HINT, spawnServer, stop, untilReady } from './redis-server.js';

const run = promisify(execFile);

/** A Redis Cluster of a test's own: three masters (no replicas) on 127.0.0.1, no persistence. */
export interface RedisCluster {
  /** The masters' ports, in the order they were created (slots 0–5460, 5461–10922, 10923–16383). */
  readonly ports: readonly number[];
  /** `[{ host: '127.0.0.1', port }, …]`: startup nodes for ioredis' `Cluster`. */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  /** `[{ url: 'redis://127.0.0.1:<port>' }, …]`: root nodes for node-redis' `createCluster`. */
  readonly rootNodes: ReadonlyArray<{ url: string }>;
  /** Runs `redis-cli -p <port> <args…>` and resolves with its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

/** The `redis-cli` binary on PATH (Debian's redis-tools, a dependency of redis-server), if any. */
export function findRedisCli(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-cli');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * Whether the Redis Cluster tests run: they need `redis-server` and `redis-cli`. Without them the
 * tests are skipped (`announce` prints the one line saying so); with `TOKENRELAY_REQUIRE_REDIS=1`
 * a missing binary fails the test file instead.
 */
export function redisClusterAvailable({ announce }: { announce: boolean }): boolean {
  if (findRedisServer() !== undefined && findRedisCli() !== undefined) return true;
  if (process.env.TOKENRELAY_REQUIRE_REDIS === '1') {
    throw new Error(`redis-server or redis-cli not found on PATH and TOKENRELAY_REQUIRE_REDIS=1 (${INSTALL_HINT})`);
  }
  if (announce) console.warn(`redis-server or redis-cli not found: skipping Redis Cluster tests (${INSTALL_HINT})`);
  return false;
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free loopback ports (cluster bus ports
 * chosen free too), joins them with `redis-cli --cluster create … --cluster-yes`, and resolves
 * once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(size = 3): Promise<RedisCluster> {
  const binary = findRedisServer();
  const cli = findRedisCli();
  if (binary === undefined || cli === undefined) throw new Error(`redis-server or redis-cli not found on PATH (${INSTALL_HINT})`);
  const children: Array<{ child: ChildProcess; dir: string }> = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(children.map(({ child, dir }) => stop(child, dir)));
  };
  try {
    const ports: number[] = [];
    for (let n = 0; n < size; n++) {
      let started = false;
      for (let attempt = 0; attempt < 5 && !started; attempt++) {
        const dir = mkdtempSync(join(tmpdir(), 'tokenrelay-cluster-'));
        const [port, bus] = [await freePort(), await freePort()];
        const child = spawnServer(binary, port, dir, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, 'nodes.conf'),
          '--cluster-port', String(bus),
          '--cluster-node-timeout', '2000',
        ]);
        try {
          await untilReady(child, port);
          children.push({ child, dir });
          ports.push(port);
          started = true;
        } catch (error) {
          await stop(child, dir);
          if (attempt === 4) throw error;
        }
      }
    }
    const exec = async (port: number, ...args: string[]): Promise<string> =>
      (await run(cli, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 20_000 })).stdout;
    await run(cli, ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    const deadline = performance.now() + 15_000;
    for (const port of ports) {
      while (!(await exec(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (performance.now() > deadline) throw new Error('the Redis Cluster did not reach cluster_state:ok within 15 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return {
      ports,
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
      cli: exec,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
