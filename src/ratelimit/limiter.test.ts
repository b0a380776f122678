import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Decision, RateLimitRule } from './algorithms.ts'
import { RateLimiter, type RateLimiterEvent, type RateLimitPolicy, type StoreFailureMode } from './limiter.ts'
import { MemoryRateLimitStore } from './memory-store.ts'
import type { RateLimitStore } from './store.ts'

/**
 * A remote store whose behaviour the test switches: `ok` delegates to a memory store (as a
 * reachable Redis would answer), `hang` never answers, `fail` rejects at once. The engine
 * cannot tell it from a Redis store: it is not a MemoryRateLimitStore, so it is guarded.
 */
class SwitchableStore implements RateLimitStore {
  readonly kind = 'switchable'
  mode: 'ok' | 'hang' | 'fail' = 'ok'
  calls = 0
  readonly #inner = new MemoryRateLimitStore({ sweepIntervalMs: 0 })

  consume(key: string, rule: RateLimitRule, cost: number, nowMs: number): Promise<Decision> {
    this.calls++
    if (this.mode === 'hang') return new Promise(() => undefined)
    if (this.mode === 'fail') return Promise.reject(new Error('connection refused'))
    return Promise.resolve(this.#inner.consume(key, rule, cost, nowMs))
  }

  refund(): Promise<void> {
    return Promise.resolve()
  }

  reset(): Promise<void> {
    return Promise.resolve()
  }

  close(): void {
    this.#inner.close()
  }
}

function policy(name: string, onStoreError: StoreFailureMode, limit = 2): RateLimitPolicy {
  return { name, algorithm: 'fixed-window', limit, windowMs: 60_000, burst: limit, onStoreError, penalize: false }
}

describe('RateLimiter with a failing remote store', () => {
  it('times a hanging store out and applies each policy\'s failure mode: memory insurance, open, closed', async () => {
    const store = new SwitchableStore()
    store.mode = 'hang'
    const events: RateLimiterEvent[] = []
    const limiter = new RateLimiter({ store, breaker: { timeoutMs: 30, failureThreshold: 100 }, onEvent: (e) => events.push(e) })
    const insured = policy('insured', 'memory', 2)
    const started = performance.now()
    const outcomes = []
    for (let i = 0; i < 3; i++) outcomes.push(await limiter.check([{ policy: insured, key: 'k' }], 1))
    const elapsed = performance.now() - started
    assert.ok(elapsed < 1_000, `three timed-out calls took ${elapsed.toFixed(0)} ms`)
    // The insurance limiter enforces the same rule in memory: 2 pass, the third is refused.
    assert.deepEqual(
      outcomes.map((o) => [o.allowed, o.outcomes[0]?.source]),
      [
        [true, 'memory'],
        [true, 'memory'],
        [false, 'memory'],
      ],
    )
    const open = await limiter.check([{ policy: policy('lenient', 'open'), key: 'k' }], 1)
    assert.equal(open.allowed, true)
    assert.equal(open.outcomes[0]?.source, 'open')
    const closed = await limiter.check([{ policy: policy('strict', 'closed'), key: 'k' }], 1)
    assert.equal(closed.allowed, false)
    assert.equal(closed.outcomes[0]?.source, 'closed')
    assert.ok((closed.denied?.decision.retryAfterMs ?? 0) >= 1_000, 'closed mode says when to retry')
    assert.equal(limiter.stats.storeErrors, 5)
    assert.equal(limiter.stats.degradedDecisions, 5)
    const errors = events.filter((e) => e.type === 'store-error')
    assert.equal(errors.length, 5)
    assert.match(errors[0]?.type === 'store-error' ? errors[0].reason : '', /did not answer within 30 ms/)
    limiter.close()
  })

  it('opens the circuit after consecutive failures, stops calling the store, and closes it again once the store answers', async () => {
    const store = new SwitchableStore()
    store.mode = 'fail'
    const events: RateLimiterEvent[] = []
    const limiter = new RateLimiter({ store, breaker: { timeoutMs: 50, failureThreshold: 3, halfOpenAfterMs: 100 }, onEvent: (e) => events.push(e) })
    const p = policy('burst', 'memory', 1_000)
    for (let i = 0; i < 3; i++) await limiter.check([{ policy: p, key: 'k' }], 1)
    assert.equal(limiter.breakerState, 'open')
    assert.ok(events.some((e) => e.type === 'breaker-open' && e.store === 'switchable' && /connection refused/.test(e.reason)))
    const callsWhenOpened = store.calls
    for (let i = 0; i < 20; i++) assert.equal((await limiter.check([{ policy: p, key: 'k' }], 1)).outcomes[0]?.source, 'memory')
    assert.equal(store.calls, callsWhenOpened, 'an open circuit does not call the store')

    store.mode = 'ok'
    await new Promise((resolve) => setTimeout(resolve, 150))
    const probe = await limiter.check([{ policy: p, key: 'k' }], 1)
    assert.equal(probe.outcomes[0]?.source, 'store')
    assert.equal(limiter.breakerState, 'closed')
    assert.deepEqual(
      events.filter((e) => e.type.startsWith('breaker')).map((e) => e.type),
      ['breaker-open', 'breaker-half-open', 'breaker-closed'],
    )
    limiter.close()
  })
})
