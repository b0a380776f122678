import type { PolicyOutcome, RateLimitPolicy } from './limiter.ts'

/**
 * The `RateLimit-Policy` field of draft-ietf-httpapi-ratelimit-headers-10: a Structured
 * Field List with one item per policy, its name as an sf-string, `q` the quota and `w` the
 * window in seconds. Policy names are validated to plain tokens, so no escaping is needed.
 *
 * @example policyField([burst, daily]) // '"burst";q=100;w=60, "daily";q=1000;w=86400'
 */
export function policyField(policies: readonly RateLimitPolicy[]): string {
  let out = ''
  for (const policy of policies) {
    if (out !== '') out += ', '
    out += `"${policy.name}";q=${String(policy.limit)};w=${String(Math.ceil(policy.windowMs / 1000))}`
  }
  return out
}

/**
 * The `RateLimit` field: one item per policy with `r`, the units remaining, and `t`, the
 * seconds until more quota is available: the Retry-After of a refused request (the draft
 * wants Retry-After no earlier than `t`), else the time until the quota is fully restored.
 * Policies decided by a failure mode (`open`, `closed`) are left out: their numbers would
 * be invented.
 *
 * @example limitField(outcomes) // '"burst";r=42;t=18'
 */
export function limitField(outcomes: readonly PolicyOutcome[]): string {
  let out = ''
  for (const { policy, decision, source } of outcomes) {
    if (source === 'open' || source === 'closed') continue
    if (out !== '') out += ', '
    const t = decision.allowed ? Math.ceil(decision.resetMs / 1000) : retryAfterSeconds(decision.retryAfterMs)
    out += `"${policy.name}";r=${String(decision.remaining)};t=${String(t)}`
  }
  return out
}

/** Whole seconds for `Retry-After` (RFC 9110 delay-seconds), never 0 for a refusal. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}
