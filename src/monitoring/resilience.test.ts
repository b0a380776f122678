import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { createResiliencePolicy, ResilienceRegistry, type ResilienceEvent } from './resilience.ts'

const NO_PARTS = { retry: false, timeoutMs: false, breaker: false, bulkhead: false } as const
const signal = (): AbortSignal => new AbortController().signal

/** A function failing `failures` times, then answering `value`. */
function flaky<T>(failures: number, value: T): { fn: () => Promise<T>; calls: () => number } {
  let calls = 0
  return {
    fn: async () => {
      calls++
      if (calls <= failures) throw Object.assign(new Error(`refused ${String(calls)}`), { code: 'ECONNREFUSED' })
      return value
    },
    calls: () => calls,
  }
}

describe('retry', () => {
  it('retries with exponential backoff until an attempt succeeds', async () => {
    const events: ResilienceEvent[] = []
    const policy = createResiliencePolicy('deps', { ...NO_PARTS, retry: { maxAttempts: 4, initialDelayMs: 5, maxDelayMs: 100, jitter: 'none' }, onEvent: (e) => events.push(e) })
    const dep = flaky(2, 'ok')
    const started = performance.now()
    assert.equal(await policy.execute(dep.fn), 'ok')
    assert.ok(performance.now() - started >= 14, 'waited 5 + 10 ms')
    assert.deepEqual(events.filter((e) => e.type === 'retry').map((e) => [e.attempt, e.delayMs]), [[1, 5], [2, 10]])
    const s = policy.snapshot()
    assert.deepEqual([s.calls, s.attempts, s.retries, s.successes, s.failures], [1, 3, 2, 1, 0])
  })

  it('gives up after maxAttempts and rethrows the last error', async () => {
    const policy = createResiliencePolicy('deps', { ...NO_PARTS, retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2, jitter: 'full' } })
    const dep = flaky(10, 'never')
    await assert.rejects(policy.execute(dep.fn), /refused 3/)
    assert.equal(dep.calls(), 3)
    assert.equal(policy.snapshot().failures, 1)
  })

  it('does not retry client errors (status below 500)', async () => {
    const policy = createResiliencePolicy('deps', { ...NO_PARTS, retry: { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 1, jitter: 'none' } })
    let calls = 0
    await assert.rejects(
      policy.execute(() => {
        calls++
        throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Track', id: 'x' } })
      }),
      BackbeatError,
    )
    assert.equal(calls, 1)
  })
})

describe('timeout', () => {
  it('cuts a slow attempt, aborts its signal and answers ERR_DEPENDENCY_TIMEOUT', async () => {
    const policy = createResiliencePolicy('slow', { ...NO_PARTS, timeoutMs: 20 })
    let aborted = false
    const error = await policy
      .execute(async (s) => {
        s.addEventListener('abort', () => { aborted = true })
        await sleep(500, undefined, { signal: s }).catch(() => undefined)
        return 'late'
      })
      .catch((e: unknown) => e)
    assert.ok(error instanceof BackbeatError)
    assert.equal(error.code, 'ERR_DEPENDENCY_TIMEOUT')
    assert.ok(aborted, 'the attempt signal aborted')
    assert.equal(policy.snapshot().timeouts, 1)
  })
})

describe('circuit breaker', () => {
  it('opens after threshold failures, rejects fast, half-opens after halfOpenAfterMs and closes on success', async () => {
    const states: string[] = []
    const policy = createResiliencePolicy('db', {
      ...NO_PARTS,
      breaker: { threshold: 2, halfOpenAfterMs: 40 },
      onEvent: (e) => { if (e.type === 'breaker') states.push(e.state) },
    })
    const dep = flaky(2, 'row')
    await assert.rejects(policy.execute(dep.fn), /refused 1/)
    assert.equal(policy.breakerState, 'closed')
    await assert.rejects(policy.execute(dep.fn), /refused 2/)
    assert.equal(policy.breakerState, 'open')
    assert.equal((await policy.healthCheck(signal())).status, 'fail')
    const rejected = await policy.execute(dep.fn).catch((e: unknown) => e)
    assert.ok(rejected instanceof BackbeatError && rejected.code === 'ERR_DEPENDENCY_UNAVAILABLE')
    assert.equal(dep.calls(), 2, 'the open circuit did not call the dependency')
    await sleep(50)
    assert.equal(await policy.execute(dep.fn), 'row')
    assert.equal(policy.breakerState, 'closed')
    assert.deepEqual(states, ['open', 'half-open', 'closed'])
    assert.equal(policy.snapshot().rejections.circuitOpen, 1)
    assert.equal((await policy.healthCheck(signal())).status, 'pass')
  })

  it('reports half-open as warn while the trial call is in flight', async () => {
    const policy = createResiliencePolicy('db', { ...NO_PARTS, breaker: { threshold: 1, halfOpenAfterMs: 10 } })
    await assert.rejects(policy.execute(() => Promise.reject(new Error('down'))))
    await sleep(20)
    let release = (): void => undefined
    const trial = policy.execute(() => new Promise<string>((resolve) => { release = () => { resolve('up') } }))
    await sleep(1)
    assert.equal(policy.breakerState, 'half-open')
    assert.equal((await policy.healthCheck(signal())).status, 'warn')
    release()
    assert.equal(await trial, 'up')
  })
})

