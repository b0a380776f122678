import pg from 'pg'
import { z } from 'zod'
import { parseOptions, type BackbeatError } from '../core/index.ts'
import type { HealthCheck } from '../core/index.ts'
import { connectionName, durationMs, sqlIdentifier, urlWithProtocol } from './options.ts'
import type { SqlDatabase, SqlExecutor, SqlResult } from './sql.ts'
import { dataExceptionError, errorCode, isDataException, isNetworkError, isTimeoutCode, notConnectedError, probe, storeError, targetOf, type FailureSite } from './store-errors.ts'

const postgresOptionsSchema = z.object({
  url: urlWithProtocol(['postgres:', 'postgresql:']),
  name: connectionName('postgres'),
  poolSize: z.number().int().min(1).max(1000).default(10),
  connectTimeoutMs: durationMs(5_000),
  statementTimeoutMs: durationMs(10_000),
  idleTimeoutMs: durationMs(30_000),
  /** Sets `search_path` on every pooled connection (per-tenant or per-test schemas). */
  schema: sqlIdentifier.optional(),
})

/** Options of {@link PostgresDatabase}; durations are in milliseconds. */
export type PostgresDatabaseOptions = z.input<typeof postgresOptionsSchema>

// Same int8 shape as PGlite (number, bigint when unsafe) so results do not depend on the engine.
const types = new pg.TypeOverrides()
types.setTypeParser(pg.types.builtins.INT8, (value: string) => {
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : BigInt(value)
})

/**
 * {@link SqlDatabase} on a `pg` pool. Broken connections are dropped from the pool and new
 * ones dialled on demand, so the pool heals by itself once Postgres is back; statements are
 * cancelled server-side after `statementTimeoutMs` (and abandoned client-side shortly after,
 * in case the server cannot answer at all).
 *
 * @example
 * const db = new PostgresDatabase({ url: 'postgres://postgres@127.0.0.1:5432/app', poolSize: 20 })
 * await db.connect()
 */
export class PostgresDatabase implements SqlDatabase {
  readonly kind = 'postgres' as const
  readonly name: string
  readonly options: Readonly<z.output<typeof postgresOptionsSchema>>
  #pool: pg.Pool | undefined
  #state: 'idle' | 'open' | 'closed' = 'idle'

  constructor(options: PostgresDatabaseOptions) {
    this.options = parseOptions('postgres', postgresOptionsSchema, options)
    this.name = this.options.name
  }

