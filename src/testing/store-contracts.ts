/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this file is a test helper outside the *.test.ts override */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { delay } from '../core/index.ts'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { migrate, type KeyValueStore, type SqlDatabase } from '../stores/index.ts'

/** What a {@link describeKeyValueStore} factory returns. */
export interface KeyValueStoreFixture {
  store: KeyValueStore
  /** Removes everything the fixture wrote (by prefix), then closes what it opened. */
  cleanup: () => Promise<void>
  /** TTL used by the expiry tests; raise it for backends with coarse expiry (memcached: 1000). */
  ttlMs?: number
  /** Extra time after `ttlMs` before a key must be gone (memcached rounds up to the next second). */
  expiryGraceMs?: number
  /** Moves time forward; defaults to really waiting. Memory stores pass their fake clock here. */
  advanceTime?: (ms: number) => Promise<void> | void
}

/** Given to each factory call: the store must put every key under `prefix`. */
export interface KeyValueStoreContext {
  readonly prefix: string
}

/**
 * The contract every {@link KeyValueStore} must pass: get/set/delete, TTL expiry, atomic
 * increments under concurrency, unicode and large values, prefix isolation. `make` is called
 * once per test (twice for the isolation test) with a fresh prefix.
 *
 * @example
 * describeKeyValueStore('MemoryKeyValueStore', async ({ prefix }) => {
 *   let now = 0
 *   return { store: new MemoryKeyValueStore({ prefix, now: () => now }), cleanup: async () => {}, advanceTime: (ms) => { now += ms } }
 * })
 */
