import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../core/index.ts'
import { describeKeyValueStore } from '../testing/index.ts'
import { MemoryKeyValueStore } from './index.ts'

describeKeyValueStore('MemoryKeyValueStore', ({ prefix }) => {
  let now = 1_000_000
  const store = new MemoryKeyValueStore({ prefix, now: () => now })
  return Promise.resolve({
    store,
    cleanup: () => store.close(),
    ttlMs: 1_000,
    advanceTime: (ms: number) => {
      now += ms
    },
  })
})

describe('MemoryKeyValueStore', () => {
  it('keeps a value until the last millisecond of its TTL and drops it exactly at expiry', async () => {
    let now = 0
    const store = new MemoryKeyValueStore({ now: () => now })
    await store.set('k', 'v', 100)
    now = 99
    assert.equal(await store.get('k'), 'v')
    now = 100
    assert.equal(await store.get('k'), undefined)
  })

  it('evicts the least recently used key beyond maxEntries', async () => {
    const store = new MemoryKeyValueStore({ maxEntries: 2 })
    await store.set('a', '1')
    await store.set('b', '2')
    await store.get('a')
    await store.set('c', '3')
    assert.equal(await store.get('a'), '1')
    assert.equal(await store.get('b'), undefined)
    assert.equal(await store.get('c'), '3')
  })

  it('rejects an increment that would leave the safe integer range', async () => {
    const store = new MemoryKeyValueStore()
    await store.set('big', String(Number.MAX_SAFE_INTEGER))
    await assert.rejects(store.increment('big', 1), { code: 'ERR_STORE_COMMAND_FAILED' })
    await assert.rejects(store.increment('big', 0.5), RangeError)
  })

  it('throws ConfigError listing every invalid option', () => {
    assert.throws(
      () => new MemoryKeyValueStore({ maxEntries: -1, prefix: 3 as unknown as string }),
      (err: unknown) => err instanceof ConfigError && err.issues.length === 2 && err.issues.some((i) => i.path === 'memoryKeyValueStore.maxEntries'),
    )
  })
})
