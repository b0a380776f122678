import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { BackbeatError } from 'backbeat'
import { RedisConnection } from 'backbeat/stores'
import { RedisInvalidationBus, RedisLease, type InvalidationNotice } from 'backbeat/cache'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

const RUN = randomBytes(4).toString('hex')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/**
 * Two "instances": A reaches Redis through a relay the tests can cut, B directly. Each test
 * uses its own channel, so a straggler from one test cannot satisfy another's assertion.
 */
describe('cache invalidation bus and lease on real Redis', () => {
  let url: string
  let proxy: TcpProxy
  let viaProxy: RedisConnection
  let direct: RedisConnection
  const buses: RedisInvalidationBus[] = []
  let channelSeq = 0

  before(async () => {
    url = await requireRedisUrl()
    const target = new URL(url)
    proxy = await TcpProxy.start(`${target.hostname}:${target.port === '' ? '6379' : target.port}`)
    const relayed = new URL(url)
    relayed.host = proxy.address
    viaProxy = new RedisConnection({ url: relayed.toString(), name: 'bus-a', commandTimeoutMs: 400, connectTimeoutMs: 400, reconnectMaxMs: 100 })
    direct = new RedisConnection({ url, name: 'bus-b' })
    await Promise.all([viaProxy.connect(), direct.connect()])
  })

  afterEach(async () => {
    proxy.resume()
    await Promise.all(buses.splice(0).map((bus) => bus.close()))
  })

  after(async () => {
    await Promise.all([viaProxy.close(), direct.close()])
    await proxy.stop()
  })

  async function twoBuses(options: { retryQueueMax?: number } = {}): Promise<{ a: RedisInvalidationBus; b: RedisInvalidationBus; seenByA: InvalidationNotice[]; seenByB: InvalidationNotice[] }> {
    const channel = `bb:test:bus:${RUN}:${++channelSeq}`
    const a = new RedisInvalidationBus(viaProxy, { channel, origin: 'a', retryBaseMs: 20, retryMaxMs: 100, ...options })
    const b = new RedisInvalidationBus(direct, { channel, origin: 'b' })
    buses.push(a, b)
    await Promise.all([a.connect(), b.connect()])
    const seenByA: InvalidationNotice[] = []
    const seenByB: InvalidationNotice[] = []
    a.subscribe((n) => seenByA.push(n))
    b.subscribe((n) => seenByB.push(n))
    return { a, b, seenByA, seenByB }
  }

  /** Cuts A off (connections reset, new ones refused) until the returned function is called. */
  function cutA(): () => void {
    proxy.pause()
    proxy.dropConnections()
    return () => proxy.resume()
  }

  it('delivers each instance\'s messages to the other and never to itself', async () => {
    const { a, b, seenByA, seenByB } = await twoBuses()
    await a.publish({ namespace: 'catalog', keys: ['album:1'] })
    await b.publish({ namespace: 'catalog', tags: ['artist:7'], clear: true })
    await waitFor('both deliveries', () => seenByA.length === 1 && seenByB.length === 1)
    await sleep(100)
    assert.deepEqual(seenByB, [{ namespace: 'catalog', keys: ['album:1'], origin: 'a' }])
    assert.deepEqual(seenByA, [{ namespace: 'catalog', tags: ['artist:7'], clear: true, origin: 'b' }])
  })

  it('ignores garbage published on the channel and keeps working', async () => {
    const { a, b, seenByB } = await twoBuses()
    for (const junk of ['nope', '{"v":1}', JSON.stringify({ v: 1, namespace: 'n', keys: ['k'.repeat(5_000)], origin: 'x' })]) await direct.client.publish(b.options.channel, junk)
    await a.publish({ namespace: 'n', keys: ['after-garbage'] })
    await waitFor('the valid message', () => seenByB.length === 1)
    assert.equal(b.stats.invalid, 3)
    assert.deepEqual(seenByB, [{ namespace: 'n', keys: ['after-garbage'], origin: 'a' }])
  })

  it('queues messages published while Redis is unreachable and delivers them in order once it is back, then resyncs the deaf subscriber', async () => {
    const { a, seenByA, seenByB } = await twoBuses()
    const restore = cutA()
    await waitFor('A to notice the outage', () => viaProxy.client.status !== 'ready')
    for (let i = 0; i < 5; i++) await a.publish({ namespace: 'n', keys: [`k${i}`] })
    assert.equal(a.stats.queued, 5, 'nothing sent while down')
    assert.ok(a.stats.publishErrors >= 1)
    await sleep(200)
    assert.equal(seenByB.length, 0)
    restore()
    await waitFor('the queued messages', () => seenByB.length === 5)
    assert.deepEqual(seenByB.map((n) => ('keys' in n ? n.keys[0] : n)), ['k0', 'k1', 'k2', 'k3', 'k4'])
    assert.equal(a.stats.queued, 0)
    assert.equal(a.stats.dropped, 0)
    // A's subscriber was deaf meanwhile: it is told to drop its whole L1.
    await waitFor('the resync notice', () => seenByA.length > 0)
    assert.deepEqual(seenByA, [{ resync: true, reason: 'reconnected' }])
    assert.equal(a.stats.resyncs, 1)
  })

  it('hears messages again after its subscriber reconnected', async () => {
    const { a, b, seenByA } = await twoBuses()
    proxy.dropConnections()
    await waitFor('the resync notice', () => seenByA.some((n) => 'resync' in n))
    await b.publish({ namespace: 'n', keys: ['after-reconnect'] })
    await waitFor('the message', () => seenByA.length === 2)
    assert.deepEqual(seenByA[1], { namespace: 'n', keys: ['after-reconnect'], origin: 'b' })
    assert.equal(a.stats.invalid, 0)
  })

  it('drops the oldest queued messages beyond retryQueueMax and tells peers to resync', async () => {
    const { a, seenByB } = await twoBuses({ retryQueueMax: 3 })
    const restore = cutA()
    await waitFor('A to notice the outage', () => viaProxy.client.status !== 'ready')
    for (let i = 0; i < 5; i++) await a.publish({ namespace: 'n', keys: [`k${i}`] })
    assert.equal(a.stats.dropped, 2)
    assert.equal(a.stats.queued, 3)
    restore()
    await waitFor('the surviving messages', () => seenByB.length === 4)
    assert.deepEqual(seenByB[0], { resync: true, reason: 'peer-dropped' })
    assert.deepEqual(seenByB.slice(1).map((n) => ('keys' in n ? n.keys[0] : n)), ['k2', 'k3', 'k4'])
  })

  describe('RedisLease', () => {
    const prefix = `bb:test:lease:${RUN}:`

    after(async () => {
      const admin = new Redis(url)
      await deleteRedisKeysByPrefix(admin, prefix)
      await admin.quit()
    })

    it('grants a lease to exactly one of two instances racing for it', async () => {
      const onA = new RedisLease(viaProxy, { prefix })
      const onB = new RedisLease(direct, { prefix })
      const tokens = await Promise.all([onA.acquire('race', 5_000), onB.acquire('race', 5_000), onA.acquire('race', 5_000), onB.acquire('race', 5_000)])
      assert.equal(tokens.filter((t) => t !== undefined).length, 1)
    })

    it('frees the lease when its TTL runs out', async () => {
      const onA = new RedisLease(viaProxy, { prefix })
      const onB = new RedisLease(direct, { prefix })
      assert.ok((await onA.acquire('expiring', 100)) !== undefined)
      assert.equal(await onB.acquire('expiring', 100), undefined)
      await sleep(150)
      assert.ok((await onB.acquire('expiring', 100)) !== undefined)
    })

    it('is released only by the holder\'s token', async () => {
      const onA = new RedisLease(viaProxy, { prefix })
      const onB = new RedisLease(direct, { prefix })
      const token = await onA.acquire('held', 5_000)
      assert.ok(token !== undefined)
      assert.equal(await onB.release('held', 'forged-token-of-22-chr'), false)
      assert.equal(await onB.acquire('held', 5_000), undefined, 'still held after a forged release')
      assert.equal(await onA.release('held', token), true)
      const next = await onB.acquire('held', 5_000)
      assert.ok(next !== undefined)
      assert.equal(await onA.release('held', token), false, 'a stale token cannot release the new holder')
      assert.equal(await onB.release('held', next), true)
    })

    it('rejects with ERR_DEPENDENCY_UNAVAILABLE while Redis is unreachable, so the engine can fail open', async () => {
      const onA = new RedisLease(viaProxy, { prefix })
      const restore = cutA()
      await waitFor('A to notice the outage', () => viaProxy.client.status !== 'ready')
      await assert.rejects(onA.acquire('outage', 1_000), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
      await assert.rejects(onA.release('outage', 'x'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
      restore()
      await waitFor('A to reconnect', () => viaProxy.client.status === 'ready')
      assert.ok((await onA.acquire('outage', 1_000)) !== undefined)
    })
  })
})