  /** Creates the pool and proves one connection works; fails within `connectTimeoutMs`. */
  async connect(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state === 'closed') throw notConnectedError(this.#site('connect'), 'closed')
    const { options } = this
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs,
      idleTimeoutMillis: options.idleTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      query_timeout: options.statementTimeoutMs + 1_000,
      application_name: options.name,
      keepAlive: true,
      types,
      ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
    })
    // An idle client whose backend dies emits 'error' on the pool; unhandled, it would crash.
    pool.on('error', () => undefined)
    try {
      await pool.query('SELECT 1')
    } catch (err) {
      await pool.end().catch(() => undefined)
      throw this.#wrap('connect', err)
    }
    this.#pool = pool
    this.#state = 'open'
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<T>> {
    const pool = this.#open('query')
    try {
      return toResult<T>(await pool.query(sql, params as unknown[]))
    } catch (err) {
      throw this.#wrap('query', err)
    }
  }

  async exec(sql: string): Promise<void> {
    const pool = this.#open('exec')
    try {
      // No parameters: pg uses the simple protocol, which accepts several statements.
      await pool.query(sql)
    } catch (err) {
      throw this.#wrap('exec', err)
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const pool = this.#open('transaction')
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (err) {
      throw this.#wrap('transaction', err)
    }
    let broken: Error | undefined
    // A checked-out client has no pool listener: a backend dying mid-transaction would emit an
    // unhandled 'error' and crash the process.
    const onClientError = (err: Error): void => {
      broken ??= err
    }
    client.on('error', onClientError)
    const run = async <R>(operation: string, call: () => Promise<R>): Promise<R> => {
      try {
        return await call()
      } catch (err) {
        const wrapped = this.#wrap(operation, err)
        // A dead connection must not go back to the pool for the next request; one whose
        // statement was merely refused (bad SQL, bad value) is fine once rolled back.
        if (!refusedByServer(wrapped)) broken = wrapped
        throw wrapped
      }
    }
    const tx: SqlExecutor = {
      query: async <R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []) =>
        toResult<R>(await run('query', () => client.query(sql, params as unknown[]))),
      exec: async (sql: string) => {
        await run('exec', () => client.query(sql))
      },
    }
    try {
      await run('begin', () => client.query('BEGIN'))
      const result = await fn(tx)
      await run('commit', () => client.query('COMMIT'))
      return result
    } catch (err) {
      if (broken === undefined) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))
        })
      }
      throw err
    } finally {
      // A broken client is destroyed on release and may still emit errors, so keep listening.
      if (broken === undefined) client.removeListener('error', onClientError)
      client.release(broken)
    }
  }

  /** Runs `SELECT 1` on a pooled connection. */
  readonly healthCheck: HealthCheck = (signal) =>
    probe('postgres', signal, async () => {
      await this.query('SELECT 1')
    })

  /** Ends the pool, waiting for checked-out clients to be released; idempotent. */
  async close(): Promise<void> {
    const pool = this.#pool
    this.#pool = undefined
    this.#state = 'closed'
    if (pool !== undefined) await pool.end()
  }

  #open(operation: string): pg.Pool {
    if (this.#pool === undefined) throw notConnectedError(this.#site(operation), this.#state === 'closed' ? 'closed' : 'not connected')
    return this.#pool
  }

  #wrap(operation: string, err: unknown): BackbeatError {
    return wrapPostgresError(this.#site(operation), err)
  }

  #site(operation: string): FailureSite {
    return { store: 'postgres', name: this.name, operation, target: targetOf(this.options.url) }
  }
}

const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000', '28000', '28P01'])
const TIMEOUT_MESSAGES = /timeout|timed out/i
const CONNECTION_MESSAGES = /Connection terminated|not queryable|Cannot use a pool after calling end|Client was closed/i

function wrapPostgresError(site: FailureSite, err: unknown): BackbeatError {
  const code = errorCode(err)
  const message = err instanceof Error ? err.message : String(err)
  if (code === '57014' || isTimeoutCode(err) || TIMEOUT_MESSAGES.test(message)) {
    return storeError(site, 'timeout', err, code === undefined ? {} : { sqlState: code })
  }
  // Class 22 (data exception): the value supplied was refused, e.g. a NUL in text or an
  // integer out of range; a 400 for the client, not a failure of the database.
  if (isDataException(code)) return dataExceptionError(site, err, code)
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    const kind = code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) ? 'unavailable' : 'rejected'
    return storeError(site, kind, err, { sqlState: code })
  }
  if (isNetworkError(err) || CONNECTION_MESSAGES.test(message)) return storeError(site, 'unavailable', err)
  // Anything else was raised by pg before reaching the network (e.g. a bad parameter).
  return storeError(site, 'rejected', err)
}

/** The server answered and refused the statement; the connection itself is healthy. */
function refusedByServer(err: BackbeatError): boolean {
  return err.code === 'ERR_STORE_COMMAND_FAILED' || err.code === 'ERR_STORE_VALUE_REJECTED'
}

function toResult<T>(result: pg.QueryResult | pg.QueryResult[]): SqlResult<T> {
  // Several statements in one query string yield one result each; the last one is the answer.
  const last = Array.isArray(result) ? result[result.length - 1] : result
  const rows = (last?.rows ?? []) as T[]
  return { rows, rowCount: last?.command === 'SELECT' ? rows.length : (last?.rowCount ?? rows.length) }
}
