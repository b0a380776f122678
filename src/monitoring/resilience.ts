import {
  bulkhead as cockatielBulkhead,
  BrokenCircuitError,
  BulkheadRejectedError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  decorrelatedJitterGenerator,
  ExponentialBackoff,
  fullJitterGenerator,
  halfJitterGenerator,
  handleWhen,
  IsolatedCircuitError,
  noJitterGenerator,
  noop,
  retry as cockatielRetry,
  TaskCancelledError,
  timeout as cockatielTimeout,
  TimeoutStrategy,
  wrap,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IPolicy,
} from 'cockatiel'
import { BackbeatError, ConfigError, parseOptions, systemClock, type Clock, type HealthCheckable, type HealthCheckResult } from '../core/index.ts'
import { resiliencePolicyOptionsSchema, type ResiliencePolicyOptions, type ResiliencePolicyOptionsInput } from './options.ts'

/** Why a call failed, which picks its fallback. */
export type FailureCategory = 'timeout' | 'circuitOpen' | 'bulkheadFull' | 'error'

/** Fallbacks per failure category; each gets the error and returns the value served instead. */
export type ResilienceFallbacks<F> = Partial<Record<FailureCategory, (error: unknown) => F | Promise<F>>>

export type BreakerStateName = 'closed' | 'open' | 'half-open' | 'isolated' | 'disabled'

/** Events for logs and metrics. */
export type ResilienceEvent =
  | { type: 'retry'; policy: string; attempt: number; delayMs: number }
  | { type: 'timeout'; policy: string }
  | { type: 'breaker'; policy: string; state: BreakerStateName }
  | { type: 'rejected'; policy: string; reason: 'circuitOpen' | 'bulkheadFull' }
  | { type: 'fallback'; policy: string; category: FailureCategory }

/** Counters and state of one policy, for metrics and health. */
export interface ResilienceSnapshot {
  name: string
  breaker: BreakerStateName
  /** Calls made through `execute`. */
  calls: number
  successes: number
  /** Calls that failed in the end (after retries), fallback or not. */
  failures: number
  /** Attempts of the wrapped function, retries included. */
  attempts: number
  retries: number
  /** Attempts cut by the timeout. */
  timeouts: number
  rejections: { circuitOpen: number; bulkheadFull: number }
  fallbacks: number
  /** Calls executing now (holding a bulkhead slot when there is a bulkhead). */
  inFlight: number
  /** Calls waiting for a bulkhead slot. */
  queued: number
  lastFailureAt: number | undefined
}

export type ResiliencePolicyInput<F> = ResiliencePolicyOptionsInput & {
  fallbacks?: ResilienceFallbacks<F>
  /**
   * Which errors count as failures (retried, counted by the breaker). By default every error
   * except those with a `status` below 500 (a 404 from a dependency is an answer, not an outage).
   */
  isFailure?: (error: unknown) => boolean
  onEvent?: (event: ResilienceEvent) => void
  now?: Clock
}

const BREAKER_STATES: Record<CircuitState, BreakerStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
}

const GENERATORS = { none: noJitterGenerator, full: fullJitterGenerator, half: halfJitterGenerator, decorrelated: decorrelatedJitterGenerator } as const

function defaultIsFailure(error: unknown): boolean {
  const status = typeof error === 'object' && error !== null ? (error as { status?: unknown }).status : undefined
  return !(typeof status === 'number' && status < 500)
}

function isRejection(error: unknown): boolean {
  return error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError || error instanceof BulkheadRejectedError
}

/**
 * Retry, timeout, circuit breaker and bulkhead around calls to one dependency, with a
 * fallback per failure category. Wrap order, outermost first:
 *
 *   fallbacks → bulkhead → retry → circuit breaker → timeout → your function
 *
 * The bulkhead bounds logical calls, retries included, so retries cannot multiply the load on
 * a struggling dependency; retry sits outside the breaker so every attempt asks the breaker
 * (and an open circuit is never retried); the timeout is innermost so it bounds each attempt
 * and a timed-out attempt counts as a breaker failure. Without a fallback, a timeout becomes
 * ERR_DEPENDENCY_TIMEOUT and a rejection (open circuit, full bulkhead) ERR_DEPENDENCY_UNAVAILABLE;
 * other errors are rethrown as they are.
 *
 * @example
 * const spotify = createResiliencePolicy('spotify', { timeoutMs: 2000, fallbacks: { circuitOpen: () => [] } })
 * const tracks = await spotify.execute((signal) => fetchTracks(id, { signal }))
 */
