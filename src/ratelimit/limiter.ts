import { circuitBreaker, ConsecutiveBreaker, handleAll, CircuitState, type CircuitBreakerPolicy } from 'cockatiel'
import { systemClock, type Clock } from '../core/index.ts'
import type { Decision, PenaltyRule, RateLimitRule } from './algorithms.ts'
import { withTimeout } from '../stores/index.ts'
import { MemoryRateLimitStore } from './memory-store.ts'
import type { RateLimitStore } from './store.ts'

/** What a policy does while its store is unreachable (or its circuit breaker is open). */
export type StoreFailureMode = 'open' | 'closed' | 'memory'

/** A named quota with its algorithm and what to do when the store fails. */
export interface RateLimitPolicy extends RateLimitRule {
  /**
   * `memory` (default): an in-process insurance limiter with the same rule takes over;
   * `open`: requests pass, without RateLimit fields for this policy;
   * `closed`: requests are refused with 503 and Retry-After.
   */
  readonly onStoreError: StoreFailureMode
  /** Whether rejections under this policy count towards a penalty block. */
  readonly penalize: boolean
}

/** One policy applied to one client key in a check. */
export interface PolicyCheck {
  readonly policy: RateLimitPolicy
  readonly key: string
}

/** How one policy was decided: by the store, the insurance limiter, or a failure mode. */
export type DecisionSource = 'store' | 'memory' | 'open' | 'closed'

export interface PolicyOutcome {
  readonly policy: RateLimitPolicy
  readonly key: string
  readonly decision: Decision
  readonly source: DecisionSource
}

export interface RateLimitResult {
  readonly allowed: boolean
  /** One per check, in the order given. */
  readonly outcomes: readonly PolicyOutcome[]
  /** The denial that lasts longest (the strictest), when the request is refused. */
  readonly denied: PolicyOutcome | undefined
}

export type RateLimiterEvent =
  | { type: 'breaker-open'; store: string; reason: string }
  | { type: 'breaker-half-open'; store: string }
  | { type: 'breaker-closed'; store: string }
  | { type: 'store-error'; store: string; policy: string; reason: string; mode: StoreFailureMode }
  | { type: 'block'; policy: string; key: string; retryAfterMs: number }

export interface RateLimiterOptions {
  store: RateLimitStore
  /** Escalating blocks for repeated rejections; none when omitted. */
  penalty?: PenaltyRule
  /** Guards a remote store: after `failureThreshold` consecutive failures it stops calling it. */
  breaker?: { failureThreshold?: number; halfOpenAfterMs?: number; timeoutMs?: number }
  /**
   * Scales insurance limits while the store is down: with N instances sharing a Redis, 1/N
   * keeps the total near the shared limit. Default 1.
   */
  insuranceLimitFactor?: number
  now?: Clock
  onEvent?: (event: RateLimiterEvent) => void
}

/** Counters for the observability capability (cumulative since start). */
export interface RateLimiterStats {
  allowed: number
  denied: number
  storeErrors: number
  degradedDecisions: number
}

/**
 * Applies several policies to one request atomically per policy, the strictest decision
 * winning: when one policy denies, the units the others spent are refunded, so a request
 * refused by a burst limit does not eat into a daily quota. A remote store sits behind a
 * timeout and a circuit breaker; while it fails, each policy follows its `onStoreError`.
 * With the memory store a check completes synchronously.
 *
 * @example
 * const limiter = new RateLimiter({ store: new MemoryRateLimitStore() })
 * const result = await limiter.check([{ policy: burst, key: 'ip:192.0.2.1' }], 1)
 */
export class RateLimiter {
  readonly store: RateLimitStore
  readonly stats: RateLimiterStats = { allowed: 0, denied: 0, storeErrors: 0, degradedDecisions: 0 }
  readonly #penalty: PenaltyRule | undefined
  readonly #now: Clock
  readonly #remote: boolean
  readonly #breaker: CircuitBreakerPolicy
  readonly #timeoutMs: number
  readonly #breakerState: () => CircuitState
  readonly #insurance: MemoryRateLimitStore
  readonly #insuranceFactor: number
  readonly #insuranceRules = new WeakMap<RateLimitPolicy, RateLimitRule>()
  readonly #onEvent: (event: RateLimiterEvent) => void
  readonly #halfOpenAfterMs: number

