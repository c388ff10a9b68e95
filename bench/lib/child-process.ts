/**
 * Helper processes of the server benchmarks: a benchmark forks one (the clients and the mock
 * provider, or a server that must start from a fresh heap) and calls the functions it exposes
 * over IPC, one request and one answer per call. Every call is bounded in time, and a helper
 * exits when its parent goes away, so no benchmark can hang or leave a process behind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Functions served to the parent: arguments and results cross the IPC channel by structured clone. */
type Handlers = Record<string, (...args: never[]) => unknown>;

interface CallMessage {
  id: number;
  method: string;
  args: unknown[];
}

interface ReplyMessage {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

const fromSource = fileURLToPath(new URL('../../scripts/run-from-source.mjs', import.meta.url));

/** A running helper process and the functions it serves. */
export interface Child<Api extends Handlers> {
  readonly pid: number;
  /** Calls `method` in the child; rejects after `timeoutMs` (default 120 s) or if the child exits. */
  call<Method extends keyof Api & string>(
    method: Method,
    args: Parameters<Api[Method]>,
    timeoutMs?: number,
  ): Promise<Awaited<ReturnType<Api[Method]>>>;
  /** Ends the child (SIGKILL after 2 s if it does not exit by itself). */
  close(): Promise<void>;
}

/**
 * Forks `module` (a file that calls {@link serveParent}) with the flags the benchmarks run with,
 * and resolves once it is ready. Its stdout and stderr go to the benchmark's.
 */
export async function forkChild<Api extends Handlers>(module: URL, args: readonly string[] = []): Promise<Child<Api>> {
  const child = fork(fileURLToPath(module), [...args], {
    execArgv: ['--expose-gc', '--import', fromSource],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let exited: Error | undefined;
  let nextId = 0;

  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = new Error(`The benchmark helper ${fileURLToPath(module)} exited (${signal ?? `code ${code}`})`);
      for (const { reject } of pending.values()) reject(exited);
      pending.clear();
      resolve();
    });
  });
  child.on('message', (message: ReplyMessage) => {
    const waiter = pending.get(message.id);
    if (waiter === undefined) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(`In the benchmark helper: ${message.error}`));
  });
  await Promise.race([
    new Promise<void>((resolve) => child.once('message', () => resolve())),
    exit.then(() => Promise.reject(exited)),
  ]);

  return {
    pid: child.pid as number,
    call(method, args, timeoutMs = 120_000) {
      if (exited !== undefined) return Promise.reject(exited);
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`The benchmark helper did not answer ${method}() within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value as never);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        child.send({ id, method, args } satisfies CallMessage);
      });
    },
    async close() {
      if (exited !== undefined) return;
      child.disconnect();
      const timer = setTimeout(() => kill(child), 2000);
      await exit;
      clearTimeout(timer);
    },
  };
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * The child's side: serves `handlers` to the parent and tells it that it is ready. The process
 * exits when the parent disconnects (or dies).
 */
export function serveParent(handlers: Handlers): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('This module is a benchmark helper: it runs only when forked by a benchmark');
  process.on('message', (message: CallMessage) => {
    const handler = handlers[message.method];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`No method ${message.method}`);
        return handler(...(message.args as never[]));
      })
      .then(
        (value) => send({ id: message.id, ok: true, value } satisfies ReplyMessage),
        (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies ReplyMessage),
      );
  });
  process.once('disconnect', () => process.exit(0));
  send({ ready: true });
}
