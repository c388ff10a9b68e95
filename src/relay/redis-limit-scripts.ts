/**
 * The Lua scripts of `redisStore` for idempotent start and `limitRate`: each check is one script,
 * so instances never race. Each script touches the keys of one hash tag (`{idem:…}` or
 * `{rate:…}`), so it runs on Redis Cluster too. Times come from the server's clock (`TIME`).
 *
 * A sliding window is a sorted set of entries scored by the time they were recorded, each member
 * `<random id>:<amount>`; entries at or before `now - windowMs` are removed before every sum, so
 * the windows are exact (the memory store's `SlidingWindows` applies the same rules).
 * @internal
 */
import { Script } from './redis-scripts.js';

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Prunes a window, then answers its entries ({at, amount}, oldest first) and their sum. */
const LOAD = `
local function load(key, win, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
  local raw = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local list = {}
  local total = 0
  for i = 1, #raw, 2 do
    local amount = tonumber(string.match(raw[i], ':([^:]+)$')) or 0
    total = total + amount
    list[#list + 1] = {tonumber(raw[i + 1]), amount}
  end
  if total < 0 then total = 0 end
  return list, total
end
local function record(key, win, now, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, win)
end
`;

/**
 * KEYS requests tokens cost; ARGV reqMax reqWin tokMax tokWin costMax costWin id (a window of 0 is
 * not limited) → {1, tokens, cost} allowed (one request recorded), or {0, dimension (1 requests,
 * 2 tokens, 3 cost), retryAfterMs}.
 */
const CHECK_RATE = `${NOW}${LOAD}
local now = now_ms()
local sums = {0, 0, 0}
for dim = 1, 3 do
  local max = tonumber(ARGV[dim * 2 - 1])
  local win = tonumber(ARGV[dim * 2])
  if win > 0 then
    local list, total = load(KEYS[dim], win, now)
    sums[dim] = total
    local function full(used)
      if dim == 1 then return used + 1 > max end
      return used >= max
    end
    if full(total) then
      local left = total
      for _, entry in ipairs(list) do
        left = left - entry[2]
        if not full(left) then return {0, dim, math.max(1, math.ceil(entry[1] + win - now))} end
      end
      return {0, dim, math.max(1, win)}
    end
  end
end
local reqWin = tonumber(ARGV[2])
if reqWin > 0 then record(KEYS[1], reqWin, now, ARGV[7] .. ':1') end
return {1, tostring(sums[2]), tostring(sums[3])}
`;

/** KEYS tokens cost; ARGV tokAmount tokWin costAmount costWin id (a window of 0: not charged) → {tokens, cost}. */
const CHARGE_RATE = `${NOW}${LOAD}
local now = now_ms()
local sums = {'0', '0'}
for dim = 1, 2 do
  local amount = ARGV[dim * 2 - 1]
  local win = tonumber(ARGV[dim * 2])
  if win > 0 then
    if tonumber(amount) ~= 0 then record(KEYS[dim], win, now, ARGV[5] .. ':' .. amount) end
    local _, total = load(KEYS[dim], win, now)
    sums[dim] = tostring(total)
  end
end
return sums
`;

/** KEYS claim; ARGV id ttlMs replacing → the id the key names afterwards. */
const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] and current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`;

/** KEYS claim → the id it names, or nil. A script, so the key is prefixed like every other. */
const GET_CLAIM = `return redis.call('GET', KEYS[1])`;

/** @internal */
export const limitScripts = {
  checkRate: new Script(CHECK_RATE),
  chargeRate: new Script(CHARGE_RATE),
  claim: new Script(CLAIM),
  getClaim: new Script(GET_CLAIM),
};
