/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this file is a test helper outside the *.test.ts override */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import type { Decision, PenaltyRule, RateLimitRule, RateLimitStore } from '../ratelimit/index.ts'

/** What a {@link describeRateLimitStore} factory returns. */
export interface RateLimitStoreFixture {
  /** Must decide with the `nowMs` it is given (a Redis store with `clock: 'caller'`). */
  store: RateLimitStore
  /** Removes what the fixture wrote, then closes what it opened. */
  cleanup: () => Promise<void>
}

// A round instant (a multiple of every window used below) so window edges are predictable.
const T0 = 1_800_000_000_000

const rule = (over: Partial<RateLimitRule> & Pick<RateLimitRule, 'algorithm'>): RateLimitRule => ({
  name: `p${randomUUID().slice(0, 8)}`,
  limit: 10,
  windowMs: 1_000,
  burst: over.burst ?? over.limit ?? 10,
  ...over,
})

/**
 * The contract every {@link RateLimitStore} must pass: the exact answers of GCRA, sliding
 * and fixed windows under a caller-supplied clock, cost, refunds, resets, isolation of keys
 * and policies, escalating penalty blocks, and atomicity under concurrent calls.
 *
 * @example
 * describeRateLimitStore('MemoryRateLimitStore', async () => ({ store: new MemoryRateLimitStore({ sweepIntervalMs: 0 }), cleanup: async () => {} }))
 */
