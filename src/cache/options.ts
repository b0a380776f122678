import { z } from 'zod'

const headerName = z.string().regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a lower-case header field name')

/** The response cache section of `config.cache` (`config.cache.http`). */
export const responseCacheOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Serve GET/HEAD responses from a shared RFC 9111 cache backed by the cache tiers.'),
  routes: z.enum(['all', 'opt-in']).default('all').describe('`all`: every GET/HEAD route (responses decide with Cache-Control); `opt-in`: only routes with a `config.cache` object.'),
  storeSetCookie: z.boolean().default(false).describe('Store responses that carry Set-Cookie (RFC 9111 allows it; a shared cookie is a leaked session, so off by default).'),
  generateETag: z.boolean().default(true).describe('Give stored 200 responses without a validator a weak ETag (a body hash), so clients revalidate with 304s.'),
  heuristic: z.boolean().default(true).describe('Heuristic freshness (10 % of the time since Last-Modified, at most a day) for responses without an explicit lifetime.'),
  maxBodyBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(1024 * 1024).describe('Larger response bodies are not stored.'),
  keepStaleS: z.number().int().min(0).max(31_536_000).default(3_600).describe('How long a stale response is kept for revalidation, max-stale and stale-if-error, in seconds.'),
  maxRetentionS: z.number().int().min(1).max(31_536_000).default(7 * 86_400).describe('No stored response outlives this, in seconds.'),
  staleOnErrorS: z.number().int().min(0).max(31_536_000).default(60).describe('How long past freshness a stored response stands in for a failing route (500/502/503/504) when it set no stale-if-error (0: never); must-revalidate, proxy-revalidate, s-maxage and no-cache forbid it.'),
  targetedFields: z.array(headerName).default(['cdn-cache-control']).describe('Targeted cache-control fields (RFC 9213) obeyed instead of Cache-Control, the first valid one present.'),
  keyIncludesHost: z.boolean().default(true).describe('Key responses by Host as well as path and query.'),
  xCache: z.boolean().default(true).describe('Send X-Cache: HIT | MISS | STALE | BYPASS.'),
  cacheStatusName: z.string().regex(/^[A-Za-z*][A-Za-z0-9_.:/*-]*$/, 'must be a structured-field token').default('backbeat').describe('This cache\'s name in the Cache-Status field (RFC 9211).'),
  exposeSurrogateKeys: z.boolean().default(false).describe('Keep Surrogate-Key/Cache-Tag on responses to clients.'),
  surrogateKeyHeaders: z.array(headerName).default(['surrogate-key', 'cache-tag']).describe('Response fields whose values become purge tags.'),
  backgroundRevalidation: z.boolean().default(true).describe('Refresh stale-while-revalidate responses with an internal request.'),
  passTtlS: z.number().int().min(0).max(3_600).default(60).describe('Hit-for-pass: a URI whose response could not be stored is not looked up again for this long (its responses are still judged; the first storable one ends it); 0: off.'),
  collapseWaitMs: z.number().int().min(0).max(60_000).default(3_000).describe('Request collapsing: while one request for a URI runs its handler, others for it (without credentials) wait up to this long for its stored response (0: off).'),
  purgePath: z.union([z.literal(false), z.string().regex(/^\/[A-Za-z0-9/_.-]*$/, 'must be a path')]).default('/ops/cache/purge').describe('Admin route purging by tag, with the `cache:purge` permission; only registered when auth is on; false for none.'),
})

/** `config.cache`: the tiered cache engine and the response cache. */
export const cacheOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Build the tiered cache (`app.cache`) and, with `http.enabled`, the response cache.'),
  namespace: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1-64 characters of a-z, 0-9, _ and -').default('app').describe('Namespace of `app.cache` (the response cache uses `http`).'),
  ttlDefaultS: z.number().int().min(1).default(300).describe('Default time to live, in seconds.'),
  l1Size: z.number().int().min(0).default(10_000).describe('Entries held in the in-process L1 tier, per engine: `app.cache` and the response cache each have one (0 turns L1 off).'),
  l1MaxBytes: z.number().int().min(1_024).default(64 * 1024 * 1024).describe('Bytes held in the in-process L1 tier (estimated), per engine.'),
  graceS: z.number().int().min(0).default(0).describe('How long past freshness a stale value may be served while it refreshes, in seconds.'),
  jitter: z.number().min(0).max(0.5).default(0.1).describe('TTL jitter as a fraction (0.1 = up to 10 % shorter), so entries written together do not expire together.'),
  tierTimeoutMs: z.number().int().min(1).max(60_000).default(250).describe('A remote tier slower than this is skipped for the call.'),
  redis: z.boolean().default(true).describe('Use Redis (REDIS_URL) as L2, with the tag store, invalidation bus and leases, when it is configured.'),
  memcached: z.boolean().default(true).describe('Use Memcached (MEMCACHED_SERVERS) as the next tier when it is configured.'),
  compressAboveBytes: z.number().int().min(0).default(1024).describe('Values larger than this are compressed (zstd) in the remote tiers.'),
  http: responseCacheOptionsSchema.prefault({}),
})

export type CacheOptions = z.output<typeof cacheOptionsSchema>
export type ResponseCacheOptions = z.output<typeof responseCacheOptionsSchema>
