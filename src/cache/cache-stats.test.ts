import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LATENCY_BUCKETS_MS, TierStats } from './cache-stats.ts'

describe('TierStats', () => {
  it('counts each kind, adding bytes read on hits and stale hits and bytes written on sets', () => {
    const stats = new TierStats()
    stats.count('hit', 100)
    stats.count('stale', 50)
    stats.count('miss')
    stats.count('error')
    stats.count('set', 300)
    stats.count('evict')
    stats.count('refresh')
    assert.deepEqual(
      { ...stats.snapshot(), latency: undefined },
      { hits: 1, stale: 1, misses: 1, errors: 1, sets: 1, evictions: 1, bytesRead: 150, bytesWritten: 300, latency: undefined },
    )
  })

  it('sorts durations into fixed buckets with an overflow bucket, inclusive upper bounds', () => {
    const stats = new TierStats()
    for (const ms of [0, 1, 1.5, 2, 9.9, 1_000, 1_000.1, 60_000]) stats.observe(ms)
    stats.observe(Number.NaN)
    stats.observe(-1)
    const { latency } = stats.snapshot()
    assert.equal(latency.count, 8, 'NaN and negative durations are ignored')
    assert.equal(latency.sumMs, 0 + 1 + 1.5 + 2 + 9.9 + 1_000 + 1_000.1 + 60_000)
    assert.equal(latency.buckets.length, LATENCY_BUCKETS_MS.length + 1)
    assert.deepEqual(latency.buckets, [2, 2, 0, 1, 0, 0, 0, 0, 0, 1, 2])
  })

  it('returns frozen copies that later counts do not change', () => {
    const stats = new TierStats()
    stats.count('hit')
    const before = stats.snapshot()
    stats.count('hit')
    stats.observe(3)
    assert.equal(before.hits, 1)
    assert.equal(before.latency.count, 0)
    assert.ok(Object.isFrozen(before) && Object.isFrozen(before.latency.buckets))
    assert.equal(stats.snapshot().hits, 2)
  })
})
