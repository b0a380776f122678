import { PGlite, type Results, type Transaction } from '@electric-sql/pglite'
import { z } from 'zod'
import { parseOptions, type BackbeatError } from '../core/index.ts'
import type { HealthCheck } from '../core/index.ts'
import { connectionName } from './options.ts'
import type { SqlDatabase, SqlExecutor, SqlResult } from './sql.ts'
import { dataExceptionError, errorCode, isDataException, notConnectedError, probe, storeError, type FailureSite } from './store-errors.ts'

const pgliteOptionsSchema = z.object({
  /** Directory that persists the database; omitted means in memory. */
  dataDir: z.string().min(1).optional(),
  name: connectionName('pglite'),
})

/** Options of {@link PgliteDatabase}. */
export type PgliteDatabaseOptions = z.input<typeof pgliteOptionsSchema>

/**
 * {@link SqlDatabase} on PGlite: real Postgres compiled to WebAssembly, in process. One
 * backend, so statements run one at a time; concurrent transactions queue rather than
 * interleave. Meant for development, tests and single-instance deployments.
 *
 * @example
 * const db = new PgliteDatabase({ dataDir: '.backbeat/db' })
 * await db.connect()
 * await db.query('SELECT 1')
 */
export class PgliteDatabase implements SqlDatabase {
  readonly kind = 'pglite' as const
  readonly name: string
  readonly options: Readonly<z.output<typeof pgliteOptionsSchema>>
  #db: PGlite | undefined
  #state: 'idle' | 'open' | 'closed' = 'idle'

  constructor(options: PgliteDatabaseOptions = {}) {
    this.options = parseOptions('pglite', pgliteOptionsSchema, options)
    this.name = this.options.name
  }

  /** Boots the embedded engine (and creates or opens `dataDir`). */
  async connect(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state === 'closed') throw notConnectedError(this.#site('connect'), 'closed')
    try {
      this.#db = this.options.dataDir === undefined ? await PGlite.create() : await PGlite.create(this.options.dataDir)
    } catch (err) {
      throw storeError(this.#site('connect'), 'unavailable', err)
    }
    this.#state = 'open'
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<T>> {
    const db = this.#open('query')
    try {
      return toResult<T>(await db.query<T>(sql, params as unknown[]))
    } catch (err) {
      throw this.#wrap('query', err)
    }
  }

  async exec(sql: string): Promise<void> {
    const db = this.#open('exec')
    try {
      await db.exec(sql)
    } catch (err) {
      throw this.#wrap('exec', err)
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const db = this.#open('transaction')
    const wrapTx = (tx: Transaction): SqlExecutor => ({
      query: async <R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []) => {
        try {
          return toResult<R>(await tx.query<R>(sql, params as unknown[]))
        } catch (err) {
          throw this.#wrap('query', err)
        }
      },
      exec: async (sql: string) => {
        try {
          await tx.exec(sql)
        } catch (err) {
          throw this.#wrap('exec', err)
        }
      },
    })
    const outcome = { failedInFn: false }
    try {
      return await db.transaction(async (tx) => {
        try {
          return await fn(wrapTx(tx))
        } catch (err) {
          outcome.failedInFn = true
          throw err
        }
      })
    } catch (err) {
      // The caller's own errors pass through untouched, as with Postgres.
      if (outcome.failedInFn) throw err
      throw this.#wrap('transaction', err)
    }
  }

  /** Runs `SELECT 1`; fails once closed. */
  readonly healthCheck: HealthCheck = (signal) =>
    probe('pglite', signal, async () => {
      await this.query('SELECT 1')
    })

  /** Shuts the engine down, flushing `dataDir`; idempotent. */
  async close(): Promise<void> {
    const db = this.#db
    this.#db = undefined
    this.#state = 'closed'
    if (db !== undefined && !db.closed) await db.close()
  }

  #open(operation: string): PGlite {
    if (this.#db === undefined) throw notConnectedError(this.#site(operation), this.#state === 'closed' ? 'closed' : 'not connected')
    return this.#db
  }

  #wrap(operation: string, err: unknown): BackbeatError {
    const code = errorCode(err)
    if (code === '57014') return storeError(this.#site(operation), 'timeout', err, { sqlState: code })
    // Class 22 (data exception): the value supplied was refused (NUL in text, integer out of
    // range), which is the caller's input at fault: a 400, as on Postgres.
    if (isDataException(code)) return dataExceptionError(this.#site(operation), err, code)
    // In process there is no network: a SQLSTATE means the engine rejected the statement;
    // anything else (closed, out of memory, wasm trap) means the engine is unusable.
    if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return storeError(this.#site(operation), 'rejected', err, { sqlState: code })
    return storeError(this.#site(operation), 'unavailable', err)
  }

  #site(operation: string): FailureSite {
    return { store: 'pglite', name: this.name, operation, target: this.options.dataDir ?? 'memory' }
  }
}

function toResult<T>(result: Results<T>): SqlResult<T> {
  return { rows: result.rows, rowCount: result.affectedRows !== undefined && result.affectedRows > 0 ? result.affectedRows : result.rows.length }
}
