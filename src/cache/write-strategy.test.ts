import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { MemoryInvalidationBus, MemoryInvalidationHub } from './invalidation-bus.ts'
import { MemoryCacheStore } from './memory-store.ts'
import { TieredCache, type CacheEvent } from './tiered-cache.ts'
import { CacheWriter, WriteBehindTimeoutError, type CacheWriterOptions, type WriteOp } from './write-strategy.ts'

const T0 = 1_800_000_000_000

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((res) => {
    resolve = res
  })
  return { promise, resolve }
}

/** A system of record in memory: applies each batch, records it, and fails while `failures` > 0. */
function database<T>() {
  const rows = new Map<string, T>()
  const batches: Array<ReadonlyArray<WriteOp<T>>> = []
  const db = {
    rows,
    batches,
    failures: 0,
    attempts: 0,
    gate: undefined as Promise<void> | undefined,
    onBatch: undefined as (() => void) | undefined,
    persist: async (batch: ReadonlyArray<WriteOp<T>>): Promise<void> => {
      db.attempts += 1
      if (db.gate !== undefined) await db.gate
      if (db.failures > 0) {
        db.failures -= 1
        throw new Error('db down')
      }
      batches.push(batch)
      for (const op of batch) {
        if (op.op === 'set') rows.set(op.key, op.value)
        else rows.delete(op.key)
      }
      db.onBatch?.()
    },
  }
  return db
}

function setup<T = string>(options: Partial<CacheWriterOptions<T>> = {}) {
  let now = T0
  const l2 = new MemoryCacheStore({ now: () => now })
  const events: CacheEvent[] = []
  const cache = new TieredCache({ namespace: 'test', tiers: [l2], now: () => now, jitter: 0 })
  const db = database<T>()
  const writer = new CacheWriter<T>({ cache, mode: 'behind', persist: db.persist, flushIntervalMs: 60_000, onEvent: (e) => events.push(e), ...options })
  return { cache, l2, db, writer, events, advance: (ms: number) => (now += ms) }
}

const keysOf = (batch: ReadonlyArray<WriteOp<unknown>>): string[] => batch.map((op) => (op.op === 'set' ? `${op.key}=${String(op.value)}` : `-${op.key}`))

describe('CacheWriter write-through', () => {
  it('writes the system of record first, then every tier', async () => {
    const s = setup({ mode: 'through' })
    let cachedDuringPersist: unknown = 'not checked'
    s.db.onBatch = () => {
      void s.l2.get('test:album:a1').then((entry) => (cachedDuringPersist = entry))
    }
    await s.writer.write('album:a1', 'Kind of Blue', { ttlS: 60 })
    assert.equal(cachedDuringPersist, undefined, 'not cached while the database write ran')
    assert.equal(s.db.rows.get('album:a1'), 'Kind of Blue')
    assert.equal(await s.cache.get('album:a1'), 'Kind of Blue')
    assert.equal((await s.l2.get('test:album:a1'))?.freshUntil, T0 + 60_000)
  })

  it('throws the persist error and leaves the cache untouched', async () => {
    const s = setup({ mode: 'through' })
    await s.writer.write('k', 'old')
    s.db.failures = 1
    await assert.rejects(s.writer.write('k', 'new'), /db down/)
    assert.equal(await s.cache.get('k'), 'old')
    assert.equal(s.db.rows.get('k'), 'old')
  })

  it('rejects an invalid key or TTL before touching the system of record', async () => {
    const s = setup({ mode: 'through' })
    const rejected = (err: unknown): boolean => err instanceof BackbeatError && err.code === 'ERR_STORE_VALUE_REJECTED'
    await assert.rejects(s.writer.write('bad\nkey', 'v'), rejected)
    await assert.rejects(s.writer.write('k', 'v', { ttlS: 0 }), rejected)
    assert.equal(s.db.attempts, 0)
  })

  it('applies writes of one key in call order even when the first persist is slower', async () => {
    const s = setup({ mode: 'through' })
    const gate = deferred()
    s.db.gate = gate.promise
    const first = s.writer.write('k', 'a')
    const second = s.writer.write('k', 'b')
    await sleep(1)
    assert.equal(s.db.attempts, 1, 'the second waits for the first')
    s.db.gate = undefined
    gate.resolve()
    await Promise.all([first, second])
    assert.deepEqual(s.db.batches.map(keysOf), [['k=a'], ['k=b']])
    assert.equal(await s.cache.get('k'), 'b')
  })

  it('removes through the system of record with a delete op, then from every tier', async () => {
    const s = setup({ mode: 'through' })
    await s.writer.write('k', 'v')
    await s.writer.remove('k')
    assert.deepEqual(keysOf(s.db.batches.at(-1) ?? []), ['-k'])
    assert.equal(s.db.rows.has('k'), false)
    assert.equal(await s.l2.get('test:k'), undefined)
  })
})

