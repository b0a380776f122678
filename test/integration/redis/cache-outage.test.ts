import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, it } from 'node:test'
import { encodeCacheEntry, RedisCacheStore, TieredCache, type CacheEvent } from 'backbeat/cache'
import { RedisConnection } from 'backbeat/stores'
import { ObservedStore } from '../fixtures/observed-store.ts'
import { killTierMidLoadThenBack, waitFor } from '../fixtures/tier-outage.ts'
import { redisTestScope } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

const RUN = randomBytes(4).toString('hex')
const PREFIX = `bbtest:cache-outage:${RUN}:`
const NAMESPACE = 'outage'
const redis = redisTestScope(PREFIX)

const redisTarget = (): string => {
  const url = new URL(redis.url)
  return `${url.hostname}:${url.port === '' ? '6379' : url.port}`
}

const withHost = (host: string): string => {
  const url = new URL(redis.url)
  url.host = host
  return url.toString()
}

/**
 * TieredCache with one Redis tier (and no L1, so every call goes to Redis) through a relay the
 * test cuts: failure isolation means a dead, hung or corrupt Redis costs latency, never a
 * failed call.
 */
describe('TieredCache when its Redis tier fails (real Redis through a relay)', () => {
  const cleanups: Array<() => Promise<void>> = []

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  function newCache(connection: RedisConnection, options: { failureThreshold: number; halfOpenAfterMs: number; tierTimeoutMs: number; onCorrupt?: (key: string) => void }) {
    const events: CacheEvent[] = []
    const store = new ObservedStore(new RedisCacheStore(connection, { prefix: 'entry:', ...(options.onCorrupt === undefined ? {} : { onCorrupt: options.onCorrupt }) }))
    const cache = new TieredCache({
      namespace: NAMESPACE,
      l1: false,
      tiers: [store],
      breaker: { failureThreshold: options.failureThreshold, halfOpenAfterMs: options.halfOpenAfterMs },
      tierTimeoutMs: options.tierTimeoutMs,
      onEvent: (event) => events.push(event),
    })
    store.breakerState = () => cache.breakerStates.l2
    cleanups.push(() => cache.close())
    const l2Errors = (): CacheEvent[] => events.filter((e) => e.tier === 'l2' && e.kind === 'error')
    return { cache, store, events, l2Errors }
  }

  async function viaProxy(): Promise<{ proxy: TcpProxy; connection: RedisConnection }> {
    const proxy = await TcpProxy.start(redisTarget())
    const connection = new RedisConnection({ url: withHost(proxy.address), keyPrefix: PREFIX, name: 'cache-outage', commandTimeoutMs: 400, connectTimeoutMs: 400, reconnectMaxMs: 100 })
    await connection.connect()
    cleanups.push(async () => {
      proxy.resume()
      await connection.close()
      await proxy.stop()
    })
    return { proxy, connection }
  }

  it('answers with the loader\'s value when Redis dies mid-load, keeps answering from the loader with the breaker open, and reads Redis again once it is back', async () => {
    const { proxy, connection } = await viaProxy()
    const halfOpenAfterMs = 400
    const { cache, store, l2Errors } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs, tierTimeoutMs: 300 })
    await cache.set('warm', 'from-redis')
    assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:warm`), 1)

    await killTierMidLoadThenBack({
      cache,
      proxy,
      store,
      l2Errors,
      halfOpenAfterMs,
      tier: 'Redis',
      warmValue: 'from-redis',
      afterCut: () => waitFor('the client to notice the outage', () => connection.client.status !== 'ready'),
      afterBack: () => waitFor('the client to reconnect', () => connection.client.status === 'ready'),
    })
    assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:back`), 1, 'writes reach Redis again')
  })

  it('treats bytes that are not a cache entry as a miss: the store reports them, the loader answers and its value replaces them', async () => {
    const { connection } = await viaProxy()
    const corrupt: string[] = []
    const { cache, events } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs: 1_000, tierTimeoutMs: 300, onCorrupt: (key) => corrupt.push(key) })
    const raw = `${PREFIX}entry:${NAMESPACE}:garbage`
    await redis.admin.set(raw, Buffer.from('{"not":"an entry"}'))
    let loads = 0
    assert.equal(await cache.getOrSet('garbage', () => `loaded-${String(++loads)}`), 'loaded-1')
    assert.deepEqual(corrupt, [`${NAMESPACE}:garbage`])
    assert.ok(events.some((e) => e.tier === 'l2' && e.kind === 'miss'))
    assert.equal(cache.breakerStates.l2, 'closed', 'bad data is not an outage')
    assert.equal(await cache.getOrSet('garbage', () => `loaded-${String(++loads)}`), 'loaded-1', 'the loader\'s value replaced the bytes')
    assert.equal(loads, 1)
  })

  it('treats an entry whose value does not decode as a miss reported through onEvent, and calls the loader', async () => {
    const { connection } = await viaProxy()
    const { cache, events } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs: 1_000, tierTimeoutMs: 300 })
    const now = Date.now()
    // A well-formed envelope around a value the codec cannot read (unknown layout version).
    const envelope = encodeCacheEntry({ value: Uint8Array.from([0xff, 0xff, 0xff, 0xff]), createdAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000, tags: [] })
    await redis.admin.set(`${PREFIX}entry:${NAMESPACE}:mangled`, envelope)
    let loads = 0
    assert.equal(await cache.getOrSet('mangled', () => `loaded-${String(++loads)}`), 'loaded-1')
    const errors = events.filter((e) => e.tier === 'l2' && e.kind === 'error')
    assert.equal(errors.length, 1)
    assert.ok(errors[0]?.reason !== undefined && errors[0].reason.length > 0, 'the reason is given')
    assert.ok(events.some((e) => e.tier === 'l2' && e.kind === 'miss'))
    assert.equal(await cache.get('mangled'), 'loaded-1', 'the loader\'s value replaced it in Redis')
    assert.equal(loads, 1)
  })

  it('bounds every call by tierTimeoutMs while Redis hangs, then skips the hung tier once the breaker opens', async () => {
    const proxy = await TcpProxy.start(redisTarget())
    // A command timeout far above tierTimeoutMs: only the engine's bound can keep calls short.
    const connection = new RedisConnection({ url: withHost(proxy.address), keyPrefix: PREFIX, name: 'cache-hung', commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, reconnectMaxMs: 100 })
    await connection.connect()
    cleanups.push(async () => {
      // Reconnected through the unhung proxy first: a QUIT into a hung one would wait out the
      // command timeout, and a client left reconnecting to a dead port closes only after 2 s.
      proxy.unhang()
      await waitFor('the client to reconnect', () => connection.client.status === 'ready')
      await connection.close()
      await proxy.stop()
    })
    const { cache, store, l2Errors } = newCache(connection, { failureThreshold: 2, halfOpenAfterMs: 60_000, tierTimeoutMs: 150 })
    assert.equal(await cache.getOrSet('before', () => 'loaded'), 'loaded')
    assert.equal(l2Errors().length, 0)

    proxy.hang()
    const started = performance.now()
    assert.equal(await cache.getOrSet('hung', () => 'loaded-while-hung'), 'loaded-while-hung')
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 2 * 140 && elapsed < 2_000, `a read and a write, each cut at 150 ms: took ${String(Math.round(elapsed))} ms`)
    assert.equal(l2Errors().length, 2)
    assert.ok(l2Errors().every((e) => /150/.test(e.reason ?? '')), 'the reason names the timeout')
    assert.equal(cache.breakerStates.l2, 'open')

    const calls = store.calls
    assert.equal(await cache.getOrSet('skipped', () => 'loaded-skipping'), 'loaded-skipping')
    assert.equal(store.calls, calls, 'the hung tier is no longer asked')
  })
})
