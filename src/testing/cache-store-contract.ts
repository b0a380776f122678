/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this file is a test helper outside the *.test.ts override */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import type { CacheEntry, CacheStore } from '../cache/index.ts'
import { BackbeatError, delay } from '../core/index.ts'

/** What a {@link describeCacheStore} factory returns. */
export interface CacheStoreFixture {
  store: CacheStore
  /** Removes everything the fixture wrote (by prefix), then closes what it opened. */
  cleanup: () => Promise<void>
  /** The clock the store judges `staleUntil` by (epoch ms). */
  now: () => number
  /** Moves that clock forward; defaults to really waiting. Memory stores pass their fake clock here. */
  advanceTime?: (ms: number) => Promise<void> | void
  /** Lifetime used by the expiry test; remote tiers with real time keep it short (about 1,100). */
  ttlMs?: number
  /** Largest encoded entry the store accepts; larger ones must be refused or dropped, never half-stored. */
  maxValueBytes?: number
  /** False when `deletePrefix` cannot count what it removed (memcached): it then resolves 0. */
  countsPrefixDeletes?: boolean
}

/** Given to each factory call: the store must put every key under `prefix`. */
export interface CacheStoreContext {
  readonly prefix: string
}

const MiB = 1024 * 1024

/**
 * The contract every {@link CacheStore} tier must pass: byte-exact round trips (NUL bytes,
 * invalid UTF-8, 1 MiB values), expiry at `staleUntil` (stale-but-graced entries still
 * served), `getMany` order and misses, `delete` results, `deletePrefix` isolation between
 * namespaces and stores, unicode and long keys, concurrent writes. `make` is called once per
 * test (twice for the isolation test) with a fresh prefix. Namespaces used with
 * `deletePrefix` are whole segments ending in ':' (what a memcached tier supports).
 *
 * @example
 * describeCacheStore('MemoryCacheStore', async () => {
 *   let now = 1_800_000_000_000
 *   return { store: new MemoryCacheStore({ now: () => now }), now: () => now, advanceTime: (ms) => { now += ms }, cleanup: async () => {} }
 * })
 */
