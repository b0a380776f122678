import type { Decision, PenaltyRule, RateLimitRule } from './algorithms.ts'

/**
 * Where rate-limit state lives. One call is one atomic decision: a key that is blocked stays
 * blocked, an allowed request spends `cost` units, a denied one spends nothing and (with a
 * penalty rule) counts towards a block of the key. The memory store answers synchronously;
 * remote stores return a promise.
 */
export interface RateLimitStore {
  /** `memory`, `redis`, ...: reported in logs and health. */
  readonly kind: string
  /**
   * Applies one decision for `key` under `rule`. `nowMs` is the caller's clock; stores that
   * keep their own clock (Redis by default) use theirs so that instances agree.
   */
  consume(key: string, rule: RateLimitRule, cost: number, nowMs: number, penalty?: PenaltyRule): Decision | Promise<Decision>
  /** Gives back `cost` units an allowed decision spent (used when another policy denied). */
  refund(key: string, rule: RateLimitRule, cost: number, nowMs: number): void | Promise<void>
  /** Forgets the state of `key` under `rule`, and its block. */
  reset(key: string, rule: RateLimitRule): void | Promise<void>
  close(): void | Promise<void>
}
