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

describe('PgliteDatabase data exceptions (SQLSTATE class 22)', () => {
  const SECRET = 'value-that-must-not-be-echoed'
  const isRefusedValue = (sqlState: string) => (err: unknown): boolean => {
    assert.ok(err instanceof BackbeatError, String(err))
    assert.equal(err.code, 'ERR_STORE_VALUE_REJECTED')
    assert.equal(err.status, 400)
    assert.equal(err.params.sqlState, sqlState)
    assert.equal((err.cause as { code?: unknown } | undefined)?.code, sqlState, 'the engine error is kept as cause')
    assert.ok(String(err.params.reason).length > 0, 'a fixed reason is given')
    assert.ok(!JSON.stringify([err.message, err.params, err.extensions]).includes(SECRET), 'the refused value is never echoed')
    return true
  }

  it('answers ERR_STORE_VALUE_REJECTED (400), not a 500, for a NUL in text, an integer out of range, bad syntax for a type and text too long', async () => {
    const db = new PgliteDatabase()
    await db.connect()
    try {
      await db.exec('CREATE TABLE short_names (name varchar(4))')
      await assert.rejects(db.query('SELECT $1::text AS t', [`${SECRET}\u0000`]), isRefusedValue('22021'))
      await assert.rejects(db.query('SELECT $1::int AS n', [3_000_000_000]), isRefusedValue('22003'))
      await assert.rejects(db.query('SELECT $1::int[] AS n', [[1e300]]), isRefusedValue('22P02'))
      await assert.rejects(db.query('SELECT $1::int AS n', [SECRET]), isRefusedValue('22P02'))
      await assert.rejects(db.query('INSERT INTO short_names VALUES ($1)', [SECRET]), isRefusedValue('22001'))
      // Inside a transaction too, which is rolled back; the engine keeps serving.
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO short_names VALUES ('ok')")
          await tx.query('SELECT $1::smallint AS n', [70_000])
        }),
        isRefusedValue('22003'),
      )
      assert.deepEqual((await db.query('SELECT count(*)::int AS n FROM short_names')).rows, [{ n: 0 }])
    } finally {
      await db.close()
    }
  })

  it('still reports a statement the engine rejects for other reasons as ERR_STORE_COMMAND_FAILED', async () => {
    const db = new PgliteDatabase()
    await db.connect()
    try {
      await assert.rejects(db.query('SELEC 1'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && err.params.sqlState === '42601')
    } finally {
      await db.close()
    }
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
