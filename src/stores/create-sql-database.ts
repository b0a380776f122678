import { PgliteDatabase } from './pglite.ts'
import { PostgresDatabase } from './postgres.ts'
import type { SqlDatabase, SqlDatabaseOptions } from './sql.ts'

/**
 * Postgres when `url` is set, otherwise embedded PGlite (in memory, or persisted in
 * `dataDir`), so development and tests need no server. Does no I/O: call `connect()`.
 *
 * @example
 * const db = createSqlDatabase({ url: process.env.DATABASE_URL, dataDir: '.backbeat/db' })
 */
export function createSqlDatabase(options: SqlDatabaseOptions = {}): SqlDatabase {
  const name = options.name === undefined ? {} : { name: options.name }
  if (options.url !== undefined && options.url !== '') return new PostgresDatabase({ url: options.url, ...name })
  return new PgliteDatabase({ ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }), ...name })
}