describe('CacheWriter write-around', () => {
  it('writes the system of record, then deletes the key everywhere so the next read loads it', async () => {
    let now = T0
    const hub = new MemoryInvalidationHub()
    const l2 = new MemoryCacheStore({ now: () => now })
    const a = new TieredCache({ namespace: 'test', tiers: [l2], now: () => now, bus: new MemoryInvalidationBus(hub, { origin: 'a' }) })
    const b = new TieredCache({ namespace: 'test', tiers: [l2], now: () => now, bus: new MemoryInvalidationBus(hub, { origin: 'b' }) })
    const db = database<string>()
    const writer = new CacheWriter<string>({ cache: a, mode: 'around', persist: db.persist })
    await a.set('k', 'old')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(await b.get('k'), 'old', "in b's L1")
    await writer.write('k', 'new')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(await a.get('k'), undefined)
    assert.equal(await b.get('k'), undefined, "the peer's L1 copy was dropped through the bus")
    now += 1
    assert.equal(await b.getOrSet('k', () => db.rows.get('k')), 'new')
  })

  it('keeps the cache when the system of record fails', async () => {
    const s = setup({ mode: 'around' })
    await s.cache.set('k', 'old')
    s.db.failures = 1
    await assert.rejects(s.writer.write('k', 'new'), /db down/)
    assert.equal(await s.cache.get('k'), 'old')
  })
})

