import { circuitBreaker, CircuitState, ConsecutiveBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel'
import { LRUCache } from 'lru-cache'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import { withTimeout, type KeyValueStore } from '../stores/index.ts'
import { TierStats, type CacheTierStats } from './cache-stats.ts'
import type { InvalidationBus, InvalidationInput, InvalidationNotice } from './invalidation-bus.ts'
import { isHashedCacheKey, normalizeCacheKey, tagKey } from './keys.ts'
import { MAX_LEASE_TTL_MS, type Lease } from './lease.ts'
import type { CacheEntry, CacheStore } from './store.ts'
import { ValueCodec } from './value-codec.ts'

/**
 * Where tag invalidation times live. The engine reads them (and caches them briefly in
 * process) to decide whether an entry created before an invalidation is void; a shared
 * implementation (Redis) carries invalidations to every instance.
 */
export interface TagInvalidationStore {
  /** The last invalidation time (epoch ms) of each tag that has one; absent tags were never invalidated. */
  get(tags: readonly string[]): Promise<Map<string, number>>
  /** Records that `tags` were invalidated at `atMs`. */
  set(tags: readonly string[], atMs: number): Promise<void>
}

/** A MemoryTagStore looks for expired times once it holds more tags than this. */
const MEMORY_TAGS_PRUNE_ABOVE = 10_000
/** Tag times known in process, at most: the least recently checked are forgotten (and re-read from the tag store). */
const TAG_TIMES_MAX = 100_000

/**
 * Tag invalidation times in process memory: right for a single instance and for tests.
 *
 * @example
 * const cache = new TieredCache({ namespace: 'catalog', tiers: [], tagStore: new MemoryTagStore() })
 */
export class MemoryTagStore implements TagInvalidationStore {
  readonly #times = new Map<string, number>()
  readonly #retentionMs: number

  /** `retentionMs` (default 30 days) must outlive the longest `ttlS + graceS` in use, as for {@link KeyValueTagStore}. */
  constructor(options: { retentionMs?: number } = {}) {
    this.#retentionMs = options.retentionMs ?? 30 * 24 * 3_600_000
  }

  get(tags: readonly string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>()
    for (const tag of tags) {
      const at = this.#times.get(tag)
      if (at !== undefined) found.set(tag, at)
    }
    return Promise.resolve(found)
  }

  set(tags: readonly string[], atMs: number): Promise<void> {
    // Never move a time backwards: a late, slower invalidation must not resurrect entries.
    for (const tag of tags) this.#times.set(tag, Math.max(atMs, this.#times.get(tag) ?? 0))
    // Bounded: times older than the retention can void nothing any more.
    if (this.#times.size > MEMORY_TAGS_PRUNE_ABOVE) {
      const horizon = atMs - this.#retentionMs
      for (const [tag, at] of this.#times) if (at < horizon) this.#times.delete(tag)
    }
    return Promise.resolve()
  }
}

/**
 * Tag invalidation times in a {@link KeyValueStore} (Redis in production), so an invalidation
 * on one instance voids entries on all of them. Each time is kept `retentionMs` (default 30
 * days): it must outlive the longest `ttlS + graceS` in use, or an old entry could come back.
 *
 * @example
 * const tagStore = new KeyValueTagStore(new RedisKeyValueStore(redis), { prefix: 'cache-tags:' })
 */
export class KeyValueTagStore implements TagInvalidationStore {
  readonly #kv: KeyValueStore
  readonly #prefix: string
  readonly #retentionMs: number

  constructor(kv: KeyValueStore, options: { prefix?: string; retentionMs?: number } = {}) {
    this.#kv = kv
    this.#prefix = options.prefix ?? 'cache-tag:'
    this.#retentionMs = options.retentionMs ?? 30 * 24 * 3_600_000
    if (!Number.isSafeInteger(this.#retentionMs) || this.#retentionMs <= 0) throw new RangeError('retentionMs must be a positive integer')
  }

  async get(tags: readonly string[]): Promise<Map<string, number>> {
    const values = await Promise.all(tags.map((tag) => this.#kv.get(this.#prefix + tag)))
    const found = new Map<string, number>()
    tags.forEach((tag, i) => {
      const at = Number(values[i])
      // A value that is not a time (written by something else) is ignored rather than trusted.
      if (values[i] !== undefined && Number.isFinite(at)) found.set(tag, at)
    })
    return found
  }

  async set(tags: readonly string[], atMs: number): Promise<void> {
    await Promise.all(tags.map((tag) => this.#kv.set(this.#prefix + tag, String(atMs), this.#retentionMs)))
  }
}

/** Tier names in events: `l1` (in process), `l2`, `l3`... (the remote tiers in order), plus the loader, tag store and codec. */
export type CacheEventTier = string

/** One observation for the metrics hook. */
export interface CacheEvent {
  readonly tier: CacheEventTier
  /** `refresh` (tier `loader`): a hit past the refresh-ahead ratio started a background load. */
  readonly kind: 'hit' | 'miss' | 'stale' | 'error' | 'set' | 'evict' | 'refresh'
  /** How long the operation took (0 for in-process work). */
  readonly ms: number
  /** Why, for `error` events (never the cached value). */
  readonly reason?: string
  /** Encoded bytes read (remote hit) or written (remote set), or the encoded size of a refused value. */
  readonly bytes?: number
}

/**
 * A remote tier with its own lifetime cap: `ttlS` bounds how long this tier keeps an entry
 * (jittered like the TTL), whatever the entry's TTL; `name` replaces `l2`, `l3`... in events,
 * stats and breaker states.
 *
 * @example
 * new TieredCache({ namespace: 'catalog', l1: { ttlS: 30 }, tiers: [{ store: redisStore, ttlS: 300, name: 'redis' }] })
 */
export interface CacheTierConfig {
  readonly store: CacheStore
  readonly ttlS?: number
  readonly name?: string
}

/** Refresh-ahead: a fresh hit past `ratio` of its TTL starts one background refresh. */
export interface RefreshAheadOptions {
  /** Fraction of the TTL (0..1) after which a hit refreshes the value in the background. */
  readonly ratio: number
  /** Hits on the in-process copy needed before refreshing ahead (default 1): only hot keys refresh. */
  readonly minHits?: number
}

/** One entry of {@link TieredCache.warm}. */
export interface WarmEntry<T = unknown> {
  readonly key: string
  readonly loader: Loader<T>
  readonly options?: CacheSetOptions
}

/** What {@link TieredCache.warm} did. */
export interface WarmResult {
  /** Keys whose loader ran and whose value was stored. */
  readonly loaded: number
  /** Keys that already held a fresh value (not reloaded unless `force`). */
  readonly skipped: number
  /** Keys whose loader failed or whose key was invalid; they are listed in `failedKeys`. */
  readonly failed: number
  readonly failedKeys: readonly string[]
}

/** What a loader receives: `signal` aborts when the hard timeout gives up on it. */
export interface LoaderContext {
  readonly key: string
  readonly signal: AbortSignal
}

/** A function computing a value on a miss. */
export type Loader<T> = (context: LoaderContext) => T | Promise<T>

/** Per-call options of {@link TieredCache.getOrSet} and {@link TieredCache.set}. */
export interface CacheSetOptions {
  /** Freshness in seconds (jittered); defaults to the cache's `defaultTtlS`. */
  ttlS?: number
  /** How long past freshness a stale value may still be served, in seconds. */
  graceS?: number
  /** Tags for invalidation by tag. */
  tags?: readonly string[]
}

/** Options of {@link TieredCache.getOrSet}. */
export interface GetOrSetOptions extends CacheSetOptions {
  /**
   * With a stale value: `true` serves it at once and refreshes in the background; `false`
   * waits for the loader (up to the soft timeout), falling back to the stale value on error.
   */
  staleWhileRevalidate?: boolean
  /** Overrides the cache's `refreshAhead` for this call; `false` turns it off. */
  refreshAhead?: RefreshAheadOptions | false
}

const fn = <T>(message: string) => z.custom<T>((value) => typeof value === 'function', message)
const isStore = (value: unknown): value is CacheStore =>
  typeof value === 'object' &&
  value !== null &&
  ['get', 'getMany', 'set', 'delete', 'deletePrefix', 'close'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
const isTagStore = (value: unknown): value is TagInvalidationStore =>
  typeof value === 'object' && value !== null && typeof (value as Partial<TagInvalidationStore>).get === 'function' && typeof (value as Partial<TagInvalidationStore>).set === 'function'
const isBus = (value: unknown): value is InvalidationBus =>
  typeof value === 'object' && value !== null && ['publish', 'subscribe', 'close'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
const isLease = (value: unknown): value is Lease =>
  typeof value === 'object' && value !== null && ['acquire', 'release', 'close'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
const seconds = z.number().min(0).max(365 * 24 * 3_600)
const positiveSeconds = seconds.refine((value) => value > 0, 'must be more than 0')
const millis = z.number().int().min(1).max(3_600_000)
/** Names the engine uses for its own event sources; a tier may not take them. */
const RESERVED_TIER_NAMES = new Set(['l1', 'loader', 'codec', 'tags', 'bus', 'lease'])
const tierSchema = z.union([
  z.custom<CacheStore>(isStore, 'must be a CacheStore'),
  z
    .object({
      store: z.custom<CacheStore>(isStore, 'must be a CacheStore'),
      ttlS: positiveSeconds.optional(),
      name: z
        .string()
        .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be 1-32 characters of a-z, 0-9, _ and -, starting with a letter')
        .refine((name) => !RESERVED_TIER_NAMES.has(name), 'is reserved')
        .optional(),
    })
    .strict(),
])
const tierNames = (tiers: ReadonlyArray<z.output<typeof tierSchema>>): string[] => tiers.map((tier, i) => ('name' in tier && typeof tier.name === 'string' ? tier.name : `l${i + 2}`))

const optionsSchema = z
  .object({
    namespace: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1-64 characters of a-z, 0-9, _ and -'),
    l1: z
      .union([
        z.literal(false),
        z
          .object({
            maxEntries: z.number().int().min(1).max(100_000_000).default(10_000),
            maxBytes: z.number().int().min(1_024).max(Number.MAX_SAFE_INTEGER).default(64 * 1024 * 1024),
            /** The longest L1 keeps an entry (jittered), whatever its TTL: bounds how stale an instance without a bus gets. */
            ttlS: positiveSeconds.optional(),
          })
          .strict(),
      ])
      .default({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 }),
    /** Remote tiers, fastest first: a CacheStore, or `{ store, ttlS, name }` to cap its lifetime and name it. */
    tiers: z.array(tierSchema).max(8).default([]),
    /** Encoded values (after compression and encryption) larger than this are not cached; the call still answers. */
    maxValueBytes: z.number().int().min(1).max(512 * 1024 * 1024).default(1024 * 1024),
    /** Refresh hot keys before they expire; see {@link RefreshAheadOptions}. */
    refreshAhead: z
      .object({
        ratio: z.number().min(0).max(1),
        minHits: z.number().int().min(1).max(1_000_000).default(1),
      })
      .strict()
      .optional(),
    codec: z.custom<ValueCodec>((value) => value instanceof ValueCodec, 'must be a ValueCodec').optional(),
    defaultTtlS: seconds.refine((value) => value > 0, 'must be more than 0').default(300),
    graceS: seconds.default(0),
    jitter: z.number().min(0).max(0.5).default(0.1),
    loaderSoftTimeoutMs: millis.optional(),
    loaderHardTimeoutMs: millis.optional(),
    staleWhileRevalidate: z.boolean().default(true),
    breaker: z
      .object({
        failureThreshold: z.number().int().min(1).max(1_000).default(5),
        halfOpenAfterMs: millis.default(5_000),
      })
      .strict()
      .default({ failureThreshold: 5, halfOpenAfterMs: 5_000 }),
    tierTimeoutMs: millis.default(250),
    tagStore: z.custom<TagInvalidationStore>(isTagStore, 'must have get(tags) and set(tags, atMs)').optional(),
    /** How long tag invalidation times read from the tag store are trusted in process. */
    tagCacheMs: z.number().int().min(0).max(60_000).default(1_000),
    now: fn<Clock>('must be a function returning epoch ms').default(() => systemClock),
    random: fn<() => number>('must be a function returning a number in [0, 1)').default(() => Math.random),
    onEvent: fn<(event: CacheEvent) => void>('must be a function').optional(),
    /** Cross-instance L1 coherence: changes are published, peers' changes drop L1 entries. */
    bus: z.custom<InvalidationBus>(isBus, 'must be an InvalidationBus').optional(),
    /** Cross-instance stampede protection: one instance loads a missing key, the others wait for it. */
    lease: z
      .object({
        lease: z.custom<Lease>(isLease, 'must be a Lease'),
        /** How long a won lease holds before expiring on its own (a crashed holder blocks nobody longer). */
        ttlMs: z.number().int().min(1).max(MAX_LEASE_TTL_MS).default(5_000),
        /** How long a loser polls the remote tiers for the winner's value before loading itself. */
        waitMs: z.number().int().min(0).max(MAX_LEASE_TTL_MS).default(2_000),
        pollMs: z.number().int().min(1).max(60_000).default(50),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((o) => o.loaderSoftTimeoutMs === undefined || o.loaderHardTimeoutMs === undefined || o.loaderSoftTimeoutMs < o.loaderHardTimeoutMs, {
    message: 'must be shorter than loaderHardTimeoutMs',
    path: ['loaderSoftTimeoutMs'],
  })
  .refine((o) => o.lease === undefined || o.lease.pollMs <= Math.max(o.lease.waitMs, 1), {
    message: 'must not be longer than waitMs',
    path: ['lease', 'pollMs'],
  })
  .refine((o) => new Set(tierNames(o.tiers)).size === o.tiers.length, { message: 'tier names must be unique', path: ['tiers'] })

/** Options of {@link TieredCache}; see the class comment. */
export type TieredCacheOptions = z.input<typeof optionsSchema>

interface L1Entry {
  readonly value: unknown
  readonly createdAt: number
  readonly freshUntil: number
  readonly staleUntil: number
  readonly tags: readonly string[]
  /** Hits on this in-process copy (refresh-ahead's `minHits`). */
  hits: number
  /** Earliest time a refresh-ahead may start again (backs off after one starts or fails). */
  refreshAfter: number
  /**
   * min(freshUntil, staleUntil): a read before it is a fresh hit. One field for the hit path,
   * because every double field read is a pointer chase (V8 boxes them); kept in step with the
   * two bounds wherever an entry is built.
   */
  readonly hitUntil: number
}

interface Found {
  readonly entry: L1Entry
  readonly fresh: boolean
}

interface Flight {
  /** Assigned right after creation: the load needs the flight to check `voided`. */
  promise: Promise<unknown>
  readonly tags: readonly string[]
  /** Set by delete/invalidate/clear during the load: its result must not be written. */
  voided: boolean
}

interface Tier {
  readonly name: string
  readonly store: CacheStore
  readonly breaker: CircuitBreakerPolicy
  /** The tier's lifetime cap in ms, before jitter. */
  readonly capMs: number | undefined
  readonly stats: TierStats
}

const BREAKER_STATES = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
} as const

/** Rough bookkeeping cost of one L1 entry (LRU slots, envelope object, timestamps). */
const ENTRY_OVERHEAD_BYTES = 128
/** The walk estimating a value's size stops after this many nodes and extrapolates. */
const SIZE_WALK_LIMIT = 10_000
/**
 * With the system clock, L1 hit checks reuse one clock read for at most this many reads (and
 * until the next 1 ms timer tick), like lru-cache's `ttlResolution`: a Date.now() per hit
 * would cost more than the whole lookup.
 */
const COARSE_CLOCK_READS = 64
/**
 * Marks L1 keys of hashed (long) cache keys. A control character can never be part of a valid
 * key, so a caller's key looked up as is can only find the entry stored under that very key.
 */
const HASHED_L1_MARK = '\u0000'

/**
 * A read-through cache over an in-process LRU (decoded values) and remote tiers (codec bytes,
 * with the full key as AAD so a value copied to another key does not open). `getOrSet` looks
 * in L1, then each remote tier in order, backfilling the tiers above a hit, then calls the
 * loader once per key per process (single-flight) and writes every tier.
 *
 * Entries carry tags; `invalidateTags` records a time in the tag store, and an entry created
 * at or before that time is void on every tier and (with a shared tag store) every instance.
 * Past `freshUntil` and within grace, a stale value is served while one background load
 * refreshes it; a failed or timed-out load falls back to the stale value. Each remote tier
 * sits behind a timeout and its own circuit breaker: a failing tier is skipped and reported
 * through `onEvent`, so a cache outage slows requests down but never fails them.
 *
 * With a `bus`, every change (set, delete, tag invalidation, clear, a completed load) is
 * published and peers drop the matching L1 entries; a resync notice drops all of L1. With a
 * `lease`, a load is preceded by a cross-instance lease: the winner loads, the losers serve
 * their stale value or poll the remote tiers for the winner's result (up to `waitMs`, then
 * load themselves). Bus and lease failures are reported through `onEvent` and never fail a call.
 *
 * Each tier may cap how long it keeps an entry (`l1.ttlS`, `{ store, ttlS }`): a short L1
 * life bounds how stale an instance gets, a long one in a shared tier spares the loader; a
 * backfill keeps the entry's remaining life (capped), never extending it. With
 * `refreshAhead`, a fresh hit past `ratio` of the TTL starts one background refresh, so hot
 * keys never go stale. `warm()` loads many keys with bounded concurrency, `prefetch()` copies
 * what the remote tiers hold into L1, and `stats()` counts per tier (plain integer
 * increments on the L1 hit path). Encoded values over `maxValueBytes` are not cached.
 *
 * Hot path: `peek(key)` answers a fresh L1 value synchronously (no promise, no tier, no
 * loader) and is the read to use where a value is needed at once; `get`/`getOrSet` answer an
 * L1 hit with no await inside. Both look the caller's key up in L1 as is (validation and NFC
 * normalisation run only when it is not found there) and, on the system clock, reuse one clock
 * read for up to 64 hit checks until a 1 ms timer clears it, as lru-cache's `ttlResolution`
 * does: an entry may be served about a millisecond past its freshness (longer only while the
 * event loop is blocked, and for at most 64 reads). An injected `now` is read on every check.
 *
 * @example
 * const cache = new TieredCache({ namespace: 'catalog', tiers: [new RedisCacheStore({ redis })], graceS: 60 })
 * const album = await cache.getOrSet(`album:${id}`, () => db.album(id), { ttlS: 300, tags: [`album:${id}`] })
 * const again = cache.peek<Album>(`album:${id}`) // sync; undefined unless fresh in L1
 * await cache.invalidateTags([`album:${id}`])
 */
export class TieredCache {
  readonly options: Readonly<z.output<typeof optionsSchema>>
  readonly #l1: LRUCache<string, L1Entry> | undefined
  readonly #tiers: readonly Tier[]
  readonly #codec: ValueCodec
  readonly #tagStore: TagInvalidationStore
  readonly #tagTimes = new Map<string, { at: number; checkedAt: number }>()
  readonly #flights = new Map<string, Flight>()
  readonly #background = new Set<Promise<unknown>>()
  readonly #now: Clock
  readonly #prefix: string
  readonly #unsubscribe: (() => void) | undefined
  /** Declared before #l1 is built: its size calculation counts bytes here. */
  readonly #l1Stats = new TierStats()
  readonly #l1CapMs: number | undefined
  /** The clock is the system clock: L1 hit checks may use {@link TieredCache.#hitNow}'s cached time. */
  readonly #coarseClock: boolean
  /** The cached time for hit checks (0: none). */
  #cachedNow = 0
  #cachedReads = 0
  /** `options.onEvent`, kept in a field: the hit path checks it on every read. */
  readonly #onEvent: ((event: CacheEvent) => void) | undefined
  readonly #forgetNow = (): void => {
    this.#cachedNow = 0
  }
  #closed = false

  constructor(options: TieredCacheOptions) {
    this.options = parseOptions('cache', optionsSchema, options)
    const { now, l1, breaker } = this.options
    this.#now = now
    this.#coarseClock = now === systemClock
    this.#onEvent = this.options.onEvent
    this.#prefix = `${this.options.namespace}:`
    this.#codec = this.options.codec ?? new ValueCodec()
    this.#tagStore = this.options.tagStore ?? new MemoryTagStore()
    this.#l1 =
      l1 === false
        ? undefined
        : new LRUCache<string, L1Entry>({
            max: l1.maxEntries,
            maxSize: l1.maxBytes,
            sizeCalculation: (entry, key) => {
              const size = l1Size(this.#prefix.length + key.length - (key.startsWith(HASHED_L1_MARK) ? 1 : 0), entry)
              this.#l1Stats.bytesWritten += size
              return size
            },
            // No lru-cache TTL: every read compares the entry's staleUntil itself (and drops
            // what has expired), LRU order and maxBytes bound the rest. lru-cache's own TTL
            // check would read the clock a second time on every hit.
            dispose: (_entry, _key, reason) => {
              if (reason === 'evict') this.#tierEvent('l1', this.#l1Stats, 'evict', 0)
            },
          })
    this.#l1CapMs = l1 === false || l1.ttlS === undefined ? undefined : l1.ttlS * 1_000
    const names = tierNames(this.options.tiers)
    this.#tiers = this.options.tiers.map((tier, i) => ({
      name: names[i] ?? `l${i + 2}`,
      store: isStore(tier) ? tier : tier.store,
      capMs: isStore(tier) || tier.ttlS === undefined ? undefined : tier.ttlS * 1_000,
      stats: new TierStats(),
      breaker: circuitBreaker(handleAll, { halfOpenAfter: breaker.halfOpenAfterMs, breaker: new ConsecutiveBreaker(breaker.failureThreshold) }),
    }))
    this.#unsubscribe = this.options.bus?.subscribe((notice) => this.#applyRemote(notice))
  }

  /**
   * The cached value of `key`, or what `loader` returns (then cached). Concurrent calls for one
   * key share one loader call. The loader's error propagates only when no stale value exists;
   * `ERR_DEPENDENCY_TIMEOUT` when it outlives `loaderHardTimeoutMs`.
   *
   * @example
   * const track = await cache.getOrSet(`track:${id}`, ({ signal }) => api.track(id, { signal }), { ttlS: 60, graceS: 600, tags: ['tracks'] })
   */
  async getOrSet<T>(key: string, loader: Loader<T>, options: GetOrSetOptions = {}): Promise<T> {
    const hot = this.#l1Hot(key)
    const full = hot === undefined ? this.#fullKey(key) : ''
    const tags = validTags(options.tags)
    const ahead = options.refreshAhead ?? this.options.refreshAhead
    if (options.refreshAhead !== undefined && options.refreshAhead !== false) validRefreshAhead(options.refreshAhead)
    if (hot !== undefined) {
      this.#countL1Hit(hot)
      // A direct L1 hit proves `key` is valid and already normalised (see #l1Hot).
      if (ahead !== undefined && ahead !== false) this.#refreshAhead(key, this.#prefix + key, loader, options, tags, hot, ahead)
      return hot.value as T
    }
    const found = await this.#lookup(full)
    if (found?.fresh === true) {
      if (ahead !== undefined && ahead !== false) this.#refreshAhead(key, full, loader, options, tags, found.entry, ahead)
      return found.entry.value as T
    }
    const flight = this.#flight(key, full, loader, options, tags, found?.entry)
    if (found === undefined) return (await flight.promise) as T
    const stale = found.entry.value as T
    if (options.staleWhileRevalidate ?? this.options.staleWhileRevalidate) {
      // The flight is shared, so however many callers see the stale value, one refresh runs.
      this.#track(flight.promise)
      return stale
    }
    return this.#staleFallback(flight.promise as Promise<T>, stale)
  }

  /**
   * The fresh cached value of `key`, or undefined (a value only in grace counts as absent
   * unless `allowStale`).
   *
   * @example const album = await cache.get<Album>(`album:${id}`)
   */
  async get<T>(key: string, options: { allowStale?: boolean } = {}): Promise<T | undefined> {
    const hot = this.#l1Hot(key)
    if (hot !== undefined) {
      this.#countL1Hit(hot)
      return hot.value as T
    }
    const found = await this.#lookup(this.#fullKey(key))
    if (found === undefined || (!found.fresh && options.allowStale !== true)) return undefined
    return found.entry.value as T
  }

  /**
   * The fresh value of `key` in L1, synchronously, or undefined: the hot-path read for code
   * that can use a value at once and fall back to `get`/`getOrSet` otherwise. It never looks
   * in the remote tiers, never calls a loader and never waits: a value past its freshness, an
   * entry whose tags have not been checked against the tag store within `tagCacheMs` (so may
   * have been invalidated), and any key when L1 is off all answer undefined. Counted in
   * `stats().l1` like a read: a hit, `stale` for a value in grace, a miss otherwise. Throws
   * `ERR_STORE_VALUE_REJECTED` for an invalid key.
   *
   * @example
   * const track = cache.peek<Track>(`track:${id}`) ?? (await cache.getOrSet(`track:${id}`, () => db.track(id)))
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as get<T>: the caller names the type it cached
  peek<T>(key: string): T | undefined {
    const l1 = this.#l1
    // #l1Hot and #countL1Hit, inlined by hand: this is the path measured against a bare LRU get.
    const hot = l1?.get(key)
    if (hot !== undefined && key.charCodeAt(0) !== 0) {
      const now = this.#hitNow()
      if (hot.hitUntil > now && (hot.tags.length === 0 || this.#tagsKnownValid(hot, now) === true)) {
        hot.hits += 1
        this.#l1Stats.hits += 1
        if (this.#onEvent !== undefined) this.#emit('l1', 'hit', 0)
        return hot.value as T
      }
    }
    return this.#peekSlow(key) as T | undefined
  }

  /** The rest of peek, out of line so the hit path stays small enough to inline into callers. */
  #peekSlow(key: string): unknown {
    const l1 = this.#l1
    // Not a plain fresh hit: validate the key (throws), then look again under its L1 key.
    const l1Key = this.#l1Key(this.#fullKey(key))
    if (l1 === undefined) return undefined
    const local = l1.get(l1Key)
    if (local !== undefined) {
      const now = this.#hitNow()
      const tagsValid = local.tags.length === 0 ? true : this.#tagsKnownValid(local, now)
      if (local.staleUntil <= now || tagsValid === false) l1.delete(l1Key)
      else if (tagsValid === true && local.freshUntil > now) {
        this.#countL1Hit(local)
        return local.value
      } else if (tagsValid === true) {
        this.#tierEvent('l1', this.#l1Stats, 'stale', 0)
        return undefined
      }
    }
    this.#tierEvent('l1', this.#l1Stats, 'miss', 0)
    return undefined
  }

  /**
   * Writes `value` to every tier. A value the codec refuses (too large, unserializable) is
   * not cached anywhere and the call resolves all the same; a failing tier is skipped.
   *
   * @example await cache.set(`album:${id}`, album, { ttlS: 300, tags: [`album:${id}`] })
   */
  async set(key: string, value: unknown, options: CacheSetOptions = {}): Promise<void> {
    const full = this.#fullKey(key)
    const tags = validTags(options.tags)
    this.#voidFlight(full)
    await this.#write(full, value, this.#now(), options, tags)
    await this.#publish({ keys: [key] })
  }

  /**
   * Removes `key` from every tier (and voids a load in flight for it).
   *
   * @example await cache.delete(`album:${id}`)
   */
  async delete(key: string): Promise<void> {
    const full = this.#fullKey(key)
    this.#voidFlight(full)
    this.#l1?.delete(this.#l1Key(full))
    await Promise.all(this.#tiers.map((tier) => this.#call(tier, (store) => store.delete(full))))
    await this.#publish({ keys: [key] })
  }

  /**
   * Voids every entry carrying any of `tags`, on every tier and (with a shared tag store)
   * every instance. Throws `ERR_DEPENDENCY_UNAVAILABLE` when the tag store cannot record it:
   * this instance is already invalidated, but the caller must know others may not be.
   *
   * @example await cache.invalidateTags(['album:a1', 'artist:r9'])
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const valid = validTags(tags)
    if (valid.length === 0) return
    const at = this.#now()
    for (const tag of valid) {
      const known = this.#tagTimes.get(tag)
      this.#rememberTag(tag, { at: Math.max(at, known?.at ?? 0), checkedAt: at })
    }
    const doomed = new Set(valid)
    if (this.#l1 !== undefined) {
      const drop: string[] = []
      for (const [key, entry] of this.#l1.entries()) if (entry.tags.some((t) => doomed.has(t))) drop.push(key)
      for (const key of drop) this.#l1.delete(key)
    }
    for (const flight of this.#flights.values()) if (flight.tags.some((t) => doomed.has(t))) flight.voided = true
    const started = performance.now()
    let failure: unknown
    try {
      await withTimeout(this.#tagStore.set(valid, at), this.options.tierTimeoutMs, () => new Error(`the tag store did not answer within ${this.options.tierTimeoutMs} ms`))
    } catch (err) {
      this.#emit('tags', 'error', performance.now() - started, reasonText(err))
      failure = err
    }
    // Published even when the tag store failed: peers' L1 copies are dropped all the same.
    await this.#publish({ tags: valid })
    if (failure !== undefined) throw new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: 'cache tag store' }, cause: failure })
  }

  /**
   * Empties the namespace on every tier (other namespaces sharing the stores are untouched).
   *
   * @example await cache.clear()
   */
  async clear(): Promise<void> {
    for (const flight of this.#flights.values()) flight.voided = true
    this.#l1?.clear()
    await Promise.all(this.#tiers.map((tier) => this.#call(tier, (store) => store.deletePrefix(this.#prefix))))
    await this.#publish({ clear: true })
  }

  /**
   * Stops listening to the bus and waits for work in flight. The bus, lease and stores are
   * not closed: they may be shared with other caches, so whoever opened them closes them.
   *
   * @example await cache.close()
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#unsubscribe?.()
    await this.drain()
  }

  /**
   * Wraps `fn` so calls with the same derived key share one cached result.
   *
   * @example
   * const albumById = cache.cached((id: string) => db.album(id), { key: (id) => `album:${id}`, ttlS: 300, tags: (id) => [`album:${id}`] })
   * await albumById('a1')
   */
  cached<A extends unknown[], R>(
    fn: (...args: A) => R | Promise<R>,
    options: Omit<GetOrSetOptions, 'tags'> & { key: (...args: A) => string; tags?: readonly string[] | ((...args: A) => readonly string[]) },
  ): (...args: A) => Promise<R> {
    const { key, tags, ...rest } = options
    return (...args: A) => {
      const perCall: GetOrSetOptions = tags === undefined ? rest : { ...rest, tags: typeof tags === 'function' ? tags(...args) : tags }
      return this.getOrSet(key(...args), () => fn(...args), perCall)
    }
  }

  /**
   * Loads and stores many values with at most `concurrency` loaders running at once (default
   * 8): for a cold start or after a deploy. Keys that already hold a fresh value are skipped
   * unless `force`. Failures are counted and listed, never thrown (each loader error is also
   * reported through `onEvent`); a key that is invalid counts as failed.
   *
   * @example
   * const result = await cache.warm(topAlbums.map((id) => ({ key: `album:${id}`, loader: () => db.album(id), options: { ttlS: 300 } })), { concurrency: 4 })
   * // { loaded: 97, skipped: 0, failed: 3, failedKeys: [...] }
   */
  async warm(entries: Iterable<WarmEntry>, options: { concurrency?: number; force?: boolean } = {}): Promise<WarmResult> {
    const { concurrency, force } = parseOptions('cache.warm', warmSchema, options)
    const iterator = entries[Symbol.iterator]()
    let loaded = 0
    let skipped = 0
    const failedKeys: string[] = []
    const worker = async (): Promise<void> => {
      for (let next = iterator.next(); next.done !== true; next = iterator.next()) {
        const { key, loader, options: setOptions = {} } = next.value
        try {
          const full = this.#fullKey(key)
          const tags = validTags(setOptions.tags)
          if (!force) {
            const found = await this.#lookup(full)
            if (found?.fresh === true) {
              skipped += 1
              continue
            }
          }
          // Through the single-flight map: a warm-up and a request for one key share one load.
          await this.#flight(key, full, loader, setOptions, tags, undefined).promise
          loaded += 1
        } catch {
          failedKeys.push(key)
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { loaded, skipped, failed: failedKeys.length, failedKeys }
  }

  /**
   * Copies the entries the remote tiers already hold for `keys` into L1 (one `getMany` per
   * tier, fastest tier first), without calling any loader: before a burst of reads whose keys
   * are known. Resolves how many keys are now held in L1 (fresh or within grace); keys already
   * fresh in L1 are not fetched and count as found. Without L1 it does nothing and resolves 0.
   * Tier failures and unreadable entries are reported through `onEvent`, never thrown; an
   * invalid key throws `ERR_STORE_VALUE_REJECTED` before any I/O.
   *
   * @example
   * await cache.prefetch(playlist.trackIds.map((id) => `track:${id}`))
   */
  async prefetch(keys: Iterable<string>): Promise<number> {
    const fulls = [...new Set(Array.from(keys, (key) => this.#fullKey(key)))]
    const l1 = this.#l1
    if (l1 === undefined) return 0
    const now = this.#now()
    let pending = fulls.filter((full) => {
      const local = l1.get(this.#l1Key(full))
      return local === undefined || local.freshUntil <= now || local.staleUntil <= now
    })
    let found = fulls.length - pending.length
    for (const tier of this.#tiers) {
      if (pending.length === 0) break
      const batch = pending
      const result = await this.#call(tier, (store) => store.getMany(batch))
      if (!result.ok) continue
      const missing: string[] = []
      for (const [i, full] of batch.entries()) {
        const entry = await this.#readStored(tier, full, result.value[i])
        if (entry === undefined) missing.push(full)
        else {
          this.#l1Set(full, entry, this.#spread(), this.#now())
          found += 1
        }
      }
      pending = missing
    }
    return found
  }

  /**
   * Counters per tier (`l1` when enabled, then each remote tier by name) since the cache was
   * created: hits, misses, stale, errors, sets, evictions, bytes and a latency histogram.
   * Cheap to keep (integer increments on the L1 hit path); the snapshot is a copy.
   *
   * @example
   * const { l1, l2 } = cache.stats()
   * metrics.gauge('cache_l1_hit_ratio', l1.hits / (l1.hits + l1.misses))
   */
  stats(): Record<string, CacheTierStats> {
    const out: Record<string, CacheTierStats> = {}
    if (this.#l1 !== undefined) out.l1 = this.#l1Stats.snapshot()
    for (const tier of this.#tiers) out[tier.name] = tier.stats.snapshot()
    return out
  }

  /** Resolves once every background refresh and load in flight has settled (for shutdown and tests). */
  async drain(): Promise<void> {
    while (this.#background.size > 0 || this.#flights.size > 0) {
      await Promise.allSettled([...this.#background, ...[...this.#flights.values()].map((f) => f.promise)])
    }
  }

  /** `closed` while a remote tier answers, `open` while it is skipped; by tier name (`l2`, `l3`...). */
  get breakerStates(): Record<string, 'closed' | 'open' | 'half-open' | 'isolated'> {
    const states: Record<string, 'closed' | 'open' | 'half-open' | 'isolated'> = {}
    for (const tier of this.#tiers) states[tier.name] = BREAKER_STATES[tier.breaker.state]
    return states
  }

  /**
   * The L1 hit path, synchronous and without validating `key`: the caller's key is looked up
   * as is, because only valid, normalised keys are ever stored under their own spelling (a
   * hashed key is stored behind HASHED_L1_MARK, which no valid key contains). Returns the
   * entry when it is fresh and its tags are known valid; counts nothing, so the caller can
   * still reject its other arguments. Anything else (absent, stale, unnormalised spelling,
   * tags to check) is left to the slow path, which counts it.
   */
  #l1Hot(key: string): L1Entry | undefined {
    const local = this.#l1?.get(key)
    if (local === undefined || key.charCodeAt(0) === 0) return undefined
    const now = this.#hitNow()
    if (!(local.hitUntil > now)) return undefined
    if (local.tags.length > 0 && this.#tagsKnownValid(local, now) !== true) return undefined
    return local
  }

  #countL1Hit(entry: L1Entry): void {
    entry.hits += 1
    this.#l1Stats.hits += 1
    if (this.#onEvent !== undefined) this.#emit('l1', 'hit', 0)
  }

  /**
   * The time for L1 hit checks. With the system clock, one Date.now() serves up to
   * COARSE_CLOCK_READS reads until a 1 ms timer forgets it, so it is never ahead of the clock
   * and at most about a millisecond behind (like lru-cache's ttlResolution); an injected clock
   * is read every time.
   */
  #hitNow(): number {
    const cached = this.#cachedNow
    if (cached !== 0 && ++this.#cachedReads < COARSE_CLOCK_READS) return cached
    const now = this.#now()
    if (!this.#coarseClock) return now
    if (cached === 0) setTimeout(this.#forgetNow, 1).unref()
    this.#cachedNow = now
    this.#cachedReads = 0
    return now
  }

  /**
   * Whether an entry's tags are valid, from the tag times cached in process: false when one
   * is known to void it, true when all were checked within `tagCacheMs` and none does,
   * undefined when the tag store must be asked.
   */
  #tagsKnownValid(entry: L1Entry, now: number): boolean | undefined {
    const cacheMs = this.options.tagCacheMs
    let known = true
    for (const tag of entry.tags) {
      const times = this.#tagTimes.get(tag)
      if (times === undefined) known = false
      // Invalidation times only move forward: an old reading that voids the entry still does.
      else if (times.at >= entry.createdAt) return false
      else if (cacheMs === 0 || now - times.checkedAt >= cacheMs) known = false
    }
    return known ? true : undefined
  }

  /** `<namespace>:<normalised key>`; throws ERR_STORE_VALUE_REJECTED for an invalid key. */
  #fullKey(key: string): string {
    return this.#prefix + normalizeCacheKey(key)
  }

  /** The L1 key of a full key: the normalised key itself, or the marked hashed form. */
  #l1Key(full: string): string {
    const normalized = full.slice(this.#prefix.length)
    return isHashedCacheKey(normalized) ? HASHED_L1_MARK + normalized : normalized
  }

  async #lookup(full: string): Promise<Found | undefined> {
    const l1 = this.#l1
    let l1Key = ''
    if (l1 !== undefined) {
      l1Key = this.#l1Key(full)
      const now = this.#now()
      const local = l1.get(l1Key)
      if (local !== undefined) {
        if (local.staleUntil > now && (local.tags.length === 0 || (await this.#tagsValid(local)))) {
          const fresh = local.freshUntil > now
          local.hits += 1
          if (fresh) this.#l1Stats.hits += 1
          else this.#l1Stats.stale += 1
          if (this.#onEvent !== undefined) this.#emit('l1', fresh ? 'hit' : 'stale', 0)
          return { entry: local, fresh }
        }
        l1.delete(l1Key)
      }
      this.#tierEvent('l1', this.#l1Stats, 'miss', 0)
    }
    const tiers = this.#tiers
    const ms = this.options.tierTimeoutMs
    for (let index = 0; index < tiers.length; index++) {
      const tier = tiers[index] as Tier
      // #call inlined: this is the remote hit path, one frame and one result object fewer.
      const started = performance.now()
      let stored: CacheEntry | undefined
      try {
        stored = await tier.breaker.execute(() => withTimeout(tier.store.get(full), ms, () => new Error(`the ${tier.store.kind} tier did not answer within ${ms} ms`)))
      } catch (err) {
        const took = performance.now() - started
        tier.stats.observe(took)
        this.#tierEvent(tier.name, tier.stats, 'error', took, reasonText(err))
        continue
      }
      const took = performance.now() - started
      tier.stats.observe(took)
      let now = this.#now()
      const entry = this.#decodeStored(tier, full, stored, now, took)
      if (stored === undefined || entry === undefined) continue
      if (entry.tags.length > 0) {
        if (!(await this.#tagsValid(entry))) {
          this.#tierEvent(tier.name, tier.stats, 'miss', took)
          continue
        }
        now = this.#now()
      }
      const fresh = entry.freshUntil > now
      this.#tierEvent(tier.name, tier.stats, fresh ? 'hit' : 'stale', took, undefined, stored.value.byteLength)
      // This read is the copy's first hit (refresh-ahead's minHits, also without L1).
      entry.hits = 1
      if (l1 === undefined && index === 0) return { entry, fresh }
      const spread = this.#spread()
      if (l1 !== undefined) this.#l1Set(full, entry, spread, now, l1Key)
      // Backfill the faster tiers above; not awaited, a slow tier must not delay this hit. The
      // entry keeps its expiry (capped by each tier): a backfill never extends a lifetime.
      for (let above = 0; above < index; above++) {
        const tierAbove = tiers[above] as Tier
        const capped = capLifetime(stored, tierUntil(tierAbove.capMs, now, spread))
        this.#track(this.#call(tierAbove, (store) => store.set(full, capped), 'set', stored.value.byteLength))
      }
      return { entry, fresh }
    }
    return undefined
  }

  /**
   * What a tier returned as an entry to check, reporting a miss (absent, expired) or an
   * unreadable value (a miss plus an error event, never a throw); the caller checks the tags
   * and reports the hit.
   */
  #decodeStored(tier: Tier, full: string, stored: CacheEntry | undefined, now: number, ms: number): L1Entry | undefined {
    if (stored === undefined || stored.staleUntil <= now) {
      this.#tierEvent(tier.name, tier.stats, 'miss', ms)
      return undefined
    }
    const decoded = this.#codec.decode(stored.value, full)
    if (!decoded.ok) {
      this.#tierEvent(tier.name, tier.stats, 'error', ms, `unreadable entry: ${decoded.reason}`)
      this.#tierEvent(tier.name, tier.stats, 'miss', ms)
      return undefined
    }
    return { value: decoded.value, createdAt: stored.createdAt, freshUntil: stored.freshUntil, staleUntil: stored.staleUntil, tags: stored.tags, hits: 0, refreshAfter: 0, hitUntil: Math.min(stored.freshUntil, stored.staleUntil) }
  }

  /** A tier's entry (from prefetch's getMany) as a servable entry, reporting hit, stale or miss. */
  async #readStored(tier: Tier, full: string, stored: CacheEntry | undefined): Promise<L1Entry | undefined> {
    const entry = this.#decodeStored(tier, full, stored, this.#now(), 0)
    if (stored === undefined || entry === undefined) return undefined
    if (entry.tags.length > 0 && !(await this.#tagsValid(entry))) {
      this.#tierEvent(tier.name, tier.stats, 'miss', 0)
      return undefined
    }
    this.#tierEvent(tier.name, tier.stats, entry.freshUntil > this.#now() ? 'hit' : 'stale', 0, undefined, stored.value.byteLength)
    return entry
  }

  /**
   * A fresh hit past `ratio` of its TTL (and with `minHits` hits on this copy) starts one
   * background load through the single-flight map; the caller already has its value. A
   * failure is reported by the load and leaves the entry as it was.
   */
  #refreshAhead(key: string, full: string, loader: Loader<unknown>, options: CacheSetOptions, tags: readonly string[], entry: L1Entry, ahead: RefreshAheadOptions): void {
    if (entry.hits < (ahead.minHits ?? 1) || this.#flights.has(full)) return
    const now = this.#now()
    if (now < entry.refreshAfter) return
    const ttl = entry.freshUntil - entry.createdAt
    if (now - entry.createdAt < ahead.ratio * ttl) return
    // Until this refresh lands: halfway to expiry (at least a second), so a failing loader is
    // retried a few times before the value goes stale, not on every hit.
    const left = entry.freshUntil - now
    entry.refreshAfter = now + Math.max(Math.min(1_000, left), Math.round(left / 2))
    this.#emit('loader', 'refresh', 0)
    this.#track(this.#flight(key, full, loader, options, tags, entry).promise)
  }

  #flight(key: string, full: string, loader: Loader<unknown>, options: CacheSetOptions, tags: readonly string[], stale: L1Entry | undefined): Flight {
    const existing = this.#flights.get(full)
    if (existing !== undefined) return existing
    const flight: Flight = { tags, voided: false, promise: Promise.resolve() }
    const loadAndWrite = async (): Promise<unknown> => {
      // Load start, not end: an invalidation that lands while the loader runs voids its result.
      const createdAt = this.#now()
      const value = await this.#load(full, loader)
      if (!flight.voided) {
        await this.#write(full, value, createdAt, options, tags)
        await this.#publish({ keys: [key] })
      }
      return value
    }
    flight.promise = this.options.lease === undefined ? loadAndWrite() : this.#leased(full, loadAndWrite, stale)
    this.#flights.set(full, flight)
    const forget = (): void => {
      if (this.#flights.get(full) === flight) this.#flights.delete(full)
    }
    flight.promise.then(forget, forget)
    return flight
  }

  /** Runs the loader under the hard timeout, reporting the outcome. */
  async #load(full: string, loader: Loader<unknown>): Promise<unknown> {
    const controller = new AbortController()
    const hardMs = this.options.loaderHardTimeoutMs
    const started = performance.now()
    let loaded = Promise.resolve().then(() => loader({ key: full, signal: controller.signal }))
    if (hardMs !== undefined) {
      loaded = withDeadline(loaded, hardMs, () => {
        const error = new BackbeatError('ERR_DEPENDENCY_TIMEOUT', { params: { dependency: 'cache loader', timeoutMs: hardMs } })
        controller.abort(error)
        return error
      })
    }
    try {
      const value = await loaded
      this.#emit('loader', 'set', performance.now() - started)
      return value
    } catch (err) {
      this.#emit('loader', 'error', performance.now() - started, reasonText(err))
      throw err
    }
  }

  /**
   * The load behind the cross-instance lease. Winner: load, write, release. Loser: the stale
   * value if there is one, else the winner's value once it reaches a remote tier, else (after
   * `waitMs`) a load of its own. A lease store that fails is skipped (fail open): the lease
   * only saves work, and its outage must not stop reads.
   */
  async #leased(full: string, loadAndWrite: () => Promise<unknown>, stale: L1Entry | undefined): Promise<unknown> {
    const config = this.options.lease
    if (config === undefined) return loadAndWrite()
    const { lease, ttlMs, waitMs, pollMs } = config
    const started = performance.now()
    let token: string | undefined
    try {
      token = await lease.acquire(full, ttlMs)
    } catch (err) {
      this.#emit('lease', 'error', performance.now() - started, reasonText(err))
      return loadAndWrite()
    }
    if (token !== undefined) {
      try {
        return await loadAndWrite()
      } finally {
        await lease.release(full, token).catch((err: unknown) => {
          // It expires on its own after ttlMs; until then peers wait or serve stale.
          this.#emit('lease', 'error', 0, reasonText(err))
        })
      }
    }
    if (stale !== undefined) return stale.value
    if (this.#tiers.length > 0) {
      // Counted in polls, not clock time: an injected clock that stands still cannot stall this.
      const polls = Math.floor(waitMs / pollMs)
      for (let i = 0; i < polls && !this.#closed; i++) {
        await sleep(pollMs)
        const found = await this.#lookup(full)
        if (found !== undefined) return found.entry.value
      }
    }
    return loadAndWrite()
  }

  /** Waits for the load up to the soft timeout; the stale value answers a timeout or an error. */
  #staleFallback<T>(load: Promise<T>, stale: T): Promise<T> {
    const softMs = this.options.loaderSoftTimeoutMs
    return new Promise<T>((resolve) => {
      const timer =
        softMs === undefined
          ? undefined
          : setTimeout(() => {
              this.#track(load)
              resolve(stale)
            }, softMs)
      load.then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        () => {
          // Already reported by the flight; stale-if-error.
          clearTimeout(timer)
          resolve(stale)
        },
      )
    })
  }

  async #write(full: string, value: unknown, createdAt: number, options: CacheSetOptions, tags: readonly string[]): Promise<void> {
    const now = this.#now()
    const ttlS = options.ttlS ?? this.options.defaultTtlS
    const graceS = options.graceS ?? this.options.graceS
    if (!(Number.isFinite(ttlS) && ttlS > 0) || !(Number.isFinite(graceS) && graceS >= 0)) {
      throw new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { reason: 'ttlS must be a positive number of seconds and graceS zero or more' } })
    }
    // Jitter spreads the expiry of keys written together, so they are not reloaded together;
    // the same factor scales the tier caps.
    const spread = this.#spread()
    const freshUntil = now + Math.max(1, Math.round(ttlS * 1_000 * spread))
    const staleUntil = freshUntil + Math.round(graceS * 1_000)
    const entry: L1Entry = { value, createdAt, freshUntil, staleUntil, tags, hits: 0, refreshAfter: 0, hitUntil: Math.min(freshUntil, staleUntil) }
    if (this.#tiers.length === 0) {
      this.#l1Set(full, entry, spread, now)
      return
    }
    let bytes: Uint8Array
    try {
      bytes = this.#codec.encode(value, full)
      if (bytes.byteLength > this.options.maxValueBytes) {
        this.#emit('codec', 'error', 0, `value is ${bytes.byteLength} bytes encoded, over the ${this.options.maxValueBytes}-byte maxValueBytes limit`, bytes.byteLength)
        this.#l1?.delete(this.#l1Key(full))
        return
      }
    } catch (err) {
      // Not cached anywhere: an L1-only copy would make this instance disagree with the others.
      this.#emit('codec', 'error', 0, reasonText(err))
      this.#l1?.delete(this.#l1Key(full))
      return
    }
    this.#l1Set(full, entry, spread, now)
    const stored: CacheEntry = { value: bytes, createdAt, freshUntil, staleUntil, tags }
    await Promise.all(
      this.#tiers.map((tier) => {
        const capped = capLifetime(stored, tierUntil(tier.capMs, now, spread))
        return this.#call(tier, (store) => store.set(full, capped), 'set', bytes.byteLength)
      }),
    )
  }

  #l1Set(full: string, entry: L1Entry, spread: number, now: number, l1Key = this.#l1Key(full)): void {
    if (this.#l1 === undefined) return
    const capped = capLifetime(entry, tierUntil(this.#l1CapMs, now, spread))
    if (capped.staleUntil <= now) this.#l1.delete(l1Key)
    else {
      // A capped copy is a new object: its hit count and refresh backoff start afresh.
      this.#l1.set(l1Key, capped === entry ? entry : { ...capped, hits: 0, refreshAfter: 0, hitUntil: Math.min(capped.freshUntil, capped.staleUntil) })
      this.#tierEvent('l1', this.#l1Stats, 'set', 0)
    }
  }

  /** A jitter factor in [1 - jitter, 1 + jitter). */
  #spread(): number {
    return 1 + this.options.jitter * (2 * this.options.random() - 1)
  }

  /** Records a tag's known time, most recently checked last, forgetting the oldest past TAG_TIMES_MAX. */
  #rememberTag(tag: string, known: { at: number; checkedAt: number }): void {
    const times = this.#tagTimes
    times.delete(tag)
    times.set(tag, known)
    if (times.size > TAG_TIMES_MAX) {
      let drop = times.size - Math.floor(TAG_TIMES_MAX * 0.9)
      for (const key of times.keys()) {
        if (drop-- <= 0) break
        times.delete(key)
      }
    }
  }

  async #tagsValid(entry: L1Entry): Promise<boolean> {
    if (entry.tags.length === 0) return true
    const now = this.#now()
    const stale = entry.tags.filter((tag) => {
      const known = this.#tagTimes.get(tag)
      return known === undefined || now - known.checkedAt >= this.options.tagCacheMs
    })
    if (stale.length > 0) {
      const started = performance.now()
      try {
        const times = await withTimeout(this.#tagStore.get(stale), this.options.tierTimeoutMs, () => new Error(`the tag store did not answer within ${this.options.tierTimeoutMs} ms`))
        for (const tag of stale) {
          const at = Math.max(times.get(tag) ?? 0, this.#tagTimes.get(tag)?.at ?? 0)
          this.#rememberTag(tag, { at, checkedAt: now })
        }
      } catch (err) {
        // Last known times stand in: availability over a few seconds more of a stale tag.
        this.#emit('tags', 'error', performance.now() - started, reasonText(err))
      }
    }
    // At or after: an invalidation in the same millisecond as the write must still win.
    return entry.tags.every((tag) => (this.#tagTimes.get(tag)?.at ?? -Infinity) < entry.createdAt)
  }

  async #call<T>(tier: Tier, op: (store: CacheStore) => Promise<T>, kind?: 'set', bytes?: number): Promise<{ ok: true; value: T } | { ok: false }> {
    const started = performance.now()
    try {
      const ms = this.options.tierTimeoutMs
      const value = await tier.breaker.execute(() => withTimeout(op(tier.store), ms, () => new Error(`the ${tier.store.kind} tier did not answer within ${ms} ms`)))
      const took = performance.now() - started
      tier.stats.observe(took)
      if (kind !== undefined) this.#tierEvent(tier.name, tier.stats, kind, took, undefined, bytes)
      return { ok: true, value }
    } catch (err) {
      const took = performance.now() - started
      tier.stats.observe(took)
      this.#tierEvent(tier.name, tier.stats, 'error', took, reasonText(err))
      return { ok: false }
    }
  }

  /** Publishes a change for the peers; a failure is reported, never thrown (the bus queues and retries). */
  async #publish(change: Omit<InvalidationInput, 'namespace' | 'origin'>): Promise<void> {
    const bus = this.options.bus
    if (bus === undefined) return
    const started = performance.now()
    try {
      // Bounded like a tier call: the publish goes on (and the bus queues it on failure), the caller does not wait for a stalled Redis.
      const ms = this.options.tierTimeoutMs
      await withTimeout(bus.publish({ namespace: this.options.namespace, ...change }), ms, () => new Error(`the invalidation bus did not answer within ${ms} ms`))
    } catch (err) {
      this.#emit('bus', 'error', performance.now() - started, reasonText(err))
    }
  }

  /** A peer's change: drop what it names from L1, and void loads it may have overtaken. */
  #applyRemote(notice: InvalidationNotice): void {
    if ('resync' in notice) {
      // Invalidations may have been missed: nothing in L1 can be trusted any more.
      this.#l1?.clear()
      this.#tagTimes.clear()
      for (const flight of this.#flights.values()) flight.voided = true
      return
    }
    if (notice.namespace !== this.options.namespace) return
    if (notice.clear === true) {
      this.#l1?.clear()
      for (const flight of this.#flights.values()) flight.voided = true
    }
    for (const key of notice.keys ?? []) {
      let full: string
      try {
        full = this.#fullKey(key)
      } catch {
        continue
      }
      this.#l1?.delete(this.#l1Key(full))
      this.#voidFlight(full)
    }
    const tags = notice.tags ?? []
    if (tags.length > 0) {
      const doomed = new Set(tags)
      // Forgotten, so the next read of a tagged entry asks the tag store for the new time.
      for (const tag of tags) this.#tagTimes.delete(tag)
      if (this.#l1 !== undefined) {
        const drop: string[] = []
        for (const [k, entry] of this.#l1.entries()) if (entry.tags.some((t) => doomed.has(t))) drop.push(k)
        for (const k of drop) this.#l1.delete(k)
      }
      for (const flight of this.#flights.values()) if (flight.tags.some((t) => doomed.has(t))) flight.voided = true
    }
  }

  #voidFlight(full: string): void {
    const flight = this.#flights.get(full)
    if (flight !== undefined) flight.voided = true
  }

  /** Keeps a background promise for drain(); its failure was already reported where it happened. */
  #track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    )
    this.#background.add(settled)
    void settled.finally(() => this.#background.delete(settled))
  }

  /** An event of a tier: counted in its stats, then reported. */
  #tierEvent(tier: string, stats: TierStats, kind: CacheEvent['kind'], ms: number, reason?: string, bytes?: number): void {
    stats.count(kind, bytes)
    if (this.#onEvent !== undefined) this.#emit(tier, kind, ms, reason, bytes)
  }

  #emit(tier: string, kind: CacheEvent['kind'], ms: number, reason?: string, bytes?: number): void {
    const hook = this.#onEvent
    if (hook === undefined) return
    const event: { tier: string; kind: CacheEvent['kind']; ms: number; reason?: string; bytes?: number } = { tier, kind, ms }
    if (reason !== undefined) event.reason = reason
    if (bytes !== undefined) event.bytes = bytes
    try {
      hook(event)
    } catch {
      // A broken metrics hook must not break reads.
    }
  }
}

const warmSchema = z
  .object({
    concurrency: z.number().int().min(1).max(1_000).default(8),
    force: z.boolean().default(false),
  })
  .strict()

/** Per-call refresh-ahead options are checked like per-call TTLs: a bad value is a caller bug. */
function validRefreshAhead(ahead: RefreshAheadOptions): void {
  const { ratio, minHits = 1 } = ahead
  if (!(ratio >= 0 && ratio <= 1) || !(Number.isSafeInteger(minHits) && minHits >= 1)) {
    throw new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { reason: 'refreshAhead.ratio must be within 0..1 and minHits a positive integer' } })
  }
}

/** When a tier with lifetime cap `capMs` (jittered by `spread`) must drop an entry written at `now`. */
function tierUntil(capMs: number | undefined, now: number, spread: number): number | undefined {
  return capMs === undefined ? undefined : now + Math.max(1, Math.round(capMs * spread))
}

/** The entry with its `staleUntil` brought forward to `until`, never later than it was. */
function capLifetime<E extends { readonly staleUntil: number }>(entry: E, until: number | undefined): E {
  return until === undefined || until >= entry.staleUntil ? entry : { ...entry, staleUntil: until }
}

function validTags(tags: readonly string[] | undefined): readonly string[] {
  if (tags === undefined || tags.length === 0) return []
  return [...new Set(tags.map(tagKey))]
}

/** Like withTimeout, but the timer keeps the process alive: a loader is real work awaited by a caller. */
function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}

function reasonText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** `keyChars`: the length of the full key (namespace included). */
function l1Size(keyChars: number, entry: L1Entry): number {
  let size = ENTRY_OVERHEAD_BYTES + keyChars * 2 + estimateSize(entry.value)
  for (const tag of entry.tags) size += tag.length * 2
  return size
}

/**
 * A cheap estimate of a decoded value's heap size: exact sizes would need serializing every
 * L1 write. The walk is bounded; past the bound the average node size so far is extrapolated.
 */
export function estimateSize(value: unknown): number {
  let bytes = 0
  let nodes = 0
  const seen = new Set<object>()
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    nodes += 1
    if (nodes > SIZE_WALK_LIMIT) return Math.ceil((bytes / SIZE_WALK_LIMIT) * (SIZE_WALK_LIMIT + stack.length + 1))
    switch (typeof item) {
      case 'string':
        bytes += 16 + item.length * 2
        break
      case 'number':
      case 'bigint':
      case 'boolean':
      case 'undefined':
        bytes += 8
        break
      case 'object': {
        if (item === null) {
          bytes += 8
          break
        }
        if (seen.has(item)) break
        seen.add(item)
        if (ArrayBuffer.isView(item)) bytes += 64 + item.byteLength
        else if (item instanceof Date) bytes += 32
        else if (Array.isArray(item)) {
          bytes += 32 + item.length * 8
          for (const child of item) stack.push(child)
        } else if (item instanceof Map || item instanceof Set) {
          bytes += 64
          for (const child of item) stack.push(child)
        } else {
          bytes += 32
          for (const [k, child] of Object.entries(item)) {
            bytes += 16 + k.length * 2
            stack.push(child)
          }
        }
        break
      }
      default:
        bytes += 8
    }
  }
  return bytes
}
