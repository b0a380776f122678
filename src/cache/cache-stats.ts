/**
 * Per-tier counters of the tiered cache, kept as plain integer fields so the L1 hit path
 * costs one increment and no allocation. `TieredCache.stats()` snapshots them into
 * {@link CacheTierStats} objects (copies: later traffic does not change a snapshot).
 */

/**
 * Upper bounds (inclusive, in ms) of the latency histogram buckets; one more bucket counts
 * everything slower than the last bound.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000])

/** Latency of a tier's operations (remote tiers only: timing each L1 hit would cost a clock read). */
export interface CacheLatencyStats {
  /** Operations timed. */
  readonly count: number
  /** Sum of their durations, in ms. */
  readonly sumMs: number
  /** Per bucket of {@link LATENCY_BUCKETS_MS} (not cumulative), then the overflow bucket. */
  readonly buckets: readonly number[]
}

/** One tier's counters since the cache was created. */
export interface CacheTierStats {
  readonly hits: number
  readonly misses: number
  /** Reads served from a value past its freshness, within grace. */
  readonly stale: number
  /** Failed operations (timeouts, refused connections, unreadable entries, open breaker). */
  readonly errors: number
  readonly sets: number
  /** Entries dropped to make room (known for L1 only: remote stores evict on their own). */
  readonly evictions: number
  /** Encoded bytes read on hits (remote tiers; L1 holds decoded values and counts 0). */
  readonly bytesRead: number
  /** Encoded bytes written (remote tiers); for L1, the estimated in-memory size of values stored. */
  readonly bytesWritten: number
  readonly latency: CacheLatencyStats
}

/** The counted event kinds (a subset of `CacheEvent['kind']`). */
export type CountedKind = 'hit' | 'miss' | 'stale' | 'error' | 'set' | 'evict'

/**
 * Mutable counters of one tier. Fields are public so the engine can bump the hot ones
 * directly; everything else goes through {@link TierStats.count} and {@link TierStats.observe}.
 *
 * @example
 * const stats = new TierStats()
 * stats.count('hit', 120)
 * stats.observe(3.2)
 * stats.snapshot() // { hits: 1, bytesRead: 120, latency: { count: 1, sumMs: 3.2, ... }, ... }
 */
export class TierStats {
  hits = 0
  misses = 0
  stale = 0
  errors = 0
  sets = 0
  evictions = 0
  bytesRead = 0
  bytesWritten = 0
  latencyCount = 0
  latencySumMs = 0
  readonly latencyBuckets: number[] = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)

  /** Counts one event; `bytes` is added to bytesRead (hit, stale) or bytesWritten (set). */
  count(kind: CountedKind | 'refresh', bytes = 0): void {
    switch (kind) {
      case 'hit':
        this.hits += 1
        this.bytesRead += bytes
        break
      case 'stale':
        this.stale += 1
        this.bytesRead += bytes
        break
      case 'miss':
        this.misses += 1
        break
      case 'error':
        this.errors += 1
        break
      case 'set':
        this.sets += 1
        this.bytesWritten += bytes
        break
      case 'evict':
        this.evictions += 1
        break
      default:
        break
    }
  }

  /** Records the duration of one operation in the histogram. */
  observe(ms: number): void {
    if (!(ms >= 0)) return
    this.latencyCount += 1
    this.latencySumMs += ms
    let i = 0
    while (i < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[i] ?? Infinity)) i += 1
    this.latencyBuckets[i] = (this.latencyBuckets[i] ?? 0) + 1
  }

  /** A frozen copy of the counters. */
  snapshot(): CacheTierStats {
    return Object.freeze({
      hits: this.hits,
      misses: this.misses,
      stale: this.stale,
      errors: this.errors,
      sets: this.sets,
      evictions: this.evictions,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      latency: Object.freeze({ count: this.latencyCount, sumMs: this.latencySumMs, buckets: Object.freeze([...this.latencyBuckets]) }),
    })
  }
}