describe('CacheWriter write-behind', () => {
  it('updates the cache at once and persists at the interval', async () => {
    const s = setup({ flushIntervalMs: 20 })
    const landed = deferred()
    s.db.onBatch = () => landed.resolve()
    await s.writer.write('k', 'v')
    assert.equal(await s.cache.get('k'), 'v')
    assert.equal(s.db.batches.length, 0)
    assert.equal(s.writer.stats.queued, 1)
    await landed.promise
    // The batch is counted once persist has returned.
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(s.db.batches.map(keysOf), [['k=v']])
    assert.equal(s.writer.stats.queued, 0)
    await s.writer.close()
  })

  it('writes a full batch without waiting for the interval, and the rest on flush()', async () => {
    const s = setup({ batchSize: 3 })
    for (let i = 1; i <= 7; i++) await s.writer.write(`k${i}`, `v${i}`)
    await sleep(1)
    assert.deepEqual(s.db.batches.map(keysOf), [
      ['k1=v1', 'k2=v2', 'k3=v3'],
      ['k4=v4', 'k5=v5', 'k6=v6'],
    ])
    assert.equal(s.writer.stats.queued, 1)
    await s.writer.flush()
    assert.deepEqual(keysOf(s.db.batches.at(-1) ?? []), ['k7=v7'])
    assert.deepEqual({ ...s.writer.stats }, { queued: 0, inFlight: 0, waiting: 0, flushed: 7, batches: 3, failedAttempts: 0, coalesced: 0 })
    assert.ok(s.events.filter((e) => e.tier === 'writer' && e.kind === 'set').length === 3)
    await s.writer.close()
  })

  it('coalesces repeated writes of a key: last wins, at the position of its latest write', async () => {
    const s = setup()
    await s.writer.write('a', '1')
    await s.writer.write('b', '1')
    await s.writer.write('a', '2')
    await s.writer.write('c', '1')
    await s.writer.remove('c')
    await s.writer.flush()
    assert.deepEqual(s.db.batches.map(keysOf), [['b=1', 'a=2', '-c']])
    assert.equal(s.writer.stats.coalesced, 2)
    assert.equal(await s.cache.get('c'), undefined, 'remove took c out of the cache at once')
    await s.writer.close()
  })

  it('retries a failed batch with backoff until it lands, keeping newer writes of its keys', async () => {
    const s = setup({ retry: { baseMs: 5, maxMs: 20 } })
    await s.writer.write('a', '1')
    await s.writer.write('b', '1')
    s.db.failures = 2
    const gate = deferred()
    s.db.gate = gate.promise
    const flushed = s.writer.flush()
    await sleep(1)
    // Written while the failing batch is out: it supersedes the retried op for a.
    await s.writer.write('a', '2')
    s.db.gate = undefined
    gate.resolve()
    await flushed
    assert.equal(s.db.rows.get('a'), '2')
    assert.equal(s.db.rows.get('b'), '1')
    assert.deepEqual(s.db.batches.map(keysOf), [['b=1', 'a=2']])
    assert.equal(s.writer.stats.failedAttempts, 2)
    assert.equal(s.events.filter((e) => e.tier === 'writer' && e.kind === 'error' && e.reason === 'db down').length, 2)
    await s.writer.close()
  })

  it('makes writers wait for room when the queue is full (back-pressure), in arrival order', async () => {
    const s = setup({ maxQueue: 2, batchSize: 2 })
    const gate = deferred()
    s.db.gate = gate.promise
    await s.writer.write('a', '1')
    await s.writer.write('b', '1')
    await sleep(1)
    assert.equal(s.writer.stats.inFlight, 2)
    await s.writer.write('c', '1')
    await s.writer.write('d', '1')
    let admitted = false
    const e = s.writer.write('e', '1').then(() => (admitted = true))
    await sleep(5)
    assert.equal(admitted, false, 'the queue holds 2 keys: e waits')
    assert.equal(s.writer.stats.waiting, 1)
    assert.equal(s.writer.stats.queued, 4)
    s.db.gate = undefined
    gate.resolve()
    await e
    await s.writer.flush()
    assert.deepEqual(s.db.batches.map(keysOf), [['a=1', 'b=1'], ['c=1', 'd=1'], ['e=1']])
    await s.writer.close()
  })

  it('persists everything on close() and refuses writes afterwards', async () => {
    const s = setup({ batchSize: 50 })
    for (let i = 0; i < 120; i++) await s.writer.write(`k${i % 100}`, `v${i}`)
    await s.writer.close()
    assert.equal(s.db.rows.size, 100)
    assert.equal(s.db.rows.get('k5'), 'v105')
    assert.equal(s.writer.stats.queued, 0)
    assert.equal(s.writer.close(), s.writer.close(), 'close is idempotent')
    await assert.rejects(s.writer.write('k', 'v'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
  })

  it('throws a typed error listing the unpersisted keys when close() passes its deadline, then stops retrying', async () => {
    const s = setup({ closeTimeoutMs: 40, retry: { baseMs: 5, maxMs: 5 } })
    await s.writer.write('a', '1')
    await s.writer.remove('b')
    s.db.failures = Number.POSITIVE_INFINITY
    await assert.rejects(s.writer.close(), (err: unknown) => {
      assert.ok(err instanceof WriteBehindTimeoutError)
      assert.equal(err.code, 'ERR_DEPENDENCY_TIMEOUT')
      assert.deepEqual([...err.keys].sort(), ['a', 'b'])
      return true
    })
    const attempts = s.db.attempts
    assert.ok(attempts >= 2)
    await sleep(20)
    assert.equal(s.db.attempts, attempts, 'stopped: the process can exit')
    assert.equal(s.writer.stats.queued, 2, 'nothing was dropped silently')
  })

  it('keeps the queue after a flush() deadline and lands it once the system of record recovers', async () => {
    const s = setup({ retry: { baseMs: 5, maxMs: 5 } })
    await s.writer.write('a', '1')
    s.db.failures = Number.POSITIVE_INFINITY
    await assert.rejects(s.writer.flush({ timeoutMs: 20 }), (err: unknown) => err instanceof WriteBehindTimeoutError && err.keys.join() === 'a')
    s.db.failures = 0
    await s.writer.flush({ timeoutMs: 1_000 })
    assert.equal(s.db.rows.get('a'), '1')
    await s.writer.close()
  })
})

describe('CacheWriter options', () => {
  it('lists every invalid option by path', () => {
    assert.throws(
      () => new CacheWriter({ cache: 'not a cache' as unknown as TieredCache, mode: 'sideways' as 'behind', persist: () => Promise.resolve(), batchSize: 10, maxQueue: 5, retry: { baseMs: 100, maxMs: 10 } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path)
        for (const path of ['cache.writer.cache', 'cache.writer.mode', 'cache.writer.retry.baseMs']) assert.ok(paths.includes(path), `${path} missing from ${paths.join(', ')}`)
        return true
      },
    )
    const cache = new TieredCache({ namespace: 'test' })
    assert.throws(() => new CacheWriter({ cache, mode: 'behind', persist: () => Promise.resolve(), batchSize: 10, maxQueue: 5 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['cache.writer.batchSize'],
      )
      return true
    })
  })
})
