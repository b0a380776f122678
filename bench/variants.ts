import type { BackbeatConfigInput } from 'backbeat'
import { SignJWT } from 'jose'
import { BENCH_AUDIENCE, BENCH_ISSUER } from './hello-route.ts'

/**
 * Configuration shared by the benchmark runner (run.ts) and the profiler (profile.ts).
 */

/**
 * Written as every benchmark server's backbeat.config.json: the default rate-limit policy is
 * raised far above what a run sends, so the limiter still decides every request but refuses
 * none (a load generator is one client sending tens of thousands of requests a second).
 */
export const BENCH_CONFIG = { rateLimit: { policies: { burst: { algorithm: 'gcra', limit: 1_000_000_000, windowS: 86_400, key: 'ip' } } } } as const

/** The origin the edge scenario's requests come from, and that its CORS config allows. */
export const BENCH_ORIGIN = 'https://app.example.com'

/** Production with the four edge capabilities off: the stack the foundation issue shipped. */
export const EDGE_OFF: BackbeatConfigInput = { securityHeaders: { enabled: false }, cors: { enabled: false }, limits: { enabled: false }, rateLimit: { enabled: false } }

/** Production with security headers, CORS (allowing BENCH_ORIGIN) and rate limiting in memory; request limits off. */
export const EDGE_ON: BackbeatConfigInput = { limits: { enabled: false }, cors: { origins: [BENCH_ORIGIN] }, rateLimit: { store: 'memory' } }

/** Production as shipped (request limits on too), CORS allowing BENCH_ORIGIN. */
export const EDGE_ALL: BackbeatConfigInput = { cors: { origins: [BENCH_ORIGIN] }, rateLimit: { store: 'memory' } }

/** `base` with `extra` merged in, objects recursively (arrays and scalars from `extra` win). */
export function mergeConfig(base: object, extra: object | undefined): object {
  if (extra === undefined) return base
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key]
    const bothObjects = typeof value === 'object' && value !== null && !Array.isArray(value) && typeof current === 'object' && current !== null && !Array.isArray(current)
    out[key] = bothObjects ? mergeConfig(current, value as object) : value
  }
  return out
}

/** The HS256 secret (JWT_SECRET_KEY) of every bench server; hello-server requires a bearer token when BENCH_AUTH_REQUIRED=1. */
export const AUTH_SECRET = 'bench-secret-of-at-least-thirty-two-bytes'

/** A bearer token the auth scenario sends on every request (a hot client). */
export function benchToken(): Promise<string> {
  return new SignJWT({ sub: 'bench-user', scope: 'playlist:read' })
    .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
    .setIssuer(BENCH_ISSUER)
    .setAudience(BENCH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(AUTH_SECRET))
}
