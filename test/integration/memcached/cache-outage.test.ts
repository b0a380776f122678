import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import { MemcachedCacheStore, TieredCache, type CacheEvent } from 'backbeat/cache'
import { MemcachedConnection } from 'backbeat/stores'
import { ObservedStore } from '../fixtures/observed-store.ts'
import { requireMemcachedServers } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

// memcached cannot delete by prefix: everything this file writes is under this prefix and is
// orphaned with deletePrefix('') at the end (memcached evicts it as it expires).
const PREFIX = `bbt:co:${randomBytes(4).toString('hex')}:`
const NAMESPACE = 'outage'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A promise with its resolve function (Promise.withResolvers is past the ES2023 lib). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

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

    // Kill the connection while the loader runs: the lookup worked, the write cannot.
    const started = deferred<undefined>()
    const gate = deferred<string>()
    const inFlight = cache.getOrSet('mid-load', () => {
      started.resolve(undefined)
      return gate.promise
    })
    await started.promise
    proxy.pause()
    proxy.dropConnections()
    gate.resolve('loaded')
    assert.equal(await inFlight, 'loaded')
    assert.equal(l2Errors().length, 1, 'the failed write is reported')
    assert.equal(cache.breakerStates.l2, 'closed', 'one failure does not open the breaker')

    // Memcached still down: reads fall through to the loader; failures open the breaker.
    let loads = 0
    const loader = (): string => `loaded-${String(++loads)}`
    assert.equal(await cache.getOrSet('warm', loader), 'loaded-1', 'the cached value is out of reach, the loader answers')
    assert.equal(cache.breakerStates.l2, 'open', 'a failed read and a failed write after the first failure: 3 in a row')
    const openedBy = Date.now()
    assert.equal(l2Errors().length, 3)
    const callsWhenOpened = store.calls
    assert.equal(await cache.getOrSet('down', loader), 'loaded-2')
    assert.equal(await cache.get('warm'), undefined, 'a plain read is a miss, not an error')
    assert.equal(store.calls, callsWhenOpened, 'with the breaker open, Memcached is not even asked')
    assert.ok(l2Errors().length >= 5, 'each skipped tier call is still reported')

    proxy.resume()
    await waitFor('the breaker to allow a trial call', () => Date.now() - openedBy > halfOpenAfterMs + 50)
    const errorsBefore = l2Errors().length
    const statesBefore = store.states.length
    assert.equal(
      await cache.getOrSet('warm', () => assert.fail('the value is in Memcached again')),
      'from-memcached',
    )
    assert.deepEqual(store.states.slice(statesBefore), ['half-open'], 'the first read after the pause is the breaker\'s trial')
    assert.equal(cache.breakerStates.l2, 'closed')
    assert.equal(l2Errors().length, errorsBefore)
    assert.equal(await cache.getOrSet('back', () => 'loaded-after'), 'loaded-after')
    assert.equal(await cache.get('back'), 'loaded-after', 'writes reach Memcached again')
    assert.equal(l2Errors().length, errorsBefore)
  })
})