export function describeKeyValueStore(name: string, make: (context: KeyValueStoreContext) => Promise<KeyValueStoreFixture>): void {
  const withStore = (fn: (fixture: KeyValueStoreFixture) => Promise<void>) => async () => {
    const fixture = await make({ prefix: freshPrefix() })
    try {
      await fn(fixture)
    } finally {
      await fixture.cleanup()
    }
  }
  const advance = async (fixture: KeyValueStoreFixture, ms: number): Promise<void> => {
    if (fixture.advanceTime === undefined) await delay(ms)
    else await fixture.advanceTime(ms)
  }
  const expire = (fixture: KeyValueStoreFixture): Promise<void> => advance(fixture, ttlOf(fixture) + (fixture.expiryGraceMs ?? 0))
  const ttlOf = (fixture: KeyValueStoreFixture): number => fixture.ttlMs ?? 200

  describe(`${name} (KeyValueStore contract)`, () => {
    it('returns undefined for a key that was never set', withStore(async ({ store }) => {
      assert.equal(await store.get('missing'), undefined)
    }))

    it('returns what was set, and the latest value after an overwrite', withStore(async ({ store }) => {
      await store.set('track', 'first')
      assert.equal(await store.get('track'), 'first')
      await store.set('track', 'second')
      assert.equal(await store.get('track'), 'second')
    }))

    it('stores the empty string as a value distinct from a missing key', withStore(async ({ store }) => {
      await store.set('empty', '')
      assert.equal(await store.get('empty'), '')
    }))

    it('delete answers true for an existing key, false afterwards, and the key is gone', withStore(async ({ store }) => {
      await store.set('doomed', 'x')
      assert.equal(await store.delete('doomed'), true)
      assert.equal(await store.get('doomed'), undefined)
      assert.equal(await store.delete('doomed'), false)
      assert.equal(await store.delete('never-set'), false)
    }))

    it('expires a value once its TTL has passed, and keeps one set without TTL', withStore(async (fixture) => {
      const { store } = fixture
      await store.set('short', 'lived', ttlOf(fixture))
      await store.set('forever', 'here')
      assert.equal(await store.get('short'), 'lived')
      await expire(fixture)
      assert.equal(await store.get('short'), undefined)
      assert.equal(await store.delete('short'), false)
      assert.equal(await store.get('forever'), 'here')
    }))

    it('set without TTL clears a TTL set earlier on the same key', withStore(async (fixture) => {
      const { store } = fixture
      await store.set('k', 'temporary', ttlOf(fixture))
      await store.set('k', 'permanent')
      await expire(fixture)
      assert.equal(await store.get('k'), 'permanent')
    }))

    it('rejects TTLs that are not positive integers', withStore(async ({ store }) => {
      await assert.rejects(store.set('k', 'v', 0), RangeError)
      await assert.rejects(store.set('k', 'v', -5), RangeError)
      await assert.rejects(store.set('k', 'v', 1.5), RangeError)
      await assert.rejects(store.increment('k', 1, 0), RangeError)
      assert.equal(await store.get('k'), undefined)
    }))

    it('increment starts a missing key from 0 and returns each new value', withStore(async ({ store }) => {
      assert.equal(await store.increment('plays', 1), 1)
      assert.equal(await store.increment('plays', 5), 6)
      assert.equal(await store.get('plays'), '6')
    }))

    it('increment continues from an integer written with set', withStore(async ({ store }) => {
      await store.set('count', '41')
      assert.equal(await store.increment('count', 1), 42)
    }))

    it('increment rejects a value that is not an integer with ERR_STORE_COMMAND_FAILED', withStore(async ({ store }) => {
      await store.set('title', 'Blue in Green')
      await assert.rejects(store.increment('title', 1), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED')
      assert.equal(await store.get('title'), 'Blue in Green')
    }))

    it('loses no update under 50 concurrent increments', withStore(async ({ store }) => {
      const results = await Promise.all(Array.from({ length: 50 }, () => store.increment('hits', 1, 60_000)))
      assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1))
      assert.equal(await store.get('hits'), '50')
    }))

    it('increment sets the TTL when it creates the key and keeps that window afterwards', withStore(async (fixture) => {
      const { store } = fixture
      const ttl = ttlOf(fixture)
      assert.equal(await store.increment('window', 1, ttl), 1)
      // A later increment with a long TTL must not extend the window that is already running.
      assert.equal(await store.increment('window', 1, ttl * 1000), 2)
      await expire(fixture)
      assert.equal(await store.get('window'), undefined)
      assert.equal(await store.increment('window', 1, ttl), 1)
    }))

    it('round-trips unicode keys and values byte for byte', withStore(async ({ store }) => {
      const key = 'clé:🎵:東京'
      const value = '🎶 Ünïcödé — 音楽 — Дж — \u0000 nul and \n newline'
      await store.set(key, value)
      assert.equal(await store.get(key), value)
      assert.equal(await store.get('clé:🎵:東'), undefined)
    }))

    it('round-trips a 256 KiB value', withStore(async ({ store }) => {
      const value = 'ab🎵'.repeat(256 * 1024 / 6)
      await store.set('large', value)
      assert.equal(await store.get('large'), value)
    }))

    it('keeps stores with different prefixes isolated from each other', async () => {
      const a = await make({ prefix: freshPrefix() })
      const b = await make({ prefix: freshPrefix() })
      try {
        await a.store.set('shared', 'from-a')
        assert.equal(await b.store.get('shared'), undefined)
        await b.store.set('shared', 'from-b')
        assert.equal(await b.store.increment('counter', 2), 2)
        assert.equal(await a.store.increment('counter', 1), 1)
        assert.equal(await a.store.get('shared'), 'from-a')
        assert.equal(await a.store.delete('shared'), true)
        assert.equal(await b.store.get('shared'), 'from-b')
      } finally {
        await a.cleanup()
        await b.cleanup()
      }
    })
  })
}

/** What a {@link describeSqlDatabase} factory returns: a connected database in a fresh schema. */
export interface SqlDatabaseFixture {
  db: SqlDatabase
  /** Drops what the fixture created (its own schema or data directory) and closes `db`. */
  cleanup: () => Promise<void>
}

/**
 * The contract every {@link SqlDatabase} must pass: parameters, transactions, multi-statement
 * exec, typed errors and the migration runner (idempotent, checksum-guarded, safe to run
 * concurrently). `make` is called once per test.
 *
 * @example
 * describeSqlDatabase('PgliteDatabase', async () => {
 *   const db = new PgliteDatabase()
 *   await db.connect()
 *   return { db, cleanup: () => db.close() }
 * })
 */
