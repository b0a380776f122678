/**
 * The contract between anything that can be checked (a store connection, a broker) and the
 * health capability. Lives in core so stores do not depend on the health module.
 */
export interface HealthCheckResult {
  /** `warn` means working but impaired (e.g. a fallback in use); `fail` means unusable. */
  status: 'pass' | 'warn' | 'fail'
  message?: string
}

/**
 * Checks one dependency. Must honour `signal` (aborted on timeout) and should throw or
 * return `fail` with a short human-readable reason when the dependency is unusable.
 *
 * @example
 * const check: HealthCheck = async (signal) => { await redis.ping(signal); return { status: 'pass' } }
 */
export type HealthCheck = (signal: AbortSignal) => Promise<HealthCheckResult | undefined>

/** A dependency that can report its own health, as every store connection does. */
export interface HealthCheckable {
  readonly name: string
  healthCheck: HealthCheck
}