export class ResiliencePolicy<F = never> implements HealthCheckable {
  readonly name: string
  readonly options: ResiliencePolicyOptions
  readonly #fallbacks: ResilienceFallbacks<F>
  readonly #onEvent: ((event: ResilienceEvent) => void) | undefined
  readonly #now: Clock
  readonly #breaker: CircuitBreakerPolicy | undefined
  readonly #bulkhead: BulkheadPolicy | undefined
  readonly #policy: IPolicy
  #inFlight = 0
  readonly #counts = { calls: 0, successes: 0, failures: 0, attempts: 0, retries: 0, timeouts: 0, circuitOpen: 0, bulkheadFull: 0, fallbacks: 0 }
  #lastFailureAt: number | undefined

  constructor(name: string, input: ResiliencePolicyInput<F> = {}) {
    const { fallbacks, isFailure, onEvent, now, ...rest } = input
    this.name = name
    this.options = parseOptions(`resilience.${name}`, resiliencePolicyOptionsSchema, rest)
    this.#fallbacks = fallbacks ?? {}
    this.#onEvent = onEvent
    this.#now = now ?? systemClock
    const failure = isFailure ?? defaultIsFailure
    const handled = handleWhen((error) => !isRejection(error) && failure(error))
    const parts: IPolicy[] = []
    const { bulkhead, retry, breaker, timeoutMs } = this.options
    if (bulkhead !== false) {
      this.#bulkhead = cockatielBulkhead(bulkhead.limit, bulkhead.queue)
      this.#bulkhead.onReject(() => {
        this.#emit({ type: 'rejected', policy: name, reason: 'bulkheadFull' })
      })
      parts.push(this.#bulkhead)
    }
    if (retry !== false && retry.maxAttempts > 1) {
      const backoff = new ExponentialBackoff({ initialDelay: retry.initialDelayMs, maxDelay: retry.maxDelayMs, generator: GENERATORS[retry.jitter] as typeof noJitterGenerator })
      const policy = cockatielRetry(handled, { maxAttempts: retry.maxAttempts - 1, backoff })
      policy.onRetry((event) => {
        this.#counts.retries++
        this.#emit({ type: 'retry', policy: name, attempt: event.attempt, delayMs: event.delay })
      })
      parts.push(policy)
    }
    if (breaker !== false) {
      this.#breaker = circuitBreaker(handled, { halfOpenAfter: breaker.halfOpenAfterMs, breaker: new ConsecutiveBreaker(breaker.threshold) })
      this.#breaker.onStateChange((state) => {
        this.#emit({ type: 'breaker', policy: name, state: BREAKER_STATES[state] })
      })
      parts.push(this.#breaker)
    }
    if (timeoutMs !== false) {
      const policy = cockatielTimeout(timeoutMs, TimeoutStrategy.Aggressive)
      policy.onTimeout(() => {
        this.#counts.timeouts++
        this.#emit({ type: 'timeout', policy: name })
      })
      parts.push(policy)
    }
    this.#policy = parts.length === 0 ? noop : wrap(...parts)
  }

  /**
   * Runs `fn` through the policy. `fn` gets a signal that aborts when its attempt times out
   * or `signal` aborts; pass it on to the I/O so abandoned attempts stop.
   */
  async execute<T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T | F> {
    this.#counts.calls++
    this.#inFlight++
    try {
      const value = await this.#policy.execute(({ signal: attemptSignal }) => {
        this.#counts.attempts++
        return fn(attemptSignal)
      }, signal)
      this.#counts.successes++
      return value
    } catch (error) {
      this.#counts.failures++
      this.#lastFailureAt = this.#now()
      // A call the caller cancelled is not a dependency failure to paper over.
      if (signal?.aborted === true) throw error
      const category = categorize(error)
      if (category === 'circuitOpen') this.#counts.circuitOpen++
      if (category === 'bulkheadFull') this.#counts.bulkheadFull++
      if (category === 'circuitOpen') this.#emit({ type: 'rejected', policy: this.name, reason: 'circuitOpen' })
      const fallback = this.#fallbacks[category]
      if (fallback !== undefined) {
        this.#counts.fallbacks++
        this.#emit({ type: 'fallback', policy: this.name, category })
        return await fallback(error)
      }
      if (category === 'timeout') throw new BackbeatError('ERR_DEPENDENCY_TIMEOUT', { params: { dependency: this.name }, cause: error })
      if (category !== 'error') throw new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: this.name, reason: category }, cause: error })
      throw error
    } finally {
      this.#inFlight--
    }
  }

  /** The breaker state, or `disabled` without a breaker. */
  get breakerState(): BreakerStateName {
    return this.#breaker === undefined ? 'disabled' : BREAKER_STATES[this.#breaker.state]
  }

  snapshot(): ResilienceSnapshot {
    const c = this.#counts
    const bulkhead = this.options.bulkhead
    const queued = this.#bulkhead === undefined || bulkhead === false ? 0 : bulkhead.queue - this.#bulkhead.queueSlots
    const inFlight = this.#bulkhead === undefined || bulkhead === false ? this.#inFlight : bulkhead.limit - this.#bulkhead.executionSlots
    return {
      name: this.name,
      breaker: this.breakerState,
      calls: c.calls,
      successes: c.successes,
      failures: c.failures,
      attempts: c.attempts,
      retries: c.retries,
      timeouts: c.timeouts,
      rejections: { circuitOpen: c.circuitOpen, bulkheadFull: c.bulkheadFull },
      fallbacks: c.fallbacks,
      inFlight,
      queued,
      lastFailureAt: this.#lastFailureAt,
    }
  }

  /**
   * `fail` while the circuit is open or isolated, `warn` while half-open or while the bulkhead
   * is saturated (every slot busy and the queue full), else `pass`.
   */
  healthCheck = (signal: AbortSignal): Promise<HealthCheckResult> => {
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    const state = this.breakerState
    if (state === 'open' || state === 'isolated') return Promise.resolve({ status: 'fail', message: `${this.name}: circuit ${state}` })
    if (state === 'half-open') return Promise.resolve({ status: 'warn', message: `${this.name}: circuit half-open, trial call pending` })
    if (this.#bulkhead !== undefined && this.#bulkhead.executionSlots === 0 && this.#bulkhead.queueSlots === 0) {
      return Promise.resolve({ status: 'warn', message: `${this.name}: bulkhead full` })
    }
    return Promise.resolve({ status: 'pass' })
  }

  #emit(event: ResilienceEvent): void {
    if (this.#onEvent === undefined) return
    try {
      this.#onEvent(event)
    } catch {
      // A failing listener must not fail the call it observes.
    }
  }
}

