import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server, to break a browser's connections on purpose:
 * `cut()` resets every open connection (as a network drop does), `hold()` keeps new connections
 * waiting (the client stays in its reconnecting state) until `release()`.
 */
export async function startCutProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let held: Array<() => void> | undefined;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    client.pause();
    const forward = (): void => {
      if (client.destroyed) return;
      const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.resume();
    };
    if (held === undefined) forward();
    else held.push(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut(): number {
      const count = sockets.size;
      for (const socket of sockets) socket.resetAndDestroy();
      return count;
    },
    hold(): void {
      held ??= [];
    },
    release(): void {
      const waiting = held ?? [];
      held = undefined;
      for (const forward of waiting) forward();
    },
    close(): Promise<void> {
      this.release();
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