export function describeSqlDatabase(name: string, make: () => Promise<SqlDatabaseFixture>): void {
  const withDb = (fn: (db: SqlDatabase) => Promise<void>) => async () => {
    const fixture = await make()
    try {
      await fn(fixture.db)
    } finally {
      await fixture.cleanup()
    }
  }
  const createTracks = (db: SqlDatabase) => db.exec('CREATE TABLE tracks (id integer PRIMARY KEY, title text NOT NULL, plays int8 NOT NULL DEFAULT 0)')

  describe(`${name} (SqlDatabase contract)`, () => {
    it('binds $n parameters as values, never as SQL', withDb(async (db) => {
      await createTracks(db)
      const title = "Robert'); DROP TABLE tracks;--"
      const inserted = await db.query('INSERT INTO tracks (id, title) VALUES ($1, $2), ($3, $4)', [1, title, 2, 'So What'])
      assert.equal(inserted.rowCount, 2)
      const { rows, rowCount } = await db.query<{ id: number; title: string }>('SELECT id, title FROM tracks WHERE title = $1', [title])
      assert.deepEqual(rows, [{ id: 1, title }])
      assert.equal(rowCount, 1)
    }))

    it('reports rows affected by UPDATE and DELETE in rowCount', withDb(async (db) => {
      await createTracks(db)
      await db.exec("INSERT INTO tracks (id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
      assert.equal((await db.query('UPDATE tracks SET plays = plays + 1 WHERE id >= $1', [2])).rowCount, 2)
      assert.equal((await db.query('DELETE FROM tracks WHERE id = $1', [99])).rowCount, 0)
    }))

    it('returns int8 columns and counts as numbers on every engine', withDb(async (db) => {
      await createTracks(db)
      await db.exec("INSERT INTO tracks (id, title, plays) VALUES (1, 'a', 9007199254740991)")
      const { rows } = await db.query<{ plays: number; n: number }>('SELECT plays, (SELECT count(*) FROM tracks) AS n FROM tracks')
      assert.deepEqual(rows, [{ plays: 9007199254740991, n: 1 }])
    }))

    it('exec runs several statements in order', withDb(async (db) => {
      await db.exec(`
        CREATE TABLE a (n int);
        INSERT INTO a VALUES (1);
        INSERT INTO a SELECT n + 1 FROM a;
      `)
      const { rows } = await db.query<{ n: number }>('SELECT n FROM a ORDER BY n')
      assert.deepEqual(rows.map((r) => r.n), [1, 2])
    }))

    it('commits a transaction when the callback resolves and returns its value', withDb(async (db) => {
      await createTracks(db)
      const result = await db.transaction(async (tx) => {
        await tx.query('INSERT INTO tracks (id, title) VALUES ($1, $2)', [1, 'Freddie Freeloader'])
        await tx.exec("INSERT INTO tracks (id, title) VALUES (2, 'Flamenco Sketches')")
        return (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM tracks')).rows[0]?.n
      })
      assert.equal(result, 2)
      assert.equal((await db.query('SELECT id FROM tracks')).rowCount, 2)
    }))

    it('rolls back and rethrows the callback error unchanged', withDb(async (db) => {
      await createTracks(db)
      const failure = new Error('changed my mind')
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO tracks (id, title) VALUES ($1, $2)', [1, 'never committed'])
          throw failure
        }),
        (err: unknown) => err === failure,
      )
      assert.equal((await db.query('SELECT id FROM tracks')).rowCount, 0)
    }))

    it('rolls back when a statement inside the transaction fails, with ERR_STORE_COMMAND_FAILED and its SQLSTATE', withDb(async (db) => {
      await createTracks(db)
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO tracks (id, title) VALUES ($1, $2)', [1, 'first'])
          await tx.query('INSERT INTO tracks (id, title) VALUES ($1, $2)', [1, 'duplicate'])
        }),
        (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && err.params.sqlState === '23505',
      )
      assert.equal((await db.query('SELECT id FROM tracks')).rowCount, 0)
      // The database stays usable after the failed transaction.
      await db.query('INSERT INTO tracks (id, title) VALUES ($1, $2)', [1, 'after'])
    }))

    it('reports a syntax error as ERR_STORE_COMMAND_FAILED, not as an outage', withDb(async (db) => {
      await assert.rejects(db.query('SELEC 1'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && err.params.sqlState === '42601' && err.status === 500)
    }))

    it('health check passes while connected and fails after close', async () => {
      const fixture = await make()
      try {
        assert.deepEqual(await fixture.db.healthCheck(AbortSignal.timeout(5_000)), { status: 'pass' })
      } finally {
        await fixture.cleanup()
      }
      const result = await fixture.db.healthCheck(AbortSignal.timeout(5_000))
      assert.equal(result?.status, 'fail')
      assert.match(result.message ?? '', /closed/)
      await fixture.db.close()
    })

    it('migrate applies pending migrations in id order and is idempotent', withDb(async (db) => {
      const migrations = [
        { id: '0002_seed', sql: "INSERT INTO genres (name) VALUES ('jazz'), ('ambient');" },
        { id: '0001_genres', sql: 'CREATE TABLE genres (name text PRIMARY KEY);' },
      ]
      assert.deepEqual(await migrate(db, migrations), ['0001_genres', '0002_seed'])
      assert.deepEqual(await migrate(db, migrations), [])
      const third = { id: '0003_more', sql: "INSERT INTO genres (name) VALUES ('dub')" }
      assert.deepEqual(await migrate(db, [...migrations, third]), ['0003_more'])
      assert.equal((await db.query('SELECT name FROM genres')).rowCount, 3)
      const { rows } = await db.query<{ id: string; checksum: string }>('SELECT id, checksum FROM backbeat_migrations ORDER BY id')
      assert.deepEqual(rows.map((r) => r.id), ['0001_genres', '0002_seed', '0003_more'])
      assert.ok(rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum)))
    }))

    it('migrate rejects an applied migration whose SQL changed, and applies nothing', withDb(async (db) => {
      await migrate(db, [{ id: '0001', sql: 'CREATE TABLE t (a int)' }], { table: 'schema_history' })
      await assert.rejects(
        migrate(db, [
          { id: '0001', sql: 'CREATE TABLE t (a bigint)' },
          { id: '0002', sql: 'CREATE TABLE u (a int)' },
        ], { table: 'schema_history' }),
        (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'migrations.0001'),
      )
      assert.equal((await db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'u' AND table_schema = current_schema()")).rowCount, 0)
    }))

    it('migrate rejects duplicate ids before touching the database', withDb(async (db) => {
      await assert.rejects(
        migrate(db, [{ id: '0001', sql: 'CREATE TABLE x (a int)' }, { id: '0001', sql: 'CREATE TABLE y (a int)' }]),
        (err: unknown) => err instanceof ConfigError && /duplicate/.test(err.message),
      )
      assert.equal((await db.query("SELECT 1 FROM information_schema.tables WHERE table_name IN ('x', 'y', 'backbeat_migrations') AND table_schema = current_schema()")).rowCount, 0)
    }))

    it('migrate rolls back the whole run when one migration fails', withDb(async (db) => {
      await assert.rejects(
        migrate(db, [
          { id: '0001', sql: 'CREATE TABLE ok (a int)' },
          { id: '0002', sql: 'CREATE TABLE broken (' },
        ]),
        (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && err.params.migration === '0002',
      )
      assert.deepEqual(await migrate(db, [{ id: '0001', sql: 'CREATE TABLE ok (a int)' }]), ['0001'])
    }))

    it('concurrent migrate calls apply each migration exactly once', withDb(async (db) => {
      const migrations = [
        { id: '0001', sql: 'CREATE TABLE applied (id text PRIMARY KEY); CREATE TABLE runs (n int);' },
        { id: '0002', sql: 'INSERT INTO runs VALUES (1);' },
      ]
      const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db, migrations)))
      assert.deepEqual(results.flat().sort(), ['0001', '0002'])
      assert.equal(results.filter((ids) => ids.length > 0).length, 1)
      assert.equal((await db.query('SELECT n FROM runs')).rowCount, 1)
    }))
  })
}

function freshPrefix(): string {
  return `bbtest:${randomUUID().slice(0, 8)}:`
}
