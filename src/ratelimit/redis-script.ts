/**
 * The one Lua script behind every Redis rate-limit decision. It mirrors algorithms.ts line
 * for line (the shared contract tests hold both to the same answers), so a decision costs one
 * round trip and is atomic however many instances share the Redis.
 *
 * KEYS[1] the policy's state for the client (a hash: a, b, c as in RuleState)
 * KEYS[2] the client's penalty state (a hash: w, n, u, l); same hash slot as KEYS[1]
 * ARGV    mode ('c' consume | 'r' refund | 'x' reset), now in ms ('' = Redis TIME),
 *         algorithm ('g' | 's' | 'f'), limit, windowMs, burst, cost,
 *         penalty rejections (0 = no penalty), penalty windowMs, blockMs, maxBlockMs
 * Returns {allowed, remaining, resetMs, retryAfterMs, block} with block 0 none,
 * 1 blocked already, 2 block started; refund and reset return {}.
 */
export const RATE_LIMIT_SCRIPT = `
local mode = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[2])
end
local alg = ARGV[3]
local limit = tonumber(ARGV[4])
local w = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local cost = tonumber(ARGV[7])
local EPS = 1e-9

if mode == 'x' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {}
end

local function ceil0(x) if x < 0 then return 0 end return math.ceil(x) end
local function retry1(x) local r = math.ceil(x) if r < 1 then return 1 end return r end
local function fmt(x) return string.format('%.17g', x) end

local function save(a, b, c, expiresAt)
  redis.call('HSET', KEYS[1], 'a', fmt(a), 'b', fmt(b), 'c', fmt(c))
  redis.call('PEXPIREAT', KEYS[1], math.ceil(expiresAt) + 1)
end

local function blocked(blockUntil, started)
  local wait = retry1(blockUntil - now)
  return {0, 0, wait, wait, started}
end

local pr = tonumber(ARGV[8])
local pw, pu
if mode == 'c' and pr > 0 then
  local p = redis.call('HMGET', KEYS[2], 'u')
  pu = tonumber(p[1]) or 0
  if pu > now then return blocked(pu, 1) end
end

local s = redis.call('HMGET', KEYS[1], 'a', 'b', 'c')
local a = tonumber(s[1]) or 0
local b = tonumber(s[2]) or 0
local c = tonumber(s[3]) or 0

local allowed, remaining, resetMs, retryMs

if alg == 'g' then
  local interval = w / limit
  local tolerance = interval * burst
  local tat = math.max(a, now)
  if mode == 'r' then
    local back = math.max(now, a - interval * cost)
    if back <= now then redis.call('DEL', KEYS[1]) else save(back, 0, 0, back) end
    return {}
  end
  local newTat = tat + interval * cost
  local allowAt = newTat - tolerance
  if allowAt > now + EPS then
    allowed = 0
    remaining = math.max(0, math.floor((tolerance - (tat - now)) / interval + EPS))
    resetMs = tat - now
    if cost > burst then retryMs = tat - now + tolerance else retryMs = allowAt - now end
  else
    save(newTat, 0, 0, newTat)
    allowed = 1
    remaining = math.max(0, math.floor((tolerance - (newTat - now)) / interval + EPS))
    resetMs = newTat - now
    retryMs = 0
  end
else
  local ws = math.floor(now / w) * w
  if a ~= ws then
    if a == ws - w then c = b else c = 0 end
    b = 0
    a = ws
  end
  if mode == 'r' then
    if tonumber(s[1]) == ws then save(a, math.max(0, b - cost), c, ws + 2 * w) end
    return {}
  end
  if alg == 's' then
    local elapsed = (now - ws) / w
    local used = c * (1 - elapsed) + b
    if used + cost > limit + EPS then
      allowed = 0
      remaining = math.max(0, math.floor(limit - used + EPS))
      if b > 0 then resetMs = ws + 2 * w - now else resetMs = ws + w - now end
      if cost > limit then
        retryMs = ws + 2 * w - now
      elseif b + cost > limit then
        local f = 0
        if b > 0 then f = math.max(0, 1 - (limit - cost) / b) end
        retryMs = ws + w - now + f * w
      else
        retryMs = ws + (1 - (limit - b - cost) / c) * w - now
      end
    else
      allowed = 1
      if b + cost > 0 then resetMs = ws + 2 * w - now elseif c > 0 then resetMs = ws + w - now else resetMs = 0 end
      b = b + cost
      save(a, b, c, ws + 2 * w)
      remaining = math.max(0, math.floor(limit - used - cost + EPS))
      retryMs = 0
    end
  else
    local we = ws + w
    if b + cost > limit then
      allowed = 0
      remaining = math.max(0, limit - b)
      resetMs = we - now
      if cost > limit then retryMs = we - now + w else retryMs = we - now end
    else
      allowed = 1
      b = b + cost
      save(a, b, c, we)
      remaining = limit - b
      resetMs = we - now
      retryMs = 0
    end
  end
end

if allowed == 1 then return {1, remaining, ceil0(resetMs), 0, 0} end

if pr > 0 then
  pw = tonumber(ARGV[9])
  local blockMs = tonumber(ARGV[10])
  local maxBlockMs = tonumber(ARGV[11])
  local p = redis.call('HMGET', KEYS[2], 'w', 'n', 'u', 'l')
  local pws = tonumber(p[1]) or 0
  local n = tonumber(p[2]) or 0
  local blockUntil = tonumber(p[3]) or 0
  local level = tonumber(p[4]) or 0
  if now - pws >= pw then pws = now n = 0 end
  n = n + 1
  local started = 0
  if n >= pr then
    level = level + 1
    blockUntil = now + math.min(blockMs * 2 ^ (level - 1), maxBlockMs)
    n = 0
    started = 1
  end
  redis.call('HSET', KEYS[2], 'w', fmt(pws), 'n', n, 'u', fmt(blockUntil), 'l', level)
  redis.call('PEXPIREAT', KEYS[2], math.ceil(math.max(pws + pw, blockUntil + maxBlockMs)) + 1)
  if started == 1 then return blocked(blockUntil, 2) end
end

return {0, remaining, ceil0(resetMs), retry1(retryMs), 0}
`
