/**
 * Caching (in progress, issue 5). So far: the tier interface (`CacheStore`) with its memory,
 * Redis and Memcached implementations and the binary entry envelope of the remote tiers; the
 * value codec (MessagePack or JSON, zstd/brotli/gzip above a threshold, optional AES-256-GCM
 * bound to the key) and key validation; `TieredCache`: L1 of decoded values over remote tiers,
 * read-through with backfill, single-flight, tags by invalidation time, grace (stale while
 * revalidating, stale if error, soft and hard loader timeouts) and a circuit breaker per
 * tier; across instances, the invalidation bus (Redis pub/sub with a retry queue and resync
 * notices: a change on one instance drops the others' L1 copies) and leases (SET NX PX: one
 * instance loads while the others serve stale or wait). The RFC 9111 response cache follows.
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
export { cacheKey, tagKey, MAX_KEY_CHARS, MAX_LITERAL_KEY_BYTES } from './keys.ts'
export { TieredCache, MemoryTagStore, KeyValueTagStore, estimateSize } from './tiered-cache.ts'
export type { TieredCacheOptions, TagInvalidationStore, CacheEvent, CacheEventTier, CacheSetOptions, GetOrSetOptions, Loader, LoaderContext } from './tiered-cache.ts'
export { MemoryInvalidationHub, MemoryInvalidationBus, RedisInvalidationBus } from './invalidation-bus.ts'
export type { InvalidationBus, InvalidationBusStats, InvalidationHandler, InvalidationInput, InvalidationMessage, InvalidationNotice, ResyncNotice } from './invalidation-bus.ts'
export { MemoryLease, RedisLease, MAX_LEASE_TTL_MS } from './lease.ts'
export type { Lease } from './lease.ts'