  constructor(options: RateLimiterOptions) {
    this.store = options.store
    this.#penalty = options.penalty
    this.#now = options.now ?? systemClock
    this.#onEvent = options.onEvent ?? (() => undefined)
    this.#remote = !(options.store instanceof MemoryRateLimitStore)
    this.#insurance = new MemoryRateLimitStore({ now: this.#now })
    this.#insuranceFactor = options.insuranceLimitFactor ?? 1
    if (!(this.#insuranceFactor > 0 && this.#insuranceFactor <= 1)) throw new TypeError('insuranceLimitFactor must be in (0, 1]')
    const failureThreshold = options.breaker?.failureThreshold ?? 5
    this.#halfOpenAfterMs = options.breaker?.halfOpenAfterMs ?? 5_000
    const breaker = circuitBreaker(handleAll, { halfOpenAfter: this.#halfOpenAfterMs, breaker: new ConsecutiveBreaker(failureThreshold) })
    const kind = options.store.kind
    breaker.onBreak((reason) => {
      this.#onEvent({ type: 'breaker-open', store: kind, reason: 'error' in reason ? reasonText(reason.error) : 'a result was rejected' })
    })
    breaker.onHalfOpen(() => {
      this.#onEvent({ type: 'breaker-half-open', store: kind })
    })
    breaker.onReset(() => {
      this.#onEvent({ type: 'breaker-closed', store: kind })
    })
    this.#breakerState = () => breaker.state
    this.#breaker = breaker
    // A plain timer rather than cockatiel's timeout policy: that one allocates an
    // AbortController and a DOMException per call, a measurable cost on every request.
    this.#timeoutMs = options.breaker?.timeoutMs ?? 250
  }

  /** `closed` while the store answers; `open` while its failures are being bypassed. */
  get breakerState(): 'closed' | 'open' | 'half-open' {
    const state = this.#breakerState()
    return state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open'
  }

  /**
   * Decides one request under every check, spending `cost` units of each policy that allows
   * it. Synchronous with the memory store.
   */
  check(checks: readonly PolicyCheck[], cost: number): RateLimitResult | Promise<RateLimitResult> {
    const now = this.#now()
    if (!this.#remote) {
      const outcomes: PolicyOutcome[] = []
      for (const c of checks) {
        const decision = this.store.consume(c.key, c.policy, cost, now, c.policy.penalize ? this.#penalty : undefined) as Decision
        outcomes.push({ policy: c.policy, key: c.key, decision, source: 'store' })
      }
      return this.#settle(outcomes, cost, now)
    }
    if (checks.length === 1) return this.#remoteDecision(checks[0] as PolicyCheck, cost, now).then((outcome) => this.#settle([outcome], cost, now))
    return Promise.all(checks.map((c) => this.#remoteDecision(c, cost, now))).then((outcomes) => this.#settle(outcomes, cost, now))
  }

  /** Forgets `key` under `policy` (an operator lifting a limit or a block). */
  async reset(policy: RateLimitPolicy, key: string): Promise<void> {
    this.#insurance.reset(key, this.#insuranceRule(policy))
    await this.store.reset(key, policy)
  }

  close(): void {
    this.#insurance.close()
  }

  async #remoteDecision(c: PolicyCheck, cost: number, now: number): Promise<PolicyOutcome> {
    const penalty = c.policy.penalize ? this.#penalty : undefined
    try {
      const decision = await this.#breaker.execute(() =>
        withTimeout(Promise.resolve(this.store.consume(c.key, c.policy, cost, now, penalty)), this.#timeoutMs, () => new Error(`the ${this.store.kind} store did not answer within ${this.#timeoutMs} ms`)),
      )
      return { policy: c.policy, key: c.key, decision, source: 'store' }
    } catch (err) {
      this.stats.storeErrors++
      this.stats.degradedDecisions++
      const mode = c.policy.onStoreError
      this.#onEvent({ type: 'store-error', store: this.store.kind, policy: c.policy.name, reason: reasonText(err), mode })
      if (mode === 'memory') {
        const decision = this.#insurance.consume(c.key, this.#insuranceRule(c.policy), cost, now, penalty)
        return { policy: c.policy, key: c.key, decision, source: 'memory' }
      }
      if (mode === 'open') {
        return { policy: c.policy, key: c.key, decision: { allowed: true, limit: c.policy.limit, remaining: c.policy.limit, resetMs: 0, retryAfterMs: 0, blocked: false, blockStarted: false }, source: 'open' }
      }
      const wait = Math.max(1_000, this.#halfOpenAfterMs)
      return { policy: c.policy, key: c.key, decision: { allowed: false, limit: c.policy.limit, remaining: 0, resetMs: wait, retryAfterMs: wait, blocked: false, blockStarted: false }, source: 'closed' }
    }
  }

  #insuranceRule(policy: RateLimitPolicy): RateLimitRule {
    if (this.#insuranceFactor === 1) return policy
    let rule = this.#insuranceRules.get(policy)
    if (rule === undefined) {
      const scale = (n: number): number => Math.max(1, Math.floor(n * this.#insuranceFactor))
      rule = { ...policy, name: policy.name, limit: scale(policy.limit), burst: scale(policy.burst) }
      this.#insuranceRules.set(policy, rule)
    }
    return rule
  }

  #settle(outcomes: PolicyOutcome[], cost: number, now: number): RateLimitResult {
    let denied: PolicyOutcome | undefined
    for (const outcome of outcomes) {
      if (outcome.decision.blockStarted) this.#onEvent({ type: 'block', policy: outcome.policy.name, key: outcome.key, retryAfterMs: outcome.decision.retryAfterMs })
      if (!outcome.decision.allowed && (denied === undefined || outcome.decision.retryAfterMs > denied.decision.retryAfterMs)) denied = outcome
    }
    if (denied === undefined) {
      this.stats.allowed++
      return { allowed: true, outcomes, denied }
    }
    this.stats.denied++
    // The request is refused: give back what the policies that allowed it spent.
    for (const outcome of outcomes) {
      if (!outcome.decision.allowed || cost === 0) continue
      if (outcome.source === 'memory') this.#insurance.refund(outcome.key, this.#insuranceRule(outcome.policy), cost, now)
      else if (outcome.source === 'store') {
        const refunded = this.store.refund(outcome.key, outcome.policy, cost, now)
        // A failed refund leaves the units spent until the window ends: harmless, not fatal.
        if (refunded instanceof Promise) refunded.catch(() => undefined)
      }
    }
    return { allowed: false, outcomes, denied }
  }
}

function reasonText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
