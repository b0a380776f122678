/**
 * The three rate-limit algorithms as pure functions over a small mutable state record. The
 * memory store runs them directly; the Redis store runs the same arithmetic in one Lua
 * script (redis-script.ts), and the shared contract tests hold both to the same answers.
 */

export type RateLimitAlgorithm = 'gcra' | 'sliding-window' | 'fixed-window'

/** One quota: `limit` units per `windowMs`, applied with `algorithm`. */
export interface RateLimitRule {
  /** Names the policy in headers and separates its counters from other policies' counters. */
  readonly name: string
  readonly algorithm: RateLimitAlgorithm
  /** Units allowed per window (the draft's `q`). */
  readonly limit: number
  readonly windowMs: number
  /** GCRA only: how many units may be spent at once (the bucket size); defaults to `limit`. */
  readonly burst: number
}

/**
 * Repeated rejections of one key within `windowMs` escalate to a block of the key: the first
 * lasts `blockMs`, each further one twice as long as the previous, up to `maxBlockMs`.
 */
export interface PenaltyRule {
  readonly rejections: number
  readonly windowMs: number
  readonly blockMs: number
  readonly maxBlockMs: number
}

/** The answer to one consume call. Times are in milliseconds from the decision. */
export interface Decision {
  readonly allowed: boolean
  readonly limit: number
  /** Units still available after this decision (0 when denied or blocked). */
  readonly remaining: number
  /** Until the quota is fully available again if nothing more is spent (the draft's `t`). */
  readonly resetMs: number
  /** Until the same request could succeed; 0 when allowed. */
  readonly retryAfterMs: number
  /** Denied because the key is blocked for repeated rejections. */
  readonly blocked: boolean
  /** This decision started a block (report it as a security event). */
  readonly blockStarted: boolean
}

/** Per-key mutable state: the meaning of a/b/c depends on the algorithm. */
export interface RuleState {
  /** gcra: theoretical arrival time; windows: start of the current window. */
  a: number
  /** windows: units spent in the current window. */
  b: number
  /** sliding-window: units spent in the previous window. */
  c: number
  /** When the state may be forgotten (epoch ms). */
  expiresAt: number
}

/** Per-key penalty state: rejections in the current penalty window, and the block. */
export interface PenaltyState {
  windowStart: number
  rejections: number
  blockedUntil: number
  level: number
  expiresAt: number
}

// Floating-point slack when turning a time budget into whole units.
const EPSILON = 1e-9

export function newRuleState(): RuleState {
  return { a: 0, b: 0, c: 0, expiresAt: 0 }
}

/** Applies one decision to `state` (mutated when allowed). `cost` may be 0 to peek. */
export function applyRule(rule: RateLimitRule, state: RuleState, cost: number, now: number): Decision {
  switch (rule.algorithm) {
    case 'gcra':
      return gcra(rule, state, cost, now)
    case 'sliding-window':
      return slidingWindow(rule, state, cost, now)
    case 'fixed-window':
      return fixedWindow(rule, state, cost, now)
  }
}

/** Gives back `cost` units spent by an allowed decision (another policy denied the request). */
export function refundRule(rule: RateLimitRule, state: RuleState, cost: number, now: number): void {
  if (rule.algorithm === 'gcra') {
    const interval = rule.windowMs / rule.limit
    state.a = Math.max(now, state.a - interval * cost)
    return
  }
  const windowStart = Math.floor(now / rule.windowMs) * rule.windowMs
  if (state.a === windowStart) state.b = Math.max(0, state.b - cost)
}

function decision(allowed: boolean, limit: number, remaining: number, resetMs: number, retryAfterMs: number): Decision {
  return { allowed, limit, remaining, resetMs: Math.max(0, Math.ceil(resetMs)), retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(retryAfterMs)), blocked: false, blockStarted: false }
}

/**
 * GCRA: each unit advances a theoretical arrival time (TAT) by the emission interval
 * `windowMs / limit`; a request passes when the new TAT is at most `burst` intervals ahead
 * of now. This is a token bucket of size `burst` refilled at `limit` per window, kept in one
 * number per key.
 */
function gcra(rule: RateLimitRule, state: RuleState, cost: number, now: number): Decision {
  const interval = rule.windowMs / rule.limit
  const tolerance = interval * rule.burst
  const tat = Math.max(state.a, now)
  const newTat = tat + interval * cost
  const allowAt = newTat - tolerance
  if (allowAt > now + EPSILON) {
    const remaining = Math.max(0, Math.floor((tolerance - (tat - now)) / interval + EPSILON))
    // A cost larger than the bucket can never pass; say when the bucket is full at least.
    const retry = cost > rule.burst ? tat - now + tolerance : allowAt - now
    return decision(false, rule.limit, remaining, tat - now, retry)
  }
  state.a = newTat
  state.expiresAt = newTat
  return decision(true, rule.limit, Math.max(0, Math.floor((tolerance - (newTat - now)) / interval + EPSILON)), newTat - now, 0)
}

