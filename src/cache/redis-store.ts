import { z } from 'zod'
import { parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { RedisConnection } from '../stores/index.ts'
import { decodeCacheEntry, encodeCacheEntry } from './entry-codec.ts'
import type { CacheEntry, CacheStore } from './store.ts'

const redisStoreOptionsSchema = z.object({
  /** Prepended to every key (after the connection's own `keyPrefix`). */
  prefix: z.string().max(256).default('cache:'),
  /** Keys asked per SCAN step and removed per UNLINK in `deletePrefix`. */
  scanCount: z.number().int().min(10).max(10_000).default(500),
  now: z.custom<Clock>((value) => typeof value === 'function', 'must be a function returning epoch ms').default(() => systemClock),
  /** Called with the key of a value that does not decode (it is answered as a miss): log or count it. */
  onCorrupt: z.custom<(key: string) => void>((value) => typeof value === 'function', 'must be a function').optional(),
})

/** Options of {@link RedisCacheStore}. */
export type RedisCacheStoreOptions = z.input<typeof redisStoreOptionsSchema>

/**
 * The Redis tier on a shared {@link RedisConnection}. Entries are stored as binary strings
 * (the {@link encodeCacheEntry} envelope) with `SET … PX` until their `staleUntil`, read with
 * GET/MGET as Buffers so every byte survives. `deletePrefix` walks the keyspace with SCAN and
 * removes in batches with UNLINK (never KEYS, which blocks a shared Redis). Command failures
 * are thrown (wrapped by the connection) for the engine's circuit breaker; a value that does
 * not decode is a miss.
 *
 * @example
 * const store = new RedisCacheStore(redis, { prefix: 'cache:' })
 * const entry = await store.get('album:1')
 */
export class RedisCacheStore implements CacheStore {
  readonly kind = 'redis'
  readonly options: Readonly<z.output<typeof redisStoreOptionsSchema>>
  readonly #connection: RedisConnection
  readonly #now: Clock

  constructor(connection: RedisConnection, options: RedisCacheStoreOptions = {}) {
    this.options = parseOptions('cache.redis', redisStoreOptionsSchema, options)
    this.#connection = connection
    this.#now = this.options.now
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    let raw: Buffer | null
    try {
      raw = await this.#connection.client.getBuffer(this.options.prefix + key)
    } catch (err) {
      throw this.#connection.wrap('get', err)
    }
    return this.#live(key, raw)
  }

  async getMany(keys: readonly string[]): Promise<Array<CacheEntry | undefined>> {
    if (keys.length === 0) return []
    let raws: Array<Buffer | null>
    try {
      raws = await this.#connection.client.mgetBuffer(...keys.map((key) => this.options.prefix + key))
    } catch (err) {
      throw this.#connection.wrap('getMany', err)
    }
    return raws.map((raw, i) => this.#live(keys[i] ?? '', raw))
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    const ttlMs = Math.ceil(entry.staleUntil - this.#now())
    const payload = ttlMs > 0 ? encodeCacheEntry(entry) : undefined
    try {
      const client = this.#connection.client
      // Already past its grace: storing it would be pointless, leaving the old value wrong.
      if (payload === undefined) await client.unlink(this.options.prefix + key)
      else await client.set(this.options.prefix + key, payload, 'PX', ttlMs)
    } catch (err) {
      throw this.#connection.wrap('set', err)
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.#connection.client.unlink(this.options.prefix + key)) > 0
    } catch (err) {
      throw this.#connection.wrap('delete', err)
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    // ioredis applies the connection's keyPrefix to UNLINK but not to a SCAN pattern, and SCAN
    // answers full key names: add it to the pattern, strip it from the answers.
    const connectionPrefix = this.#connection.options.keyPrefix ?? ''
    const pattern = `${escapeGlob(connectionPrefix + this.options.prefix + prefix)}*`
    const { scanCount } = this.options
    let removed = 0
    try {
      const client = this.#connection.client
      let cursor = '0'
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', scanCount)
        cursor = next
        for (let i = 0; i < found.length; i += scanCount) {
          const batch = found.slice(i, i + scanCount).map((name) => name.slice(connectionPrefix.length))
          // SCAN may answer a key twice; UNLINK counts only keys that still existed.
          removed += await client.unlink(...batch)
        }
      } while (cursor !== '0')
    } catch (err) {
      throw this.#connection.wrap('deletePrefix', err)
    }
    return removed
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #live(key: string, raw: Buffer | null): CacheEntry | undefined {
    const entry = decodeCacheEntry(raw)
    if (entry === undefined && raw !== null) reportCorrupt(this.options.onCorrupt, key)
    // PX expiry is exact, but a clock skewed against Redis's must not serve past staleUntil.
    return entry !== undefined && entry.staleUntil > this.#now() ? entry : undefined
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function reportCorrupt(onCorrupt: ((key: string) => void) | undefined, key: string): void {
  try {
    onCorrupt?.(key)
  } catch {
    // A failing logger must not turn a miss into an error for the request.
  }
}
