import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { MemoryKeyValueStore } from '../stores/index.ts'
import { MemoryCacheStore } from './memory-store.ts'
import type { CacheEntry, CacheStore } from './store.ts'
import { MemoryInvalidationBus, MemoryInvalidationHub } from './invalidation-bus.ts'
import { MemoryLease, type Lease } from './lease.ts'
import { normalizeCacheKey } from './keys.ts'
import { estimateSize, KeyValueTagStore, MemoryTagStore, TieredCache, type CacheEvent, type TieredCacheOptions } from './tiered-cache.ts'
import { ValueCodec } from './value-codec.ts'

const T0 = 1_800_000_000_000

interface Harness {
  cache: TieredCache
  l2: MemoryCacheStore
  l3: MemoryCacheStore
  events: CacheEvent[]
  advance: (ms: number) => void
  now: () => number
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let now = T0
  return {
    now: () => now,
    advance: (ms) => {
      now += ms
    },
  }
}

function harness(overrides: Partial<TieredCacheOptions> = {}, time = clock()): Harness {
  const l2 = new MemoryCacheStore({ now: time.now })
  const l3 = new MemoryCacheStore({ now: time.now })
  const events: CacheEvent[] = []
  const cache = new TieredCache({ namespace: 'test', tiers: [l2, l3], now: time.now, jitter: 0, onEvent: (e) => events.push(e), ...overrides })
  return { cache, l2, l3, events, ...time }
}

