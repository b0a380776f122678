import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  BackbeatError,
  clientNetwork,
  ConfigError,
  currentContext,
  IpRangeSet,
  parseOptions,
  type Clock,
  type HealthCheck,
  type IpGrouping,
  type RequestContext,
  type SecurityEventSink,
} from '../core/index.ts'
import type { RedisConnection } from '../stores/index.ts'
import { limitField, policyField, retryAfterSeconds } from './headers.ts'
import { RateLimiter, type PolicyCheck, type RateLimiterEvent, type RateLimitPolicy, type RateLimitResult } from './limiter.ts'
import { MemoryRateLimitStore } from './memory-store.ts'
import { rateLimitOptionsSchema, type KeyPart, type RateLimitOptions, type RateLimitOptionsInput } from './options.ts'
import { RedisRateLimitStore } from './redis-store.ts'
import type { RateLimitStore } from './store.ts'

/** Per-route rate limiting, set through the route's `config.rateLimit`. */
export interface RouteRateLimit {
  /** Policy names applied to this route instead of `defaultPolicies`. */
  policies?: readonly string[]
  /** Units one request costs (an AI endpoint may cost 10 reads); a function sees the request. */
  cost?: number | ((request: FastifyRequest) => number)
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` exempts the route; an object picks policies and a cost. */
    rateLimit?: false | RouteRateLimit
  }
  interface FastifyInstance {
    /** The engine behind the plugin (stats, breaker state, `reset`). */
    rateLimiter: RateLimiter
  }
}

/** Returns the identity of a client for a `custom:<name>` key part, or undefined to fall back to the IP. */
export type RateLimitKeyFunction = (request: FastifyRequest) => string | undefined

export type RateLimitPluginOptions = RateLimitOptionsInput & {
  /** A ready store; otherwise one is built from `store` and `redis`. */
  storeInstance?: RateLimitStore
  /** The shared Redis (required when `store` is `redis`, used by `auto` when given). */
  redis?: RedisConnection
  /** Functions behind `custom:<name>` key parts. */
  keyFunctions?: Readonly<Record<string, RateLimitKeyFunction>>
  /** Requests for which this returns true are never limited (trusted partners, health probes). */
  allow?: (request: FastifyRequest) => boolean
  /** Receives `rate_limit_block` events; the stack passes its security event log. */
  securityEvents?: SecurityEventSink
  /** Registers a `ratelimit` health check that warns while the store's circuit is open. */
  registerHealthCheck?: (name: string, check: HealthCheck) => void
  now?: Clock
}

type KeyBuilder = (request: FastifyRequest) => string

interface PolicyPlan {
  policy: RateLimitPolicy
  key: KeyBuilder
}

interface RoutePlan {
  /** Policies keyed on what is known on arrival (address, route): decided in onRequest. */
  early: PolicyPlan[]
  /** Policies keyed on identity (user, API key, tenant, custom): decided after authentication. */
  late: PolicyPlan[]
  cost: number | ((request: FastifyRequest) => number)
  policyField: string
  /** Includes the policy of the caller's credentials (an API key's tier): RateLimit-Policy is rewritten. */
  tier?: boolean
}

const EARLY_PARTS: ReadonlySet<string> = new Set<KeyPart>(['ip', 'route'])

/**
 * Rate limiting and quotas for every route: GCRA, sliding or fixed windows per named policy,
 * keyed by client address (IPv6 grouped by /64), user, API key, tenant, route or your own
 * function; several policies per request with the strictest winning; a cost per request;
 * `RateLimit-Policy` and `RateLimit` fields per draft-ietf-httpapi-ratelimit-headers-10;
 * 429 problem+json `ERR_RATE_LIMITED` (type `quota-exceeded`) with Retry-After; escalating
 * blocks for clients that keep pushing; an address allowlist. With Redis, every instance
 * shares the counters, and a Redis outage is handled per policy (insurance limiter, open or
 * closed) behind a circuit breaker.
 *
 * @example
 * await app.register(rateLimitPlugin, { policies: { burst: { limit: 100, windowS: 60 } }, defaultPolicies: ['burst'] })
 * app.post('/v1/agent/ask', { config: { rateLimit: { policies: ['burst', 'ai'], cost: 10 } } }, handler)
 */
export const rateLimitPlugin = fp<RateLimitPluginOptions>(
  async (app, pluginOptions) => {
    const { storeInstance, redis, keyFunctions = {}, allow, securityEvents, registerHealthCheck, now, ...raw } = pluginOptions
    const options = parseOptions('rateLimit', rateLimitOptionsSchema, raw)
    if (!options.enabled) return
    const store = storeInstance ?? buildStore(options, redis)
    const policies = buildPolicies(options, keyFunctions)
    const grouping: IpGrouping = { ipv4PrefixLength: options.ipv4PrefixLength, ipv6PrefixLength: options.ipv6PrefixLength }
    const allowlist = new IpRangeSet(options.allowlist)

    const limiter = new RateLimiter({
      store,
      ...(options.penalty.enabled
        ? { penalty: { rejections: options.penalty.rejections, windowMs: options.penalty.windowS * 1000, blockMs: options.penalty.blockS * 1000, maxBlockMs: options.penalty.maxBlockS * 1000 } }
        : {}),
      breaker: options.breaker,
      insuranceLimitFactor: options.insuranceLimitFactor,
      ...(now === undefined ? {} : { now }),
      onEvent: (event) => {
        onLimiterEvent(event)
      },
    })
    app.decorate('rateLimiter', limiter)

    function onLimiterEvent(event: RateLimiterEvent): void {
      switch (event.type) {
        case 'breaker-open':
          app.log.error({ store: event.store, reason: event.reason, event: 'ratelimit.breaker.open' }, 'rate-limit store failing: circuit open, policies follow their onStoreError mode')
          return
        case 'breaker-half-open':
          app.log.info({ store: event.store, event: 'ratelimit.breaker.half_open' }, 'rate-limit store: trying again')
          return
        case 'breaker-closed':
          app.log.warn({ store: event.store, event: 'ratelimit.breaker.closed' }, 'rate-limit store recovered: circuit closed')
          return
        case 'store-error':
          app.log.debug({ store: event.store, policy: event.policy, reason: event.reason, mode: event.mode }, 'rate-limit store call failed')
          return
        case 'block': {
          const context = currentContext()
          app.log.warn({ policy: event.policy, key: event.key, blockS: retryAfterSeconds(event.retryAfterMs) }, 'client blocked for repeated rate-limit rejections')
          securityEvents?.({
            type: 'rate_limit_block',
            severity: 'medium',
            at: Date.now(),
            ...(context === undefined ? {} : { requestId: context.requestId }),
            details: { policy: event.policy, key: event.key, blockS: retryAfterSeconds(event.retryAfterMs) },
          })
          return
        }
      }
    }

    registerHealthCheck?.('ratelimit', async () => {
      const state = limiter.breakerState
      return state === 'closed'
        ? { status: 'pass', output: `${store.kind} store` }
        : { status: 'warn', output: `${store.kind} store unreachable (circuit ${state}); policies follow their onStoreError mode` }
    })

    // One plan per route (its config object), built on first use.
    const plans = new WeakMap<object, RoutePlan | null>()
    const planOf = (request: FastifyRequest): RoutePlan | null => {
      const config = request.routeOptions.config as { rateLimit?: false | RouteRateLimit }
      let plan = plans.get(config)
      if (plan === undefined) {
        plan = buildPlan(config.rateLimit)
        plans.set(config, plan)
      }
      return plan
    }

    // Unknown paths (the not-found handler's config) get the default policies too: scanners
    // probing for files are limited like everyone else.
    function buildPlan(route: false | RouteRateLimit | undefined): RoutePlan | null {
      if (route === false) return null
      const names = route?.policies ?? options.defaultPolicies
      const chosen = names.map((name) => {
        const plan = policies.get(name)
        if (plan === undefined) throw new ConfigError([{ path: 'route config.rateLimit.policies', message: `no policy named ${JSON.stringify(name)}` }])
        return plan
      })
      if (chosen.length === 0) return null
      const cost = route?.cost ?? 1
      if (typeof cost === 'number' && !(Number.isInteger(cost) && cost >= 0)) throw new ConfigError([{ path: 'route config.rateLimit.cost', message: 'must be a non-negative integer' }])
      return {
        early: chosen.filter((p) => p.early),
        late: chosen.filter((p) => !p.early),
        cost,
        policyField: policyField(chosen.map((p) => p.policy)),
      }
    }

    function buildPolicies(opts: RateLimitOptions, functions: Readonly<Record<string, RateLimitKeyFunction>>): Map<string, PolicyPlan & { early: boolean }> {
      const issues: Array<{ path: string; message: string }> = []
      const out = new Map<string, PolicyPlan & { early: boolean }>()
      for (const [name, p] of Object.entries(opts.policies)) {
        const parts = Array.isArray(p.key) ? p.key : [p.key]
        const builders: KeyBuilder[] = []
        for (const part of parts) {
          const builder = partBuilder(part, functions)
          if (builder === undefined) issues.push({ path: `rateLimit.policies.${name}.key`, message: `no key function named ${JSON.stringify(part.slice(7))} was given in keyFunctions` })
          else builders.push(builder)
        }
        const key: KeyBuilder = builders.length === 1 ? (builders[0] as KeyBuilder) : (request) => builders.map((b) => b(request)).join('|')
        const policy: RateLimitPolicy = {
          name,
          algorithm: p.algorithm,
          limit: p.limit,
          windowMs: p.windowS * 1000,
          burst: p.burst ?? p.limit,
          onStoreError: p.onStoreError,
          penalize: p.penalize,
        }
        out.set(name, { policy, key, early: parts.every((part) => EARLY_PARTS.has(part)) })
      }
      if (issues.length > 0) throw new ConfigError(issues)
      return out
    }

    function partBuilder(part: string, functions: Readonly<Record<string, RateLimitKeyFunction>>): KeyBuilder | undefined {
      const byIp: KeyBuilder = (request) => `ip:${clientNetwork(request.ip, grouping)}`
      switch (part) {
        case 'ip':
          return byIp
        case 'route':
          return (request) => `route:${request.method} ${request.routeOptions.url ?? '(unmatched)'}`
        case 'user':
          return (request) => {
            const id = contextOf(request)?.userId
            return id === undefined ? byIp(request) : `user:${id}`
          }
        case 'apiKey':
          return (request) => {
            const id = contextOf(request)?.apiKeyId
            return id === undefined ? byIp(request) : `apikey:${id}`
          }
        case 'tenant':
          return (request) => {
            const id = contextOf(request)?.tenantId
            return id === undefined ? byIp(request) : `tenant:${id}`
          }
      }
      const name = part.slice('custom:'.length)
      const custom = Object.hasOwn(functions, name) ? functions[name] : undefined
      if (custom === undefined) return undefined
      const keyOf: RateLimitKeyFunction = custom
      return (request) => {
        const id = keyOf(request)
        return id === undefined ? byIp(request) : `${name}:${id}`
      }
    }

    const isAllowed = (request: FastifyRequest): boolean => (allowlist.size > 0 && allowlist.has(request.ip)) || (allow !== undefined && allow(request))

    function run(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan, phase: PolicyPlan[], first: boolean, done: (err?: Error) => void): void {
      const checks: PolicyCheck[] = []
      for (const p of phase) checks.push({ policy: p.policy, key: p.key(request) })
      const cost = typeof plan.cost === 'number' ? plan.cost : plan.cost(request)
      const result = limiter.check(checks, cost)
      if (result instanceof Promise) {
        result.then(
          (r) => {
            done(finish(r, reply, plan, first))
          },
          (err: unknown) => {
            done(err instanceof Error ? err : new Error(String(err)))
          },
        )
      } else {
        done(finish(result, reply, plan, first))
      }
    }

    function finish(result: RateLimitResult, reply: FastifyReply, plan: RoutePlan, first: boolean): BackbeatError | undefined {
      if (options.headers) {
        if (first || plan.tier === true) reply.header('ratelimit-policy', plan.policyField)
        const field = limitField(result.outcomes)
        if (field !== '') {
          const existing = first ? undefined : reply.getHeader('ratelimit')
          reply.header('ratelimit', typeof existing === 'string' && existing !== '' ? `${existing}, ${field}` : field)
        }
      }
      const denied = result.denied
      if (denied === undefined) return undefined
      const retryAfterS = retryAfterSeconds(denied.decision.retryAfterMs)
      if (denied.source === 'closed') return new BackbeatError('ERR_RATE_LIMIT_UNAVAILABLE', { headers: { 'retry-after': String(retryAfterS) } })
      const violated = result.outcomes.filter((o) => !o.decision.allowed).map((o) => o.policy.name)
      return new BackbeatError('ERR_RATE_LIMITED', {
        params: { retryAfterS },
        headers: { 'retry-after': String(retryAfterS) },
        extensions: { 'violated-policies': violated },
      })
    }

    // A route naming an unknown policy or a bad cost fails when it is declared, not when hit.
    app.addHook('onRoute', (route) => {
      const rateLimit = (route.config as { rateLimit?: false | RouteRateLimit } | undefined)?.rateLimit
      if (rateLimit !== undefined) buildPlan(rateLimit)
    })

    // Each hook only exists when some policy needs it: a hook costs every request.
    const all = [...policies.values()]
    if (all.some((p) => p.early)) {
      app.addHook('onRequest', (request, reply, done) => {
        const plan = planOf(request)
        if (plan === null || plan.early.length === 0 || isAllowed(request)) {
          done()
          return
        }
        run(request, reply, plan, plan.early, true, done)
      })
    }

    // The tier hook: credentials may name a policy of their own (an API key's
    // `rateLimitPolicy`), applied with the route's late policies. One plan per route and tier.
    const tiered = new WeakMap<RoutePlan, Map<string, RoutePlan>>()
    const warnedTiers = new Set<string>()
    const withTier = (plan: RoutePlan, name: string): RoutePlan => {
      let byName = tiered.get(plan)
      if (byName === undefined) {
        byName = new Map()
        tiered.set(plan, byName)
      }
      let combined = byName.get(name)
      if (combined === undefined) {
        const extra = policies.get(name)
        if (extra === undefined || plan.early.includes(extra) || plan.late.includes(extra)) {
          // An unknown tier adds nothing: the route's own policies still apply (never fail open).
          if (extra === undefined && !warnedTiers.has(name)) {
            warnedTiers.add(name)
            app.log.warn({ policy: name }, 'credentials name a rate-limit policy that is not configured; the route policies apply alone')
          }
          combined = plan
        } else {
          const late = [...plan.late, extra]
          combined = { ...plan, late, tier: true, policyField: policyField([...plan.early, ...late].map((p) => p.policy)) }
        }
        byName.set(name, combined)
      }
      return combined
    }

    if (all.some((p) => !p.early)) {
      app.addHook('preHandler', (request, reply, done) => {
        const routePlan = planOf(request)
        const tier = routePlan === null ? undefined : contextOf(request)?.rateLimitPolicy
        const plan = routePlan === null || tier === undefined ? routePlan : withTier(routePlan, tier)
        if (plan === null || plan.late.length === 0 || isAllowed(request)) {
          done()
          return
        }
        run(request, reply, plan, plan.late, plan.early.length === 0, done)
      })
    }

    app.addHook('onClose', async () => {
      limiter.close()
      // A store we built is ours to close; the Redis connection belongs to the caller.
      if (storeInstance === undefined) await store.close()
    })
  },
  { name: 'backbeat-ratelimit', fastify: '5.x' },
)

/** The request context, when the http plugin (which creates it) is registered. */
function contextOf(request: FastifyRequest): RequestContext | null {
  return request.requestContext
}

function buildStore(options: RateLimitOptions, redis: RedisConnection | undefined): RateLimitStore {
  if (options.store === 'redis' && redis === undefined) throw new ConfigError([{ path: 'rateLimit.store', message: 'is redis but no Redis connection was given (set stores.redisUrl / REDIS_URL)' }])
  if (options.store === 'memory' || redis === undefined) return new MemoryRateLimitStore()
  return new RedisRateLimitStore(redis, { prefix: options.keyPrefix })
}
