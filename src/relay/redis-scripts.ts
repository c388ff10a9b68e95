/**
 * The Lua scripts of `redisStore`: every step that two instances could race runs as one script.
 * Keys of a stream share a hash tag (`{id}`); times come from the server's clock (`TIME`), so
 * instances with skewed clocks agree on every expiry.
 * @internal
 */

/** A command sender: `call` of an ioredis client, or the store's `RedisDriver` (which routes it on a cluster by its first key). */
export interface ScriptCaller {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
}

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// Stream keys: 1 meta hash, 2 chunk stream, 3 heartbeat, 4 presence zset, 5 cancel flag.
// Presence and cancel share the stream's expiry; the heartbeat has its own.
const EXPIRE_ALL = `
local function expire_all(ms)
  for _, i in ipairs({1, 2, 4, 5}) do redis.call('PEXPIRE', KEYS[i], ms) end
end
local function extend_all(ms)
  local current = redis.call('PTTL', KEYS[1])
  expire_all(math.max(current, ms))
end
`;

/** KEYS m c h p x; ARGV ttlMs metadataJson → 1 created, 0 taken. */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[1], 'ttl', ARGV[1], 'md', ARGV[2], 'last', -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS m c h p x; ARGV index chunkJson maxChunks followChannel → {0} ok (or already stored: a retry
 * whose answer was lost), {1} gone or ended, {2, last} out of order, {3} full. On a cluster the
 * chunk is also SPUBLISHed on the follow channel (`''` on one node: followers XREAD instead).
 */
const APPEND = `${EXPIRE_ALL}
local meta = redis.call('HMGET', KEYS[1], 'ttl', 'last', 'end')
if not meta[1] or meta[3] then return {1} end
local last = tonumber(meta[2])
local index = tonumber(ARGV[1])
if index == last then return {0} end
if index ~= last + 1 then return {2, last} end
if index >= tonumber(ARGV[3]) then return {3} end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[3]) + 1, (index + 1) .. '-0', 'c', ARGV[2])
if ARGV[4] and ARGV[4] ~= '' then redis.call('SPUBLISH', ARGV[4], 'c' .. ARGV[2]) end
redis.call('HSET', KEYS[1], 'last', index)
extend_all(tonumber(meta[1]))
return {0}
`;

/**
 * KEYS m c h p x; ARGV endJson followChannel → 1 written, 0 gone or already ended. The marker entry
 * wakes every XREAD; on a cluster it is SPUBLISHed as `e<last>:<endJson>`.
 */
const END = `${EXPIRE_ALL}
local meta = redis.call('HMGET', KEYS[1], 'ttl', 'last', 'end')
if not meta[1] or meta[3] then return 0 end
redis.call('HSET', KEYS[1], 'end', ARGV[1])
redis.call('XADD', KEYS[2], (tonumber(meta[2]) + 2) .. '-0', 'e', ARGV[1])
if ARGV[2] and ARGV[2] ~= '' then redis.call('SPUBLISH', ARGV[2], 'e' .. meta[2] .. ':' .. ARGV[1]) end
redis.call('DEL', KEYS[4])
expire_all(tonumber(meta[1]))
return 1
`;

/** KEYS m c h; ARGV startId count → nil, or {last, endJson|'', alive, entries}. */
const READ = `
local meta = redis.call('HMGET', KEYS[1], 'last', 'end')
if not meta[1] then return nil end
local alive = 1
if not meta[2] then alive = redis.call('EXISTS', KEYS[3]) end
local entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
return {meta[1], meta[2] or '', alive, entries}
`;

/** KEYS m h; → nil, or {metadataJson, last, endJson|'', alive}. */
const INFO = `
local meta = redis.call('HMGET', KEYS[1], 'md', 'last', 'end')
if not meta[2] then return nil end
local alive = 1
if not meta[3] then alive = redis.call('EXISTS', KEYS[2]) end
return {meta[1], meta[2], meta[3] or '', alive}
`;