function categorize(error: unknown): FailureCategory {
  if (error instanceof TaskCancelledError) return 'timeout'
  if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError) return 'circuitOpen'
  if (error instanceof BulkheadRejectedError) return 'bulkheadFull'
  return 'error'
}

/**
 * Creates a ResiliencePolicy (see its doc for the wrap order); options are validated once and
 * a bad value throws ConfigError.
 *
 * @example const db = createResiliencePolicy('postgres', { retry: { maxAttempts: 2 }, breaker: { threshold: 10, halfOpenAfterMs: 5000 } })
 */
export function createResiliencePolicy<F = never>(name: string, options: ResiliencePolicyInput<F> = {}): ResiliencePolicy<F> {
  return new ResiliencePolicy<F>(name, options)
}

/**
 * Every resilience policy of an app, by name: for metrics (snapshots) and health checks.
 *
 * @example
 * const registry = new ResilienceRegistry()
 * const spotify = registry.create('spotify', { timeoutMs: 2000 })
 * for (const p of registry.list()) health.register(p.name, p.healthCheck)
 */
export class ResilienceRegistry {
  readonly #policies = new Map<string, ResiliencePolicy<unknown>>()

  /** Creates and registers a policy; names are unique. */
  create<F = never>(name: string, options: ResiliencePolicyInput<F> = {}): ResiliencePolicy<F> {
    const policy = new ResiliencePolicy<F>(name, options)
    this.register(policy)
    return policy
  }

  register(policy: ResiliencePolicy<unknown>): void {
    if (this.#policies.has(policy.name)) throw new ConfigError([{ path: `resilience.${policy.name}`, message: 'a resilience policy with this name is already registered' }])
    this.#policies.set(policy.name, policy)
  }

  get(name: string): ResiliencePolicy<unknown> | undefined {
    return this.#policies.get(name)
  }

  list(): ResiliencePolicy<unknown>[] {
    return [...this.#policies.values()]
  }

  snapshots(): ResilienceSnapshot[] {
    return this.list().map((p) => p.snapshot())
  }

  /** The worst state over all policies, for one aggregated health check. */
  healthCheck = async (signal: AbortSignal): Promise<HealthCheckResult> => {
    const results = await Promise.all(this.list().map(async (p) => ({ name: p.name, result: await p.healthCheck(signal) })))
    const failing = results.filter((r) => r.result.status === 'fail')
    const warning = results.filter((r) => r.result.status === 'warn')
    if (failing.length > 0) return { status: 'fail', message: failing.map((r) => r.result.message ?? r.name).join('; ') }
    if (warning.length > 0) return { status: 'warn', message: warning.map((r) => r.result.message ?? r.name).join('; ') }
    return { status: 'pass' }
  }
}