describe('bulkhead', () => {
  it('rejects calls beyond limit + queue and reports in-flight and queued calls', async () => {
    const policy = createResiliencePolicy('api', { ...NO_PARTS, bulkhead: { limit: 2, queue: 1 } })
    const gates: (() => void)[] = []
    const held = (): Promise<string> => new Promise((resolve) => { gates.push(() => { resolve('done') }) })
    const running = [policy.execute(held), policy.execute(held), policy.execute(held)]
    await sleep(1)
    assert.deepEqual([policy.snapshot().inFlight, policy.snapshot().queued], [2, 1])
    assert.equal((await policy.healthCheck(signal())).status, 'warn')
    const rejected = await policy.execute(held).catch((e: unknown) => e)
    assert.ok(rejected instanceof BackbeatError && rejected.code === 'ERR_DEPENDENCY_UNAVAILABLE')
    assert.equal(policy.snapshot().rejections.bulkheadFull, 1)
    while (gates.length > 0) {
      gates.shift()?.()
      await sleep(1)
    }
    assert.deepEqual(await Promise.all(running), ['done', 'done', 'done'])
    assert.deepEqual([policy.snapshot().inFlight, policy.snapshot().queued], [0, 0])
  })
})

describe('fallbacks', () => {
  it('run the fallback of the failure category', async () => {
    const used: string[] = []
    const fallbacks = {
      timeout: () => { used.push('timeout'); return 'cached' },
      circuitOpen: () => { used.push('circuitOpen'); return 'stale' },
      bulkheadFull: () => { used.push('bulkheadFull'); return 'busy' },
      error: (e: unknown) => { used.push(`error:${(e as Error).message}`); return 'default' },
    }
    const timeouts = createResiliencePolicy('t', { ...NO_PARTS, timeoutMs: 5, fallbacks })
    assert.equal(await timeouts.execute(() => sleep(200, 'late')), 'cached')
    const breaker = createResiliencePolicy('b', { ...NO_PARTS, breaker: { threshold: 1, halfOpenAfterMs: 60_000 }, fallbacks })
    assert.equal(await breaker.execute(() => Promise.reject(new Error('boom'))), 'default')
    assert.equal(await breaker.execute(() => 'never called'), 'stale')
    const bulkhead = createResiliencePolicy('h', { ...NO_PARTS, bulkhead: { limit: 1, queue: 0 }, fallbacks })
    const first = bulkhead.execute(() => sleep(10, 'first'))
    assert.equal(await bulkhead.execute(() => 'second'), 'busy')
    assert.equal(await first, 'first')
    assert.deepEqual(used, ['timeout', 'error:boom', 'circuitOpen', 'bulkheadFull'])
    assert.equal(breaker.snapshot().fallbacks, 2)
  })

  it('are skipped when the caller aborted the call', async () => {
    const policy = createResiliencePolicy('t', { ...NO_PARTS, timeoutMs: 1_000, fallbacks: { timeout: () => 'fallback' } })
    const controller = new AbortController()
    const call = policy.execute((s) => sleep(500, 'late', { signal: s }), controller.signal)
    controller.abort()
    await assert.rejects(call)
  })
})

describe('composition and registry', () => {
  it('retries timed-out attempts, counts them as breaker failures and never retries an open circuit', async () => {
    const policy = createResiliencePolicy('all', {
      retry: { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 1, jitter: 'none' },
      timeoutMs: 5,
      breaker: { threshold: 3, halfOpenAfterMs: 60_000 },
      bulkhead: { limit: 4, queue: 0 },
    })
    let attempts = 0
    const error = await policy.execute(async (s) => { attempts++; await sleep(100, undefined, { signal: s }).catch(() => undefined) }).catch((e: unknown) => e)
    assert.ok(error instanceof BackbeatError && error.code === 'ERR_DEPENDENCY_UNAVAILABLE', 'the 4th attempt met the open circuit')
    assert.equal(attempts, 3)
    const s = policy.snapshot()
    assert.deepEqual(
      { breaker: s.breaker, calls: s.calls, attempts: s.attempts, retries: s.retries, timeouts: s.timeouts, failures: s.failures, circuitOpen: s.rejections.circuitOpen, inFlight: s.inFlight },
      { breaker: 'open', calls: 1, attempts: 3, retries: 3, timeouts: 3, failures: 1, circuitOpen: 1, inFlight: 0 },
    )
  })

  it('lists policies, refuses duplicate names, and aggregates health', async () => {
    const registry = new ResilienceRegistry()
    const a = registry.create('spotify', { ...NO_PARTS, breaker: { threshold: 1, halfOpenAfterMs: 60_000 } })
    registry.create('postgres', NO_PARTS)
    assert.throws(() => registry.create('spotify'), ConfigError)
    assert.deepEqual(registry.list().map((p) => p.name), ['spotify', 'postgres'])
    assert.equal(registry.get('postgres')?.breakerState, 'disabled')
    assert.deepEqual(await registry.healthCheck(signal()), { status: 'pass' })
    await assert.rejects(a.execute(() => Promise.reject(new Error('down'))))
    assert.deepEqual(await registry.healthCheck(signal()), { status: 'fail', message: 'spotify: circuit open' })
    assert.deepEqual(registry.snapshots().map((s) => [s.name, s.breaker, s.failures]), [['spotify', 'open', 1], ['postgres', 'disabled', 0]])
  })

  it('rejects invalid options with ConfigError naming the policy', () => {
    assert.throws(() => createResiliencePolicy('x', { retry: { maxAttempts: 0 } }), (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'resilience.x.retry.maxAttempts')
  })
})