/** Rolls window counters forward to the window containing `now`. */
function roll(rule: RateLimitRule, state: RuleState, now: number): number {
  const windowStart = Math.floor(now / rule.windowMs) * rule.windowMs
  if (state.a !== windowStart) {
    state.c = state.a === windowStart - rule.windowMs ? state.b : 0
    state.b = 0
    state.a = windowStart
  }
  return windowStart
}

/**
 * Sliding-window counter: the previous window's count, weighted by how much of it still
 * overlaps the sliding window, plus the current window's count.
 */
function slidingWindow(rule: RateLimitRule, state: RuleState, cost: number, now: number): Decision {
  const w = rule.windowMs
  const windowStart = roll(rule, state, now)
  const elapsed = (now - windowStart) / w
  const used = state.c * (1 - elapsed) + state.b
  const fullReset = state.b + cost > 0 ? windowStart + 2 * w - now : state.c > 0 ? windowStart + w - now : 0
  if (used + cost > rule.limit + EPSILON) {
    let retry: number
    if (cost > rule.limit) retry = windowStart + 2 * w - now
    else if (state.b + cost > rule.limit) {
      // Not even in this window with the previous one fully decayed: wait into the next
      // window until this window's count, decaying there, leaves room.
      const fraction = state.b > 0 ? Math.max(0, 1 - (rule.limit - cost) / state.b) : 0
      retry = windowStart + w - now + fraction * w
    } else {
      const fraction = 1 - (rule.limit - state.b - cost) / state.c
      retry = windowStart + fraction * w - now
    }
    const fullResetNow = state.b > 0 ? windowStart + 2 * w - now : windowStart + w - now
    return decision(false, rule.limit, Math.max(0, Math.floor(rule.limit - used + EPSILON)), fullResetNow, retry)
  }
  state.b += cost
  state.expiresAt = windowStart + 2 * w
  return decision(true, rule.limit, Math.max(0, Math.floor(rule.limit - used - cost + EPSILON)), fullReset, 0)
}

/** Fixed window: a counter per window aligned to the epoch (a daily quota resets at 00:00 UTC). */
function fixedWindow(rule: RateLimitRule, state: RuleState, cost: number, now: number): Decision {
  const windowStart = roll(rule, state, now)
  const windowEnd = windowStart + rule.windowMs
  if (state.b + cost > rule.limit) {
    const retry = cost > rule.limit ? windowEnd - now + rule.windowMs : windowEnd - now
    return decision(false, rule.limit, Math.max(0, rule.limit - state.b), windowEnd - now, retry)
  }
  state.b += cost
  state.expiresAt = windowEnd
  return decision(true, rule.limit, rule.limit - state.b, windowEnd - now, 0)
}

export function newPenaltyState(): PenaltyState {
  return { windowStart: 0, rejections: 0, blockedUntil: 0, level: 0, expiresAt: 0 }
}

/** A decision for a key that is blocked until `blockedUntil`. */
export function blockedDecision(limit: number, blockedUntil: number, now: number, started: boolean): Decision {
  const wait = Math.max(1, Math.ceil(blockedUntil - now))
  return { allowed: false, limit, remaining: 0, resetMs: wait, retryAfterMs: wait, blocked: true, blockStarted: started }
}

/**
 * Counts one rejection of a key; returns when its block ends if this rejection started one,
 * or 0. Levels escalate the block length and are forgotten after `maxBlockMs` of quiet.
 */
export function recordRejection(penalty: PenaltyRule, state: PenaltyState, now: number): number {
  if (now - state.windowStart >= penalty.windowMs) {
    state.windowStart = now
    state.rejections = 0
  }
  state.rejections += 1
  let blockedUntil = 0
  if (state.rejections >= penalty.rejections) {
    state.level += 1
    const length = Math.min(penalty.blockMs * 2 ** (state.level - 1), penalty.maxBlockMs)
    blockedUntil = now + length
    state.blockedUntil = blockedUntil
    state.rejections = 0
  }
  state.expiresAt = Math.max(state.windowStart + penalty.windowMs, state.blockedUntil + penalty.maxBlockMs)
  return blockedUntil
}