export function describeRateLimitStore(name: string, make: () => Promise<RateLimitStoreFixture>): void {
  const withStore = (fn: (store: RateLimitStore) => Promise<void>) => async () => {
    const fixture = await make()
    try {
      await fn(fixture.store)
    } finally {
      await fixture.cleanup()
    }
  }
  const key = (): string => `client-${randomUUID()}`
  const spend = async (store: RateLimitStore, k: string, r: RateLimitRule, times: number, now: number, cost = 1, penalty?: PenaltyRule): Promise<Decision[]> => {
    const out: Decision[] = []
    for (let i = 0; i < times; i++) out.push(await store.consume(k, r, cost, now, penalty))
    return out
  }

  describe(`${name} (RateLimitStore contract)`, () => {
    describe('GCRA', () => {
      it('allows a burst of `burst` units at once, then denies with the time until one unit is back', withStore(async (store) => {
        const r = rule({ algorithm: 'gcra', limit: 10, windowMs: 1_000 })
        const k = key()
        const decisions = await spend(store, k, r, 10, T0)
        assert.deepEqual(decisions.map((d) => d.remaining), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
        assert.ok(decisions.every((d) => d.allowed && d.retryAfterMs === 0))
        assert.equal(decisions[9]?.resetMs, 1_000, 'the bucket is full again after one window')
        const denied = await store.consume(k, r, 1, T0)
        assert.equal(denied.allowed, false)
        assert.equal(denied.remaining, 0)
        assert.equal(denied.retryAfterMs, 100, 'one emission interval')
      }))

      it('refills smoothly: one unit per emission interval', withStore(async (store) => {
        const r = rule({ algorithm: 'gcra', limit: 10, windowMs: 1_000 })
        const k = key()
        await spend(store, k, r, 10, T0)
        assert.equal((await store.consume(k, r, 1, T0 + 99)).allowed, false)
        const next = await store.consume(k, r, 1, T0 + 100)
        assert.equal(next.allowed, true)
        assert.equal(next.remaining, 0)
        assert.equal((await store.consume(k, r, 1, T0 + 150)).allowed, false)
        const later = await store.consume(k, r, 1, T0 + 600)
        assert.deepEqual([later.allowed, later.remaining], [true, 4])
      }))

      it('allows a burst smaller than the rate over the window', withStore(async (store) => {
        const r = rule({ algorithm: 'gcra', limit: 60, windowMs: 60_000, burst: 5 })
        const k = key()
        const decisions = await spend(store, k, r, 6, T0)
        assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, true, true, false])
        assert.equal(decisions[5]?.retryAfterMs, 1_000)
      }))

      it('charges the cost of a request, and never lets a cost above the burst through', withStore(async (store) => {
        const r = rule({ algorithm: 'gcra', limit: 10, windowMs: 1_000 })
        const k = key()
        const heavy = await store.consume(k, r, 4, T0)
        assert.deepEqual([heavy.allowed, heavy.remaining], [true, 6])
        const huge = await store.consume(k, r, 11, T0)
        assert.equal(huge.allowed, false)
        assert.ok(huge.retryAfterMs > 1_000)
        assert.equal((await store.consume(k, r, 6, T0)).remaining, 0, 'the denied request spent nothing')
      }))
    })

    describe('sliding window', () => {
      it('weights the previous window by its overlap with the sliding window', withStore(async (store) => {
        const r = rule({ algorithm: 'sliding-window', limit: 10, windowMs: 1_000 })
        const k = key()
        const first = await spend(store, k, r, 10, T0 + 500)
        assert.equal(first[9]?.remaining, 0)
        assert.equal((await store.consume(k, r, 1, T0 + 999)).allowed, false)
        // At T0+1000 the previous window (10) still weighs 100 %: denied.
        const edge = await store.consume(k, r, 1, T0 + 1_000)
        assert.equal(edge.allowed, false)
        assert.equal(edge.retryAfterMs, 100, 'until 10 % of the previous window has slid out')
        // Half-way through, the previous window weighs 5: five more fit.
        const half = await spend(store, k, r, 6, T0 + 1_500)
        assert.deepEqual(half.map((d) => d.allowed), [true, true, true, true, true, false])
        assert.equal(half[4]?.remaining, 0)
      }))

      it('forgets counts two windows old, and answers exact reset and retry times', withStore(async (store) => {
        const r = rule({ algorithm: 'sliding-window', limit: 3, windowMs: 1_000 })
        const k = key()
        const decisions = await spend(store, k, r, 4, T0 + 200)
        assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, false])
        assert.equal(decisions[2]?.resetMs, 1_800, 'fully decayed at the end of the next window')
        // All 3 units are in the current window: wait for the window to end, then for it to
        // decay enough for one unit: 1 - (3-1)/3 = 1/3 of the next window.
        assert.equal(decisions[3]?.retryAfterMs, 800 + 334)
        const fresh = await store.consume(k, r, 1, T0 + 2_000)
        assert.deepEqual([fresh.allowed, fresh.remaining], [true, 2])
      }))
    })

    describe('fixed window', () => {
      it('counts per window aligned to the epoch and denies until the window ends', withStore(async (store) => {
        const r = rule({ algorithm: 'fixed-window', limit: 3, windowMs: 60_000 })
        const k = key()
        const decisions = await spend(store, k, r, 4, T0 + 15_000)
        assert.deepEqual(decisions.map((d) => [d.allowed, d.remaining]), [[true, 2], [true, 1], [true, 0], [false, 0]])
        assert.equal(decisions[0]?.resetMs, 45_000)
        assert.equal(decisions[3]?.retryAfterMs, 45_000)
        const next = await store.consume(k, r, 1, T0 + 60_000)
        assert.deepEqual([next.allowed, next.remaining, next.resetMs], [true, 2, 60_000])
      }))

      it('charges cost and refuses a cost above the limit', withStore(async (store) => {
        const r = rule({ algorithm: 'fixed-window', limit: 5, windowMs: 1_000 })
        const k = key()
        assert.equal((await store.consume(k, r, 3, T0)).remaining, 2)
        assert.equal((await store.consume(k, r, 3, T0)).allowed, false)
        assert.equal((await store.consume(k, r, 2, T0)).remaining, 0)
        assert.equal((await store.consume(key(), r, 6, T0)).allowed, false)
      }))
    })

    for (const algorithm of ['gcra', 'sliding-window', 'fixed-window'] as const) {
      it(`${algorithm}: a refund gives back what an allowed decision spent`, withStore(async (store) => {
        const r = rule({ algorithm, limit: 5, windowMs: 10_000 })
        const k = key()
        await spend(store, k, r, 5, T0)
        assert.equal((await store.consume(k, r, 1, T0)).allowed, false)
        await store.refund(k, r, 2, T0)
        const after = await spend(store, k, r, 3, T0)
        assert.deepEqual(after.map((d) => d.allowed), [true, true, false])
      }))

      it(`${algorithm}: reset forgets a key; keys and policies never share state`, withStore(async (store) => {
        const r = rule({ algorithm, limit: 2, windowMs: 10_000 })
        const other = rule({ algorithm, limit: 2, windowMs: 10_000 })
        const k = key()
        await spend(store, k, r, 2, T0)
        assert.equal((await store.consume(k, r, 1, T0)).allowed, false)
        assert.equal((await store.consume(key(), r, 1, T0)).allowed, true, 'another key has its own quota')
        assert.equal((await store.consume(k, other, 1, T0)).allowed, true, 'another policy has its own quota')
        await store.reset(k, r)
        assert.equal((await store.consume(k, r, 1, T0)).allowed, true)
      }))

      it(`${algorithm}: is atomic under concurrent calls (exactly the limit passes)`, withStore(async (store) => {
        const r = rule({ algorithm, limit: 20, windowMs: 60_000 })
        const k = key()
        const decisions = await Promise.all(Array.from({ length: 50 }, async () => store.consume(k, r, 1, T0)))
        assert.equal(decisions.filter((d) => d.allowed).length, 20)
      }))
    }

    it('keeps keys with braces, long keys and unicode apart', withStore(async (store) => {
      const r = rule({ algorithm: 'fixed-window', limit: 1, windowMs: 10_000 })
      const keys = ['user:{a}', 'user:{b}', `k:${'x'.repeat(300)}`, `k:${'x'.repeat(299)}y`, 'user:ünïcødé', 'user:unicode']
      for (const k of keys) assert.equal((await store.consume(k, r, 1, T0)).allowed, true, k)
      for (const k of keys) assert.equal((await store.consume(k, r, 1, T0)).allowed, false, k)
    }))

    describe('penalties', () => {
      const penalty: PenaltyRule = { rejections: 3, windowMs: 10_000, blockMs: 5_000, maxBlockMs: 12_000 }

      it('blocks a key after repeated rejections, reports the start once, and lifts the block when it ends', withStore(async (store) => {
        const r = rule({ algorithm: 'fixed-window', limit: 1, windowMs: 1_000 })
        const k = key()
        const decisions = await spend(store, k, r, 4, T0, 1, penalty)
        assert.deepEqual(decisions.map((d) => [d.allowed, d.blocked, d.blockStarted]), [[true, false, false], [false, false, false], [false, false, false], [false, true, true]])
        assert.equal(decisions[3]?.retryAfterMs, 5_000)
        // Blocked even in a fresh window, and the block is not reported again.
        const during = await store.consume(k, r, 1, T0 + 2_000, penalty)
        assert.deepEqual([during.allowed, during.blocked, during.blockStarted, during.retryAfterMs], [false, true, false, 3_000])
        assert.equal((await store.consume(key(), r, 1, T0 + 2_000, penalty)).allowed, true, 'other keys are not blocked')
        assert.equal((await store.consume(k, r, 1, T0 + 5_000, penalty)).allowed, true)
      }))

      it('doubles each further block up to the maximum', withStore(async (store) => {
        const r = rule({ algorithm: 'fixed-window', limit: 1, windowMs: 1_000 })
        const k = key()
        let now = T0
        const lengths: number[] = []
        for (let round = 0; round < 3; round++) {
          const decisions = await spend(store, k, r, 4, now, 1, penalty)
          const started = decisions.find((d) => d.blockStarted)
          assert.ok(started !== undefined, `round ${String(round)} starts a block`)
          lengths.push(started.retryAfterMs)
          now += started.retryAfterMs + 1_000
        }
        assert.deepEqual(lengths, [5_000, 10_000, 12_000])
      }))

      it('ignores penalties when the call passes none', withStore(async (store) => {
        const r = rule({ algorithm: 'fixed-window', limit: 1, windowMs: 1_000 })
        const k = key()
        const decisions = await spend(store, k, r, 10, T0)
        assert.ok(decisions.slice(1).every((d) => !d.allowed && !d.blocked))
        assert.equal((await store.consume(k, r, 1, T0 + 1_000)).allowed, true)
      }))
    })
  })
}
