/**
 * The Lua scripts of the Redis backend. Each one is a fixed string, registered once per client
 * with `defineCommand` (ioredis then calls it by EVALSHA and falls back to EVAL when a restarted
 * Redis has lost its script cache); nothing is ever built per request.
 *
 * Scripts receive the time and window numbers from the caller instead of reading Redis's clock,
 * so that the same code runs under a test's fake clock; replicas must keep their clocks in step
 * (NTP), and a skew of a second moves a minute window's edge by that second, nothing more.
 *
 * Numbers are compared in the same order as `refusedLimits()` in `window.ts`, so both backends
 * take the same decision on the same counters.
 */

/**
 * Checks every limit of a key for one or more reservations, in order, and counts each one that
 * passes (its request, its tokens and a concurrency slot) before the next is checked: the
 * decisions are those of the reservations made one after the other.
 * KEYS: usage hash, lease sorted set. ARGV: windowMs, rpm, tpm, concurrency, daily, monthly
 * (0 = none), usage ttl, lease ttl; then per reservation: now, minute, elapsed, day, month,
 * tokens, lease id, lease expiry.
 * Returns, per reservation: refused bits, requests prev/curr, tokens prev/curr, tokens day,
 * month, in flight.
 */
export const RESERVE_LUA = `
local W = tonumber(ARGV[1])
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dl, ml = tonumber(ARGV[5]), tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'w', 'rp', 'rc', 'tp', 'tc', 'd', 'dv', 'm', 'mv')
local w = tonumber(h[1])
local rp, rc = tonumber(h[2]) or 0, tonumber(h[3]) or 0
local tp, tc = tonumber(h[4]) or 0, tonumber(h[5]) or 0
local d, dv = tonumber(h[6]), tonumber(h[7]) or 0
local m, mv = tonumber(h[8]), tonumber(h[9]) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[9])
local inflight = redis.call('ZCARD', KEYS[2])
local out, leases = {}, {}
for i = 9, #ARGV, 8 do
  local minute, el = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local day, month, cost = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  if w == nil then w = minute end
  if w < minute then
    if w == minute - 1 then rp, tp = rc, tc else rp, tp = 0, 0 end
    rc, tc, w = 0, 0, minute
  end
  if d ~= day then d, dv = day, 0 end
  if m ~= month then m, mv = month, 0 end
  local keep = (W - el) / W
  local refused = 0
  if conc > 0 and inflight + 1 > conc then refused = refused + 1 end
  if rpm > 0 and rp * keep + rc + 1 > rpm then refused = refused + 2 end
  if tpm > 0 and tp * keep + tc + cost > tpm then refused = refused + 4 end
  if dl > 0 and dv + cost > dl then refused = refused + 8 end
  if ml > 0 and mv + cost > ml then refused = refused + 16 end
  if refused == 0 then
    rc, tc, dv, mv, inflight = rc + 1, tc + cost, dv + cost, mv + cost, inflight + 1
    leases[#leases + 1] = ARGV[i + 7]
    leases[#leases + 1] = ARGV[i + 6]
  end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = refused, rp, rc, tp
  out[n + 5], out[n + 6], out[n + 7], out[n + 8] = tc, dv, mv, inflight
end
if #leases > 0 then
  redis.call('HSET', KEYS[1], 'w', w, 'rp', rp, 'rc', rc, 'tp', tp, 'tc', tc,
    'd', d, 'dv', dv, 'm', m, 'mv', mv)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('ZADD', KEYS[2], unpack(leases))
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
return out
`;

/**
 * Settles one or more reservations of one key: frees their slots and moves each token
 * difference into the windows its reservation was counted in, if they are still current (or,
 * for the minute, the sliding previous one).
 * KEYS: usage hash, lease sorted set. ARGV: per reservation, lease id, delta, minute, day, month.
 * Returns the number of reservations settled.
 */
export const SETTLE_LUA = `
local leases = {}
local h = nil
local tc, tp, dv, mv = 0, 0, 0, 0
for i = 1, #ARGV, 5 do
  leases[#leases + 1] = ARGV[i]
  local d = tonumber(ARGV[i + 1])
  if d ~= 0 then
    if h == nil then h = redis.call('HMGET', KEYS[1], 'w', 'd', 'm') end
    local w, minute = tonumber(h[1]), tonumber(ARGV[i + 2])
    if w == minute then tc = tc + d elseif w == minute + 1 then tp = tp + d end
    if tonumber(h[2]) == tonumber(ARGV[i + 3]) then dv = dv + d end
    if tonumber(h[3]) == tonumber(ARGV[i + 4]) then mv = mv + d end
  end
end
redis.call('ZREM', KEYS[2], unpack(leases))
if tc ~= 0 then redis.call('HINCRBY', KEYS[1], 'tc', tc) end
if tp ~= 0 then redis.call('HINCRBY', KEYS[1], 'tp', tp) end
if dv ~= 0 then redis.call('HINCRBY', KEYS[1], 'dv', dv) end
if mv ~= 0 then redis.call('HINCRBY', KEYS[1], 'mv', mv) end
return #leases
`;

/**
 * Adds ARGV[2] to a sliding-window bucket pair (0 reads it) and returns {prev, curr}.
 * KEYS: bucket hash. ARGV: minute, cost, ttl.
 */
export const HIT_LUA = `
local minute, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'w', 'p', 'c')
local w, p, c = tonumber(h[1]) or minute, tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w < minute then
  if w == minute - 1 then p = c else p = 0 end
  c, w = 0, minute
end
if cost > 0 then
  c = c + cost
  redis.call('HSET', KEYS[1], 'w', w, 'p', p, 'c', c)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {p, c}
`;
