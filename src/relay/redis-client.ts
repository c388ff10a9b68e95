import type { ScriptCaller } from './redis-scripts.js';

/**
 * One face for the four clients `redisStore` accepts: an ioredis `Redis` or `Cluster`, a node-redis
 * client (`createClient`) or cluster (`createCluster`). Store code sends every command through
 * {@link RedisDriver.call} (`scripts.x.run(driver, keys, args)` for scripts), whatever the client.
 *
 * Rules for store code (and new scripts):
 * - every key of one command or script shares one hash tag, so it stays in one slot on a cluster:
 *   a stream's keys are tagged `{<streamId>}`, per-user keys `{<user key>}` ({@link taggedKey});
 * - the routing key is the first key of the command (`EVAL`/`EVALSHA`: the first of KEYS), so a
 *   command without keys goes to any node;
 * - scripts publish with the command the driver names ({@link RedisDriver.publish}): `PUBLISH` on
 *   one node, `SPUBLISH` (sharded, Redis ≥ 7) on a cluster, to a channel tagged like the keys.
 * @internal
 */
export interface RedisDriver extends ScriptCaller {
  /** True on a Redis Cluster (ioredis `Cluster`, node-redis `createCluster`). */
  readonly cluster: boolean;
  /** `'PUBLISH'`, or `'SPUBLISH'` on a cluster. */
  readonly publish: 'PUBLISH' | 'SPUBLISH';
  /** The client's own key prefix (ioredis `keyPrefix`), prepended to keys but not to replies. */
  readonly keyPrefix: string;
  /** Sends one command, routed by its first key; resolves with the reply. */
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  /** Opens a connection of the store's own for `XREAD BLOCK` (one node only; never on a cluster). */
  openBlocking(timeoutMs: number): BlockingLink;
  /** Opens a pub/sub connection of the store's own: `SUBSCRIBE`, or `SSUBSCRIBE` routed per node on a cluster. */
  openSubscriber(): SubscriberLink;
}

/** A connection the store opened, and closes. @internal */
export interface OwnedLink {
  /** Closes it now, without waiting for replies. */
  disconnect(): void;
  /** Calls `listener` once it is closed for good. */
  onEnd(listener: () => void): void;
  /** True once it is closed for good. */
  readonly ended: boolean;
}

/** A blocking connection: `XREAD BLOCK`. @internal */
export interface BlockingLink extends OwnedLink, ScriptCaller {}

/** A pub/sub connection. `on('message')` may be called more than once (each listener hears every message). @internal */
export interface SubscriberLink extends OwnedLink {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
}

/** `<prefix><kind>:{<key>}`: a per-user key, tagged by the user key so all of a user's keys share a slot. @internal */
export function taggedKey(prefix: string, kind: string, key: string): string {
  return `${prefix}${kind}:{${key}}`;
}

type Listener = (...args: any[]) => void;

interface IoredisLike {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  duplicate(...args: unknown[]): IoredisConnectionLike;
  readonly options?: { readonly keyPrefix?: string | undefined } | undefined;
  readonly isCluster?: boolean | undefined;
}

interface IoredisConnectionLike {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  subscribe?(...channels: string[]): Promise<unknown>;
  unsubscribe?(...channels: string[]): Promise<unknown>;
  ssubscribe?(...channels: string[]): Promise<unknown>;
  sunsubscribe?(...channels: string[]): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  readonly status?: string | undefined;
}

interface NodeRedisLike {
  sendCommand(...args: any[]): Promise<unknown>;
  duplicate(...args: unknown[]): NodeRedisConnectionLike;
  readonly options?: { readonly keyPrefix?: unknown } | undefined;
}

interface NodeRedisConnectionLike {
  connect(): Promise<unknown>;
  sendCommand(...args: any[]): Promise<unknown>;
  subscribe?(channels: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe?(channels: string): Promise<unknown>;
  sSubscribe?(channels: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  sUnsubscribe?(channels: string): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: Listener): unknown;
  readonly isOpen?: boolean | undefined;
}

/** Which client `value` is, by the methods it has; `undefined` when none of the four. @internal */
export function clientKind(value: unknown): 'ioredis' | 'ioredis-cluster' | 'node-redis' | 'node-redis-cluster' | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const client = value as Record<string, unknown>;
  if (typeof client.duplicate !== 'function') return undefined;
  if (typeof client.call === 'function') return client.isCluster === true ? 'ioredis-cluster' : 'ioredis';
  if (typeof client.sendCommand !== 'function') return undefined;
  return typeof client.nodeClient === 'function' || Array.isArray(client.masters) ? 'node-redis-cluster' : 'node-redis';
}

/** Wraps a client `clientKind` recognised. @internal */
export function driverOf(client: unknown): RedisDriver {
  switch (clientKind(client)) {
    case 'ioredis':
      return ioredisDriver(client as IoredisLike, false);
    case 'ioredis-cluster':
      return ioredisDriver(client as IoredisLike, true);
    case 'node-redis':
      return nodeRedisDriver(client as NodeRedisLike, false);
    case 'node-redis-cluster':
      return nodeRedisDriver(client as NodeRedisLike, true);
    default:
      throw new TypeError('Not a Redis client');
  }
}

