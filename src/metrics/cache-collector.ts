import type { CacheTierStats } from '../cache/index.ts'
import type { CollectedMetric, MetricsCollector } from './registry.ts'

/** The counters of one cache tier, as the cache engine's `stats()` reports them (its latency histogram is not needed). */
export type CacheTierCounters = Omit<CacheTierStats, 'latency'>

/** Anything with per-tier counters since creation, such as the tiered cache. */
export interface CacheStatsSource {
  stats(): Readonly<Record<string, CacheTierCounters>>
}

const COUNTERS: readonly (readonly [keyof CacheTierCounters, string, string])[] = [
  ['hits', 'cache_hits_total', 'Cache reads served by the tier.'],
  ['misses', 'cache_misses_total', 'Cache reads the tier could not serve.'],
  ['stale', 'cache_stale_total', 'Cache reads served from a value past its freshness, within grace.'],
  ['errors', 'cache_errors_total', 'Failed cache operations (timeouts, refused connections, unreadable entries, open breaker).'],
  ['sets', 'cache_sets_total', 'Values written to the tier.'],
  ['evictions', 'cache_evictions_total', 'Entries dropped to make room.'],
  ['bytesRead', 'cache_read_bytes_total', 'Encoded bytes read on hits.'],
  ['bytesWritten', 'cache_written_bytes_total', 'Encoded bytes written (for an in-memory tier, the estimated size of values stored).'],
]

/**
 * Exposes a cache's counters as `cache_hits_total{cache,tier}`, `cache_misses_total`, ...,
 * read from `source.stats()` at every scrape.
 *
 * @example
 * metrics.registerCollector('cache:tracks', cacheCollector('tracks', tracksCache))
 */
export function cacheCollector(cache: string, source: CacheStatsSource): MetricsCollector {
  return () => {
    const stats = source.stats()
    const tiers = Object.keys(stats)
    return COUNTERS.map(([field, name, help]): CollectedMetric => ({
      name,
      help,
      type: 'counter',
      samples: tiers.map((tier) => ({ labels: { cache, tier }, value: stats[tier]?.[field] ?? 0 })),
    }))
  }
}