/** A loader that counts its calls and returns `value` (or the call number). */
function counting<T>(value?: T): { load: () => Promise<T | number>; calls: () => number } {
  let calls = 0
  return {
    load: () => {
      calls += 1
      return Promise.resolve(value ?? calls)
    },
    calls: () => calls,
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A remote tier that fails every call (throws) or never answers (hangs), counting calls. */
function brokenStore(mode: 'throw' | 'hang'): CacheStore & { calls: number } {
  const store = {
    kind: 'broken',
    calls: 0,
    fail<T>(): Promise<T> {
      store.calls += 1
      return mode === 'throw' ? Promise.reject(new Error('connection refused')) : new Promise<T>(() => undefined)
    },
    get: () => store.fail<CacheEntry | undefined>(),
    getMany: () => store.fail<Array<CacheEntry | undefined>>(),
    set: () => store.fail<undefined>(),
    delete: () => store.fail<boolean>(),
    deletePrefix: () => store.fail<number>(),
    close: () => Promise.resolve(),
  }
  return store
}

const kinds = (events: readonly CacheEvent[], tier: string): string[] => events.filter((e) => e.tier === tier).map((e) => e.kind)

describe('TieredCache read-through', () => {
  it('loads on a miss, writes every tier, then answers from L1 without calling the loader', async () => {
    const h = harness()
    const loader = counting({ id: 'a1', title: 'Kind of Blue' })
    assert.deepEqual(await h.cache.getOrSet('album:a1', loader.load), { id: 'a1', title: 'Kind of Blue' })
    assert.deepEqual(await h.cache.getOrSet('album:a1', loader.load), { id: 'a1', title: 'Kind of Blue' })
    assert.equal(loader.calls(), 1)
    assert.ok(await h.l2.get('test:album:a1'))
    assert.ok(await h.l3.get('test:album:a1'))
    assert.deepEqual(kinds(h.events, 'l1'), ['miss', 'set', 'hit'])
  })

  it('stores codec bytes in the remote tiers, bound to the full key', async () => {
    const h = harness()
    await h.cache.set('k', { n: 1 })
    const stored = await h.l2.get('test:k')
    assert.ok(stored)
    const codec = new ValueCodec()
    assert.deepEqual(codec.decode(stored.value, 'test:k'), { ok: true, value: { n: 1 } })
  })

  it('finds a value held only by L3 and backfills L2 and L1', async () => {
    const time = clock()
    const h = harness({}, time)
    // Another instance that only shares L3 wrote the value.
    const other = new TieredCache({ namespace: 'test', l1: false, tiers: [h.l3], now: time.now, jitter: 0 })
    await other.set('track:t1', 'So What', { ttlS: 60 })
    assert.equal(await h.l2.get('test:track:t1'), undefined)
    const loader = counting('never')
    assert.equal(await h.cache.getOrSet('track:t1', loader.load), 'So What')
    assert.equal(loader.calls(), 0)
    await h.cache.drain()
    const backfilled = await h.l2.get('test:track:t1')
    assert.ok(backfilled)
    assert.equal(backfilled.freshUntil, T0 + 60_000, 'the backfill keeps the original expiry')
    assert.deepEqual(kinds(h.events, 'l2'), ['miss', 'set'])
    assert.deepEqual(kinds(h.events, 'l3'), ['hit'])
    h.events.length = 0
    assert.equal(await h.cache.get('track:t1'), 'So What')
    assert.deepEqual(kinds(h.events, 'l1'), ['hit'])
  })

  it('prefers the upper remote tier when several hold the key', async () => {
    const time = clock()
    const h = harness({ l1: false }, time)
    await new TieredCache({ namespace: 'test', l1: false, tiers: [h.l3], now: time.now }).set('k', 'from-l3')
    await new TieredCache({ namespace: 'test', l1: false, tiers: [h.l2], now: time.now }).set('k', 'from-l2')
    assert.equal(await h.cache.get('k'), 'from-l2')
  })

  it('reloads after the TTL when there is no grace', async () => {
    const h = harness()
    const loader = counting()
    assert.equal(await h.cache.getOrSet('k', loader.load, { ttlS: 10 }), 1)
    h.advance(9_999)
    assert.equal(await h.cache.getOrSet('k', loader.load, { ttlS: 10 }), 1)
    h.advance(1)
    assert.equal(await h.cache.getOrSet('k', loader.load, { ttlS: 10 }), 2)
  })

  it('propagates a loader error when no stale value exists, and caches nothing', async () => {
    const h = harness()
    await assert.rejects(
      h.cache.getOrSet('k', () => Promise.reject(new Error('db down'))),
      /db down/,
    )
    assert.equal(await h.l2.get('test:k'), undefined)
    assert.equal(await h.cache.getOrSet('k', () => 'ok'), 'ok')
  })

  it('rejects bad keys and tags with ERR_STORE_VALUE_REJECTED before calling the loader', async () => {
    const h = harness()
    const loader = counting()
    await assert.rejects(h.cache.getOrSet('bad\nkey', loader.load), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
    await assert.rejects(h.cache.getOrSet('k', loader.load, { tags: ['no spaces'] }), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
    assert.equal(loader.calls(), 0)
  })
})

describe('TieredCache TTL and jitter', () => {
  it('keeps jittered freshness within ±jitter of the TTL and adds grace after it', async () => {
    const h = harness({ jitter: 0.1, random: () => 0 })
    await h.cache.set('low', 1, { ttlS: 100, graceS: 30 })
    const low = await h.l2.get('test:low')
    assert.equal(low?.freshUntil, T0 + 90_000)
    assert.equal(low.staleUntil, T0 + 120_000)
    const high = harness({ jitter: 0.1, random: () => 0.999_999 })
    await high.cache.set('high', 1, { ttlS: 100 })
    const entry = await high.l2.get('test:high')
    assert.ok(entry && entry.freshUntil <= T0 + 110_000 && entry.freshUntil > T0 + 109_990)
  })

  it('spreads the expiry of keys written together', async () => {
    const h = harness({ jitter: 0.1 })
    const expiries = new Set<number>()
    for (let i = 0; i < 100; i++) {
      await h.cache.set(`k${i}`, i, { ttlS: 300 })
      const entry = await h.l2.get(`test:k${i}`)
      assert.ok(entry)
      assert.ok(entry.freshUntil >= T0 + 270_000 && entry.freshUntil <= T0 + 330_000, `${entry.freshUntil - T0} out of bounds`)
      expiries.add(entry.freshUntil)
    }
    assert.ok(expiries.size > 50, `only ${expiries.size} distinct expiries`)
  })

  it('refuses a non-positive per-call TTL', async () => {
    const h = harness()
    await assert.rejects(h.cache.set('k', 1, { ttlS: 0 }), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
  })
})

describe('TieredCache single-flight', () => {
  it('shares one loader call among 100 concurrent callers', async () => {
    const h = harness()
    const gate = deferred<string>()
    let calls = 0
    const loader = (): Promise<string> => {
      calls += 1
      return gate.promise
    }
    const all = Promise.all(Array.from({ length: 100 }, () => h.cache.getOrSet('hot', loader)))
    await sleep(1)
    gate.resolve('value')
    const results = await all
    assert.equal(calls, 1)
    assert.ok(results.every((r) => r === 'value'))
  })

  it('shares the failure too, then lets the next call retry', async () => {
    const h = harness()
    let calls = 0
    const failing = (): Promise<string> => {
      calls += 1
      return Promise.reject(new Error('boom'))
    }
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => h.cache.getOrSet('k', failing)))
    assert.equal(calls, 1)
    assert.ok(results.every((r) => r.status === 'rejected'))
    assert.equal(await h.cache.getOrSet('k', () => 'recovered'), 'recovered')
  })
})

describe('TieredCache tags', () => {
  it('voids entries of an invalidated tag on every tier and on another instance sharing the tag store', async () => {
    const time = clock()
    const tagStore = new MemoryTagStore()
    const a = harness({ tagStore, tagCacheMs: 1_000 }, time)
    const b = new TieredCache({ namespace: 'test', tiers: [a.l2, a.l3], now: time.now, tagStore, tagCacheMs: 1_000 })
    await a.cache.set('album:a1', 'v1', { tags: ['album:a1', 'artist:miles'] })
    assert.equal(await b.get('album:a1'), 'v1', 'b reads it through L2 into its own L1')
    time.advance(10)
    await a.cache.invalidateTags(['artist:miles'])
    assert.equal(await a.cache.get('album:a1'), undefined, 'the invalidating instance sees it at once')
    time.advance(1_000)
    // b's L1 still holds the value; the tag time it fetches from the store voids it.
    assert.equal(await b.get('album:a1'), undefined)
    const loader = counting('v2')
    assert.equal(await b.getOrSet('album:a1', loader.load, { tags: ['album:a1'] }), 'v2')
    assert.equal(loader.calls(), 1)
  })

  it('leaves entries without the tag alone', async () => {
    const h = harness()
    await h.cache.set('a', 1, { tags: ['x'] })
    await h.cache.set('b', 2, { tags: ['y'] })
    h.advance(1)
    await h.cache.invalidateTags(['x'])
    assert.equal(await h.cache.get('a'), undefined)
    assert.equal(await h.cache.get('b'), 2)
  })

  it('does not cache a load that an invalidation overtook', async () => {
    const h = harness()
    const gate = deferred<string>()
    const pending = h.cache.getOrSet('k', () => gate.promise, { tags: ['t'] })
    await sleep(1)
    await h.cache.invalidateTags(['t'])
    gate.resolve('old')
    assert.equal(await pending, 'old', 'the caller still gets its answer')
    h.advance(1)
    assert.equal(await h.cache.get('k'), undefined)
    assert.equal(await h.l2.get('test:k'), undefined)
  })

  it('carries invalidations through a KeyValueStore, and throws when the tag store is down', async () => {
    const time = clock()
    const kv = new MemoryKeyValueStore({ now: time.now })
    const h = harness({ tagStore: new KeyValueTagStore(kv, { prefix: 'tags:' }), tagCacheMs: 0 }, time)
    await h.cache.set('k', 1, { tags: ['t'] })
    time.advance(1)
    await h.cache.invalidateTags(['t'])
    assert.equal(Number(await kv.get('tags:t')), T0 + 1)
    assert.equal(await h.cache.get('k'), undefined)
    const down = harness({ tagStore: { get: () => Promise.reject(new Error('redis down')), set: () => Promise.reject(new Error('redis down')) } })
    await assert.rejects(down.cache.invalidateTags(['t']), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
  })

  it('serves tagged entries with the last known tag times while the tag store fails', async () => {
    const h = harness({ tagStore: { get: () => Promise.reject(new Error('redis down')), set: () => Promise.resolve() }, tagCacheMs: 0 })
    await h.cache.set('k', 'v', { tags: ['t'] })
    assert.equal(await h.cache.get('k'), 'v')
    assert.ok(h.events.some((e) => e.tier === 'tags' && e.kind === 'error'))
  })
})

describe('TieredCache grace', () => {
  it('serves a stale value at once and refreshes it with one background load (stale-while-revalidate)', async () => {
    const h = harness()
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(11_000)
    const gate = deferred<string>()
    let calls = 0
    const loader = (): Promise<string> => {
      calls += 1
      return gate.promise
    }
    const served = await Promise.all(Array.from({ length: 5 }, () => h.cache.getOrSet('k', loader, { ttlS: 10, graceS: 60 })))
    assert.deepEqual(served, ['old', 'old', 'old', 'old', 'old'])
    assert.equal(calls, 1)
    gate.resolve('new')
    await h.cache.drain()
    assert.equal(await h.cache.getOrSet('k', loader), 'new')
    assert.equal((await h.l2.get('test:k'))?.freshUntil, T0 + 21_000)
  })

  it('keeps the stale value when the background refresh fails', async () => {
    const h = harness()
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(11_000)
    assert.equal(await h.cache.getOrSet('k', () => Promise.reject(new Error('db down'))), 'old')
    await h.cache.drain()
    assert.equal(await h.cache.get('k', { allowStale: true }), 'old')
    assert.equal(await h.cache.get('k'), undefined, 'get without allowStale ignores values in grace')
    assert.ok(h.events.some((e) => e.tier === 'loader' && e.kind === 'error' && e.reason === 'db down'))
  })

  it('serves the stale value when the loader fails (stale-if-error)', async () => {
    const h = harness({ staleWhileRevalidate: false })
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(11_000)
    assert.equal(await h.cache.getOrSet('k', () => Promise.reject(new Error('db down'))), 'old')
    assert.equal(await h.cache.getOrSet('k', () => 'new'), 'new', 'without SWR a working loader answers in the foreground')
  })

  it('forgets the value past the grace period', async () => {
    const h = harness()
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 5 })
    h.advance(15_000)
    await assert.rejects(h.cache.getOrSet('k', () => Promise.reject(new Error('db down'))), /db down/)
  })
})

describe('TieredCache loader timeouts', () => {
  it('serves the stale value once the soft timeout passes and caches the late result', async () => {
    const h = harness({ staleWhileRevalidate: false, loaderSoftTimeoutMs: 10, loaderHardTimeoutMs: 2_000 })
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(11_000)
    const slow = async (): Promise<string> => {
      await sleep(300)
      return 'new'
    }
    const started = performance.now()
    assert.equal(await h.cache.getOrSet('k', slow), 'old')
    assert.ok(performance.now() - started < 250, 'answered at the soft timeout, not when the load finished')
    await h.cache.drain()
    assert.equal(await h.cache.get('k'), 'new')
  })

  it('waits past the soft timeout when there is no stale value', async () => {
    const h = harness({ loaderSoftTimeoutMs: 5, loaderHardTimeoutMs: 2_000 })
    assert.equal(
      await h.cache.getOrSet('k', async () => {
        await sleep(30)
        return 'v'
      }),
      'v',
    )
  })

  it('gives up at the hard timeout with ERR_DEPENDENCY_TIMEOUT and aborts the loader', async () => {
    const h = harness({ loaderHardTimeoutMs: 20 })
    let signal: AbortSignal | undefined
    await assert.rejects(
      h.cache.getOrSet('k', (ctx) => {
        signal = ctx.signal
        return new Promise<string>(() => undefined)
      }),
      (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_TIMEOUT',
    )
    assert.equal(signal?.aborted, true)
  })

  it('serves the stale value when the hard timeout fires', async () => {
    const h = harness({ staleWhileRevalidate: false, loaderHardTimeoutMs: 20 })
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(11_000)
    assert.equal(await h.cache.getOrSet('k', () => new Promise<string>(() => undefined)), 'old')
  })
})

describe('TieredCache failure isolation', () => {
  it('skips a hanging tier, opens its breaker, and still answers from the loader', async () => {
    const time = clock()
    const hanging = brokenStore('hang')
    const l3 = new MemoryCacheStore({ now: time.now })
    const events: CacheEvent[] = []
    const cache = new TieredCache({ namespace: 'test', l1: false, tiers: [hanging, l3], now: time.now, tierTimeoutMs: 10, breaker: { failureThreshold: 2, halfOpenAfterMs: 60_000 }, onEvent: (e) => events.push(e) })
    assert.equal(await cache.getOrSet('k', () => 'v'), 'v')
    assert.equal(cache.breakerStates.l2, 'open', 'the get and the set timed out: two failures')
    const callsWhenOpen = hanging.calls
    assert.equal(await cache.get('k'), 'v', 'L3 answers while L2 is skipped')
    await cache.set('k2', 'w')
    await cache.delete('k2')
    assert.equal(hanging.calls, callsWhenOpen, 'an open breaker stops calling the tier')
    assert.ok(events.filter((e) => e.tier === 'l2' && e.kind === 'error').length >= 4)
  })

  it('answers every call when all tiers throw', async () => {
    const cache = new TieredCache({ namespace: 'test', tiers: [brokenStore('throw'), brokenStore('throw')], jitter: 0 })
    const loader = counting('v')
    assert.equal(await cache.getOrSet('k', loader.load), 'v')
    await cache.set('k2', 1)
    await cache.delete('k2')
    await cache.clear()
    assert.equal(loader.calls(), 1)
  })

  it('returns but does not cache a value the codec refuses', async () => {
    const h = harness({ codec: new ValueCodec({ maxValueBytes: 64 }) })
    const loader = counting('x'.repeat(1_000))
    assert.equal(await h.cache.getOrSet('big', loader.load), 'x'.repeat(1_000))
    assert.equal(await h.l2.get('test:big'), undefined)
    assert.equal(await h.cache.get('big'), undefined, 'not in L1 either')
    await h.cache.getOrSet('big', loader.load)
    assert.equal(loader.calls(), 2)
    assert.ok(h.events.some((e) => e.tier === 'codec' && e.kind === 'error' && e.reason?.includes('64-byte limit') === true))
  })

  it('treats a corrupt remote value as a miss', async () => {
    const h = harness({ l1: false })
    await h.l2.set('test:k', { value: Uint8Array.of(0xff, 1, 2), createdAt: T0, freshUntil: T0 + 60_000, staleUntil: T0 + 60_000, tags: [] })
    assert.equal(await h.cache.getOrSet('k', () => 'fresh'), 'fresh')
    assert.ok(h.events.some((e) => e.tier === 'l2' && e.kind === 'error' && e.reason?.startsWith('unreadable entry') === true))
  })

  it('rejects a value copied to another key (the key is the AAD)', async () => {
    const { aesGcmCipher } = await import('./value-codec.ts')
    const codec = new ValueCodec({ cipher: aesGcmCipher({ 1: Buffer.alloc(32, 7) }, 1) })
    const h = harness({ l1: false, codec })
    await h.cache.set('tenant-a', 'secret')
    const stolen = await h.l2.get('test:tenant-a')
    assert.ok(stolen)
    await h.l2.set('test:tenant-b', stolen)
    await h.l3.delete('test:tenant-b')
    assert.equal(await h.cache.get('tenant-b'), undefined)
  })

  it('survives a throwing metrics hook', async () => {
    const cache = new TieredCache({
      namespace: 'test',
      tiers: [],
      onEvent: () => {
        throw new Error('metrics broke')
      },
    })
    assert.equal(await cache.getOrSet('k', () => 1), 1)
  })
})

describe('TieredCache delete, clear and L1', () => {
  it('deletes a key from every tier', async () => {
    const h = harness()
    await h.cache.set('k', 1)
    await h.cache.delete('k')
    assert.equal(await h.l2.get('test:k'), undefined)
    assert.equal(await h.l3.get('test:k'), undefined)
    assert.equal(await h.cache.get('k'), undefined)
  })

  it('clears its namespace on every tier and nothing else', async () => {
    const time = clock()
    const h = harness({}, time)
    const other = new TieredCache({ namespace: 'other', tiers: [h.l2, h.l3], now: time.now })
    await h.cache.set('k', 1)
    await other.set('k', 2)
    await h.cache.clear()
    assert.equal(await h.cache.get('k'), undefined)
    assert.equal(await other.get('k'), 2)
    assert.ok(await h.l3.get('other:k'))
  })

  it('evicts from L1 by bytes and reports it, keeping the remote copies', async () => {
    const h = harness({ l1: { maxEntries: 1_000, maxBytes: 4_096 } })
    for (let i = 0; i < 10; i++) await h.cache.set(`k${i}`, 'x'.repeat(1_000))
    assert.ok(kinds(h.events, 'l1').includes('evict'))
    h.events.length = 0
    assert.equal(await h.cache.get('k0'), 'x'.repeat(1_000))
    // Served from L2 and written back to L1 (which evicts another entry to make room).
    assert.deepEqual(kinds(h.events, 'l1').filter((k) => k !== 'evict'), ['miss', 'set'])
    assert.deepEqual(kinds(h.events, 'l2'), ['hit'])
  })

  it('estimates sizes of nested, cyclic and huge values without blowing up', () => {
    assert.ok(estimateSize('abcd') > estimateSize('a'))
    const cyclic: Record<string, unknown> = { a: [1, 2, 3] }
    cyclic.self = cyclic
    assert.ok(estimateSize(cyclic) > 0)
    const huge = Array.from({ length: 50_000 }, (_, i) => ({ i }))
    assert.ok(estimateSize(huge) > 50_000 * 32)
  })
})

describe('TieredCache cached()', () => {
  it('caches by the derived key and tags each call', async () => {
    const h = harness()
    let calls = 0
    const album = h.cache.cached(
      (id: string, locale: string) => {
        calls += 1
        return Promise.resolve({ id, locale })
      },
      { key: (id, locale) => `album:${id}:${locale}`, ttlS: 60, tags: (id) => [`album:${id}`] },
    )
    assert.deepEqual(await album('a1', 'en'), { id: 'a1', locale: 'en' })
    assert.deepEqual(await album('a1', 'en'), { id: 'a1', locale: 'en' })
    assert.deepEqual(await album('a1', 'fr'), { id: 'a1', locale: 'fr' })
    assert.equal(calls, 2)
    assert.deepEqual((await h.l2.get('test:album:a1:en'))?.tags, ['album:a1'])
    h.advance(1)
    await h.cache.invalidateTags(['album:a1'])
    await album('a1', 'en')
    assert.equal(calls, 3)
  })
})

describe('TieredCache options', () => {
  it('lists every invalid option by path', () => {
    assert.throws(
      () => new TieredCache({ namespace: 'Bad Name', tiers: [{} as CacheStore], jitter: 2, loaderSoftTimeoutMs: 500, loaderHardTimeoutMs: 100 }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path)
        for (const path of ['cache.namespace', 'cache.tiers.0', 'cache.jitter']) assert.ok(paths.includes(path), `${path} missing from ${paths.join(', ')}`)
        return true
      },
    )
    assert.throws(() => new TieredCache({ namespace: 'ok', loaderSoftTimeoutMs: 500, loaderHardTimeoutMs: 100 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['cache.loaderSoftTimeoutMs'],
      )
      return true
    })
  })
})

/** Two instances ("processes") sharing remote tiers, a tag store, a bus hub and a lease; each has its own L1. */
function pair(overrides: Partial<TieredCacheOptions> = {}, time = clock()) {
  const hub = new MemoryInvalidationHub()
  const busA = new MemoryInvalidationBus(hub, { origin: 'a' })
  const busB = new MemoryInvalidationBus(hub, { origin: 'b' })
  const lease = new MemoryLease({ now: time.now })
  const tagStore = new MemoryTagStore()
  const l2 = new MemoryCacheStore({ now: time.now })
  const l3 = new MemoryCacheStore({ now: time.now })
  const events: CacheEvent[] = []
  const base: TieredCacheOptions = {
    namespace: 'test',
    tiers: [l2, l3],
    now: time.now,
    jitter: 0,
    tagStore,
    tagCacheMs: 60_000,
    lease: { lease, pollMs: 5, waitMs: 2_000 },
    onEvent: (e) => events.push(e),
  }
  const a = new TieredCache({ ...base, bus: busA, ...overrides })
  const b = new TieredCache({ ...base, bus: busB, ...overrides })
  return { a, b, hub, busA, busB, lease, tagStore, l2, l3, events, base, ...time }
}

/** Lets the hub's microtask deliveries run. */
const delivered = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('TieredCache invalidation bus', () => {
  it("drops the peer's L1 copy on set, while an instance without the bus keeps serving its own", async () => {
    const p = pair()
    const loner = new TieredCache({ ...p.base })
    await p.a.set('k', 'v1')
    await delivered()
    assert.equal(await p.b.get('k'), 'v1')
    assert.equal(await loner.get('k'), 'v1')
    await p.a.set('k', 'v2')
    await delivered()
    assert.equal(await p.b.get('k'), 'v2', 'b re-read L2 because its L1 copy was dropped')
    assert.equal(await loner.get('k'), 'v1', 'without the bus the L1 copy lingers')
  })

  it("drops the peer's L1 copy on delete, so its next getOrSet reloads", async () => {
    const p = pair()
    await p.a.set('k', 'v1')
    await delivered()
    assert.equal(await p.b.get('k'), 'v1')
    await p.a.delete('k')
    await delivered()
    assert.equal(await p.b.get('k'), undefined)
    const loader = counting('v2')
    assert.equal(await p.b.getOrSet('k', loader.load), 'v2')
    assert.equal(loader.calls(), 1)
  })

  it('drops tagged L1 entries on a peer and makes it re-read the tag time at once', async () => {
    const p = pair()
    await p.a.set('tagged', 'v1', { tags: ['artist:miles'] })
    await p.a.set('other', 'o1', { tags: ['artist:coltrane'] })
    await delivered()
    assert.equal(await p.b.get('tagged'), 'v1')
    assert.equal(await p.b.get('other'), 'o1')
    p.advance(10)
    await p.a.invalidateTags(['artist:miles'])
    await delivered()
    // tagCacheMs is a minute: only the bus can make b notice this soon.
    assert.equal(await p.b.get('tagged'), undefined)
    assert.equal(await p.b.get('other'), 'o1')
  })

  it('drops the whole L1 of a peer on clear', async () => {
    const p = pair()
    await p.a.set('k1', 1)
    await p.a.set('k2', 2)
    await delivered()
    assert.equal(await p.b.get('k1'), 1)
    await p.a.clear()
    await delivered()
    assert.equal(await p.b.get('k1'), undefined)
    assert.equal(await p.b.get('k2'), undefined)
  })

  it('drops every L1 entry on a resync notice and ignores other namespaces', async () => {
    const p = pair()
    await p.b.set('k', 'v1')
    await delivered()
    // Removed behind the caches' backs: only an L1 copy can still answer.
    await p.l2.delete('test:k')
    await p.l3.delete('test:k')
    p.hub.broadcast(JSON.stringify({ v: 1, namespace: 'elsewhere', keys: ['k'], origin: 'peer' }))
    await delivered()
    assert.equal(await p.b.get('k'), 'v1', 'a message for another namespace leaves L1 alone')
    p.hub.broadcast(JSON.stringify({ v: 1, resync: true, origin: 'peer' }))
    await delivered()
    assert.equal(await p.b.get('k'), undefined)
  })

  it('publishes the write of a completed load', async () => {
    const p = pair()
    const seen: unknown[] = []
    p.busB.subscribe((notice) => seen.push(notice))
    await p.a.getOrSet('k', () => 'v')
    await delivered()
    assert.deepEqual(seen, [{ namespace: 'test', keys: ['k'], origin: 'a' }])
  })

  it('never fails the caller when publishing fails, and reports it', async () => {
    const p = pair()
    await p.busA.close()
    await p.a.set('k', 'v')
    await p.a.delete('k')
    await p.a.clear()
    assert.equal(p.events.filter((e) => e.tier === 'bus' && e.kind === 'error').length, 3)
  })

  it('stops listening after close()', async () => {
    const p = pair()
    await p.a.set('k', 'v1')
    await delivered()
    assert.equal(await p.b.get('k'), 'v1')
    await p.b.close()
    await p.a.set('k', 'v2')
    await delivered()
    assert.equal(await p.b.get('k'), 'v1')
  })
})

describe('TieredCache lease', () => {
  it('calls the loader once for 20 concurrent callers across two instances', async () => {
    const p = pair()
    let calls = 0
    const load = async (): Promise<string> => {
      calls += 1
      await sleep(30)
      return 'v'
    }
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? p.a : p.b).getOrSet('hot', load)))
    assert.deepEqual(results, Array.from({ length: 20 }, () => 'v'))
    assert.equal(calls, 1)
    assert.equal(await p.lease.acquire('test:hot', 1_000).then((t) => t !== undefined), true, 'the winner released the lease')
  })

  it('fails open when the lease store rejects: both instances load and answer', async () => {
    const failing: Lease = {
      acquire: () => Promise.reject(new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: 'redis' } })),
      release: () => Promise.resolve(false),
      close: () => Promise.resolve(),
    }
    const p = pair({ lease: { lease: failing } })
    const loader = counting('v')
    assert.deepEqual(await Promise.all([p.a.getOrSet('k', loader.load), p.b.getOrSet('k', loader.load)]), ['v', 'v'])
    assert.equal(loader.calls(), 2)
    assert.equal(p.events.filter((e) => e.tier === 'lease' && e.kind === 'error').length, 2)
  })

  it('serves the stale value without loading while another instance holds the lease', async () => {
    const p = pair({ graceS: 60 })
    await p.a.set('k', 'old', { ttlS: 1 })
    p.advance(2_000)
    await p.lease.acquire('test:k', 5_000)
    const loader = counting('new')
    assert.equal(await p.b.getOrSet('k', loader.load, { staleWhileRevalidate: false }), 'old')
    assert.equal(loader.calls(), 0)
  })

  it('loads anyway once waitMs passes without the holder writing a value', async () => {
    const lease = new MemoryLease()
    const p = pair({ lease: { lease, waitMs: 20, pollMs: 5 } })
    // A holder that never writes (crashed, or its loader hangs).
    await lease.acquire('test:k', 60_000)
    const loader = counting('v')
    assert.equal(await p.b.getOrSet('k', loader.load), 'v')
    assert.equal(loader.calls(), 1)
    assert.equal(await p.a.get('k'), 'v', 'the value was written for the others')
  })

  it('rejects invalid bus and lease options by path', () => {
    assert.throws(
      () => new TieredCache({ namespace: 'ok', bus: {} as never, lease: { lease: {} as never, pollMs: 500, waitMs: 100 } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path)
        for (const path of ['cache.bus', 'cache.lease.lease']) assert.ok(paths.includes(path), `${path} missing from ${paths.join(', ')}`)
        return true
      },
    )
    assert.throws(() => new TieredCache({ namespace: 'ok', lease: { lease: new MemoryLease(), pollMs: 500, waitMs: 100 } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['cache.lease.pollMs'],
      )
      return true
    })
  })
})