function ioredisDriver(client: IoredisLike, cluster: boolean): RedisDriver {
  const keyPrefix = typeof client.options?.keyPrefix === 'string' ? client.options.keyPrefix : '';
  return {
    cluster,
    publish: cluster ? 'SPUBLISH' : 'PUBLISH',
    keyPrefix,
    call: (command, ...args) => client.call(command, ...args),
    openBlocking(timeoutMs) {
      const connection = quiet(client.duplicate({ commandTimeout: timeoutMs }));
      return { ...ioredisOwned(connection), call: (command, ...args) => connection.call(command, ...args) };
    },
    openSubscriber() {
      // A cluster duplicate with one sharded subscriber per master: ioredis routes each SSUBSCRIBE to its slot's node.
      const connection = quiet(cluster ? client.duplicate(undefined, { shardedSubscribers: true }) : client.duplicate());
      return {
        ...ioredisOwned(connection),
        subscribe: (channel) => (cluster ? connection.ssubscribe!(channel) : connection.subscribe!(channel)),
        unsubscribe: (channel) => (cluster ? connection.sunsubscribe!(channel) : connection.unsubscribe!(channel)),
        on: (_event, listener) => connection.on(cluster ? 'smessage' : 'message', listener),
      };
    },
  };
}

function quiet<T extends { on(event: string, listener: Listener): unknown }>(connection: T): T {
  // Its errors are reported through the commands that fail; an 'error' event without a listener would crash the process.
  connection.on('error', () => undefined);
  return connection;
}

function ioredisOwned(connection: IoredisConnectionLike): OwnedLink {
  let ended = false;
  const listeners: Array<() => void> = [];
  connection.once('end', () => {
    ended = true;
    for (const listener of listeners.splice(0)) listener();
  });
  return {
    disconnect: () => {
      if (!ended) connection.disconnect();
    },
    onEnd: (listener) => (ended || connection.status === 'end' ? listener() : void listeners.push(listener)),
    get ended() {
      return ended || connection.status === 'end';
    },
  };
}

/** The key a node-redis cluster routes a command by: the first of KEYS for a script, else the first argument. */
function routingKey(command: string, args: ReadonlyArray<string>): string | undefined {
  const name = command.toUpperCase();
  if (name === 'EVAL' || name === 'EVALSHA' || name === 'EVAL_RO' || name === 'EVALSHA_RO' || name === 'FCALL') {
    return Number(args[1]) > 0 ? args[2] : undefined;
  }
  return args[0];
}

function nodeRedisDriver(client: NodeRedisLike, cluster: boolean): RedisDriver {
  const send = (command: string, args: Array<string | number>): Promise<unknown> => {
    const strings = args.map(String);
    return cluster ? client.sendCommand(routingKey(command, strings), false, [command, ...strings]) : client.sendCommand([command, ...strings]);
  };
  const open = (): { connection: NodeRedisConnectionLike; ready: Promise<unknown>; link: OwnedLink } => {
    const connection = quiet(client.duplicate());
    const link = nodeRedisOwned(connection);
    const ready = connection.connect();
    ready.then(undefined, () => undefined);
    return { connection, ready, link };
  };
  return {
    cluster,
    publish: cluster ? 'SPUBLISH' : 'PUBLISH',
    keyPrefix: '',
    call: (command, ...args) => send(command, args),
    openBlocking(timeoutMs) {
      const { connection, ready, link } = open();
      return {
        ...link,
        async call(command, ...args) {
          await ready;
          return connection.sendCommand([command, ...args.map(String)], { timeout: timeoutMs });
        },
      };
    },
    openSubscriber() {
      const { connection, ready, link } = open();
      const listeners: Array<(channel: string, message: string) => void> = [];
      const onMessage = (message: string, channel: string): void => {
        for (const listener of listeners) listener(channel, message);
      };
      return {
        ...link,
        async subscribe(channel) {
          await ready;
          return cluster ? connection.sSubscribe!(channel, onMessage) : connection.subscribe!(channel, onMessage);
        },
        async unsubscribe(channel) {
          await ready;
          return cluster ? connection.sUnsubscribe!(channel) : connection.unsubscribe!(channel);
        },
        on: (_event, listener) => listeners.push(listener),
      };
    },
  };
}

function nodeRedisOwned(connection: NodeRedisConnectionLike): OwnedLink {
  let ended = false;
  const listeners: Array<() => void> = [];
  const finish = (): void => {
    if (ended) return;
    ended = true;
    for (const listener of listeners.splice(0)) listener();
  };
  connection.on('end', finish);
  return {
    disconnect() {
      try {
        connection.destroy();
      } catch {
        // Not open (yet, or any more): nothing to close.
      }
      // destroy() closes the socket at once; a client that never connected emits no 'end'.
      queueMicrotask(() => {
        if (connection.isOpen !== true) finish();
      });
    },
    onEnd: (listener) => (ended ? listener() : void listeners.push(listener)),
    get ended() {
      return ended;
    },
  };
}
