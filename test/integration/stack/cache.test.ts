import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { parseConfig } from 'backbeat'
import { createMusicApp, type MusicApp } from '../../../app/create-music-app.ts'
import { deleteRedisKeysByPrefix, requireMemcachedServers, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'
import { TEST_AUTH } from '../../helpers/quiet-app.ts'

/**
 * The reference app with the cache on real services, as `REDIS_URL` and `MEMCACHED_SERVERS`
 * configure it: Redis is L2 and Memcached L3 of both `app.cache` and the response cache;
 * Redis goes away (through a relay) and the catalogue keeps answering; a corrupted entry in
 * Redis is a miss, never an error.
 */
describe('stack: the cache on real Redis and Memcached', () => {
  const host = `cache-${randomBytes(4).toString('hex')}.test`
  let redisProxy: TcpProxy
  let admin: Redis
  let music: MusicApp
  let trackPath = ''

  before(async () => {
    const redisUrl = new URL(await requireRedisUrl())
    const memcached = await requireMemcachedServers()
    admin = new Redis(redisUrl.toString())
    redisProxy = await TcpProxy.start(`${redisUrl.hostname}:${redisUrl.port === '' ? '6379' : redisUrl.port}`)
    redisUrl.host = redisProxy.address
    music = await createMusicApp(
      parseConfig({
        preset: 'production',
        auth: TEST_AUTH,
        logging: { enabled: false },
        shutdown: { enabled: false },
        health: { cacheMs: 0, checkTimeoutMs: 1000 },
        rateLimit: { store: 'memory' },
        stores: { dataDir: ':memory:', redisUrl: redisUrl.toString(), memcachedServers: memcached.split(',') },
        cache: { tierTimeoutMs: 200 },
      }),
    )
    const list = await music.app.inject({ url: '/v1/tracks?limit=1', headers: { host } })
    trackPath = `/v1/tracks/${(JSON.parse(list.body) as { items: { id: string }[] }).items[0]?.id ?? ''}`
  })

  after(async () => {
    await music.app.close()
    await redisProxy.stop()
    await deleteRedisKeysByPrefix(admin, `cache:http:u:${host}`)
    await admin.quit()
  })

  it('uses Redis as L2 and Memcached as L3, for app.cache and the response cache', async () => {
    assert.deepEqual(Object.keys(music.app.cache?.breakerStates ?? {}), ['l2', 'l3'])
    const first = await music.app.inject({ url: trackPath, headers: { host } })
    assert.equal(first.headers['x-cache'], 'MISS')
    assert.equal((await music.app.inject({ url: trackPath, headers: { host } })).headers['x-cache'], 'HIT')
    assert.equal(await admin.exists(`cache:http:u:${host}${trackPath}`), 1, 'the stored response is in Redis')
    const value = await music.app.cache?.getOrSet('answer', () => 42)
    assert.equal(value, 42)
    assert.equal(await admin.exists('cache:app:answer'), 1)
    await music.app.cache?.delete('answer')
  })

  it('keeps answering from L1 and the loader while Redis is gone, and the health check says so', async () => {
    const url = '/v1/albums?limit=2'
    await music.app.inject({ url, headers: { host } })
    redisProxy.pause()
    redisProxy.dropConnections()
    try {
      for (let i = 0; i < 6; i++) {
        const res = await music.app.inject({ url: `/v1/artists?limit=${i + 1}`, headers: { host } })
        assert.equal(res.statusCode, 200, res.body)
      }
      assert.equal((await music.app.inject({ url, headers: { host } })).headers['x-cache'], 'HIT')
      const breakers = music.app.responseCache.options.cache.breakerStates
      assert.equal(breakers['l2'], 'open')
      const health = await music.app.inject('/health')
      const checks = health.json<{ checks: Record<string, { status: string; output?: string }[]> }>().checks
      const cacheCheck = checks['cache:responseTime']?.[0]
      assert.ok(cacheCheck, 'a cache health check')
      assert.equal(cacheCheck.status, 'warn')
      assert.match(cacheCheck.output ?? '', /http:l2/)
    } finally {
      redisProxy.resume()
    }
    // Half-open after breaker.halfOpenAfterMs: the first call that gets through closes it again.
    const deadline = Date.now() + 15_000
    for (let offset = 0; music.app.responseCache.options.cache.breakerStates['l2'] !== 'closed'; offset++) {
      if (Date.now() > deadline) assert.fail('the l2 breaker did not close after Redis came back')
      const res = await music.app.inject({ url: `/v1/tracks?limit=2&offset=${offset}`, headers: { host } })
      assert.equal(res.statusCode, 200, res.body)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })

  it('treats a corrupted entry in Redis as a miss', async () => {
    const url = '/v1/artists?limit=9'
    await music.app.inject({ url, headers: { host } })
    const key = `cache:http:u:${host}${url}`
    assert.equal(await admin.exists(key), 1)
    // What another process would read first: garbage where the entry lives, and nothing in L1.
    await music.app.responseCache.options.cache.clear()
    await admin.set(key, Buffer.from('not a cache entry at all'))
    const res = await music.app.inject({ url, headers: { host } })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['x-cache'], 'MISS')
  })
})
