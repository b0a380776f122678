import { systemClock, type Clock } from '../core/index.ts'
import {
  applyRule,
  blockedDecision,
  newPenaltyState,
  newRuleState,
  recordRejection,
  refundRule,
  type Decision,
  type PenaltyRule,
  type PenaltyState,
  type RateLimitRule,
  type RuleState,
} from './algorithms.ts'
import type { RateLimitStore } from './store.ts'

export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys kept per policy. Past it the oldest keys are dropped (those clients start
   * afresh), so a flood of spoofed addresses cannot exhaust memory. Default 1,000,000.
   */
  maxKeys?: number
  /** How often expired state is swept; default 30 s. 0 disables the timer (tests). */
  sweepIntervalMs?: number
  /** Used for expiry sweeps; decisions use the `nowMs` they are given. */
  now?: Clock
}

/**
 * Rate-limit state in this process: exact, synchronous, and fast (a map lookup and a few
 * arithmetic operations per decision). Limits are per instance; share a Redis store when
 * several instances serve the same clients.
 *
 * @example
 * const store = new MemoryRateLimitStore()
 * store.consume('ip:192.0.2.1', rule, 1, Date.now())
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly kind = 'memory'
  readonly #rules = new Map<string, Map<string, RuleState>>()
  readonly #penalties = new Map<string, PenaltyState>()
  readonly #maxKeys: number
  readonly #now: Clock
  readonly #timer: NodeJS.Timeout | undefined

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 1_000_000
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1) throw new TypeError('maxKeys must be a positive integer')
    this.#now = options.now ?? systemClock
    const interval = options.sweepIntervalMs ?? 30_000
    if (interval > 0) {
      this.#timer = setInterval(() => {
        this.sweep()
      }, interval)
      this.#timer.unref()
    }
  }

  consume(key: string, rule: RateLimitRule, cost: number, nowMs: number, penalty?: PenaltyRule): Decision {
    let penaltyState: PenaltyState | undefined
    if (penalty !== undefined) {
      penaltyState = this.#penalties.get(key)
      if (penaltyState !== undefined && penaltyState.blockedUntil > nowMs) return blockedDecision(rule.limit, penaltyState.blockedUntil, nowMs, false)
    }
    const states = this.#statesOf(rule.name)
    let state = states.get(key)
    if (state === undefined || state.expiresAt <= nowMs) {
      if (state === undefined && states.size >= this.#maxKeys) evictOldest(states)
      state ??= newRuleState()
      if (state.expiresAt <= nowMs) reuse(state)
      states.set(key, state)
    }
    const result = applyRule(rule, state, cost, nowMs)
    if (result.allowed || penalty === undefined) return result
    if (penaltyState === undefined || penaltyState.expiresAt <= nowMs) {
      if (penaltyState === undefined && this.#penalties.size >= this.#maxKeys) evictOldest(this.#penalties)
      penaltyState ??= newPenaltyState()
      if (penaltyState.expiresAt <= nowMs) Object.assign(penaltyState, newPenaltyState())
      this.#penalties.set(key, penaltyState)
    }
    const blockedUntil = recordRejection(penalty, penaltyState, nowMs)
    return blockedUntil === 0 ? result : blockedDecision(rule.limit, blockedUntil, nowMs, true)
  }

  refund(key: string, rule: RateLimitRule, cost: number, nowMs: number): void {
    const state = this.#rules.get(rule.name)?.get(key)
    if (state !== undefined) refundRule(rule, state, cost, nowMs)
  }

  reset(key: string, rule: RateLimitRule): void {
    this.#rules.get(rule.name)?.delete(key)
    this.#penalties.delete(key)
  }

  /** Drops expired state; runs on a timer, callable directly. Returns how many keys it dropped. */
  sweep(): number {
    const now = this.#now()
    let dropped = 0
    for (const states of this.#rules.values()) {
      for (const [key, state] of states) {
        if (state.expiresAt <= now) {
          states.delete(key)
          dropped++
        }
      }
    }
    for (const [key, state] of this.#penalties) {
      if (state.expiresAt <= now) {
        this.#penalties.delete(key)
        dropped++
      }
    }
    return dropped
  }

  /** Keys currently held, over all policies (for tests and metrics). */
  get size(): number {
    let size = this.#penalties.size
    for (const states of this.#rules.values()) size += states.size
    return size
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#rules.clear()
    this.#penalties.clear()
  }

  #statesOf(name: string): Map<string, RuleState> {
    let states = this.#rules.get(name)
    if (states === undefined) {
      states = new Map()
      this.#rules.set(name, states)
    }
    return states
  }
}

function reuse(state: RuleState): void {
  state.a = 0
  state.b = 0
  state.c = 0
  state.expiresAt = 0
}

function evictOldest(map: Map<string, unknown>): void {
  // Maps iterate in insertion order: drop the oldest 1 % at once so eviction stays rare.
  let toDrop = Math.max(1, Math.floor(map.size / 100))
  for (const key of map.keys()) {
    map.delete(key)
    if (--toDrop === 0) break
  }
}
