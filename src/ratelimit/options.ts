import { z } from 'zod'
import { isIpRange } from '../core/index.ts'

/** Parts a policy's client key is built from; `user`, `apiKey` and `tenant` fall back to `ip` for anonymous requests. */
export const KEY_PARTS = ['ip', 'user', 'apiKey', 'tenant', 'route'] as const
export type KeyPart = (typeof KEY_PARTS)[number]

const POLICY_NAME = /^[a-z][a-z0-9_-]{0,63}$/
const MAX_WINDOW_S = 366 * 24 * 3600
const GCRA_MAX_PER_SECOND = 100_000

const policySchema = z
  .strictObject({
    algorithm: z.enum(['gcra', 'sliding-window', 'fixed-window']).default('gcra').describe('`gcra` (smooth rate plus burst), `sliding-window` or `fixed-window` (aligned to the epoch: a daily quota resets at 00:00 UTC).'),
    limit: z.number().int().min(1).max(1_000_000_000).describe('Units (requests, or cost) allowed per window: the `q` of RateLimit-Policy.'),
    windowS: z.number().int().min(1).max(MAX_WINDOW_S).describe('Window in seconds: the `w` of RateLimit-Policy.'),
    burst: z.number().int().min(1).max(1_000_000_000).optional().describe('GCRA only: units that may be spent at once; defaults to `limit`.'),
    key: z
      .union([z.enum(KEY_PARTS), z.string().regex(/^custom:[A-Za-z][\w-]*$/), z.array(z.union([z.enum(KEY_PARTS), z.string().regex(/^custom:[A-Za-z][\w-]*$/)])).min(1).max(4)])
      .default('ip')
      .describe('What identifies a client: `ip`, `user`, `apiKey`, `tenant`, `route`, `custom:<name>` (a function given in code), or a list of them combined.'),
    onStoreError: z.enum(['memory', 'open', 'closed']).default('memory').describe('While the shared store is unreachable: `memory` (an in-process insurance limiter), `open` (let requests through) or `closed` (503 with Retry-After).'),
    penalize: z.boolean().default(true).describe('Count rejections under this policy towards a penalty block (when `penalty.enabled`).'),
  })
  .refine((p) => p.burst === undefined || p.algorithm === 'gcra', { message: '`burst` applies to the gcra algorithm only', path: ['burst'] })
  // GCRA keeps one timestamp in epoch milliseconds; a double resolves those to ~0.25 µs, so an
  // emission interval under 10 µs would be rounded away (the limiter would stop counting).
  .refine((p) => p.algorithm !== 'gcra' || p.limit <= p.windowS * GCRA_MAX_PER_SECOND, {
    message: `gcra allows at most ${String(GCRA_MAX_PER_SECOND)} units per second per client (limit / windowS); use a longer window or a window algorithm`,
    path: ['limit'],
  })

export type RateLimitPolicyOptions = z.infer<typeof policySchema>

export const rateLimitOptionsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Rate limiting and quotas with RateLimit/RateLimit-Policy fields.'),
    store: z.enum(['auto', 'memory', 'redis']).default('auto').describe('Where counters live: `auto` uses Redis when `stores.redisUrl` is set, else memory.'),
    keyPrefix: z.string().max(64).default('bb:rl:').describe('Prefix of every Redis key.'),
    policies: z
      .record(z.string().regex(POLICY_NAME, 'policy names are lower-case tokens like burst or daily'), policySchema)
      .default({ burst: { algorithm: 'gcra', limit: 300, windowS: 60, key: 'ip', onStoreError: 'memory', penalize: true } })
      .describe('Named policies. The default allows 300 requests a minute per client IP.'),
    defaultPolicies: z.array(z.string()).default(['burst']).describe('Policies applied to every route unless its `config.rateLimit` says otherwise.'),
    ipv4PrefixLength: z.number().int().min(8).max(32).default(32).describe('Leading bits of an IPv4 address that identify one client.'),
    ipv6PrefixLength: z.number().int().min(16).max(128).default(64).describe('Leading bits of an IPv6 address that identify one client (a /64 is one subscriber).'),
    allowlist: z
      .array(z.string().refine(isIpRange, 'must be an IP address or CIDR range'))
      .default([])
      .describe('Client addresses or CIDR ranges never limited (monitoring, trusted partners).'),
    headers: z.boolean().default(true).describe('Send RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10).'),
    penalty: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Block clients that keep getting rejected.'),
        rejections: z.number().int().min(1).max(1_000_000).default(50).describe('Rejections within `windowS` that start a block.'),
        windowS: z.number().int().min(1).max(86_400).default(60).describe('Window over which rejections are counted.'),
        blockS: z.number().int().min(1).max(86_400).default(300).describe('First block length; each further block doubles, up to `maxBlockS`.'),
        maxBlockS: z.number().int().min(1).max(7 * 86_400).default(3_600).describe('Longest block.'),
      })
      .prefault({}),
    breaker: z
      .strictObject({
        timeoutMs: z.number().int().min(1).max(10_000).default(250).describe('A store call slower than this counts as a failure.'),
        failureThreshold: z.number().int().min(1).max(1_000).default(5).describe('Consecutive failures that open the circuit.'),
        halfOpenAfterMs: z.number().int().min(100).max(600_000).default(5_000).describe('How long the circuit stays open before one call tries the store again.'),
      })
      .prefault({}),
    insuranceLimitFactor: z.number().gt(0).max(1).default(1).describe('Scales limits of the in-memory insurance limiter (1/N for N instances sharing a Redis).'),
  })
  .superRefine((options, ctx) => {
    options.defaultPolicies.forEach((name, i) => {
      if (!Object.hasOwn(options.policies, name)) ctx.addIssue({ code: 'custom', message: `no policy named ${JSON.stringify(name)} in rateLimit.policies`, path: ['defaultPolicies', i] })
    })
    if (options.penalty.maxBlockS < options.penalty.blockS) ctx.addIssue({ code: 'custom', message: 'must be at least penalty.blockS', path: ['penalty', 'maxBlockS'] })
  })

export type RateLimitOptions = z.infer<typeof rateLimitOptionsSchema>
export type RateLimitOptionsInput = z.input<typeof rateLimitOptionsSchema>
