import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../core/index.ts'
import { describeCacheStore } from '../testing/cache-store-contract.ts'
import { CACHE_ENTRY_FORMAT, decodeCacheEntry, encodeCacheEntry } from './entry-codec.ts'
import { MemoryCacheStore } from './memory-store.ts'
import type { CacheEntry } from './store.ts'

const T0 = 1_800_000_000_000
const MAX_BYTES = 4 * 1024 * 1024

describeCacheStore('MemoryCacheStore', async () => {
  let now = T0
  const store = new MemoryCacheStore({ maxEntries: 1_000, maxBytes: MAX_BYTES, now: () => now })
  return {
    store,
    now: () => now,
    advanceTime: (ms) => {
      now += ms
    },
    maxValueBytes: MAX_BYTES,
    cleanup: () => store.close(),
  }
})

const entry = (value: string, staleUntil = T0 + 60_000, tags: string[] = []): CacheEntry => ({ value: Buffer.from(value), createdAt: T0, freshUntil: T0 + 1_000, staleUntil, tags })

describe('MemoryCacheStore', () => {
  it('evicts the least recently used entry beyond maxEntries and reports it', async () => {
    const evicted: string[] = []
    const store = new MemoryCacheStore({ maxEntries: 2, now: () => T0, onEvict: (key) => evicted.push(key) })
    await store.set('a', entry('A'))
    await store.set('b', entry('B'))
    await store.get('a')
    await store.set('c', entry('C'))
    assert.deepEqual(evicted, ['b'])
    assert.deepEqual((await store.getMany(['a', 'b', 'c'])).map((e) => e === undefined), [false, true, false])
  })

  it('evicts by bytes when the values outgrow maxBytes', async () => {
    const store = new MemoryCacheStore({ maxEntries: 1_000, maxBytes: 4_096, now: () => T0 })
    for (let i = 0; i < 5; i++) await store.set(`k${String(i)}`, entry('x'.repeat(1_000)))
    assert.ok(store.bytes <= 4_096, `accounted ${String(store.bytes)} bytes`)
    assert.equal(await store.get('k0'), undefined, 'the oldest went first')
    assert.notEqual(await store.get('k4'), undefined)
  })

  it('expires exactly at staleUntil on the injected clock', async () => {
    let now = T0
    const store = new MemoryCacheStore({ now: () => now })
    await store.set('k', entry('v', T0 + 1_000))
    now = T0 + 999
    assert.notEqual(await store.get('k'), undefined)
    now = T0 + 1_000
    assert.equal(await store.get('k'), undefined)
    assert.equal(await store.delete('k'), false, 'an expired key did not exist')
  })

  it('deletePrefix with an empty prefix clears everything, and close empties the store', async () => {
    const store = new MemoryCacheStore({ now: () => T0 })
    await store.set('a:1', entry('1'))
    await store.set('b:1', entry('2'))
    assert.equal(await store.deletePrefix(''), 2)
    await store.set('c', entry('3'))
    await store.close()
    assert.equal(store.size, 0)
  })

  it('rejects invalid options with a ConfigError naming each path', () => {
    assert.throws(
      () => new MemoryCacheStore({ maxEntries: 0, maxBytes: 10 }),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'cache.memory.maxEntries') && err.issues.some((i) => i.path === 'cache.memory.maxBytes'),
    )
    assert.throws(() => new MemoryCacheStore({ now: 5 as unknown as () => number }), ConfigError)
  })
})

describe('cache entry codec', () => {
  const sample: CacheEntry = { value: new Uint8Array([0, 255, 1]), createdAt: T0 + 0.5, freshUntil: T0 + 1_000, staleUntil: T0 + 2_000, tags: ['a', 'ü', ''] }

  it('round-trips every field, fractional times included', () => {
    const decoded = decodeCacheEntry(encodeCacheEntry(sample))
    assert.ok(decoded !== undefined)
    assert.deepEqual({ ...decoded, value: [...decoded.value] }, { ...sample, value: [0, 255, 1] })
  })

  it('treats truncated, padded, foreign or future-version bytes as unreadable', () => {
    const bytes = encodeCacheEntry(sample)
    for (let cut = 0; cut < bytes.byteLength; cut++) assert.equal(decodeCacheEntry(bytes.subarray(0, cut)), undefined, `cut at ${String(cut)}`)
    assert.equal(decodeCacheEntry(Buffer.concat([bytes, Buffer.from([0])])), undefined)
    assert.equal(decodeCacheEntry(Buffer.from('{"value":"json"}')), undefined)
    const future = Buffer.from(bytes)
    future[2] = CACHE_ENTRY_FORMAT + 1
    assert.equal(decodeCacheEntry(future), undefined)
    assert.equal(decodeCacheEntry(null), undefined)
  })

  it('treats a tag with invalid UTF-8 or a non-finite time as unreadable', () => {
    const badTag = encodeCacheEntry({ ...sample, tags: ['ab'] })
    badTag[31] = 0xff
    assert.equal(decodeCacheEntry(badTag), undefined)
    const nan = encodeCacheEntry(sample)
    nan.writeDoubleBE(Number.NaN, 19)
    assert.equal(decodeCacheEntry(nan), undefined)
  })

  it('refuses to encode what the format cannot hold', () => {
    assert.throws(() => encodeCacheEntry({ ...sample, staleUntil: Number.POSITIVE_INFINITY }), { code: 'ERR_STORE_VALUE_REJECTED' })
    assert.throws(() => encodeCacheEntry({ ...sample, tags: ['x'.repeat(70_000)] }), { code: 'ERR_STORE_VALUE_REJECTED' })
  })
})
