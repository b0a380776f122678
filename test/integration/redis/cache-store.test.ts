import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeCacheEntry, RedisCacheStore } from 'backbeat/cache'
import { BackbeatError } from 'backbeat'
import { RedisConnection } from 'backbeat/stores'
import { describeCacheStore } from 'backbeat/testing'
import { deleteRedisKeysByPrefix, redisTestScope } from '../services.ts'

// Everything this file writes lives under this prefix (connection keyPrefix + store prefix).
const FILE_PREFIX = `bbtest:cache:${process.pid}:`
const redis = redisTestScope(FILE_PREFIX)

describeCacheStore('RedisCacheStore', async ({ prefix }) => {
  const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX, name: 'cache-contract' })
  await connection.connect()
  return {
    store: new RedisCacheStore(connection, { prefix }),
    now: () => Date.now(),
    ttlMs: 300,
    cleanup: async () => {
      await deleteRedisKeysByPrefix(redis.admin, FILE_PREFIX + prefix)
      await connection.close()
    },
  }
})

describe('RedisCacheStore', () => {
  const entry = (value: string) => ({ value: Buffer.from(value), createdAt: Date.now(), freshUntil: Date.now() + 10_000, staleUntil: Date.now() + 20_000, tags: [] })

  it('treats a corrupt or foreign value as a miss, never an error', async () => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX })
    await connection.connect()
    try {
      const corrupt: string[] = []
      const store = new RedisCacheStore(connection, { prefix: 'corrupt:', onCorrupt: (key) => corrupt.push(key) })
      const good = encodeCacheEntry(entry('fine'))
      await redis.admin.set(`${FILE_PREFIX}corrupt:truncated`, good.subarray(0, good.byteLength - 1))
      await redis.admin.set(`${FILE_PREFIX}corrupt:json`, '{"value":"not ours"}')
      await redis.admin.set(`${FILE_PREFIX}corrupt:good`, good)
      assert.equal(await store.get('truncated'), undefined)
      assert.deepEqual((await store.getMany(['json', 'good', 'truncated'])).map((e) => e === undefined), [true, false, true])
      assert.deepEqual(corrupt, ['truncated', 'json', 'truncated'], 'each unreadable value is reported for logging')
    } finally {
      await connection.close()
    }
  })

  it('stores with a millisecond TTL that ends at staleUntil', async () => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX })
    await connection.connect()
    try {
      const store = new RedisCacheStore(connection, { prefix: 'ttl:' })
      await store.set('k', entry('v'))
      const ttl = await redis.admin.pttl(`${FILE_PREFIX}ttl:k`)
      assert.ok(ttl > 19_000 && ttl <= 20_000, `pttl ${String(ttl)}`)
    } finally {
      await connection.close()
    }
  })

  it('deletePrefix walks more keys than one SCAN step and treats glob characters literally', async () => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX })
    await connection.connect()
    try {
      const store = new RedisCacheStore(connection, { prefix: 'scan:', scanCount: 10 })
      await Promise.all(Array.from({ length: 35 }, async (_, i) => store.set(`many:${String(i)}`, entry('v'))))
      await store.set('glob*:1', entry('v'))
      await store.set('globX:1', entry('v'))
      assert.equal(await store.deletePrefix('glob*:'), 1)
      assert.notEqual(await store.get('globX:1'), undefined)
      assert.equal(await store.deletePrefix('many:'), 35)
      assert.equal(await store.get('many:0'), undefined)
    } finally {
      await connection.close()
    }
  })

  it('fails with a dependency error once the connection is closed', async () => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX })
    await connection.connect()
    const store = new RedisCacheStore(connection, { prefix: 'closed:' })
    await connection.close()
    for (const call of [() => store.get('k'), () => store.set('k', entry('v')), () => store.deletePrefix('x:')]) {
      await assert.rejects(call(), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
    }
  })

  it('rejects invalid options with a ConfigError', () => {
    const connection = new RedisConnection({ url: redis.url })
    assert.throws(() => new RedisCacheStore(connection, { scanCount: 1 }), { code: 'ERR_CONFIG_INVALID' })
  })
})
