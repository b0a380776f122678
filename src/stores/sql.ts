import type { HealthCheck, HealthCheckable } from '../core/index.ts'

/** Rows of one statement; `rowCount` is rows returned by a SELECT, rows affected by DML. */
export interface SqlResult<T> {
  rows: T[]
  rowCount: number
}

/**
 * What runs SQL: the database itself or a transaction. Parameters are `$1, $2, ...`;
 * `int8` comes back as a number (a bigint beyond 2^53) on both engines.
 *
 * @example
 * const { rows } = await tx.query<{ id: number }>('SELECT id FROM tracks WHERE isrc = $1', [isrc])
 */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<T>>
  /** Runs several `;`-separated statements without parameters (migrations, fixtures). */
  exec(sql: string): Promise<void>
}

/**
 * One SQL database, Postgres in production or PGlite embedded; the same SQL and migrations
 * run on both. Errors: `ERR_DEPENDENCY_UNAVAILABLE` / `ERR_DEPENDENCY_TIMEOUT` when the
 * database is unreachable or slow, `ERR_STORE_VALUE_REJECTED` (400, params.sqlState) when it
 * refused a value given to the statement (SQLSTATE class 22: NUL in text, number out of range,
 * text too long), `ERR_STORE_COMMAND_FAILED` (params.sqlState) when it rejected the statement.
 *
 * @example
 * const db = createSqlDatabase({ url: process.env.DATABASE_URL })
 * await db.connect()
 * await db.transaction(async (tx) => { await tx.query('INSERT INTO plays(track) VALUES ($1)', [id]) })
 */
export interface SqlDatabase extends SqlExecutor, HealthCheckable {
  readonly kind: 'postgres' | 'pglite'
  /** Commits when `fn` resolves, rolls back and rethrows when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>
  healthCheck: HealthCheck
  connect(): Promise<void>
  close(): Promise<void>
}

/** Options of {@link createSqlDatabase}. */
export interface SqlDatabaseOptions {
  /** `postgres://...`: use a Postgres pool. */
  url?: string | undefined
  /** PGlite data directory; omitted means an in-memory database. */
  dataDir?: string | undefined
  name?: string
}
