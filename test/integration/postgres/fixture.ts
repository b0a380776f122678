import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { PostgresDatabase, type PostgresDatabaseOptions } from '../../../src/stores/index.ts'

/**
 * A PostgresDatabase confined to a fresh `bb_test_<random>` schema (search_path), so tests
 * share the server with other runs without seeing their tables; `cleanup` drops only it.
 */
export async function databaseInFreshSchema(url: string, options: Partial<PostgresDatabaseOptions> = {}): Promise<{ db: PostgresDatabase; schema: string; cleanup: () => Promise<void> }> {
  const schema = `bb_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`
  await adminQuery(url, `CREATE SCHEMA ${schema}`)
  const db = new PostgresDatabase({ url, schema, poolSize: 5, ...options })
  await db.connect()
  return {
    db,
    schema,
    cleanup: async () => {
      await db.close()
      await adminQuery(url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    },
  }
}

/** One statement on a short-lived connection of its own (schema DDL, pg_terminate_backend). */
export async function adminQuery(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}
