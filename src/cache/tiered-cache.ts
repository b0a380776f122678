import { circuitBreaker, CircuitState, ConsecutiveBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel'
import { LRUCache } from 'lru-cache'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import { withTimeout, type KeyValueStore } from '../stores/index.ts'
import type { InvalidationBus, InvalidationInput, InvalidationNotice } from './invalidation-bus.ts'
import { cacheKey, tagKey } from './keys.ts'
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

/**
 * Tag invalidation times in process memory: right for a single instance and for tests.
 *
 * @example
 * const cache = new TieredCache({ namespace: 'catalog', tiers: [], tagStore: new MemoryTagStore() })
 */
export class MemoryTagStore implements TagInvalidationStore {
  readonly #times = new Map<string, number>()

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
  readonly kind: 'hit' | 'miss' | 'stale' | 'error' | 'set' | 'evict'
  /** How long the operation took (0 for in-process work). */
  readonly ms: number
  /** Why, for `error` events (never the cached value). */
  readonly reason?: string
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
const millis = z.number().int().min(1).max(3_600_000)

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
          })
          .strict(),
      ])
      .default({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 }),
    tiers: z.array(z.custom<CacheStore>(isStore, 'must be a CacheStore')).max(8).default([]),
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

/** Options of {@link TieredCache}; see the class comment. */
export type TieredCacheOptions = z.input<typeof optionsSchema>

interface L1Entry {
  readonly value: unknown
  readonly createdAt: number
  readonly freshUntil: number
  readonly staleUntil: number
  readonly tags: readonly string[]
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
 * @example
 * const cache = new TieredCache({ namespace: 'catalog', tiers: [new RedisCacheStore({ redis })], graceS: 60 })
 * const album = await cache.getOrSet(`album:${id}`, () => db.album(id), { ttlS: 300, tags: [`album:${id}`] })
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
  #closed = false

  constructor(options: TieredCacheOptions) {
    this.options = parseOptions('cache', optionsSchema, options)
    const { now, l1, breaker } = this.options
    this.#now = now
    this.#prefix = `${this.options.namespace}:`
    this.#codec = this.options.codec ?? new ValueCodec()
    this.#tagStore = this.options.tagStore ?? new MemoryTagStore()
    this.#l1 =
      l1 === false
        ? undefined
        : new LRUCache<string, L1Entry>({
            max: l1.maxEntries,
            maxSize: l1.maxBytes,
            sizeCalculation: (entry, key) => l1Size(key, entry),
            ttlResolution: 0,
            perf: { now },
            dispose: (_entry, _key, reason) => {
              if (reason === 'evict') this.#emit('l1', 'evict', 0)
            },
          })
    this.#tiers = this.options.tiers.map((store, i) => ({
      name: `l${i + 2}`,
      store,
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
    const full = cacheKey(this.options.namespace, key)
    const tags = validTags(options.tags)
    const found = await this.#lookup(full)
    if (found?.fresh === true) return found.entry.value as T
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
    const found = await this.#lookup(cacheKey(this.options.namespace, key))
    if (found === undefined || (!found.fresh && options.allowStale !== true)) return undefined
    return found.entry.value as T
  }

