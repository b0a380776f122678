import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { BackbeatError } from '../../../src/core/index.ts'
import { MemcachedConnection, MemcachedKeyValueStore } from '../../../src/stores/index.ts'
import { requireMemcachedServers } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

let servers = ''

before(async () => {
  servers = await requireMemcachedServers()
})

describe('MemcachedConnection', () => {
  it('fails connect to a dead port within its timeouts with ERR_DEPENDENCY_UNAVAILABLE', async () => {
    const connection = new MemcachedConnection({ servers: '127.0.0.1:1', connectTimeoutMs: 500, retries: 2, retryDelayMs: 50 })
    const started = Date.now()
    await assert.rejects(connection.connect(), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.params.target === '127.0.0.1:1' && /127\.0\.0\.1:1/.test(String(err.params.reason)))
    assert.ok(Date.now() - started < 2_000, 'connect must not hang')
    assert.equal((await connection.healthCheck(AbortSignal.timeout(1_000)))?.status, 'fail')
  })

  it('health check passes on a live memcached and fails once it is unreachable', async () => {
    const proxy = await TcpProxy.start(servers.split(',')[0]!.trim())
    const connection = new MemcachedConnection({ servers: proxy.address, commandTimeoutMs: 500, retries: 1 })
    try {
      await connection.connect()
      assert.deepEqual(await connection.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
      await proxy.stop()
      const health = await connection.healthCheck(AbortSignal.timeout(3_000))
      assert.equal(health?.status, 'fail')
      assert.match(health.message ?? '', /^memcached: /)
    } finally {
      await connection.close()
      await proxy.stop()
    }
  })

  it('fails fast with a dependency error when its connection is reset, and serves again once memcached is back', async () => {
    const proxy = await TcpProxy.start(servers.split(',')[0]!.trim())
    const connection = new MemcachedConnection({ servers: proxy.address, retries: 1, name: 'drop-me', connectTimeoutMs: 300, commandTimeoutMs: 300 })
    const store = new MemcachedKeyValueStore(connection, { prefix: `bbtest:${process.pid}:drop:` })
    try {
      await connection.connect()
      await store.set('k', 'v', 60_000)
      proxy.pause()
      proxy.dropConnections()
      // memjs may never settle a request on a reset socket; the connection's deadline must.
      const started = Date.now()
      await assert.rejects(store.get('k'), (err: unknown) => err instanceof BackbeatError && err.category === 'dependency' && err.params.name === 'drop-me')
      assert.ok(Date.now() - started < 1_500)
      proxy.resume()
      assert.equal(await store.get('k'), 'v')
      assert.equal(await store.delete('k'), true)
    } finally {
      await connection.close()
      await proxy.stop()
    }
  })

  it('rejects a negative increment: memcached counters are unsigned', async () => {
    const connection = new MemcachedConnection({ servers })
    await connection.connect()
    try {
      await assert.rejects(new MemcachedKeyValueStore(connection).increment('x', -1), RangeError)
    } finally {
      await connection.close()
    }
  })

  it('close is idempotent and the client is unusable afterwards', async () => {
    const connection = new MemcachedConnection({ servers })
    await connection.connect()
    await connection.close()
    await connection.close()
    assert.throws(() => connection.client, { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
  })

  it('throws ConfigError for a malformed servers string', () => {
    assert.throws(() => new MemcachedConnection({ servers: 'host:port:extra, ' }), { code: 'ERR_CONFIG_INVALID' })
  })
})
