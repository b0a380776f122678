import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { BackbeatError } from '../../../src/core/index.ts'
import { PostgresDatabase } from '../../../src/stores/index.ts'
import { requireDatabaseUrl } from '../services.ts'
import { adminQuery, databaseInFreshSchema } from './fixture.ts'

let url = ''

before(async () => {
  url = await requireDatabaseUrl()
})

describe('PostgresDatabase', () => {
  it('fails connect to a dead port within connectTimeoutMs with ERR_DEPENDENCY_UNAVAILABLE', async () => {
    const db = new PostgresDatabase({ url: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 1_000 })
    const started = Date.now()
    await assert.rejects(db.connect(), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.params.target === '127.0.0.1:1' && err.params.operation === 'connect')
    assert.ok(Date.now() - started < 2_000, 'connect must not hang')
    const health = await db.healthCheck(AbortSignal.timeout(1_000))
    assert.equal(health?.status, 'fail')
    await db.close()
  })

  it('reports a missing database as ERR_DEPENDENCY_UNAVAILABLE with its SQLSTATE', async () => {
    const db = new PostgresDatabase({ url: url.replace(/\/[^/]*$/, '/bb_does_not_exist') })
    await assert.rejects(db.connect(), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.params.sqlState === '3D000')
  })

  it('health check passes on a live Postgres', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url)
    try {
      assert.deepEqual(await db.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
    } finally {
      await cleanup()
    }
  })

  it('turns pg_terminate_backend mid-query into ERR_DEPENDENCY_UNAVAILABLE and keeps serving afterwards', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url, { poolSize: 1, name: 'terminate-me' })
    try {
      const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const pid = rows[0]!.pid
      // Assert right away so the rejection is handled the moment it happens.
      const sleeping = assert.rejects(db.query('SELECT pg_sleep(5)'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE' && err.params.name === 'terminate-me')
      // Wait until the backend is really inside pg_sleep before killing it.
      for (let i = 0; i < 50; i += 1) {
        const active = await adminQuery(url, "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])
        if (active.rowCount === 1) break
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      await adminQuery(url, 'SELECT pg_terminate_backend($1)', [pid])
      await sleeping

      const after = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      assert.notEqual(after.rows[0]!.pid, pid, 'the pool must dial a new backend')
      assert.deepEqual(await db.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
    } finally {
      await cleanup()
    }
  })

  it('drops a connection killed inside a transaction instead of returning it to the pool', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url, { poolSize: 1 })
    try {
      await assert.rejects(
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
          await adminQuery(url, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid])
          await tx.query('SELECT 1')
        }),
        { code: 'ERR_DEPENDENCY_UNAVAILABLE' },
      )
      assert.equal((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1)
    } finally {
      await cleanup()
    }
  })

  it('cancels a statement after statementTimeoutMs with ERR_DEPENDENCY_TIMEOUT', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url, { statementTimeoutMs: 200 })
    try {
      const started = Date.now()
      await assert.rejects(db.query('SELECT pg_sleep(3)'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_TIMEOUT' && err.params.sqlState === '57014')
      assert.ok(Date.now() - started < 1_500)
    } finally {
      await cleanup()
    }
  })

  it('answers ERR_STORE_VALUE_REJECTED (400) for a value Postgres refuses (SQLSTATE class 22), never echoing it, and keeps the connection', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url, { poolSize: 1 })
    const secret = 'value-that-must-not-be-echoed'
    const refused = (sqlState: string) => (err: unknown): boolean => {
      assert.ok(err instanceof BackbeatError, String(err))
      assert.equal(err.code, 'ERR_STORE_VALUE_REJECTED')
      assert.equal(err.status, 400)
      assert.equal(err.params.sqlState, sqlState)
      assert.equal((err.cause as { code?: unknown } | undefined)?.code, sqlState, 'the pg error is kept as cause')
      assert.ok(String(err.params.reason).length > 0, 'a fixed reason is given')
      assert.ok(!JSON.stringify([err.message, err.params, err.extensions]).includes(secret), 'the refused value is never echoed')
      return true
    }
    try {
      await db.exec('CREATE TABLE short_names (name varchar(4))')
      await assert.rejects(db.query('SELECT $1::text AS t', [`${secret}\u0000`]), refused('22021'))
      await assert.rejects(db.query('SELECT $1::int AS n', [3_000_000_000]), refused('22003'))
      await assert.rejects(db.query('SELECT $1::int[] AS n', [[1e300]]), refused('22P02'))
      await assert.rejects(db.query('SELECT $1::int AS n', [secret]), refused('22P02'))
      await assert.rejects(db.query('INSERT INTO short_names VALUES ($1)', [secret]), refused('22001'))
      const pid = async (): Promise<number | undefined> => db.transaction(async (tx) => (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid)
      const before = await pid()
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO short_names VALUES ('ok')")
          await tx.query('SELECT $1::smallint AS n', [70_000])
        }),
        refused('22003'),
      )
      assert.deepEqual((await db.query('SELECT count(*)::int AS n FROM short_names')).rows, [{ n: 0 }], 'the transaction was rolled back')
      // A refused value is not an outage: the transaction's connection goes back to the pool.
      assert.equal(await pid(), before)
      await assert.rejects(db.query('SELEC 1'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && err.params.sqlState === '42601')
    } finally {
      await cleanup()
    }
  })

  it('close is idempotent and health fails afterwards', async () => {
    const { db, cleanup } = await databaseInFreshSchema(url)
    await cleanup()
    await db.close()
    const health = await db.healthCheck(AbortSignal.timeout(1_000))
    assert.equal(health?.status, 'fail')
    assert.match(health.message ?? '', /closed/)
  })
})