describe('TieredCache per-tier TTLs', () => {
  function capped(overrides: Partial<TieredCacheOptions> = {}) {
    const time = clock()
    const l2 = new MemoryCacheStore({ now: time.now })
    const l3 = new MemoryCacheStore({ now: time.now })
    const events: CacheEvent[] = []
    const cache = new TieredCache({
      namespace: 'test',
      l1: { ttlS: 30 },
      tiers: [{ store: l2, ttlS: 300, name: 'redis' }, l3],
      now: time.now,
      jitter: 0,
      onEvent: (e) => events.push(e),
      ...overrides,
    })
    return { cache, l2, l3, events, ...time }
  }

  it('keeps an entry 30 s in L1, 300 s in the capped tier and the full TTL in the uncapped one', async () => {
    const c = capped()
    const loader = counting('v')
    await c.cache.getOrSet('k', loader.load, { ttlS: 3_600 })
    const inL2 = await c.l2.get('test:k')
    assert.equal(inL2?.staleUntil, T0 + 300_000, 'the cap shortens the life in the tier')
    assert.equal(inL2.freshUntil, T0 + 3_600_000, 'the freshness is the entry own')
    assert.equal((await c.l3.get('test:k'))?.staleUntil, T0 + 3_600_000)
    c.advance(29_999)
    c.events.length = 0
    assert.equal(await c.cache.get('k'), 'v')
    assert.deepEqual(kinds(c.events, 'l1'), ['hit'])
    c.advance(2)
    c.events.length = 0
    assert.equal(await c.cache.get('k'), 'v')
    assert.deepEqual(kinds(c.events, 'l1'), ['miss', 'set'], 'past 30 s L1 no longer holds it')
    assert.deepEqual(kinds(c.events, 'redis'), ['hit'], 'the tier is named in events')
    c.advance(300_000)
    c.events.length = 0
    assert.equal(await c.cache.get('k'), 'v')
    await c.cache.drain()
    assert.deepEqual(kinds(c.events, 'redis'), ['miss', 'set'], 'past 300 s the capped tier misses and is backfilled')
    assert.deepEqual(kinds(c.events, 'l3'), ['hit'])
    assert.equal(loader.calls(), 1)
  })

  it('backfills with the remaining lifetime, never extending it', async () => {
    const c = capped()
    const other = new TieredCache({ namespace: 'test', l1: false, tiers: [c.l3], now: c.now, jitter: 0 })
    await other.set('short', 'v', { ttlS: 60 })
    await other.set('long', 'w', { ttlS: 3_600 })
    c.advance(50_000)
    assert.equal(await c.cache.get('short'), 'v')
    assert.equal(await c.cache.get('long'), 'w')
    await c.cache.drain()
    assert.equal((await c.l2.get('test:short'))?.staleUntil, T0 + 60_000, 'the 10 s left, not the tier cap of 300 s')
    assert.equal((await c.l2.get('test:long'))?.staleUntil, T0 + 50_000 + 300_000, 'capped from the backfill time')
    c.advance(10_000)
    assert.equal(await c.cache.get('short'), undefined, 'gone from L1 and L2 when the entry expires')
    assert.equal(await c.l2.get('test:short'), undefined)
  })

  it('applies the TTL jitter to the tier caps', async () => {
    const c = capped({ jitter: 0.1, random: () => 0 })
    await c.cache.set('k', 'v', { ttlS: 3_600 })
    assert.equal((await c.l2.get('test:k'))?.staleUntil, T0 + 270_000)
    assert.equal((await c.l3.get('test:k'))?.staleUntil, T0 + 3_240_000)
    c.advance(27_000)
    c.events.length = 0
    await c.cache.get('k')
    assert.deepEqual(kinds(c.events, 'l1'), ['miss', 'set'], 'L1 cap of 30 s jittered down to 27 s')
  })

  it('names tiers in breaker states and stats, and rejects bad tier options by path', () => {
    const c = capped()
    assert.deepEqual(Object.keys(c.cache.breakerStates), ['redis', 'l3'])
    assert.deepEqual(Object.keys(c.cache.stats()), ['l1', 'redis', 'l3'])
    const store = new MemoryCacheStore()
    const paths = (options: Partial<TieredCacheOptions>): string[] => {
      try {
        new TieredCache({ namespace: 'test', ...options })
      } catch (err) {
        assert.ok(err instanceof ConfigError)
        return [...new Set(err.issues.map((i) => i.path))]
      }
      return []
    }
    assert.deepEqual(paths({ tiers: [{ store, ttlS: 0 }] }), ['cache.tiers.0.ttlS'])
    assert.deepEqual(paths({ tiers: [{ store, name: 'loader' }] }), ['cache.tiers.0.name'], 'engine event sources are reserved')
    assert.deepEqual(paths({ tiers: [{ store, name: 'l3' }, store] }), ['cache.tiers'], 'the second tier is l3 by default')
    assert.deepEqual(paths({ tiers: [{ store: {} as CacheStore }] }), ['cache.tiers.0'])
    assert.deepEqual(paths({ l1: { ttlS: -1 } }), ['cache.l1.ttlS'])
    assert.deepEqual(paths({ tiers: [{ store, ttlS: 10, name: 'near' }, { store, name: 'far' }] }), [])
  })
})

