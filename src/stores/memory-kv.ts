import { LRUCache } from 'lru-cache'
import { z } from 'zod'
import { parseOptions, systemClock, type Clock } from '../core/index.ts'
import { assertIncrement, assertTtl, notAnIntegerError, type KeyValueStore } from './key-value-store.ts'


const memoryOptionsSchema = z.object({
  maxEntries: z.number().int().positive().default(10_000),
  prefix: z.string().default(''),
})

/** Options of {@link MemoryKeyValueStore}. */
export type MemoryKeyValueStoreOptions = z.input<typeof memoryOptionsSchema> & {
  /** Time source for TTLs; pass a fake clock in tests instead of sleeping. */
  now?: Clock
}

interface Entry {
  value: string
  /** Absolute expiry in clock milliseconds; `Infinity` for no TTL. */
  expiresAt: number
}

const INTEGER = /^-?\d+$/

/**
 * The embedded fallback: a bounded LRU in process memory, for one instance or for tests.
 * Expiry is checked against the injected clock on every read (lru-cache's own TTL caches the
 * time for `ttlResolution` of real time, which breaks fake clocks), and the least recently
 * used key is evicted beyond `maxEntries`.
 *
 * @example
 * const store = new MemoryKeyValueStore({ maxEntries: 1000, now: () => fakeNow })
 * await store.set('otp:42', '123456', 30_000)
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly #cache: LRUCache<string, Entry>
  readonly #now: Clock
  readonly #prefix: string

  constructor(options: MemoryKeyValueStoreOptions = {}) {
    const { now, ...rest } = options
    const parsed = parseOptions('memoryKeyValueStore', memoryOptionsSchema, rest)
    this.#cache = new LRUCache<string, Entry>({ max: parsed.maxEntries })
    this.#prefix = parsed.prefix
    this.#now = now ?? systemClock
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#live(key)?.value)
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    try {
      assertTtl(ttlMs)
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    this.#cache.set(this.#prefix + key, { value, expiresAt: this.#expiry(ttlMs) })
    return Promise.resolve()
  }

  delete(key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined
    this.#cache.delete(this.#prefix + key)
    return Promise.resolve(existed)
  }

  increment(key: string, by: number, ttlMs?: number): Promise<number> {
    try {
      assertIncrement(by)
      assertTtl(ttlMs)
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    // Synchronous read-modify-write: nothing else runs in between, so it is atomic.
    const entry = this.#live(key)
    if (entry === undefined) {
      this.#cache.set(this.#prefix + key, { value: String(by), expiresAt: this.#expiry(ttlMs) })
      return Promise.resolve(by)
    }
    const next = INTEGER.test(entry.value) ? Number(entry.value) + by : Number.NaN
    if (!Number.isSafeInteger(next)) return Promise.reject(notAnIntegerError('memory', 'memory'))
    entry.value = String(next)
    return Promise.resolve(next)
  }

  close(): Promise<void> {
    this.#cache.clear()
    return Promise.resolve()
  }

  #live(key: string): Entry | undefined {
    const entry = this.#cache.get(this.#prefix + key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#cache.delete(this.#prefix + key)
      return undefined
    }
    return entry
  }

  #expiry(ttlMs: number | undefined): number {
    return ttlMs === undefined ? Number.POSITIVE_INFINITY : this.#now() + ttlMs
  }
}