export function describeCacheStore(name: string, make: (context: CacheStoreContext) => Promise<CacheStoreFixture>): void {
  const withStore = (fn: (fixture: CacheStoreFixture) => Promise<void>) => async () => {
    const fixture = await make({ prefix: freshPrefix() })
    try {
      await fn(fixture)
    } finally {
      await fixture.cleanup()
    }
  }
  const advance = async (fixture: CacheStoreFixture, ms: number): Promise<void> => {
    if (fixture.advanceTime === undefined) await delay(ms)
    else await fixture.advanceTime(ms)
  }
  const entry = (fixture: CacheStoreFixture, value: Uint8Array | string, over: Partial<CacheEntry> = {}): CacheEntry => {
    const now = fixture.now()
    return { value: typeof value === 'string' ? Buffer.from(value) : value, createdAt: now, freshUntil: now + 30_000, staleUntil: now + 60_000, tags: [], ...over }
  }
  const text = (found: CacheEntry | undefined): string | undefined => (found === undefined ? undefined : Buffer.from(found.value).toString())

  describe(`${name} (CacheStore contract)`, () => {
    it('misses a key that was never set', withStore(async ({ store }) => {
      assert.equal(await store.get('missing'), undefined)
      assert.deepEqual(await store.getMany(['missing', 'also-missing']), [undefined, undefined])
      assert.equal(typeof store.kind, 'string')
    }))

    it('returns every byte and field it was given, including NUL, invalid UTF-8 and an empty value', withStore(async (fixture) => {
      const { store } = fixture
      const bytes = new Uint8Array([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80, 0x41])
      const stored = entry(fixture, bytes, { createdAt: fixture.now() - 5, tags: ['album:1', 'ärtist:ü', ''] })
      await store.set('bytes', stored)
      const found = await store.get('bytes')
      assert.ok(found !== undefined)
      assert.ok(found.value instanceof Uint8Array)
      assert.deepEqual([...found.value], [...bytes])
      assert.deepEqual([found.createdAt, found.freshUntil, found.staleUntil], [stored.createdAt, stored.freshUntil, stored.staleUntil])
      assert.deepEqual([...found.tags], [...stored.tags])
      await store.set('empty', entry(fixture, new Uint8Array(0)))
      assert.equal((await store.get('empty'))?.value.byteLength, 0)
    }))

    it('answers the latest value after an overwrite', withStore(async (fixture) => {
      await fixture.store.set('k', entry(fixture, 'first'))
      await fixture.store.set('k', entry(fixture, 'second', { tags: ['t'] }))
      const found = await fixture.store.get('k')
      assert.equal(text(found), 'second')
      assert.deepEqual(found?.tags, ['t'])
    }))

    it('serves an entry past freshUntil until staleUntil, then misses', withStore(async (fixture) => {
      const ttlMs = fixture.ttlMs ?? 1_000
      const now = fixture.now()
      await fixture.store.set('graced', entry(fixture, 'v', { freshUntil: now, staleUntil: now + ttlMs }))
      await fixture.store.set('long', entry(fixture, 'w'))
      assert.equal(text(await fixture.store.get('graced')), 'v', 'stale but within grace is still served')
      await advance(fixture, ttlMs + 50)
      assert.equal(await fixture.store.get('graced'), undefined)
      assert.deepEqual((await fixture.store.getMany(['graced', 'long'])).map(text), [undefined, 'w'])
    }))

    it('does not store an entry already past staleUntil, and drops the value it replaces', withStore(async (fixture) => {
      await fixture.store.set('k', entry(fixture, 'old'))
      const now = fixture.now()
      await fixture.store.set('k', entry(fixture, 'dead', { freshUntil: now - 2_000, staleUntil: now - 1_000 }))
      assert.equal(await fixture.store.get('k'), undefined)
    }))

    it('getMany answers in the order asked, with misses and repeats in place', withStore(async (fixture) => {
      const { store } = fixture
      await store.set('a', entry(fixture, 'A'))
      await store.set('c', entry(fixture, 'C'))
      assert.deepEqual((await store.getMany(['c', 'b', 'a', 'c'])).map(text), ['C', undefined, 'A', 'C'])
      assert.deepEqual(await store.getMany([]), [])
    }))

    it('delete resolves true only when the key existed, and the key then misses', withStore(async (fixture) => {
      const { store } = fixture
      await store.set('k', entry(fixture, 'v'))
      assert.equal(await store.delete('k'), true)
      assert.equal(await store.get('k'), undefined)
      assert.equal(await store.delete('k'), false)
      assert.equal(await store.delete('never'), false)
    }))

    it('deletePrefix removes one namespace and leaves the others alone', withStore(async (fixture) => {
      const { store } = fixture
      for (const key of ['ns-a:1', 'ns-a:2', 'ns-a:sub:3', 'ns-ab:1', 'ns-b:1', 'plain']) await store.set(key, entry(fixture, key))
      const removed = await store.deletePrefix('ns-a:')
      if (fixture.countsPrefixDeletes !== false) assert.equal(removed, 3)
      assert.deepEqual((await store.getMany(['ns-a:1', 'ns-a:2', 'ns-a:sub:3', 'ns-ab:1', 'ns-b:1', 'plain'])).map(text), [undefined, undefined, undefined, 'ns-ab:1', 'ns-b:1', 'plain'])
      await store.set('ns-a:1', entry(fixture, 'again'))
      assert.equal(text(await store.get('ns-a:1')), 'again', 'the namespace is usable after the delete')
      const none = await store.deletePrefix('ns-empty:')
      assert.equal(none, 0)
    }))

    it('deletePrefix of one store leaves a store with another prefix untouched', async () => {
      const first = await make({ prefix: freshPrefix() })
      const second = await make({ prefix: freshPrefix() })
      try {
        await first.store.set('ns:k', entry(first, 'first'))
        await second.store.set('ns:k', entry(second, 'second'))
        await second.store.deletePrefix('')
        await second.store.deletePrefix('ns:')
        assert.equal(await second.store.get('ns:k'), undefined)
        assert.equal(text(await first.store.get('ns:k')), 'first')
      } finally {
        await first.cleanup()
        await second.cleanup()
      }
    })

    it('round-trips a large value byte for byte', withStore(async (fixture) => {
      const size = Math.min(MiB, (fixture.maxValueBytes ?? Infinity) - 4_096)
      const big = randomBytes(size)
      await fixture.store.set('big', entry(fixture, big, { tags: ['large'] }))
      const found = await fixture.store.get('big')
      assert.ok(found !== undefined, `a ${size}-byte value is stored`)
      assert.ok(Buffer.from(found.value).equals(big))
    }))

    it('refuses or drops a value over its size limit, never serving the value it replaced', withStore(async (fixture) => {
      if (fixture.maxValueBytes === undefined) return
      await fixture.store.set('k', entry(fixture, 'old'))
      try {
        await fixture.store.set('k', entry(fixture, randomBytes(fixture.maxValueBytes + 1)))
      } catch (err) {
        assert.ok(err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED', String(err))
      }
      assert.equal(await fixture.store.get('k'), undefined)
    }))

    it('keeps unicode, long, spaced and control-character keys apart', withStore(async (fixture) => {
      const { store } = fixture
      const keys = ['user:{a}', 'user:{b}', `k:${'x'.repeat(300)}`, `k:${'x'.repeat(299)}y`, 'user:ünïcødé', 'user:unicode', 'emoji:🎵', 'with space', 'tab\tand\nnewline', 'nul\u0000byte']
      for (const key of keys) await store.set(key, entry(fixture, `v-${key}`))
      assert.deepEqual((await store.getMany(keys)).map(text), keys.map((key) => `v-${key}`))
      assert.equal(await store.delete(keys[2] ?? ''), true)
      assert.equal(text(await store.get(keys[3] ?? '')), `v-${keys[3] ?? ''}`, 'a near-identical long key survives')
    }))

    it('stays consistent under concurrent writes', withStore(async (fixture) => {
      const { store } = fixture
      const keys = Array.from({ length: 40 }, (_, i) => `c:${String(i)}`)
      await Promise.all(keys.map(async (key) => store.set(key, entry(fixture, key))))
      assert.deepEqual((await store.getMany(keys)).map(text), keys)
      const values = Array.from({ length: 20 }, (_, i) => `same-${String(i)}-${'z'.repeat(i * 100)}`)
      await Promise.all(values.map(async (value) => store.set('same', entry(fixture, value))))
      const last = text(await store.get('same'))
      assert.ok(last !== undefined && values.includes(last), 'one whole write wins, never a torn mix')
    }))
  })
}

function freshPrefix(): string {
  return `cs-${randomUUID().slice(0, 8)}:`
}
