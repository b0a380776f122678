import { mkdir } from 'node:fs/promises'
import type { BackbeatConfig } from '../config/index.ts'
import { maskUrlCredentials } from '../config/index.ts'
import { BackbeatError } from '../core/index.ts'
import type { HealthRegistry } from '../health/index.ts'
import {
  createSqlDatabase,
  MemcachedConnection,
  MemoryKeyValueStore,
  NatsConnection,
  RedisConnection,
  RedisKeyValueStore,
  type KeyValueStore,
  type SqlDatabase,
} from '../stores/index.ts'

/** The stores one Backbeat process runs on, opened and health-checked by {@link openStores}. */
export interface BackbeatStores {
  /** Postgres when `DATABASE_URL` is set, otherwise embedded PGlite. */
  readonly sql: SqlDatabase
  /** Redis-backed when `REDIS_URL` is set, otherwise in process memory. */
  readonly kv: KeyValueStore
  readonly redis?: RedisConnection
  readonly memcached?: MemcachedConnection
  readonly nats?: NatsConnection
  /**
   * Registers each store's health check in `health`. {@link openStores} does it when given a
   * registry; stores opened before the app (so the app can share their Redis) are registered
   * by `createBackbeatApp(config, { stores })`.
   */
  registerHealthChecks(health: HealthRegistry): void
  /** Closes every store, the last opened first; idempotent. */
  close(): Promise<void>
}

/** The subset of a pino/Fastify logger {@link openStores} writes to. */
export interface OpenStoresLogger {
  info(fields: Record<string, unknown>, message: string): void
}

/** Options of {@link openStores}. */
export interface OpenStoresOptions {
  /**
   * Each store's health check is registered here (`createBackbeatApp` returns one). Leave it
   * out to open the stores before the app, then pass them as `createBackbeatApp(config, { stores })`.
   */
  health?: HealthRegistry
  /** Told which store was opened where; URLs are logged with their password masked. */
  logger?: OpenStoresLogger
}

/**
 * Thrown by {@link openStores} when a configured store cannot be reached at start-up. The
 * message names the store, the setting and the URL (password masked) so the operator can fix
 * it without reading a stack trace; `cause` holds the store's own error.
 */
export class StoreConnectionError extends BackbeatError {
  /** Which store failed: `postgres`, `pglite`, `redis`, `memcached` or `nats`. */
  readonly store: string
  constructor(store: string, setting: string, target: string, cause: unknown) {
    const reason = reasonOf(cause)
    super('ERR_DEPENDENCY_UNAVAILABLE', { params: { store, target, reason }, cause })
    this.store = store
    // The catalogue text ("A service this request needs…") is written for HTTP clients; at
    // start-up the operator needs to know which store, where, and why.
    this.message = `cannot connect to ${store} at ${target} (${setting}): ${reason}`
  }
}

interface Opened {
  close(): Promise<void>
}

/**
 * Opens every store the configuration asks for and registers each one's health check:
 * Postgres from `DATABASE_URL` or embedded PGlite in `stores.dataDir` (`:memory:` keeps it in
 * memory), a key-value store on Redis from `REDIS_URL` or in memory, and memcached and NATS only
 * when configured. A store whose URL is set but which cannot be reached fails start-up with a
 * {@link StoreConnectionError}: falling back to memory would silently split state between
 * instances. On failure, the stores already opened are closed again.
 *
 * memcached and NATS are registered as non-critical (a failure degrades `/health` to `warn`
 * but keeps the instance ready) because no request path needs them to answer; SQL and Redis
 * are critical.
 *
 * @example
 * // Stores first, so the stack shares their Redis (rate-limit counters across instances):
 * const config = loadConfig()
 * const stores = await openStores(config)
 * const { app } = await createBackbeatApp(config, { stores })
 * app.addHook('onClose', () => stores.close())
 * const { rows } = await stores.sql.query('SELECT 1 AS ok')
 */
