import { LRUCache } from 'lru-cache'
import { z } from 'zod'
import { parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { CacheEntry, CacheStore } from './store.ts'

const memoryOptionsSchema = z.object({
  /** Most entries kept; the least recently used go first. */
  maxEntries: z.number().int().min(1).max(100_000_000).default(10_000),
  /** Most bytes kept (values, keys and tags, plus a fixed per-entry overhead). */
  maxBytes: z.number().int().min(1_024).max(Number.MAX_SAFE_INTEGER).default(64 * 1024 * 1024),
  now: z.custom<Clock>((value) => typeof value === 'function', 'must be a function returning epoch ms').default(() => systemClock),
  /** Called for each entry dropped to make room (not for expiry or delete): the evictions metric. */
  onEvict: z.custom<(key: string) => void>((value) => typeof value === 'function', 'must be a function').optional(),
})

/** Options of {@link MemoryCacheStore}. */
export type MemoryCacheStoreOptions = z.input<typeof memoryOptionsSchema>

/** Rough bookkeeping cost of one entry (LRU slots, the entry object, timestamps). */
const ENTRY_OVERHEAD_BYTES = 96

/**
 * The in-process tier: an LRU (`lru-cache`) capped by entry count and by bytes. An entry
 * lives until its `staleUntil` on the injected clock, so tests move a fake clock instead of
 * sleeping. Entries are kept by reference: callers must not mutate a value after `set`.
 *
 * @example
 * const store = new MemoryCacheStore({ maxEntries: 1_000, maxBytes: 16 * 1024 * 1024 })
 * await store.set('album:1', { value: bytes, createdAt: Date.now(), freshUntil: Date.now() + 60_000, staleUntil: Date.now() + 120_000, tags: ['album'] })
 */
export class MemoryCacheStore implements CacheStore {
  readonly kind = 'memory'
  readonly options: Readonly<z.output<typeof memoryOptionsSchema>>
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #now: Clock

  constructor(options: MemoryCacheStoreOptions = {}) {
    this.options = parseOptions('cache.memory', memoryOptionsSchema, options)
    const { now, onEvict } = this.options
    this.#now = now
    this.#lru = new LRUCache<string, CacheEntry>({
      max: this.options.maxEntries,
      maxSize: this.options.maxBytes,
      sizeCalculation: (entry, key) => entrySize(key, entry),
      // Exact expiry on the injected clock; the default resolution caches the time for 1 ms.
      ttlResolution: 0,
      perf: { now },
      ...(onEvict === undefined
        ? {}
        : {
            dispose: (_entry: CacheEntry, key: string, reason: LRUCache.DisposeReason) => {
              if (reason === 'evict') onEvict(key)
            },
          }),
    })
  }

  get(key: string): Promise<CacheEntry | undefined> {
    return Promise.resolve(this.#read(key))
  }

  getMany(keys: readonly string[]): Promise<Array<CacheEntry | undefined>> {
    return Promise.resolve(keys.map((key) => this.#read(key)))
  }

  set(key: string, entry: CacheEntry): Promise<void> {
    const ttl = entry.staleUntil - this.#now()
    // An entry already past its grace must not shadow nothing with something: drop the old one.
    if (!(ttl > 0)) this.#lru.delete(key)
    // A single entry larger than maxBytes is refused by lru-cache (and the old one dropped).
    else this.#lru.set(key, entry, { ttl: Math.ceil(ttl) })
    return Promise.resolve()
  }

  delete(key: string): Promise<boolean> {
    const existed = this.#read(key) !== undefined
    this.#lru.delete(key)
    return Promise.resolve(existed)
  }

  deletePrefix(prefix: string): Promise<number> {
    // Collected first: deleting while iterating would skip entries.
    const doomed: string[] = []
    for (const key of this.#lru.keys()) if (key.startsWith(prefix)) doomed.push(key)
    let removed = 0
    for (const key of doomed) if (this.#lru.delete(key)) removed += 1
    return Promise.resolve(removed)
  }

  /** Number of live entries (expired ones may linger until touched). */
  get size(): number {
    return this.#lru.size
  }

  /** Bytes accounted for by the entries held. */
  get bytes(): number {
    return this.#lru.calculatedSize
  }

  close(): Promise<void> {
    this.#lru.clear()
    return Promise.resolve()
  }

  #read(key: string): CacheEntry | undefined {
    // updateAgeOnGet stays off: reading must not extend an entry's life.
    const entry = this.#lru.get(key)
    if (entry === undefined) return undefined
    // lru-cache treats an entry as live up to and including its last millisecond; staleUntil is exclusive.
    if (entry.staleUntil <= this.#now()) {
      this.#lru.delete(key)
      return undefined
    }
    return entry
  }
}

function entrySize(key: string, entry: CacheEntry): number {
  let size = ENTRY_OVERHEAD_BYTES + key.length * 2 + entry.value.byteLength
  for (const tag of entry.tags) size += tag.length * 2
  return size
}
