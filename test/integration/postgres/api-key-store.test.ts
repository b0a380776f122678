import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { tmpdir } from 'node:os'
import { MemoryApiKeyStore, SqlApiKeyStore } from '../../../src/auth/api-key-store.ts'
import { ApiKeyService } from '../../../src/auth/api-keys.ts'
import { runCli } from '../../../src/cli/index.ts'
import { BackbeatError } from '../../../src/core/index.ts'
import { PostgresDatabase } from '../../../src/stores/index.ts'
import { describeApiKeyStore } from '../../../src/testing/api-key-store-contract.ts'
import { requireDatabaseUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'
import { adminQuery, databaseInFreshSchema } from './fixture.ts'

let url = ''

before(async () => {
  url = await requireDatabaseUrl()
})

// Each test gets its own `bb_test_<random>` schema, dropped afterwards.
describeApiKeyStore('SqlApiKeyStore on Postgres', async () => {
  const { db, cleanup } = await databaseInFreshSchema(url)
  try {
    const store = new SqlApiKeyStore(db)
    await store.migrate()
    return { store, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
})

describe('SqlApiKeyStore on Postgres', () => {
  it('migrates once when several instances start together, and again is a no-op', async () => {
    const { db, schema, cleanup } = await databaseInFreshSchema(url)
    const others = Array.from({ length: 3 }, () => new PostgresDatabase({ url, schema, poolSize: 2 }))
    try {
      await Promise.all(others.map((o) => o.connect()))
      const applied = await Promise.all([db, ...others].map((d) => new SqlApiKeyStore(d).migrate()))
      assert.deepEqual(applied.flat(), ['0001_api_keys'])
      assert.deepEqual(await new SqlApiKeyStore(db).migrate(), [])
      const { rows } = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'backbeat_api_keys' ORDER BY indexname", [schema])
      assert.ok(rows.some((r) => r.indexname === 'backbeat_api_keys_hash_idx'), 'lookups by hash use a unique index')
    } finally {
      await Promise.all(others.map((o) => o.close()))
      await cleanup()
    }
  })

  it('serves create, verify, rotate and revoke across two service instances sharing the table', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url)
    try {
      const store = new SqlApiKeyStore(db)
      await store.migrate()
      const pepper = 'integration-pepper-of-at-least-32-chars'
      const a = new ApiKeyService({ store, pepper, cacheTtlMs: 0 })
      const b = new ApiKeyService({ store, pepper, cacheTtlMs: 0 })
      const { key, record } = await a.create({ owner: 'user-1', name: 'CI', scopes: ['playlist:write'], rateLimitPolicy: 'gold' })
      assert.deepEqual(await b.verify(key), record)
      const rotated = await b.rotate(record.id, { overlapMs: 60_000 })
      assert.equal((await a.verify(rotated.key)).rotatedFrom, record.id)
      assert.equal((await a.verify(key)).id, record.id, 'the old key works during the overlap')
      await a.revoke(rotated.record.id)
      await assert.rejects(b.verify(rotated.key), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_AUTH_API_KEY_INVALID')
      await a.flush()
      assert.ok((await b.get(record.id))?.lastUsedAt !== undefined)
    } finally {
      await cleanup()
    }
  })

  it('answers 503 while Postgres is unreachable (never accepting the key) and recovers without a restart', async () => {
    const schema = `bb_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`
    await adminQuery(url, `CREATE SCHEMA ${schema}`)
    const target = new URL(url)
    const proxy = await TcpProxy.start(`${target.hostname}:${target.port === '' ? '5432' : target.port}`)
    const proxied = new URL(url)
    proxied.host = proxy.address
    const db = new PostgresDatabase({ url: proxied.toString(), schema, poolSize: 2, connectTimeoutMs: 1_000 })
    try {
      await db.connect()
      const store = new SqlApiKeyStore(db)
      await store.migrate()
      const warnings: unknown[] = []
      const service = new ApiKeyService({ store, cacheTtlMs: 0, logger: { warn: (fields) => warnings.push(fields) } })
      const { key } = await service.create({ owner: 'u', name: 'n' })
      await service.flush()

      proxy.pause()
      proxy.dropConnections()
      await assert.rejects(service.verify(key), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.status === 503)

      proxy.resume()
      assert.equal((await service.verify(key)).name, 'n')
      await service.flush()
    } finally {
      await db.close()
      await proxy.stop()
      await adminQuery(url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('keeps the memory and Postgres stores interchangeable behind the service', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url)
    try {
      const sql = new SqlApiKeyStore(db)
      await sql.migrate()
      for (const store of [sql, new MemoryApiKeyStore()]) {
        const service = new ApiKeyService({ store })
        const { key, record } = await service.create({ owner: 'o', name: 'same', expiresAt: Date.now() + 60_000 })
        assert.deepEqual(await service.verify(key), record)
      }
    } finally {
      await cleanup()
    }
  })

  it('lets `backbeat apikey` issue and revoke keys that a server on the same DATABASE_URL accepts and then refuses', async () => {
    const { db, schema, cleanup } = await databaseInFreshSchema(url)
    // The CLI reaches the test schema through libpq's `options` parameter, as a deployment would.
    const cliUrl = new URL(url)
    cliUrl.searchParams.set('options', `-c search_path=${schema}`)
    const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = ''
      let err = ''
      const code = await runCli(['apikey', ...args], { env: { DATABASE_URL: cliUrl.toString() }, cwd: tmpdir(), stdout: (t) => (out += t), stderr: (t) => (err += t) })
      return { code, out, err }
    }
    try {
      const created = await cli('create', '--owner', 'user-1', '--name', 'CI', '--scope', 'playlist:write')
      assert.equal(created.code, 0, created.err)
      const { key, record } = JSON.parse(created.out) as { key: string; record: { id: string } }
      const server = new ApiKeyService({ store: new SqlApiKeyStore(db), cacheTtlMs: 0 })
      assert.deepEqual((await server.verify(key)).scopes, ['playlist:write'])
      assert.equal((await cli('revoke', record.id)).code, 0)
      await assert.rejects(server.verify(key), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_AUTH_API_KEY_INVALID')
      await server.flush()
    } finally {
      await cleanup()
    }
  })
})
