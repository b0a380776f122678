import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import { MemcachedCacheStore, TieredCache, type CacheEvent } from 'backbeat/cache'
import { MemcachedConnection } from 'backbeat/stores'
import { ObservedStore } from '../fixtures/observed-store.ts'
import { killTierMidLoadThenBack } from '../fixtures/tier-outage.ts'
import { requireMemcachedServers } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

// memcached cannot delete by prefix: everything this file writes is under this prefix and is
// orphaned with deletePrefix('') at the end (memcached evicts it as it expires).
const PREFIX = `bbt:co:${randomBytes(4).toString('hex')}:`
const NAMESPACE = 'outage'

/**
 * TieredCache with one Memcached tier (no L1, so every call reaches it) through a relay the
 * test cuts: a Memcached outage, even one that starts while a loader runs, costs latency and
 * never fails a call; once Memcached is back the breaker's trial call puts the tier back.
 */
describe('TieredCache when its Memcached tier fails (real Memcached through a relay)', () => {
  let servers = ''
  const cleanups: Array<() => Promise<void>> = []

  before(async () => {
    servers = await requireMemcachedServers()
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  after(async () => {
    const direct = new MemcachedConnection({ servers, name: 'cache-outage-cleanup' })
    await direct.connect()
    await new MemcachedCacheStore(direct, { prefix: PREFIX }).deletePrefix('')
    await direct.close()
  })

  it('answers with the loader\'s value when Memcached dies mid-load, keeps answering from the loader with the breaker open, and reads Memcached again once it is back', async () => {
    const proxy = await TcpProxy.start(servers.split(',')[0]!.trim())
    const connection = new MemcachedConnection({ servers: proxy.address, name: 'cache-outage', retries: 1, connectTimeoutMs: 300, commandTimeoutMs: 300, retryDelayMs: 50 })
    await connection.connect()
    cleanups.push(async () => {
      await connection.close()
      await proxy.stop()
    })
    // Longer than the connection's whole budget per command (connect + retries x (command +
    // delay) = 650 ms): the trial call must not meet a straggler from the outage.
    const halfOpenAfterMs = 1_000
    const events: CacheEvent[] = []
    const store = new ObservedStore(new MemcachedCacheStore(connection, { prefix: PREFIX }))
    const cache = new TieredCache({
      namespace: NAMESPACE,
      l1: false,
      tiers: [store],
      breaker: { failureThreshold: 3, halfOpenAfterMs },
      tierTimeoutMs: 250,
      onEvent: (event) => events.push(event),
    })
    store.breakerState = () => cache.breakerStates.l2
    cleanups.push(() => cache.close())
    const l2Errors = (): CacheEvent[] => events.filter((e) => e.tier === 'l2' && e.kind === 'error')

    await cache.set('warm', 'from-memcached')
    assert.equal(await cache.get('warm'), 'from-memcached')
    assert.equal(l2Errors().length, 0)

    const { errorsBefore } = await killTierMidLoadThenBack({
      cache,
      proxy,
      store,
      l2Errors,
      halfOpenAfterMs,
      tier: 'Memcached',
      warmValue: 'from-memcached',
      outOfReachMessage: 'the cached value is out of reach, the loader answers',
    })
    assert.equal(await cache.get('back'), 'loaded-after', 'writes reach Memcached again')
    assert.equal(l2Errors().length, errorsBefore)
  })
})
