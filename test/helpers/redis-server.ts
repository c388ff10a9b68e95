import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A `redis-server` of a test's own, on 127.0.0.1, with no persistence. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Kills the server with SIGKILL (an outage: nothing is saved, persistence is off) and waits until it exited. */
  kill(): Promise<void>;
  /** Starts it again, empty, on the same port; resolves once it answers PING. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export const INSTALL_HINT = 'install with: apt-get install redis-server';

/** The `redis-server` binary on PATH, if any. */
export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
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
 * Whether the Redis tests run. Without `redis-server` they are skipped, and `announce` prints the
 * one line saying so; with `TOKENRELAY_REQUIRE_REDIS=1` a missing binary fails the test file instead.
 */
export function redisAvailable({ announce }: { announce: boolean }): boolean {
  if (findRedisServer() !== undefined) return true;
  if (process.env.TOKENRELAY_REQUIRE_REDIS === '1') {
    throw new Error(`redis-server not found on PATH and TOKENRELAY_REQUIRE_REDIS=1 (${INSTALL_HINT})`);
  }
  if (announce) console.warn(`redis-server not found: skipping Redis tests (${INSTALL_HINT})`);
  return false;
}

/** Starts `redis-server` on a free loopback port in a temporary directory (retries if the port was taken meanwhile). */
export async function startRedisServer(): Promise<RedisServer> {
  const binary = findRedisServer();
  if (binary === undefined) throw new Error(`redis-server not found on PATH (${INSTALL_HINT})`);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'tokenrelay-redis-'));
    const port = await freePort();
    let child = spawnServer(binary, port, dir);
    try {
      await untilReady(child, port);
    } catch (error) {
      lastError = error;
      await stop(child, dir);
      continue;
    }
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      },
      async restart() {
        // The port was just freed by this server; a few tries cover a slow release.
        for (let tries = 0; ; tries++) {
          child = spawnServer(binary, port, dir);
          try {
            await untilReady(child, port);
            return;
          } catch (error) {
            await stop(child, undefined);
            if (tries >= 4) throw error;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      },
      stop: () => stop(child, dir),
    };
  }
  throw lastError;
}

/** Spawns `redis-server` on 127.0.0.1:`port` in `dir`, with no persistence, and `extra` arguments. */
export function spawnServer(binary: string, port: number, dir: string, extra: readonly string[] = []): ChildProcess {
  return spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** A loopback TCP proxy in front of a server, which a test can cut as a network would. */
export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Resets every connection and refuses new ones (the server and its data stay up). */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a {@link TcpProxy} to `127.0.0.1:<targetPort>` on a free loopback port. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const open = (): Server =>
    createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      track(client);
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
  const listen = (server: Server, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const shut = (server: Server): Promise<void> => {
    for (const socket of sockets) socket.resetAndDestroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  let server = open();
  await listen(server, 0);
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  const { port } = address;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut: () => shut(server),
    async restore() {
      server = open();
      await listen(server, port);
    },
    close: () => shut(server),
  };
}

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Waits until the server answers PING (a raw RESP exchange: no client library needed here). */
export async function untilReady(child: ChildProcess, port: number): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = performance.now() + 5_000;
  while (performance.now() < deadline) {
    if (exited) throw new Error('redis-server exited at start');
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('redis-server did not start within 5 s');
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/** Stops a server (SIGTERM, then SIGKILL after 3 s) and removes `dir`. */
export async function stop(child: ChildProcess, dir: string | undefined): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}
