/**
 * Connections to the services Backbeat runs on (Redis, Postgres or embedded PGlite,
 * memcached, NATS), each with explicit `connect()`/`close()`, bounded timeouts and a health
 * check; a SQL migration runner; and the `KeyValueStore` abstraction with in-memory, Redis
 * and memcached implementations.
 */
export { RedisConnection } from './redis.ts'
export type { RedisConnectionOptions } from './redis.ts'
export { MemcachedConnection } from './memcached.ts'
export type { MemcachedClient, MemcachedConnectionOptions } from './memcached.ts'
export { NatsConnection } from './nats.ts'
export type { NatsConnectionOptions } from './nats.ts'
export { createSqlDatabase } from './create-sql-database.ts'
export type { SqlDatabase, SqlDatabaseOptions, SqlExecutor, SqlResult } from './sql.ts'
export { PostgresDatabase } from './postgres.ts'
export type { PostgresDatabaseOptions } from './postgres.ts'
export { PgliteDatabase } from './pglite.ts'
export type { PgliteDatabaseOptions } from './pglite.ts'
export { migrate } from './migrate.ts'
export type { MigrateOptions, Migration } from './migrate.ts'
export type { KeyValueStore } from './key-value-store.ts'
export { MemoryKeyValueStore } from './memory-kv.ts'
export type { MemoryKeyValueStoreOptions } from './memory-kv.ts'
export { RedisKeyValueStore } from './redis-kv.ts'
export type { RedisKeyValueStoreOptions } from './redis-kv.ts'
export { MemcachedKeyValueStore } from './memcached-kv.ts'
export type { MemcachedKeyValueStoreOptions } from './memcached-kv.ts'
export { backoffDelayMs, withTimeout } from './store-errors.ts'
