/**
 * One tier of the tiered cache: a small async map of serialized entries with a TTL. Every
 * implementation (memory, Redis, Memcached) passes `describeCacheStore` from
 * `backbeat/testing`. Stores know nothing of tags, grace or coherence: the engine above keeps
 * those in the entry's envelope and in its own bookkeeping.
 */
export interface CacheEntry {
  /** The serialized (and possibly compressed or encrypted) value: opaque to the store. */
  readonly value: Uint8Array
  /** Epoch ms when the value was computed; tag invalidations newer than this void it. */
  readonly createdAt: number
  /** Epoch ms until which the value is fresh. */
  readonly freshUntil: number
  /** Epoch ms until which a stale value may still be served (grace); the store keeps it this long. */
  readonly staleUntil: number
  /** Tags the value was stored with (invalidate by tag). */
  readonly tags: readonly string[]
}

export interface CacheStore {
  /** `memory`, `redis` or `memcached`: used in metrics and logs. */
  readonly kind: string
  /** The entry, or undefined when absent, expired (past `staleUntil`) or unreadable (a corrupt value is a miss, never a throw). */
  get(key: string): Promise<CacheEntry | undefined>
  /** Several at once (one round trip where the backend allows); same order as `keys`. */
  getMany(keys: readonly string[]): Promise<Array<CacheEntry | undefined>>
  /** Stores `entry` until its `staleUntil` (a store may drop it earlier under memory pressure). */
  set(key: string, entry: CacheEntry): Promise<void>
  /** Resolves true when the key existed. */
  delete(key: string): Promise<boolean>
  /** Deletes every key starting with `prefix` (a namespace); resolves how many were removed. */
  deletePrefix(prefix: string): Promise<number>
  /** Releases what the store owns; a connection passed in stays open. */
  close(): Promise<void>
}