export async function openStores(config: BackbeatConfig, options: OpenStoresOptions = {}): Promise<BackbeatStores> {
  const { health, logger } = options
  const settings = config.stores
  const opened: Opened[] = []
  const open = async <T extends Opened & { connect(): Promise<void> }>(store: T, kind: string, setting: string, target: string): Promise<T> => {
    try {
      await store.connect()
    } catch (err) {
      throw new StoreConnectionError(kind, setting, target, err)
    }
    opened.push(store)
    logger?.info({ store: kind, target }, `${kind} connected`)
    return store
  }

  try {
    let sql: SqlDatabase
    if (settings.databaseUrl !== undefined) {
      sql = await open(createSqlDatabase({ url: settings.databaseUrl }), 'postgres', 'DATABASE_URL', maskUrlCredentials(settings.databaseUrl))
    } else {
      const inMemory = settings.dataDir === ':memory:'
      // PGlite creates only the last directory of the path; `.backbeat/data` needs both.
      if (!inMemory) await mkdir(settings.dataDir, { recursive: true })
      sql = await open(createSqlDatabase(inMemory ? {} : { dataDir: settings.dataDir }), 'pglite', 'stores.dataDir', inMemory ? 'memory' : settings.dataDir)
    }
    let redis: RedisConnection | undefined
    let kv: KeyValueStore
    if (settings.redisUrl !== undefined) {
      redis = await open(new RedisConnection({ url: settings.redisUrl }), 'redis', 'REDIS_URL', maskUrlCredentials(settings.redisUrl))
      kv = new RedisKeyValueStore(redis)
    } else {
      kv = new MemoryKeyValueStore()
    }

    let memcached: MemcachedConnection | undefined
    if (settings.memcachedServers.length > 0) {
      const servers = settings.memcachedServers.join(',')
      memcached = await open(new MemcachedConnection({ servers }), 'memcached', 'MEMCACHED_SERVERS', servers)
    }

    let nats: NatsConnection | undefined
    if (settings.natsUrl !== undefined) {
      nats = await open(new NatsConnection({ url: settings.natsUrl }), 'nats', 'NATS_URL', maskUrlCredentials(settings.natsUrl))
    }

    const registerHealthChecks = (registry: HealthRegistry): void => {
      registry.register(sql.kind, sql.healthCheck, { componentType: 'datastore' })
      if (redis !== undefined) registry.register('redis', redis.healthCheck, { componentType: 'datastore' })
      if (memcached !== undefined) registry.register('memcached', memcached.healthCheck, { critical: false, componentType: 'datastore' })
      if (nats !== undefined) registry.register('nats', nats.healthCheck, { critical: false, componentType: 'component' })
    }
    // Registered only once every store is open, so a failed start leaves no check behind
    // that would report a store this process never managed to use.
    if (health !== undefined) registerHealthChecks(health)

    let closing: Promise<void> | undefined
    return {
      sql,
      kv,
      ...(redis === undefined ? {} : { redis }),
      ...(memcached === undefined ? {} : { memcached }),
      ...(nats === undefined ? {} : { nats }),
      registerHealthChecks,
      close() {
        closing ??= (async () => {
          await kv.close()
          await closeAll(opened)
        })()
        return closing
      },
    }
  } catch (err) {
    // Whatever failed (a connect, a duplicate health check name, an invalid option), the
    // stores opened so far must not hold the process open; the original error is what counts.
    await closeAll(opened).catch(() => undefined)
    throw err
  }
}

/**
 * Closes in reverse order of opening (a store may still flush into one opened before it);
 * every store is closed even when one fails.
 */
async function closeAll(opened: Opened[]): Promise<void> {
  const failures: unknown[] = []
  for (const store of opened.splice(0).reverse()) {
    try {
      await store.close()
    } catch (err) {
      failures.push(err)
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, `failed to close ${failures.length} store(s)`)
}

function reasonOf(err: unknown): string {
  if (err instanceof BackbeatError && typeof err.params.reason === 'string') return err.params.reason
  return err instanceof Error ? err.message : String(err)
}