/** KEYS m c h p x; ARGV livenessMs → nil, or {subscribers, cancelled}. */
const HEARTBEAT = `${NOW}${EXPIRE_ALL}
local meta = redis.call('HMGET', KEYS[1], 'ttl', 'end')
if not meta[1] then return nil end
local liveness = tonumber(ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', liveness)
if not meta[2] then extend_all(math.max(tonumber(meta[1]), liveness)) end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
return {redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf'), redis.call('EXISTS', KEYS[5])}
`;

/** KEYS m p; ARGV subscriberId ttlMs channel publish. Announces the count when the subscriber is new. */
const ATTACH = `${NOW}
local meta = redis.call('HMGET', KEYS[1], 'ttl', 'end')
if not meta[1] or meta[2] then return 0 end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local added = redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
if added == 1 then redis.call(ARGV[4] or 'PUBLISH', ARGV[3], 'p:' .. redis.call('ZCARD', KEYS[2])) end
return added
`;

/** KEYS p; ARGV subscriberId channel publish. Announces the count when the subscriber was attached. */
const DETACH = `${NOW}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
redis.call(ARGV[3] or 'PUBLISH', ARGV[2], 'p:' .. redis.call('ZCARD', KEYS[1]))
return 1
`;

/** KEYS m x; ARGV channel publish → 1 asked to stop, 0 gone or ended. */
const CANCEL = `
local meta = redis.call('HMGET', KEYS[1], 'ttl', 'end')
if not meta[1] or meta[2] then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', math.max(redis.call('PTTL', KEYS[1]), 1))
redis.call(ARGV[2] or 'PUBLISH', ARGV[1], 'c')
return 1
`;

/** KEYS slots; ARGV max ttlMs slotId → {1} granted, or {0, retryAfterMs}. */
const ACQUIRE_SLOT = `${NOW}
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, math.ceil(tonumber(oldest[2]) - now))}
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1}
`;

/** KEYS slots; ARGV slotId ttlMs → 1 extended, 0 not held. */
const REFRESH_SLOT = `${NOW}
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`;

/** KEYS wake; ARGV id ttlMs. Interrupts a follower's XREAD (its own stream, one entry). */
const WAKE = `
redis.call('XADD', KEYS[1], 'MAXLEN', '1', ARGV[1], 'w', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * KEYS pointer; ARGV id ttlMs refresh → 1 set, 0 not (a refresh of a pointer that names another
 * stream). The pointer is tagged by its key, the stream by its id: two slots, so the store checks
 * the stream is live (INFO) before, and getActive clears a pointer to a stream that ended since.
 */
const SET_ACTIVE = `
if ARGV[3] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS pointer → the id it names, or nil. A script, so the key is prefixed like every other. */
const GET_ACTIVE = `return redis.call('GET', KEYS[1])`;

/** KEYS pointer; ARGV id → 1 cleared, 0 it names another stream (or none). */
const CLEAR_ACTIVE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * A script run with `EVALSHA`, sent whole (`EVAL`, which also caches it) only when the server
 * does not know it yet (first use, restart, `SCRIPT FLUSH`).
 */
export class Script {
  readonly #source: string;
  #sha: Promise<string> | undefined;

  constructor(source: string) {
    this.#source = source;
  }

  async run(client: ScriptCaller, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    this.#sha ??= sha1(this.#source);
    const sha = await this.#sha;
    try {
      return await client.call('EVALSHA', sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error | undefined)?.message).startsWith('NOSCRIPT')) throw error;
      return client.call('EVAL', this.#source, keys.length, ...keys, ...args);
    }
  }
}

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** @internal */
export const scripts = {
  create: new Script(CREATE),
  append: new Script(APPEND),
  end: new Script(END),
  read: new Script(READ),
  info: new Script(INFO),
  heartbeat: new Script(HEARTBEAT),
  attach: new Script(ATTACH),
  detach: new Script(DETACH),
  cancel: new Script(CANCEL),
  acquireSlot: new Script(ACQUIRE_SLOT),
  refreshSlot: new Script(REFRESH_SLOT),
  wake: new Script(WAKE),
  setActive: new Script(SET_ACTIVE),
  getActive: new Script(GET_ACTIVE),
  clearActive: new Script(CLEAR_ACTIVE),
};
