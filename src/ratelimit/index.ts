/**
 * Rate limiting and quotas: GCRA, sliding-window and fixed-window algorithms with memory and
 * Redis stores (one Lua script per decision), multi-policy checks where the strictest
 * decision wins, escalating penalty blocks, a circuit breaker with per-policy failure modes,
 * and the Fastify plugin that keys requests and writes the IETF RateLimit fields.
 */
export type { Decision, PenaltyRule, RateLimitAlgorithm, RateLimitRule } from './algorithms.ts'
export type { RateLimitStore } from './store.ts'
export { MemoryRateLimitStore } from './memory-store.ts'
export type { MemoryRateLimitStoreOptions } from './memory-store.ts'
export { RedisRateLimitStore } from './redis-store.ts'
export type { RedisRateLimitStoreOptions } from './redis-store.ts'
export { RateLimiter } from './limiter.ts'
export type {
  DecisionSource,
  PolicyCheck,
  PolicyOutcome,
  RateLimiterEvent,
  RateLimiterOptions,
  RateLimiterStats,
  RateLimitPolicy,
  RateLimitResult,
  StoreFailureMode,
} from './limiter.ts'
export { limitField, policyField, retryAfterSeconds } from './headers.ts'
export { KEY_PARTS, rateLimitOptionsSchema } from './options.ts'
export type { KeyPart, RateLimitOptions, RateLimitOptionsInput, RateLimitPolicyOptions } from './options.ts'
export { rateLimitPlugin } from './plugin.ts'
export type { RateLimitKeyFunction, RateLimitPluginOptions, RouteRateLimit } from './plugin.ts'
