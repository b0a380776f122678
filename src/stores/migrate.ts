import { createHash } from 'node:crypto'
import { BackbeatError, ConfigError, type ConfigIssue } from '../core/index.ts'
import type { SqlDatabase } from './sql.ts'

/** One schema change. `id`s sort as strings, so zero-pad them: `0001_create_tracks`. */
export interface Migration {
  readonly id: string
  readonly sql: string
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Bookkeeping table, created in the current schema (default `backbeat_migrations`). */
  table?: string
}

const TABLE = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Applies pending migrations in `id` order and resolves the ids it applied. The whole run is
 * one transaction holding a transaction-scoped advisory lock, so concurrent instances
 * starting together apply each migration exactly once, and a failing migration leaves the
 * schema as it was. Throws `ConfigError` for duplicate ids or when an applied migration's
 * SQL was edited afterwards (its sha256 no longer matches): fix the code, never the history.
 *
 * @example
 * await migrate(db, [
 *   { id: '0001_tracks', sql: 'CREATE TABLE tracks (id text PRIMARY KEY, title text NOT NULL)' },
 *   { id: '0002_plays', sql: 'CREATE TABLE plays (track_id text REFERENCES tracks(id), at timestamptz)' },
 * ])
 */
export async function migrate(db: SqlDatabase, migrations: readonly Migration[], options: MigrateOptions = {}): Promise<string[]> {
  const table = options.table ?? 'backbeat_migrations'
  const sorted = validate(migrations, table)
  return db.transaction(async (tx) => {
    // Keyed by schema and table: runs against other schemas of the same database never wait.
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('backbeat.migrate:' || current_schema() || '.' || $1, 0))", [table])
    await tx.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const { rows } = await tx.query<{ id: string; checksum: string }>(`SELECT id, checksum FROM ${table}`)
    const applied = new Map(rows.map((row) => [row.id, row.checksum]))
    const changed: ConfigIssue[] = []
    for (const migration of sorted) {
      const recorded = applied.get(migration.id)
      if (recorded !== undefined && recorded !== migration.checksum) {
        changed.push({ path: `migrations.${migration.id}`, message: `was edited after it was applied (checksum ${recorded.slice(0, 12)}… in ${table}, ${migration.checksum.slice(0, 12)}… now); add a new migration instead` })
      }
    }
    if (changed.length > 0) throw new ConfigError(changed)

    const done: string[] = []
    for (const migration of sorted) {
      if (applied.has(migration.id)) continue
      try {
        await tx.exec(migration.sql)
      } catch (err) {
        if (err instanceof BackbeatError) {
          throw new BackbeatError(err.code, { params: { ...err.params, migration: migration.id }, cause: err.cause })
        }
        throw err
      }
      await tx.query(`INSERT INTO ${table} (id, checksum) VALUES ($1, $2)`, [migration.id, migration.checksum])
      done.push(migration.id)
    }
    return done
  })
}

interface Checked extends Migration {
  readonly checksum: string
}

function validate(migrations: readonly Migration[], table: string): Checked[] {
  const issues: ConfigIssue[] = []
  if (!TABLE.test(table)) issues.push({ path: 'table', message: 'must be a lowercase SQL identifier (a-z, 0-9, _)' })
  const seen = new Set<string>()
  migrations.forEach((migration, index) => {
    if (migration.id.trim() === '') issues.push({ path: `migrations[${index}].id`, message: 'must not be empty' })
    else if (seen.has(migration.id)) issues.push({ path: `migrations[${index}].id`, message: `duplicate id "${migration.id}"` })
    seen.add(migration.id)
  })
  if (issues.length > 0) throw new ConfigError(issues)
  return [...migrations]
    .map((m) => ({ id: m.id, sql: m.sql, checksum: checksum(m.sql) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** sha256 of the SQL with line endings normalised, so a CRLF checkout is not an "edit". */
function checksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex')
}