  /**
   * Writes `value` to every tier. A value the codec refuses (too large, unserializable) is
   * not cached anywhere and the call resolves all the same; a failing tier is skipped.
   *
   * @example await cache.set(`album:${id}`, album, { ttlS: 300, tags: [`album:${id}`] })
   */
  async set(key: string, value: unknown, options: CacheSetOptions = {}): Promise<void> {
    const full = cacheKey(this.options.namespace, key)
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
    const full = cacheKey(this.options.namespace, key)
    this.#voidFlight(full)
    this.#l1?.delete(full)
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
      this.#tagTimes.set(tag, { at: Math.max(at, known?.at ?? 0), checkedAt: at })
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

  async #lookup(full: string): Promise<Found | undefined> {
    const now = this.#now()
    const local = this.#l1?.get(full)
    if (local !== undefined) {
      if (local.staleUntil > now && (await this.#tagsValid(local))) {
        const fresh = local.freshUntil > now
        this.#emit('l1', fresh ? 'hit' : 'stale', 0)
        return { entry: local, fresh }
      }
      this.#l1?.delete(full)
    }
    if (this.#l1 !== undefined) this.#emit('l1', 'miss', 0)
    for (const [index, tier] of this.#tiers.entries()) {
      const started = performance.now()
      const result = await this.#call(tier, (store) => store.get(full))
      if (!result.ok) continue
      const stored = result.value
      if (stored === undefined || stored.staleUntil <= this.#now()) {
        this.#emit(tier.name, 'miss', performance.now() - started)
        continue
      }
      const decoded = this.#codec.decode(stored.value, full)
      if (!decoded.ok) {
        this.#emit(tier.name, 'error', performance.now() - started, `unreadable entry: ${decoded.reason}`)
        this.#emit(tier.name, 'miss', performance.now() - started)
        continue
      }
      const entry: L1Entry = { value: decoded.value, createdAt: stored.createdAt, freshUntil: stored.freshUntil, staleUntil: stored.staleUntil, tags: stored.tags }
      if (!(await this.#tagsValid(entry))) {
        this.#emit(tier.name, 'miss', performance.now() - started)
        continue
      }
      const fresh = entry.freshUntil > this.#now()
      this.#emit(tier.name, fresh ? 'hit' : 'stale', performance.now() - started)
      this.#l1Set(full, entry)
      // Backfill the faster tiers above; not awaited, a slow tier must not delay this hit.
      for (const above of this.#tiers.slice(0, index)) this.#track(this.#call(above, (store) => store.set(full, stored), 'set'))
      return { entry, fresh }
    }
    return undefined
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
    // Jitter spreads the expiry of keys written together, so they are not reloaded together.
    const spread = 1 + this.options.jitter * (2 * this.options.random() - 1)
    const freshUntil = now + Math.max(1, Math.round(ttlS * 1_000 * spread))
    const staleUntil = freshUntil + Math.round(graceS * 1_000)
    const entry: L1Entry = { value, createdAt, freshUntil, staleUntil, tags }
    if (this.#tiers.length === 0) {
      this.#l1Set(full, entry)
      return
    }
    let bytes: Uint8Array
    try {
      bytes = this.#codec.encode(value, full)
    } catch (err) {
      // Not cached anywhere: an L1-only copy would make this instance disagree with the others.
      this.#emit('codec', 'error', 0, reasonText(err))
      this.#l1?.delete(full)
      return
    }
    this.#l1Set(full, entry)
    const stored: CacheEntry = { value: bytes, createdAt, freshUntil, staleUntil, tags }
    await Promise.all(this.#tiers.map((tier) => this.#call(tier, (store) => store.set(full, stored), 'set')))
  }

  #l1Set(full: string, entry: L1Entry): void {
    if (this.#l1 === undefined) return
    const ttl = entry.staleUntil - this.#now()
    if (ttl <= 0) this.#l1.delete(full)
    else {
      this.#l1.set(full, entry, { ttl: Math.ceil(ttl) })
      this.#emit('l1', 'set', 0)
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
          this.#tagTimes.set(tag, { at, checkedAt: now })
        }
      } catch (err) {
        // Last known times stand in: availability over a few seconds more of a stale tag.
        this.#emit('tags', 'error', performance.now() - started, reasonText(err))
      }
    }
    // At or after: an invalidation in the same millisecond as the write must still win.
    return entry.tags.every((tag) => (this.#tagTimes.get(tag)?.at ?? -Infinity) < entry.createdAt)
  }

  async #call<T>(tier: Tier, op: (store: CacheStore) => Promise<T>, kind?: 'set'): Promise<{ ok: true; value: T } | { ok: false }> {
    const started = performance.now()
    try {
      const ms = this.options.tierTimeoutMs
      const value = await tier.breaker.execute(() => withTimeout(op(tier.store), ms, () => new Error(`the ${tier.store.kind} tier did not answer within ${ms} ms`)))
      if (kind !== undefined) this.#emit(tier.name, kind, performance.now() - started)
      return { ok: true, value }
    } catch (err) {
      this.#emit(tier.name, 'error', performance.now() - started, reasonText(err))
      return { ok: false }
    }
  }

  /** Publishes a change for the peers; a failure is reported, never thrown (the bus queues and retries). */
  async #publish(change: Omit<InvalidationInput, 'namespace' | 'origin'>): Promise<void> {
    const bus = this.options.bus
    if (bus === undefined) return
    const started = performance.now()
    try {
      await bus.publish({ namespace: this.options.namespace, ...change })
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
        full = cacheKey(this.options.namespace, key)
      } catch {
        continue
      }
      this.#l1?.delete(full)
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

  #emit(tier: string, kind: CacheEvent['kind'], ms: number, reason?: string): void {
    const hook = this.options.onEvent
    if (hook === undefined) return
    try {
      hook(reason === undefined ? { tier, kind, ms } : { tier, kind, ms, reason })
    } catch {
      // A broken metrics hook must not break reads.
    }
  }
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

function l1Size(key: string, entry: L1Entry): number {
  let size = ENTRY_OVERHEAD_BYTES + key.length * 2 + estimateSize(entry.value)
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
