/**
 * The one Lua script behind every Redis rate-limit decision. It mirrors algorithms.ts line
 * for line (the shared contract tests hold both to the same answers), so a decision costs one
 * round trip and is atomic however many instances share the Redis.
 *
 * State is kept in plain strings so that an allowed decision is three Redis calls inside the
 * script (TIME, one MGET of state and penalty, one SET with PXAT) whatever the algorithm:
 * KEYS[1] the policy's state for the client: GCRA `tat`; windows `a b c` (as in RuleState)
 * KEYS[2] the client's penalty state `w n u l` (window start, rejections, blocked until,
 *         level); same hash slot as KEYS[1]
 * ARGV    mode ('c' consume | 'r' refund | 'x' reset), now in ms ('' = Redis TIME),
 *         the rule 'algorithm limit windowMs burst' (algorithm 'g' | 's' | 'f'), cost,
 *         the penalty 'rejections windowMs blockMs maxBlockMs' or '0' for none
 *         (rule and penalty travel as one argument each: fewer arguments are cheaper to
 *         send and to parse than the split is inside the script)
 * Returns {1, remaining, resetMs} when allowed, {0, remaining, resetMs, retryAfterMs, block}
 * when not, with block 0 none, 1 blocked already, 2 block started; refund and reset return {}.
 *
 * Written for speed as well as clarity (it runs inside Redis' single thread on every
 * request): no closures are created per call, library functions are held in locals, and
 * expiries are relative (PX), so a key lives exactly as long as its state matters whichever
 * clock the decision used.
 */
export const RATE_LIMIT_SCRIPT = `
local fmt, ceil, floor, max, min = string.format, math.ceil, math.floor, math.max, math.min
local mode = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[2])
end

if mode == 'x' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {}
end

local alg, limit, w, burst = string.match(ARGV[3], '^(%a) (%S+) (%S+) (%S+)$')
limit, w, burst = tonumber(limit), tonumber(w), tonumber(burst)
local cost = tonumber(ARGV[4])
local pr, pw, blockMs, maxBlockMs = 0, 0, 0, 0
if ARGV[5] ~= '0' then
  pr, pw, blockMs, maxBlockMs = string.match(ARGV[5], '^(%S+) (%S+) (%S+) (%S+)$')
  pr, pw, blockMs, maxBlockMs = tonumber(pr), tonumber(pw), tonumber(blockMs), tonumber(maxBlockMs)
end
local EPS = 1e-9

local stored, pstored
if mode == 'c' and pr > 0 then
  local both = redis.call('MGET', KEYS[1], KEYS[2])
  stored, pstored = both[1], both[2]
  if pstored then
    local pu = tonumber(string.match(pstored, '^%S+ %S+ (%S+)')) or 0
    if pu > now then
      local wait = max(1, ceil(pu - now))
      return {0, 0, wait, wait, 1}
    end
  end
else
  stored = redis.call('GET', KEYS[1])
end

local allowed, remaining, resetMs, retryMs

if alg == 'g' then
  local a = 0
  if stored then a = tonumber(stored) or 0 end
  local interval = w / limit
  local tolerance = interval * burst
  local tat = max(a, now)
  if mode == 'r' then
    local back = max(now, a - interval * cost)
    if back <= now then
      redis.call('DEL', KEYS[1])
    else
      redis.call('SET', KEYS[1], fmt('%.17g', back), 'PX', ceil(back - now) + 1)
    end
    return {}
  end
  local newTat = tat + interval * cost
  local allowAt = newTat - tolerance
  if allowAt > now + EPS then
    allowed = 0
    remaining = max(0, floor((tolerance - (tat - now)) / interval + EPS))
    resetMs = tat - now
    if cost > burst then retryMs = tat - now + tolerance else retryMs = allowAt - now end
  else
    redis.call('SET', KEYS[1], fmt('%.17g', newTat), 'PX', ceil(newTat - now) + 1)
    allowed = 1
    remaining = max(0, floor((tolerance - (newTat - now)) / interval + EPS))
    resetMs = newTat - now
  end
else
  local a, b, c = 0, 0, 0
  if stored then
    local sa, sb, sc = string.match(stored, '^(%S+) (%S+) (%S+)$')
    a, b, c = tonumber(sa) or 0, tonumber(sb) or 0, tonumber(sc) or 0
  end
  local storedA = a
  local ws = floor(now / w) * w
  if a ~= ws then
    if a == ws - w then c = b else c = 0 end
    b = 0
    a = ws
  end
  if mode == 'r' then
    if storedA == ws then
      redis.call('SET', KEYS[1], fmt('%.17g %.17g %.17g', a, max(0, b - cost), c), 'PX', ceil(ws + 2 * w - now) + 1)
    end
    return {}
  end
  if alg == 's' then
    local elapsed = (now - ws) / w
    local used = c * (1 - elapsed) + b
    if used + cost > limit + EPS then
      allowed = 0
      remaining = max(0, floor(limit - used + EPS))
      if b > 0 then resetMs = ws + 2 * w - now else resetMs = ws + w - now end
      if cost > limit then
        retryMs = ws + 2 * w - now
      elseif b + cost > limit then
        local f = 0
        if b > 0 then f = max(0, 1 - (limit - cost) / b) end
        retryMs = ws + w - now + f * w
      else
        retryMs = ws + (1 - (limit - b - cost) / c) * w - now
      end
    else
      allowed = 1
      if b + cost > 0 then resetMs = ws + 2 * w - now elseif c > 0 then resetMs = ws + w - now else resetMs = 0 end
      b = b + cost
      redis.call('SET', KEYS[1], fmt('%.17g %.17g %.17g', a, b, c), 'PX', ceil(ws + 2 * w - now) + 1)
      remaining = max(0, floor(limit - used - cost + EPS))
    end
  else
    local we = ws + w
    if b + cost > limit then
      allowed = 0
      remaining = max(0, limit - b)
      resetMs = we - now
      if cost > limit then retryMs = we - now + w else retryMs = we - now end
    else
      allowed = 1
      b = b + cost
      redis.call('SET', KEYS[1], fmt('%.17g %.17g %.17g', a, b, c), 'PX', ceil(we - now) + 1)
      remaining = limit - b
      resetMs = we - now
    end
  end
end

if resetMs < 0 then resetMs = 0 else resetMs = ceil(resetMs) end
if allowed == 1 then return {1, remaining, resetMs} end

if pr > 0 then
  local pws, n, blockUntil, level = 0, 0, 0, 0
  if pstored then
    local sw, sn, su, sl = string.match(pstored, '^(%S+) (%S+) (%S+) (%S+)$')
    pws, n, blockUntil, level = tonumber(sw) or 0, tonumber(sn) or 0, tonumber(su) or 0, tonumber(sl) or 0
  end
  if now - pws >= pw then pws = now n = 0 end
  n = n + 1
  local started = false
  if n >= pr then
    level = level + 1
    blockUntil = now + min(blockMs * 2 ^ (level - 1), maxBlockMs)
    n = 0
    started = true
  end
  redis.call('SET', KEYS[2], fmt('%.17g %d %.17g %d', pws, n, blockUntil, level), 'PX', ceil(max(pws + pw, blockUntil + maxBlockMs) - now) + 1)
  if started then
    local wait = max(1, ceil(blockUntil - now))
    return {0, 0, wait, wait, 2}
  end
end

return {0, remaining, resetMs, max(1, ceil(retryMs)), 0}
`
