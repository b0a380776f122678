/**
 * Caching. The framework-neutral engines: the tier interface (`CacheStore`) with its memory,
 * Redis and Memcached implementations; the value codec (MessagePack or JSON, zstd/brotli/gzip
 * above a threshold, optional AES-256-GCM bound to the key); `TieredCache` (L1 of decoded
 * values over remote tiers with per-tier TTLs, read-through with backfill, single-flight,
 * tags, grace, refresh-ahead, soft and hard loader timeouts, a breaker per tier, warm-up and
 * prefetch, stats, and `peek` for the hot path); across instances, the invalidation bus and
 * leases; `CacheWriter` (write-through, write-behind, write-around), `cached()` and
 * `@Cached()`. The RFC 9111 shared HTTP cache: `HttpResponseCache` (neutral) and
 * `responseCachePlugin` (Fastify).
 */
export type { CacheEntry, CacheStore } from './store.ts'
export { MemoryCacheStore } from './memory-store.ts'
export type { MemoryCacheStoreOptions } from './memory-store.ts'
export { RedisCacheStore } from './redis-store.ts'
export type { RedisCacheStoreOptions } from './redis-store.ts'
export { MemcachedCacheStore } from './memcached-store.ts'
export type { MemcachedCacheStoreOptions } from './memcached-store.ts'
export { encodeCacheEntry, decodeCacheEntry, CACHE_ENTRY_FORMAT } from './entry-codec.ts'
export { ValueCodec, aesGcmCipher } from './value-codec.ts'
export type { ValueCodecOptions, ValueCipher, AesGcmCipher, DecodeResult, ValueFormat, ValueCompression } from './value-codec.ts'
export { cacheKey, normalizeCacheKey, isHashedCacheKey, tagKey, MAX_KEY_CHARS, MAX_LITERAL_KEY_BYTES } from './keys.ts'
export { TieredCache, MemoryTagStore, KeyValueTagStore, estimateSize } from './tiered-cache.ts'
export type { TieredCacheOptions, TagInvalidationStore, CacheEvent, CacheEventTier, CacheSetOptions, GetOrSetOptions, Loader, LoaderContext } from './tiered-cache.ts'
export { MemoryInvalidationHub, MemoryInvalidationBus, RedisInvalidationBus } from './invalidation-bus.ts'
export type { InvalidationBus, InvalidationBusStats, InvalidationHandler, InvalidationInput, InvalidationMessage, InvalidationNotice, ResyncNotice } from './invalidation-bus.ts'
export { MemoryLease, RedisLease, MAX_LEASE_TTL_MS } from './lease.ts'
export type { Lease } from './lease.ts'
export { cacheOptionsSchema, responseCacheOptionsSchema } from './options.ts'
export type { CacheOptions, ResponseCacheOptions } from './options.ts'
export { parseCacheControl, DELTA_SECONDS_MAX } from './http/cache-control.ts'
export type { CacheControl } from './http/cache-control.ts'
export { freshnessLifetimeMs, initialAgeMs, notStorable, notModified, parseHttpDate, requestCacheControl, usability } from './http/policy.ts'
export type { HeaderMap, NotStorableReason, Usability } from './http/policy.ts'
export { DEFAULT_EXCLUDED_HEADERS, HttpResponseCache, varyFields, varyValues } from './http/response-cache.ts'
export type { CacheRequest, HttpResponseCacheOptions, LookupResult, OriginResponse, StoredResponse, StoreResult } from './http/response-cache.ts'
export { responseCachePlugin } from './http/plugin.ts'
export type { ResponseCachePluginOptions, RouteCache, XCache } from './http/plugin.ts'
export type { CacheTierConfig, RefreshAheadOptions, WarmEntry, WarmResult } from './tiered-cache.ts'
export { LATENCY_BUCKETS_MS } from './cache-stats.ts'
export type { CacheTierStats, CacheLatencyStats } from './cache-stats.ts'
export { CacheWriter, WriteBehindTimeoutError } from './write-strategy.ts'
export type { CacheWriterOptions, WriteMode, WriteOp, Persist, WriteBehindStats } from './write-strategy.ts'
export { Cached } from './decorator.ts'
export type { CachedOptions } from './decorator.ts'
