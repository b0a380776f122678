import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { RedisConnection } from 'backbeat/stores'
import { KeyValueTagStore, RedisCacheStore, RedisInvalidationBus, responseCachePlugin, TieredCache } from 'backbeat/cache'
import { RedisKeyValueStore } from 'backbeat/stores'
import { redisTestScope } from '../services.ts'

const RUN = randomBytes(4).toString('hex')
const PREFIX = `bb:test:http:${RUN}:`
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Two instances of an app behind the response cache, sharing one Redis (L2, tag store,
 * invalidation bus), as two replicas behind a load balancer: a response stored by one is a
 * hit on the other, and a write through either one is seen by both.
 */
describe('response cache across instances on real Redis', () => {
  const redis = redisTestScope(PREFIX)
  const connections: RedisConnection[] = []
  const buses: RedisInvalidationBus[] = []
  const apps: FastifyInstance[] = []
  const calls = { a: 0, b: 0 }
  let a: FastifyInstance
  let b: FastifyInstance

  async function instance(name: 'a' | 'b'): Promise<FastifyInstance> {
    const connection = new RedisConnection({ url: redis.url, name: `http-${name}` })
    await connection.connect()
    connections.push(connection)
    const bus = new RedisInvalidationBus(connection, { channel: `${PREFIX}bus`, origin: name })
    await bus.connect()
    buses.push(bus)
    const cache = new TieredCache({
      namespace: 'http',
      jitter: 0,
      tiers: [new RedisCacheStore(connection, { prefix: `${PREFIX}entries:` })],
      tagStore: new KeyValueTagStore(new RedisKeyValueStore(connection), { prefix: `${PREFIX}tags:` }),
      tagCacheMs: 0,
      bus,
    })
    const app = Fastify()
    await app.register(responseCachePlugin, { cache, purge: { path: '/purge' } })
    app.get('/tracks/:id', { config: { cache: { cacheControl: 'public, max-age=300', tags: (r) => [`track:${(r.params as { id: string }).id}`] } } }, async (request) => {
      calls[name]++
      return { id: (request.params as { id: string }).id, servedBy: name, version: calls[name] }
    })
    app.put('/tracks/:id', async () => ({ ok: true }))
    await app.ready()
    apps.push(app)
    return app
  }

  before(async () => {
    a = await instance('a')
    b = await instance('b')
  })
  after(async () => {
    await Promise.all(apps.map((app) => app.close()))
    await Promise.all(buses.map((bus) => bus.close()))
    await Promise.all(connections.map((connection) => connection.close()))
  })

  /** Polls until `app` answers `url` with something other than `stale` (its old copy dropped). */
  async function waitForChange(app: FastifyInstance, url: string, stale: string): Promise<string> {
    const deadline = Date.now() + 5_000
    for (;;) {
      const res = await app.inject(url)
      if (res.body !== stale) return res.body
      if (Date.now() > deadline) assert.fail(`${url} still served the old response`)
      await sleep(20)
    }
  }

  it('a response stored by one instance is a hit on the other', async () => {
    const first = await a.inject('/tracks/t1')
    assert.equal(first.headers['x-cache'], 'MISS')
    const onB = await b.inject('/tracks/t1')
    assert.equal(onB.headers['x-cache'], 'HIT')
    assert.equal(onB.body, first.body)
    assert.equal(calls.b, 0)
    const keys = await redis.admin.keys(`${PREFIX}entries:*`)
    assert.ok(keys.length > 0, 'the response lives in Redis')
  })

  it('a write through one instance invalidates the URI on both', async () => {
    const old = (await a.inject('/tracks/t2')).body
    assert.equal((await b.inject('/tracks/t2')).headers['x-cache'], 'HIT')
    assert.equal((await a.inject('/tracks/t2')).headers['x-cache'], 'HIT')
    const put = await b.inject({ method: 'PUT', url: '/tracks/t2', payload: {} })
    assert.equal(put.statusCode, 200)
    // B deleted the key everywhere and reloads it; A's L1 copy goes when the bus message
    // arrives, and A then reads B's new response from Redis.
    const fresh = await b.inject('/tracks/t2')
    assert.equal(fresh.headers['x-cache'], 'MISS')
    assert.notEqual(fresh.body, old)
    assert.equal(await waitForChange(a, '/tracks/t2', old), fresh.body)
  })

  it('a purge by tag on one instance voids the response on both', async () => {
    const old = (await a.inject('/tracks/t3')).body
    assert.equal((await b.inject('/tracks/t3')).headers['x-cache'], 'HIT')
    const purge = await a.inject({ method: 'POST', url: '/purge', payload: { tags: ['track:t3'] } })
    assert.equal(purge.statusCode, 200)
    const fresh = await waitForChange(b, '/tracks/t3', old)
    assert.equal(await waitForChange(a, '/tracks/t3', old), fresh, 'A reads what B reloaded')
  })
})
