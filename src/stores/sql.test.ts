import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { BackbeatError } from '../core/index.ts'
import { describeSqlDatabase } from '../testing/index.ts'
import { createSqlDatabase, migrate, PgliteDatabase, PostgresDatabase } from './index.ts'

describeSqlDatabase('PgliteDatabase (in memory)', async () => {
  const db = new PgliteDatabase()
  await db.connect()
  return { db, cleanup: () => db.close() }
})

describe('PgliteDatabase', () => {
  it('persists data and migration history in dataDir across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'bb-pglite-'))
    try {
      const migrations = [{ id: '0001', sql: "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept');" }]
      const first = new PgliteDatabase({ dataDir })
      await first.connect()
      assert.deepEqual(await migrate(first, migrations), ['0001'])
      await first.close()

      const second = new PgliteDatabase({ dataDir })
      await second.connect()
      assert.deepEqual(await migrate(second, migrations), [])
      assert.deepEqual((await second.query('SELECT body FROM notes')).rows, [{ body: 'kept' }])
      await second.close()
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  it('rejects queries before connect() with ERR_DEPENDENCY_UNAVAILABLE', async () => {
    const db = new PgliteDatabase()
    await assert.rejects(db.query('SELECT 1'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && /connect\(\) first/.test(String(err.params.reason)))
    assert.equal((await db.healthCheck(AbortSignal.timeout(1_000)))?.status, 'fail')
  })

  it('close is idempotent', async () => {
    const db = new PgliteDatabase()
    await db.connect()
    await db.close()
    await db.close()
    await assert.rejects(db.connect(), { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
  })
})

describe('createSqlDatabase', () => {
  it('chooses Postgres for a URL and PGlite otherwise, without doing any I/O', () => {
    assert.equal(createSqlDatabase({ url: 'postgres://nobody@127.0.0.1:1/none' }).kind, 'postgres')
    assert.equal(createSqlDatabase({}).kind, 'pglite')
    assert.equal(createSqlDatabase({ url: '', dataDir: '/tmp/x' }).kind, 'pglite')
  })

  it('throws ConfigError for a URL that is not postgres://', () => {
    assert.throws(() => new PostgresDatabase({ url: 'mysql://localhost/db' }), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('migrate', () => {
  it('rejects a bookkeeping table name that is not a plain identifier', async () => {
    const db = new PgliteDatabase()
    await assert.rejects(migrate(db, [], { table: 'x; DROP TABLE y' }), { code: 'ERR_CONFIG_INVALID' })
  })
})