describe('TieredCache refresh-ahead', () => {
  it('refreshes a hot key once in the background past the ratio, answering with the current value', async () => {
    const h = harness({ refreshAhead: { ratio: 0.8 } })
    await h.cache.getOrSet('k', () => 'old', { ttlS: 100 })
    h.advance(79_000)
    const gate = deferred<string>()
    let calls = 0
    const loader = (): Promise<string> => {
      calls += 1
      return gate.promise
    }
    assert.equal(await h.cache.getOrSet('k', loader, { ttlS: 100 }), 'old')
    assert.equal(calls, 0, 'before the ratio nothing is refreshed')
    h.advance(2_000)
    const served = await Promise.all(Array.from({ length: 5 }, () => h.cache.getOrSet('k', loader, { ttlS: 100 })))
    assert.deepEqual(served, ['old', 'old', 'old', 'old', 'old'])
    assert.equal(calls, 1, 'one refresh for every hit')
    assert.equal(h.events.filter((e) => e.tier === 'loader' && e.kind === 'refresh').length, 1)
    gate.resolve('new')
    await h.cache.drain()
    assert.equal(await h.cache.get('k'), 'new')
    assert.equal((await h.l2.get('test:k'))?.freshUntil, T0 + 181_000, 'the refreshed value has a whole new TTL')
  })

  it('shares the refresh with a concurrent load of the same key (single-flight)', async () => {
    const h = harness({ refreshAhead: { ratio: 0.5 }, staleWhileRevalidate: false })
    await h.cache.set('k', 'old', { ttlS: 10, graceS: 60 })
    h.advance(6_000)
    const gate = deferred<string>()
    let calls = 0
    const loader = (): Promise<string> => {
      calls += 1
      return gate.promise
    }
    assert.equal(await h.cache.getOrSet('k', loader), 'old')
    h.advance(5_000)
    // Now stale: this caller waits for a load, and gets the refresh already running.
    const waiting = h.cache.getOrSet('k', loader)
    gate.resolve('new')
    assert.equal(await waiting, 'new')
    assert.equal(calls, 1)
  })

  it('refreshes only keys with minHits hits on their in-process copy', async () => {
    const h = harness({ refreshAhead: { ratio: 0.5, minHits: 3 } })
    await h.cache.set('k', 'old', { ttlS: 10 })
    h.advance(6_000)
    const loader = counting('new')
    await h.cache.getOrSet('k', loader.load)
    await h.cache.getOrSet('k', loader.load)
    assert.equal(loader.calls(), 0, 'two hits: not hot enough')
    await h.cache.getOrSet('k', loader.load)
    await h.cache.drain()
    assert.equal(loader.calls(), 1)
    assert.equal(await h.cache.get('k'), 'new')
  })

  it('keeps the old value when the refresh fails, reports it and backs off before retrying', async () => {
    const h = harness({ refreshAhead: { ratio: 0.5 } })
    await h.cache.set('k', 'old', { ttlS: 100 })
    h.advance(60_000)
    let calls = 0
    const failing = (): Promise<string> => {
      calls += 1
      return Promise.reject(new Error('db down'))
    }
    assert.equal(await h.cache.getOrSet('k', failing), 'old')
    await h.cache.drain()
    assert.equal(calls, 1)
    assert.ok(h.events.some((e) => e.tier === 'loader' && e.kind === 'error' && e.reason === 'db down'))
    assert.equal(await h.cache.getOrSet('k', failing), 'old', 'still served, still fresh')
    await h.cache.drain()
    assert.equal(calls, 1, 'no retry on every hit')
    h.advance(20_001)
    assert.equal(await h.cache.getOrSet('k', failing), 'old')
    await h.cache.drain()
    assert.equal(calls, 2, 'retried halfway to expiry')
  })

  it('refreshes ahead on a remote hit too when L1 is off', async () => {
    const h = harness({ l1: false, refreshAhead: { ratio: 0.5 } })
    await h.cache.set('k', 'old', { ttlS: 10 })
    h.advance(6_000)
    const loader = counting('new')
    assert.equal(await h.cache.getOrSet('k', loader.load), 'old')
    await h.cache.drain()
    assert.equal(loader.calls(), 1)
    assert.equal(await h.cache.get('k'), 'new')
  })

  it('takes a per-call override, can be turned off per call, and rejects a bad ratio', async () => {
    const h = harness()
    await h.cache.set('k', 'old', { ttlS: 10 })
    h.advance(6_000)
    const loader = counting('new')
    await h.cache.getOrSet('k', loader.load)
    await h.cache.drain()
    assert.equal(loader.calls(), 0, 'off by default')
    await h.cache.getOrSet('k', loader.load, { refreshAhead: { ratio: 0.5 } })
    await h.cache.drain()
    assert.equal(loader.calls(), 1)
    const on = harness({ refreshAhead: { ratio: 0.1 } })
    await on.cache.set('k', 'old', { ttlS: 10 })
    on.advance(6_000)
    await on.cache.getOrSet('k', loader.load, { refreshAhead: false })
    await on.cache.drain()
    assert.equal(loader.calls(), 1)
    await assert.rejects(h.cache.getOrSet('k', loader.load, { refreshAhead: { ratio: 2 } }), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
    assert.throws(() => new TieredCache({ namespace: 'ok', refreshAhead: { ratio: 1.5 } }), ConfigError)
  })
})

describe('TieredCache warm-up and prefetch', () => {
  it('loads entries with bounded concurrency and counts loaded and failed', async () => {
    const h = harness()
    let running = 0
    let most = 0
    const entry = (key: string, fail = false) => ({
      key,
      loader: async (): Promise<string> => {
        running += 1
        most = Math.max(most, running)
        await sleep(5)
        running -= 1
        if (fail) throw new Error(`no ${key}`)
        return `value of ${key}`
      },
      options: { ttlS: 60, tags: ['warm'] },
    })
    const result = await h.cache.warm([entry('a'), entry('b'), entry('c', true), entry('d'), { key: 'bad\u0000key', loader: () => 'x' }, entry('e')], { concurrency: 2 })
    assert.deepEqual(result, { loaded: 4, skipped: 0, failed: 2, failedKeys: ['c', 'bad\u0000key'] })
    assert.equal(most, 2)
    assert.equal(await h.cache.get('a'), 'value of a')
    assert.deepEqual((await h.l2.get('test:e'))?.tags, ['warm'])
    assert.ok(h.events.some((e) => e.tier === 'loader' && e.kind === 'error' && e.reason === 'no c'))
  })

  it('skips keys that are already fresh unless forced', async () => {
    const h = harness()
    await h.cache.set('a', 'cached')
    const loader = counting('loaded')
    assert.deepEqual(await h.cache.warm([{ key: 'a', loader: loader.load }, { key: 'b', loader: loader.load }]), { loaded: 1, skipped: 1, failed: 0, failedKeys: [] })
    assert.equal(await h.cache.get('a'), 'cached')
    assert.deepEqual(await h.cache.warm([{ key: 'a', loader: loader.load }], { force: true }), { loaded: 1, skipped: 0, failed: 0, failedKeys: [] })
    assert.equal(await h.cache.get('a'), 'loaded')
    await assert.rejects(h.cache.warm([], { concurrency: 0 }), ConfigError)
  })

  it('pulls entries the remote tiers hold into L1 with one getMany per tier, without loaders', async () => {
    const time = clock()
    const h = harness({}, time)
    const other = new TieredCache({ namespace: 'test', l1: false, tiers: [h.l3], now: time.now, jitter: 0 })
    await other.set('k1', 'one')
    await other.set('k2', 'two')
    await h.l2.set('test:k4', { value: Uint8Array.of(0xff, 0, 1), createdAt: T0, freshUntil: T0 + 60_000, staleUntil: T0 + 60_000, tags: [] })
    await h.cache.set('k5', 'five')
    let getManyCalls = 0
    const getMany = h.l3.getMany.bind(h.l3)
    h.l3.getMany = (keys) => {
      getManyCalls += 1
      return getMany(keys)
    }
    h.events.length = 0
    assert.equal(await h.cache.prefetch(['k1', 'k2', 'k3', 'k4', 'k5', 'k1']), 3, 'k1, k2 pulled; k5 already in L1')
    assert.equal(getManyCalls, 1)
    assert.ok(h.events.some((e) => e.tier === 'l2' && e.kind === 'error' && e.reason?.startsWith('unreadable entry') === true), 'a corrupt entry is a miss, reported')
    h.events.length = 0
    const loader = counting('never')
    assert.equal(await h.cache.getOrSet('k1', loader.load), 'one')
    assert.equal(await h.cache.getOrSet('k2', loader.load), 'two')
    assert.equal(loader.calls(), 0)
    assert.deepEqual(kinds(h.events, 'l1'), ['hit', 'hit'])
    assert.deepEqual(kinds(h.events, 'l3'), [], 'served from L1 without another remote read')
  })

  it('does nothing without L1, survives a failing tier and rejects a bad key before any I/O', async () => {
    const time = clock()
    const noL1 = harness({ l1: false }, time)
    await noL1.cache.set('k', 'v')
    assert.equal(await noL1.cache.prefetch(['k']), 0)
    const l3 = new MemoryCacheStore({ now: time.now })
    const events: CacheEvent[] = []
    const cache = new TieredCache({ namespace: 'test', tiers: [brokenStore('throw'), l3], now: time.now, onEvent: (e) => events.push(e) })
    await new TieredCache({ namespace: 'test', l1: false, tiers: [l3], now: time.now }).set('k', 'v')
    assert.equal(await cache.prefetch(['k']), 1)
    assert.ok(events.some((e) => e.tier === 'l2' && e.kind === 'error'))
    await assert.rejects(cache.prefetch(['ok', 'x'.repeat(2_000)]), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
  })
})

describe('TieredCache stats', () => {
  it('counts hits, misses, sets, bytes and latency per tier', async () => {
    const h = harness()
    await h.cache.getOrSet('k', () => ({ title: 'Blue in Green' }))
    await h.cache.getOrSet('k', () => 'unused')
    const encoded = (await h.l2.get('test:k'))?.value.byteLength ?? 0
    assert.ok(encoded > 0)
    const { l1, l2 } = h.cache.stats()
    assert.ok(l1 && l2)
    assert.equal(l1.hits, 1)
    assert.equal(l1.misses, 1)
    assert.equal(l1.sets, 1)
    assert.ok(l1.bytesWritten > 0, 'L1 counts the estimated size it stores')
    assert.equal(l1.latency.count, 0, 'L1 hits are not timed')
    assert.equal(l2.misses, 1)
    assert.equal(l2.sets, 1)
    assert.equal(l2.bytesWritten, encoded)
    assert.equal(l2.latency.count, 2, 'the get and the set')
    assert.equal(l2.latency.buckets.reduce((a, b) => a + b, 0), 2)
    assert.ok(h.events.some((e) => e.tier === 'l2' && e.kind === 'set' && e.bytes === encoded), 'set events carry the bytes')
    // A second instance on the same tiers reads the bytes back.
    const reader = new TieredCache({ namespace: 'test', tiers: [h.l2, h.l3], now: h.now })
    await reader.get('k')
    assert.equal(reader.stats().l2?.hits, 1)
    assert.equal(reader.stats().l2?.bytesRead, encoded)
    await h.cache.get('k')
    assert.equal(l1.hits, 1, 'a snapshot is a copy')
    assert.equal(h.cache.stats().l1?.hits, 2)
  })

  it('counts stale hits, errors and evictions', async () => {
    const time = clock()
    const cache = new TieredCache({ namespace: 'test', l1: { maxEntries: 2 }, tiers: [brokenStore('throw')], now: time.now, graceS: 60 })
    await cache.set('a', 1, { ttlS: 1 })
    await cache.set('b', 2)
    await cache.set('c', 3)
    time.advance(2_000)
    await cache.set('d', 4, { ttlS: 1 })
    time.advance(2_000)
    await cache.getOrSet('d', () => 5)
    await cache.drain()
    const { l1, l2 } = cache.stats()
    assert.ok(l1 && l2)
    assert.equal(l1.stale, 1)
    assert.ok(l1.evictions >= 2)
    assert.ok(l2.errors >= 5)
  })

  it('counts L1 hits without an onEvent hook', async () => {
    const cache = new TieredCache({ namespace: 'test' })
    await cache.set('k', 1)
    for (let i = 0; i < 10; i++) await cache.get('k')
    assert.equal(cache.stats().l1?.hits, 10)
  })
})

describe('TieredCache bad input', () => {
  it('rejects a key over 1024 characters with ERR_STORE_VALUE_REJECTED and calls nothing', async () => {
    const h = harness()
    const loader = counting()
    const long = 'k'.repeat(1_025)
    const rejected = (err: unknown): boolean => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED' && /at most 1024/.test(err.message)
    await assert.rejects(h.cache.getOrSet(long, loader.load), rejected)
    await assert.rejects(h.cache.set(long, 1), rejected)
    await assert.rejects(h.cache.get(long), rejected)
    await assert.rejects(h.cache.getOrSet('tab\there', loader.load), (err: unknown) => err instanceof BackbeatError && /control characters/.test(err.message))
    assert.equal(loader.calls(), 0)
    assert.equal(h.l2.size, 0)
  })

  it('returns but does not cache a value over maxValueBytes once encoded, and reports its size', async () => {
    const h = harness({ maxValueBytes: 2_048 })
    // Pseudo-random (deterministic) so compression cannot bring it under the limit.
    let seed = 42
    const big = Array.from({ length: 600 }, () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed.toString(36)
    })
    const loader = counting(big)
    assert.deepEqual(await h.cache.getOrSet('big', loader.load), big)
    assert.equal(await h.l2.get('test:big'), undefined)
    assert.equal(await h.cache.get('big'), undefined, 'not in L1 either: instances must agree')
    const event = h.events.find((e) => e.tier === 'codec' && e.kind === 'error')
    assert.ok(event?.reason?.includes('maxValueBytes') === true)
    assert.ok((event.bytes ?? 0) > 2_048)
    assert.equal(await h.cache.getOrSet('small', () => 'fits'), 'fits')
    assert.ok(await h.l2.get('test:small'))
    assert.throws(() => new TieredCache({ namespace: 'ok', maxValueBytes: 0 }), ConfigError)
  })
})

describe('TieredCache peek and the L1 hit path', () => {
  it('peeks a fresh L1 value synchronously, never reading the tiers or calling a loader', async () => {
    const h = harness()
    await h.cache.set('track:1', { id: 't1' }, { ttlS: 10, graceS: 60 })
    assert.deepEqual(h.cache.peek('track:1'), { id: 't1' })
    assert.equal(h.cache.peek('track:2'), undefined, 'absent from L1: no tier lookup')
    await h.l2.set('test:track:3', (await h.l2.get('test:track:1')) as CacheEntry)
    assert.equal(h.cache.peek('track:3'), undefined, 'held by L2 only')
    h.advance(11_000)
    assert.equal(h.cache.peek('track:1'), undefined, 'in grace: not fresh')
    h.advance(60_000)
    assert.equal(h.cache.peek('track:1'), undefined, 'past grace')
    const l1 = h.cache.stats().l1
    assert.ok(l1)
    assert.deepEqual([l1.hits, l1.stale, l1.misses], [1, 1, 3])
    assert.deepEqual(
      h.events.filter((e) => e.tier === 'l1' && e.kind !== 'set').map((e) => e.kind),
      ['hit', 'miss', 'miss', 'stale', 'miss'],
    )
  })

  it('peeks nothing without L1 and rejects an invalid key', async () => {
    const cache = new TieredCache({ namespace: 'test', l1: false, tiers: [new MemoryCacheStore()] })
    await cache.set('k', 1)
    assert.equal(cache.peek('k'), undefined)
    assert.throws(() => cache.peek('tab\there'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED')
    assert.throws(() => cache.peek(''), BackbeatError)
  })

  it('peeks a tagged value only while its tag times are known, and never one an invalidation voided', async () => {
    const time = clock()
    const tagStore = new MemoryTagStore()
    const a = harness({ tagStore, tagCacheMs: 1_000 }, time)
    const b = new TieredCache({ namespace: 'test', tiers: [a.l2], now: time.now, tagStore, tagCacheMs: 1_000 })
    await a.cache.set('album:1', 'v1', { tags: ['album:1'] })
    assert.equal(a.cache.peek('album:1'), undefined, 'the tag time was never read: unknown')
    assert.equal(await a.cache.get('album:1'), 'v1', 'get asks the tag store')
    assert.equal(a.cache.peek('album:1'), 'v1', 'now known')
    time.advance(1)
    await b.invalidateTags(['album:1'])
    assert.equal(a.cache.peek('album:1'), 'v1', 'a has not re-read the tag time yet (tagCacheMs)')
    time.advance(1_000)
    assert.equal(a.cache.peek('album:1'), undefined, 'the known time is too old: unknown again')
    assert.equal(await a.cache.get('album:1'), undefined, 'get re-reads it and finds the invalidation')
    assert.equal(a.cache.peek('album:1'), undefined)
    await a.cache.invalidateTags(['album:1'])
    await a.cache.set('album:2', 'v2', { tags: ['album:1'] })
    time.advance(1)
    await a.cache.invalidateTags(['album:1'])
    await a.cache.set('album:2', 'v3', { tags: ['album:1'] })
    assert.equal(a.cache.peek('album:2'), undefined, 'written in the same ms as a known invalidation: void')
  })

  it('never peeks tagged values with tagCacheMs 0: each read must ask the tag store', async () => {
    const h = harness({ tagCacheMs: 0 })
    await h.cache.set('k', 1, { tags: ['t'] })
    assert.equal(await h.cache.get('k'), 1)
    assert.equal(h.cache.peek('k'), undefined)
  })

  it('answers get/getOrSet of a tagged entry from L1 once its tag times are known', async () => {
    let asked = 0
    const times = new MemoryTagStore()
    const tagStore = {
      get: (tags: readonly string[]) => {
        asked += 1
        return times.get(tags)
      },
      set: (tags: readonly string[], atMs: number) => times.set(tags, atMs),
    }
    const h = harness({ tagStore, tagCacheMs: 1_000 })
    await h.cache.set('k', 'v', { tags: ['t'] })
    for (let i = 0; i < 5; i++) assert.equal(await h.cache.getOrSet('k', () => 'loaded', { tags: ['t'] }), 'v')
    assert.equal(asked, 1, 'one tag store read, then the cached time')
    assert.equal(h.cache.stats().l1?.hits, 5)
  })

  it('finds a value by any spelling of its key, and keeps long hashed keys apart from look-alike keys', async () => {
    const h = harness()
    await h.cache.set('Beyonce\u0301', 'composed')
    assert.equal(h.cache.peek('Beyonc\u00e9'), 'composed')
    assert.equal(await h.cache.get('Beyonce\u0301'), 'composed')
    assert.equal(await h.cache.get('Beyonc\u00e9'), 'composed')
    const long = 'é'.repeat(150)
    await h.cache.set(long, 'long value')
    assert.equal(h.cache.peek(long), 'long value')
    // The hashed form of the long key is itself a valid key, naming a different entry.
    const hashedForm = normalizeCacheKey(long)
    assert.notEqual(hashedForm, long)
    assert.equal(h.cache.peek(hashedForm), undefined)
    assert.equal(await h.cache.get(hashedForm), undefined)
    assert.throws(() => h.cache.peek(`\u0000${hashedForm}`), BackbeatError)
    await assert.rejects(h.cache.get(`\u0000${hashedForm}`), BackbeatError)
    await h.cache.delete(long)
    assert.equal(h.cache.peek(long), undefined)
    assert.equal(await h.cache.get(long), undefined)
  })

  it('counts the same L1 bytes whatever the key spelling (namespace included)', async () => {
    const a = new TieredCache({ namespace: 'test' })
    await a.set('k', 'v')
    const b = new TieredCache({ namespace: 'test' })
    await b.set('k\u0301', 'v')
    const c = new TieredCache({ namespace: 'test' })
    await c.set('\u1e31', 'v') // 'k' + combining acute composes to U+1E31
    assert.equal(b.stats().l1?.bytesWritten, c.stats().l1?.bytesWritten)
    assert.equal((b.stats().l1?.bytesWritten ?? 0) - (a.stats().l1?.bytesWritten ?? 0), 0)
  })

  it('with the system clock, expires L1 entries on time for hit checks too', async () => {
    const cache = new TieredCache({ namespace: 'test', l1: { maxEntries: 10 } })
    await cache.set('k', 'v', { ttlS: 0.02 })
    assert.equal(cache.peek('k'), 'v')
    assert.equal(await cache.get('k'), 'v')
    await sleep(30)
    assert.equal(cache.peek('k'), undefined)
    assert.equal(await cache.get('k'), undefined)
    await cache.close()
  })

  it('drops an expired L1 entry it meets (no lru-cache TTL of its own)', async () => {
    const h = harness({ tiers: [] })
    await h.cache.set('k', 1, { ttlS: 1 })
    h.advance(1_001)
    assert.equal(h.cache.peek('k'), undefined)
    assert.equal(await h.cache.get('k'), undefined)
    assert.deepEqual(
      h.events.filter((e) => e.tier === 'l1').map((e) => e.kind),
      ['set', 'miss', 'miss'],
    )
  })
})

describe('MemoryTagStore', () => {
  it('forgets invalidation times older than its retention once it holds many tags, never newer ones', async () => {
    const store = new MemoryTagStore({ retentionMs: 1_000 })
    const tags = Array.from({ length: 10_001 }, (_, i) => `old:${i}`)
    await store.set(tags, 1_000)
    await store.set(['recent'], 5_000)
    const found = await store.get(['old:1', 'recent'])
    assert.equal(found.get('old:1'), undefined)
    assert.equal(found.get('recent'), 5_000)
    // Within the retention, nothing is forgotten however many tags there are.
    const keep = new MemoryTagStore({ retentionMs: 60_000 })
    await keep.set(tags, 1_000)
    await keep.set(['recent'], 5_000)
    assert.equal((await keep.get(['old:1'])).get('old:1'), 1_000)
  })
})
