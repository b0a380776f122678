import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describeRateLimitStore } from '../testing/index.ts'
import { MemoryRateLimitStore } from './index.ts'
import type { RateLimitRule } from './index.ts'

describeRateLimitStore('MemoryRateLimitStore', async () => {
  const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 })
  return { store, cleanup: async () => store.close() }
})

describe('MemoryRateLimitStore', () => {
  const rule: RateLimitRule = { name: 'burst', algorithm: 'fixed-window', limit: 5, windowMs: 1_000, burst: 5 }

  it('answers synchronously', () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 })
    const decision = store.consume('a', rule, 1, 0)
    assert.equal(decision instanceof Promise, false)
    assert.equal(decision.allowed, true)
  })

  it('sweeps expired state so idle clients cost no memory', () => {
    let now = 0
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0, now: () => now })
    for (let i = 0; i < 100; i++) store.consume(`client-${String(i)}`, rule, 1, now)
    assert.equal(store.size, 100)
    now = 1_000
    assert.equal(store.sweep(), 100)
    assert.equal(store.size, 0)
  })

  it('holds at most maxKeys per policy, dropping the oldest first', () => {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0, maxKeys: 1_000 })
    for (let i = 0; i < 5_000; i++) store.consume(`spoofed-${String(i)}`, rule, 1, 0)
    assert.ok(store.size <= 1_000, `size ${String(store.size)}`)
    // The newest client kept its state.
    assert.equal(store.consume('spoofed-4999', rule, 1, 0).remaining, 3)
  })

  it('rejects a nonsensical maxKeys', () => {
    assert.throws(() => new MemoryRateLimitStore({ maxKeys: 0 }), TypeError)
  })
})
