import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { RedisRateLimitStore, type RateLimitRule } from '../../../src/ratelimit/index.ts'
import { RedisConnection } from '../../../src/stores/index.ts'
import { describeRateLimitStore } from '../../../src/testing/index.ts'
import { redisTestScope } from '../services.ts'

const PREFIX = `bbtest:rl:${String(process.pid)}:`
const redis = redisTestScope(PREFIX)

describeRateLimitStore('RedisRateLimitStore', async () => {
  const connection = new RedisConnection({ url: redis.url })
  await connection.connect()
  return {
    store: new RedisRateLimitStore(connection, { prefix: PREFIX, clock: 'caller' }),
    cleanup: async () => {
      await connection.close()
    },
  }
})

describe('RedisRateLimitStore', () => {
  const connections: RedisConnection[] = []
  const connect = async (): Promise<RedisConnection> => {
    const connection = new RedisConnection({ url: redis.url })
    connections.push(connection)
    await connection.connect()
    return connection
  }
  after(async () => {
    await Promise.all(connections.map((c) => c.close()))
  })
  const rule: RateLimitRule = { name: 'burst', algorithm: 'gcra', limit: 10, windowMs: 60_000, burst: 10 }

  it('keeps a policy and its penalty state in one hash slot (Redis Cluster-safe)', async () => {
    const connection = await connect()
    const store = new RedisRateLimitStore(connection, { prefix: PREFIX })
    const [state, penalty] = store.keysOf('ip:192.0.2.1', rule)
    const slot = async (key: string): Promise<number> => Number(await redis.admin.call('CLUSTER', 'KEYSLOT', key).catch(() => -1))
    assert.match(state, /\{ip:192\.0\.2\.1\}/)
    const [a, b] = await Promise.all([slot(state), slot(penalty)])
    // CLUSTER KEYSLOT needs cluster mode on some builds; compare the hash tags otherwise.
    if (a !== -1) assert.equal(a, b)
    else assert.equal(/\{[^}]*\}/.exec(state)?.[0], /\{[^}]*\}/.exec(penalty)?.[0])
  })

  it('uses Redis time by default, sets expiries on every key it writes, and loads the script once', async () => {
    const connection = await connect()
    const store = new RedisRateLimitStore(connection, { prefix: PREFIX })
    await redis.admin.script('FLUSH')
    const key = `client-${String(Date.now())}`
    // A caller clock far in the past must not matter with the Redis clock.
    const first = await store.consume(key, rule, 1, 0)
    assert.deepEqual([first.allowed, first.remaining], [true, 9])
    const [stateKey] = store.keysOf(key, rule)
    const ttl = await redis.admin.pttl(stateKey)
    assert.ok(ttl > 0 && ttl <= 6_100, `pttl ${String(ttl)}`)
    const second = await store.consume(key, rule, 1, 0)
    assert.equal(second.remaining, 8)
  })

  it('fails with ERR_DEPENDENCY_UNAVAILABLE when the connection is closed', async () => {
    const connection = await connect()
    const store = new RedisRateLimitStore(connection, { prefix: PREFIX })
    await connection.close()
    await assert.rejects(Promise.resolve(store.consume('k', rule, 1, 0)), { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
  })
})
