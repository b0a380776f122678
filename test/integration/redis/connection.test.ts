import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError } from '../../../src/core/index.ts'
import { RedisConnection, RedisKeyValueStore } from '../../../src/stores/index.ts'
import { redisTestScope } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

const PREFIX = `bbtest:conn:${process.pid}:`
const redis = redisTestScope(PREFIX)

const isDependencyError = (err: unknown): err is BackbeatError =>
  err instanceof BackbeatError && (err.code === 'ERR_DEPENDENCY_UNAVAILABLE' || err.code === 'ERR_DEPENDENCY_TIMEOUT')

describe('RedisConnection', () => {
  it('does no I/O until connect(), and its client is unusable before', async () => {
    const connection = new RedisConnection({ url: 'redis://127.0.0.1:1' })
    assert.throws(() => connection.client, { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
    assert.equal((await connection.healthCheck(AbortSignal.timeout(1_000)))?.status, 'fail')
  })

  it('fails connect to a dead port within connectTimeoutMs with ERR_DEPENDENCY_UNAVAILABLE naming the target', async () => {
    const connection = new RedisConnection({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1_000 })
    const started = Date.now()
    await assert.rejects(connection.connect(), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.params.target === '127.0.0.1:1' && err.params.operation === 'connect' && err.cause instanceof Error)
    assert.ok(Date.now() - started < 2_000, 'connect must not hang')
    await connection.close()
  })

  it('names the socket error (connect ECONNREFUSED 127.0.0.1:1) when connect fails, not "Connection is closed."', async () => {
    const connection = new RedisConnection({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1_000 })
    await assert.rejects(connection.connect(), (err: unknown) => {
      assert.ok(err instanceof BackbeatError)
      assert.equal(err.code, 'ERR_DEPENDENCY_UNAVAILABLE')
      assert.equal(err.params.reason, 'connect ECONNREFUSED 127.0.0.1:1')
      assert.equal((err.cause as { code?: unknown } | undefined)?.code, 'ECONNREFUSED')
      return true
    })
    await connection.close()
  })

  it('names the socket error in health checks and command errors while Redis is unreachable, then recovers', async () => {
    const proxy = await TcpProxy.start(new URL(redis.url).host)
    const connection = new RedisConnection({ url: `redis://${proxy.address}`, keyPrefix: PREFIX, reconnectBaseMs: 20, reconnectMaxMs: 50 })
    await connection.connect()
    const store = new RedisKeyValueStore(connection)
    const refused = (pattern: RegExp): Promise<void> =>
      new Promise((resolve) => {
        const onError = (err: Error): void => {
          if (!pattern.test(err.message)) return
          connection.client.off('error', onError)
          resolve()
        }
        connection.client.on('error', onError)
      })
    try {
      await store.set('alive', '1')
      // Reset the connection and refuse reconnects: every attempt ends in ECONNRESET.
      const reset = refused(/^connect ECONNRESET/)
      proxy.pause()
      proxy.dropConnections()
      await reset
      const health = await connection.healthCheck(AbortSignal.timeout(2_000))
      assert.equal(health?.status, 'fail')
      assert.equal(health.message, `redis: connect ECONNRESET ${proxy.address}`)
      await assert.rejects(store.get('alive'), (err: unknown) => {
        assert.ok(err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
        assert.equal(err.params.reason, `connect ECONNRESET ${proxy.address}`)
        assert.ok(err.cause instanceof Error, 'the command error is kept as cause')
        return true
      })

      const ready = new Promise<void>((resolve) => connection.client.once('ready', () => resolve()))
      proxy.resume()
      await ready
      assert.deepEqual(await connection.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
      assert.equal(await store.get('alive'), '1')

      // Now the port is dead: reconnects are refused.
      const address = proxy.address
      const dead = refused(/^connect ECONNREFUSED/)
      await proxy.stop()
      await dead
      const down = await connection.healthCheck(AbortSignal.timeout(2_000))
      assert.equal(down?.status, 'fail')
      assert.equal(down.message, `redis: connect ECONNREFUSED ${address}`)
      assert.doesNotMatch(down.message, /Stream isn't writeable|enableOfflineQueue/)
    } finally {
      await connection.close()
      await proxy.stop()
    }
  })

  it('fails connect to an unroutable host within connectTimeoutMs', async () => {
    // 10.255.255.1 is unroutable: depending on the network SYNs vanish (timeout) or are refused.
    const connection = new RedisConnection({ url: 'redis://10.255.255.1:6379', connectTimeoutMs: 300 })
    const started = Date.now()
    await assert.rejects(connection.connect(), (err: unknown) => isDependencyError(err))
    assert.ok(Date.now() - started < 1_500, 'connect must give up after connectTimeoutMs')
  })

  it('health check passes on a live Redis', async () => {
    const connection = new RedisConnection({ url: redis.url })
    await connection.connect()
    try {
      assert.deepEqual(await connection.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
    } finally {
      await connection.close()
    }
  })

  it('fails commands fast with a typed error after CLIENT KILL, then recovers by itself', async () => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: PREFIX, name: 'kill-me', reconnectBaseMs: 200 })
    await connection.connect()
    const store = new RedisKeyValueStore(connection)
    try {
      await store.set('before', '1')
      const closed = new Promise<void>((resolve) => connection.client.once('close', () => resolve()))
      // Kill only our own connection by id: the Redis is shared with other test runs.
      const id = await connection.client.client('ID')
      assert.equal(await redis.admin.client('KILL', 'ID', String(id)), 1)
      await closed
      const started = Date.now()
      await assert.rejects(store.get('before'), (err: unknown) => isDependencyError(err) && err.params.name === 'kill-me')
      assert.ok(Date.now() - started < 500, 'a command on a dead connection must fail at once, not queue')
      const health = await connection.healthCheck(AbortSignal.timeout(2_000))
      assert.equal(health?.status, 'fail')

      await new Promise<void>((resolve) => connection.client.once('ready', () => resolve()))
      assert.equal(await store.get('before'), '1')
      assert.deepEqual(await connection.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
    } finally {
      await connection.close()
    }
  })

  it('times out a command that Redis does not answer within commandTimeoutMs', async () => {
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 100 })
    await connection.connect()
    const store = new RedisKeyValueStore(connection)
    try {
      // Redis answers one connection in order, so a GET behind a 1 s BLPOP waits a second;
      // this slows only our own connection, never the shared server (unlike CLIENT PAUSE).
      const blocked = connection.client.blpop(`${PREFIX}never`, 1).catch((err: unknown) => err)
      await assert.rejects(store.get('x'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_TIMEOUT' && err.params.operation === 'get')
      await blocked
    } finally {
      await connection.close()
    }
  })

  it('close is idempotent and health fails afterwards', async () => {
    const connection = new RedisConnection({ url: redis.url })
    await connection.connect()
    await connection.close()
    await connection.close()
    const result = await connection.healthCheck(AbortSignal.timeout(1_000))
    assert.equal(result?.status, 'fail')
    assert.match(result.message ?? '', /closed/)
  })

  it('health check rejects with the abort reason when the signal fires first', async () => {
    const connection = new RedisConnection({ url: redis.url })
    await connection.connect()
    try {
      const blocked = connection.client.blpop(`${PREFIX}never`, 1).catch((err: unknown) => err)
      const started = Date.now()
      await assert.rejects(connection.healthCheck(AbortSignal.timeout(50)), { name: 'TimeoutError' })
      assert.ok(Date.now() - started < 500)
      await blocked
    } finally {
      await connection.close()
    }
  })

  it('throws ConfigError for invalid options without touching the network', () => {
    assert.throws(
      () => new RedisConnection({ url: 'http://x', connectTimeoutMs: -1 }),
      (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_CONFIG_INVALID' && /redis\.url/.test(err.message) && /redis\.connectTimeoutMs/.test(err.message),
    )
  })
})
