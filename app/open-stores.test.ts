import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openStores, parseConfig, StoreConnectionError } from 'backbeat'
import { HealthRegistry } from 'backbeat/health'

const registry = (): HealthRegistry => new HealthRegistry({ checkTimeoutMs: 2000, cacheMs: 0 })

describe('openStores', () => {
  it('falls back to in-memory PGlite and a memory key-value store when nothing is configured', async () => {
    const health = registry()
    const lines: string[] = []
    const stores = await openStores(parseConfig({ stores: { dataDir: ':memory:' } }), { health, logger: { info: (_fields, message) => lines.push(message) } })
    try {
      assert.equal(stores.sql.kind, 'pglite')
      assert.equal(stores.redis, undefined)
      assert.equal(stores.memcached, undefined)
      assert.equal(stores.nats, undefined)
      assert.deepEqual((await stores.sql.query<{ ok: number }>('SELECT 1 AS ok')).rows, [{ ok: 1 }])
      await stores.kv.set('k', 'v')
      assert.equal(await stores.kv.get('k'), 'v')
      assert.deepEqual(health.names, ['pglite'])
      assert.equal((await health.check()).checks.pglite?.status, 'pass')
      assert.deepEqual(lines, ['pglite connected'])
    } finally {
      await stores.close()
    }
  })

  it('closes every store once, however often close is called', async () => {
    const stores = await openStores(parseConfig({ stores: { dataDir: ':memory:' } }), { health: registry() })
    await Promise.all([stores.close(), stores.close()])
    await stores.close()
    await assert.rejects(stores.sql.query('SELECT 1'), { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
  })

  it('creates a nested data directory and keeps data across restarts', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bb-open-stores-'))
    const dataDir = join(root, 'nested', 'data')
    try {
      const first = await openStores(parseConfig({ stores: { dataDir } }), { health: registry() })
      await first.sql.exec("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
      await first.close()
      const second = await openStores(parseConfig({ stores: { dataDir } }), { health: registry() })
      try {
        assert.deepEqual((await second.sql.query('SELECT body FROM notes')).rows, [{ body: 'kept' }])
      } finally {
        await second.close()
      }
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })

  it('fails start-up naming Postgres and its URL with the password masked, never falling back to PGlite', async () => {
    const health = registry()
    const config = parseConfig({ stores: { databaseUrl: 'postgres://app:s3cret@127.0.0.1:1/music' } })
    const err = await openStores(config, { health }).then(
      () => assert.fail('expected openStores to fail'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof StoreConnectionError)
    assert.equal(err.store, 'postgres')
    assert.equal(err.code, 'ERR_DEPENDENCY_UNAVAILABLE')
    assert.match(err.message, /^cannot connect to postgres at postgres:\/\/app:\*{8}@127\.0\.0\.1:1\/music \(DATABASE_URL\): /)
    assert.ok(!err.message.includes('s3cret'))
    assert.deepEqual(health.names, [])
  })

  it('fails start-up on an unreachable Redis instead of using memory, and registers no checks', async () => {
    const health = registry()
    const config = parseConfig({ stores: { dataDir: ':memory:', redisUrl: 'redis://:hunter2@127.0.0.1:1' } })
    await assert.rejects(openStores(config, { health }), (err: unknown) => {
      assert.ok(err instanceof StoreConnectionError)
      assert.equal(err.store, 'redis')
      assert.match(err.message, /^cannot connect to redis at redis:\/\/:\*{8}@127\.0\.0\.1:1 \(REDIS_URL\)/)
      assert.ok(!err.message.includes('hunter2'))
      return true
    })
    assert.deepEqual(health.names, [])
  })

  it('names the real reason an unreachable Redis fails start-up (ECONNREFUSED), not "Connection is closed."', async () => {
    const config = parseConfig({ stores: { dataDir: ':memory:', redisUrl: 'redis://127.0.0.1:1' } })
    await assert.rejects(openStores(config, { health: registry() }), {
      name: 'StoreConnectionError',
      message: 'cannot connect to redis at redis://127.0.0.1:1 (REDIS_URL): connect ECONNREFUSED 127.0.0.1:1',
    })
  })

  it('fails start-up on unreachable memcached and NATS servers', async () => {
    await assert.rejects(openStores(parseConfig({ stores: { dataDir: ':memory:', memcachedServers: ['127.0.0.1:1'] } }), { health: registry() }), {
      name: 'StoreConnectionError',
      message: /^cannot connect to memcached at 127\.0\.0\.1:1 \(MEMCACHED_SERVERS\)/,
    })
    await assert.rejects(openStores(parseConfig({ stores: { dataDir: ':memory:', natsUrl: 'nats://127.0.0.1:1' } }), { health: registry() }), {
      name: 'StoreConnectionError',
      message: /^cannot connect to nats at nats:\/\/127\.0\.0\.1:1 \(NATS_URL\)/,
    })
  })
})
