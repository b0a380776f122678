import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { BackbeatConfig } from '../config/index.ts'
import { SecurityEventLog, type BackbeatError, type SecurityEvent } from '../core/index.ts'
import { corsPlugin } from '../cors/index.ts'
import { securityHeadersPlugin } from '../headers/index.ts'
import { limitsPlugin, type CountryResolver } from '../limits/index.ts'
import { rateLimitPlugin, type RateLimitKeyFunction } from '../ratelimit/index.ts'
import type { KeyValueStore, MemcachedConnection, RedisConnection, SqlDatabase } from '../stores/index.ts'
import { DEFAULT_EXCLUDED_HEADERS, KeyValueTagStore, MemcachedCacheStore, RedisCacheStore, RedisInvalidationBus, RedisLease, responseCachePlugin, TieredCache, ValueCodec, type CacheStore } from '../cache/index.ts'
import { randomBytes } from 'node:crypto'
import { ApiKeyService, authPlugin, createIdentity, MemorySessionStore, SqlApiKeyStore, RedisSessionStore, SessionManager, sessionIdentity, sessionPlugin, type ApiKeyAuthenticator, type AuthIdentity, type Identity } from '../auth/index.ts'
import { HealthRegistry, healthPlugin } from '../health/index.ts'
import { httpPlugin, type MessageLookup } from '../http/index.ts'
import { requestLoggingPlugin } from '../logging/index.ts'
import { openapiPlugin } from '../openapi/index.ts'
import { cacheCollector, metricsPlugin } from '../metrics/index.ts'
import { tracingPlugin, type Tracing } from '../tracing/index.ts'
import { errorMonitorPlugin } from '../monitoring/index.ts'
import { opsPlugin, type OpsCacheSource } from '../ops/index.ts'

export interface BackbeatPluginOptions {
  config: BackbeatConfig
  /** Share a health registry created elsewhere (createBackbeatApp does). */
  health?: HealthRegistry
  /** Title/detail lookup by error code (the i18n capability supplies one). */
  messages?: MessageLookup
  /** Reported by `/health` and in the OpenAPI document. */
  service?: { name?: string; version?: string; description?: string }
  /**
   * True when the server was built with `backbeatServerOptions(config, backbeatLogger)`,
   * which writes completion lines itself (createBackbeatApp sets it).
   */
  completionLinesFromServerOptions?: boolean
  /** The shared Redis: rate-limit counters and blocks, the cache's L2, tag store, bus and leases live there when given. */
  redis?: RedisConnection
  /** Memcached: the cache's next tier (after Redis) when given. */
  memcached?: MemcachedConnection
  /** Where security events go; defaults to a bounded in-memory log (`app.securityEvents`). */
  securityEvents?: SecurityEventLog
  /** Functions behind `custom:<name>` rate-limit key parts. */
  rateLimitKeyFunctions?: Readonly<Record<string, RateLimitKeyFunction>>
  /** Requests for which this returns true are never rate limited. */
  rateLimitAllow?: (request: FastifyRequest) => boolean
  /** Resolves client addresses to countries for `limits.countries`. */
  countryResolver?: CountryResolver
  /** Shared key-value state (deny list, refresh tokens, lockout); in memory when not given. */
  kv?: KeyValueStore
  /** Identity engines built beforehand with `createIdentity`; built from `config.auth` otherwise. */
  identity?: Identity
  /** Accepts API keys; by default an `ApiKeyService` on `sql` (its table is migrated at start). */
  apiKeys?: ApiKeyAuthenticator
  /** The SQL database API keys live in (createBackbeatApp passes the stores' one). */
  sql?: SqlDatabase
  /** The identity of a session cookie, for the session plugin. */
  sessionIdentity?: (request: FastifyRequest) => AuthIdentity | BackbeatError | null
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The latest security events (rate-limit blocks, denied addresses, CSP reports, ...). */
    securityEvents: SecurityEventLog
    /** The identity engines (issuer, verifier, deny list, refresh tokens, ...); null when auth is off. */
    identity: Identity | null
    /** API keys (create, rotate, revoke, list), when auth is on and a SQL database was given. */
    apiKeys: ApiKeyService | null
    /** The tiered cache for application data (L1, then Redis and Memcached when configured); null when `cache.enabled` is off. */
    cache: TieredCache | null
  }
}

/**
 * Registers every capability in the documented order (docs/architecture.md), each only if
 * enabled in `config`:
 * 0. metrics (/metrics; request duration covers every hook after it), then, after http,
 *    tracing (a server span per request, its IDs in the request context and every log
 *    line) and error monitoring (5xx and unhandled errors grouped into issues);
 * 1. http: request ID, request context, timing header, problem+json errors, 404/405;
 * 2. request logging: one completion line per request (written by the server's log
 *    controller when the server was built by backbeatServerOptions with a BackbeatLogger);
 * 3. security headers: on every response, errors included; the CSP report endpoint;
 * 4. CORS: preflights answered here, before limits, so refusals carry CORS headers;
 * 5. limits: address/country rules, URI length, header count, per-client concurrency,
 *    JSON shape (after parsing);
 * 6. rate limit: policies keyed on address/route in onRequest, on identity in preHandler;
 * 7. auth: bearer JWTs (deny list checked), API keys, sessions; route requirements
 *    (scopes, permissions, roles, MFA), in onRequest after the limits so floods are cheap;
 * 8. openapi: /openapi.json and /docs (before any route, so it documents them all);
 * 9. health: /health/live, /health/ready, /ready, /health.
 * Register it before your routes.
 *
 * @example
 * const app = Fastify(backbeatServerOptions(config, logger))
 * await app.register(backbeat, { config })
 */
export const backbeat = fp<BackbeatPluginOptions>(
  async (app, options) => {
    const { config, health, messages, service, completionLinesFromServerOptions = false } = options
    // Observability first: metrics measure everything after them, and the span is open before any other hook.
    let tracing: Tracing | undefined
    if (config.metrics.enabled) {
      // Exemplars only for sampled traces: an exemplar pointing at a trace nobody recorded is noise, and costs every observation.
      await app.register(metricsPlugin, {
        ...config.metrics,
        currentTraceId: () => {
          const ids = tracing?.currentTraceIds()
          return ids?.sampled === true ? ids.traceId : undefined
        },
      })
    }
    if (config.http.enabled) {
      await app.register(httpPlugin, { ...config.http, bodyLimitBytes: config.server.bodyLimitBytes, ...(messages === undefined ? {} : { messages }) })
    }
    // With a BackbeatLogger, backbeatServerOptions already writes completion lines through
    // Fastify's log controller; otherwise the hook-based plugin does.
    if (config.tracing.enabled) {
      await app.register(tracingPlugin, { ...config.tracing, ...(service?.name === undefined || config.tracing.serviceName !== 'backbeat' ? {} : { serviceName: service.name }), ...(service?.version === undefined || config.tracing.serviceVersion !== undefined ? {} : { serviceVersion: service.version }) })
      tracing = app.tracing
      if (config.http.enabled) {
        // Every log line of the request carries its trace and span IDs (the logger reads them from the request context).
        app.addHook('onRequest', (request, _reply, done) => {
          const span = request.traceSpan
          if (span !== undefined) {
            const ids = span.spanContext()
            request.requestContext.traceId = ids.traceId
            request.requestContext.spanId = ids.spanId
          }
          done()
        })
      }
    }
    if (config.errorMonitor.enabled) await app.register(errorMonitorPlugin, config.errorMonitor)
    if (config.logging.enabled && !completionLinesFromServerOptions) {
      await app.register(requestLoggingPlugin, { requestCompletion: config.logging.requestCompletion, slowRequestMs: config.logging.slowRequestMs })
    }
    const registry = health ?? new HealthRegistry({ checkTimeoutMs: config.health.checkTimeoutMs, cacheMs: config.health.cacheMs })
    const events = options.securityEvents ?? new SecurityEventLog()
    app.decorate('securityEvents', events)
    const securityEvents = (event: SecurityEvent): void => {
      events.record(event)
      app.log.warn({ securityEvent: event.type, severity: event.severity, details: event.details, clientIp: event.clientIp }, `security event: ${event.type}`)
    }
    await app.register(securityHeadersPlugin, { ...config.securityHeaders, securityEvents })
    await app.register(corsPlugin, config.cors)
    await app.register(limitsPlugin, {
      ...config.limits,
      securityEvents,
      grouping: { ipv4PrefixLength: config.rateLimit.ipv4PrefixLength, ipv6PrefixLength: config.rateLimit.ipv6PrefixLength },
      ...(options.countryResolver === undefined ? {} : { countryResolver: options.countryResolver }),
    })
    await app.register(rateLimitPlugin, {
      ...config.rateLimit,
      ...(config.rateLimit.store !== 'memory' && options.redis !== undefined ? { redis: options.redis } : {}),
      ...(options.rateLimitKeyFunctions === undefined ? {} : { keyFunctions: options.rateLimitKeyFunctions }),
      ...(options.rateLimitAllow === undefined ? {} : { allow: options.rateLimitAllow }),
      securityEvents,
      registerHealthCheck: (name, check) => {
        registry.register(name, check, { critical: false })
      },
    })
    const { identity, apiKeyService } = config.auth.enabled ? await registerIdentity(app, options, securityEvents, registry) : { identity: null, apiKeyService: null }
    // Asymmetric signing keys are published, so other services verify our tokens offline.
    const publicJwk = identity?.issuer.publicJwk
    if (publicJwk !== undefined) {
      const document = JSON.stringify({ keys: [publicJwk] })
      app.get('/.well-known/jwks.json', { config: { auth: false, rateLimit: false }, schema: { hide: true } }, (_request, reply) => {
        void reply.header('cache-control', 'public, max-age=300').type('application/jwk-set+json').send(document)
      })
    }
    app.decorate('identity', identity)
    app.decorate('apiKeys', apiKeyService)
    app.decorate('cache', config.cache.enabled ? await registerCache(app, options, registry, identity !== null) : null)
    // The ops API is admin-only: without auth nobody could be told apart from an admin, so it is not registered.
    if (config.ops.enabled && identity !== null) {
      const caches: Record<string, OpsCacheSource> = {}
      if (app.cache !== null) caches[config.cache.namespace] = app.cache
      if (app.hasDecorator('responseCache')) caches['http'] = app.responseCache.options.cache
      await app.register(opsPlugin, {
        ...config.ops,
        routeConfig: { auth: { permissions: [config.ops.permission] }, rateLimit: false },
        caches,
        ...(app.hasDecorator('errorMonitor') ? { errorMonitor: app.errorMonitor } : {}),
      })
    }
    if (config.metrics.enabled && app.cache !== null) {
      app.metrics.registerCollector('cache:app', cacheCollector(config.cache.namespace, app.cache))
      if (app.hasDecorator('responseCache')) app.metrics.registerCollector('cache:http', cacheCollector('http', app.responseCache.options.cache))
    }
    await app.register(openapiPlugin, {
      ...config.openapi,
      ...(service?.description === undefined ? {} : { description: service.description }),
    })
    await app.register(healthPlugin, {
      ...config.health,
      registry,
      service: { environment: config.environment, ...(service?.name === undefined ? {} : { name: service.name }), ...(service?.version === undefined ? {} : { version: service.version }) },
    })
  },
  { name: 'backbeat', fastify: '5.x' },
)

/**
 * Step 8 of the order: the tiered cache (Redis L2, Memcached after it, each only when
 * configured; with Redis also the tag store, the invalidation bus and leases, so every
 * instance agrees), decorated as `app.cache`, and the response cache on an engine of its own
 * (namespace `http`) over the same tiers. A `cache` health check warns while a tier's
 * breaker is open (requests still succeed, from the loader).
 */
async function registerCache(app: FastifyInstance, options: BackbeatPluginOptions, registry: HealthRegistry, authOn: boolean): Promise<TieredCache> {
  const settings = options.config.cache
  const redis = settings.redis ? options.redis : undefined
  const memcached = settings.memcached ? options.memcached : undefined
  // A tier outage fails nothing, but it must be seen: at most one warn line per tier and kind every 10 s, with counts.
  const warned = new Map<string, { at: number; suppressed: number }>()
  const warn = (what: string, details: Record<string, unknown>): void => {
    const now = Date.now()
    const last = warned.get(what)
    if (last !== undefined && now - last.at < 10_000) {
      last.suppressed++
      return
    }
    warned.set(what, { at: now, suppressed: 0 })
    app.log.warn({ ...details, suppressedSinceLast: last?.suppressed ?? 0 }, `cache: ${what}`)
  }
  const onCorrupt = (key: string): void => {
    warn('unreadable entry treated as a miss', { key })
  }
  const tiers: CacheStore[] = []
  if (redis !== undefined) tiers.push(new RedisCacheStore(redis, { onCorrupt }))
  if (memcached !== undefined) tiers.push(new MemcachedCacheStore(memcached, { onCorrupt }))
  const bus = redis === undefined ? undefined : new RedisInvalidationBus(redis)
  if (bus !== undefined) {
    try {
      await bus.connect()
    } catch (err) {
      // The bus reconnects by itself; until then peers' L1 copies live at most their TTL.
      app.log.warn({ err }, 'cache: the invalidation bus could not subscribe yet; it keeps retrying')
    }
  }
  const shared = {
    tiers,
    codec: new ValueCodec({ compressAboveBytes: settings.compressAboveBytes }),
    tierTimeoutMs: settings.tierTimeoutMs,
    ...(redis !== undefined && options.kv !== undefined ? { tagStore: new KeyValueTagStore(options.kv, { prefix: 'bb:cache:tags:' }) } : {}),
    ...(bus === undefined ? {} : { bus }),
  }
  const l1 = settings.l1Size === 0 ? (false as const) : { maxEntries: settings.l1Size, maxBytes: settings.l1MaxBytes }
  const cache = new TieredCache({
    ...shared,
    namespace: settings.namespace,
    l1,
    defaultTtlS: settings.ttlDefaultS,
    graceS: settings.graceS,
    jitter: settings.jitter,
    ...(redis === undefined ? {} : { lease: { lease: new RedisLease(redis) } }),
  })
  const engines = [cache]
  if (settings.http.enabled) {
    const http = settings.http
    const engine = new TieredCache({ ...shared, namespace: 'http', l1, jitter: 0 })
    engines.push(engine)
    await app.register(responseCachePlugin, {
      cache: engine,
      routes: http.routes,
      storeSetCookie: http.storeSetCookie,
      generateETag: http.generateETag,
      heuristic: http.heuristic ? { fraction: 0.1, maxS: 86_400 } : false,
      maxBodyBytes: http.maxBodyBytes,
      keepStaleS: http.keepStaleS,
      maxRetentionS: http.maxRetentionS,
      keyIncludesHost: http.keyIncludesHost,
      staleOnErrorS: http.staleOnErrorS,
      targetedFields: http.targetedFields,
      // An API key and a session cookie are credentials like Authorization: their responses are shared only when marked public.
      credentialHeaders: authOn ? ['authorization', options.config.auth.apiKeys.header.toLowerCase()] : ['authorization'],
      credentialCookies: authOn ? ['__Host-bb_session', 'bb_session'] : [],
      // The request ID is the request's own, whatever header carries it.
      excludeHeaders: [...new Set([...DEFAULT_EXCLUDED_HEADERS, options.config.http.requestId.header])],
      surrogateKeyHeaders: http.surrogateKeyHeaders,
      xCache: http.xCache,
      cacheStatusName: http.cacheStatusName,
      exposeSurrogateKeys: http.exposeSurrogateKeys,
      backgroundRevalidation: http.backgroundRevalidation,
      collapseWaitMs: http.collapseWaitMs,
      passTtlS: http.passTtlS,
      // Without auth nobody could be told apart from an admin: no purge route at all.
      purge: http.purgePath === false || !authOn ? false : { path: http.purgePath, config: { auth: { permissions: ['cache:purge'] } } },
    })
  }
  if (tiers.length > 0) {
    registry.register(
      'cache',
      () => {
        const open = engines.flatMap((engine) => Object.entries(engine.breakerStates).filter(([, state]) => state !== 'closed').map(([tier]) => `${engine.options.namespace}:${tier}`))
        return Promise.resolve(open.length === 0 ? { status: 'pass' as const } : { status: 'warn' as const, message: `cache tier skipped while its circuit is open: ${open.join(', ')}` })
      },
      { critical: false, componentType: 'component' },
    )
  }
  // Errors are read from the counters every 10 s rather than from onEvent, which would cost every hit an event.
  const seenErrors = new Map<string, number>()
  const watch = setInterval(() => {
    for (const engine of engines) {
      for (const [tier, stats] of Object.entries(engine.stats())) {
        const key = `${engine.options.namespace}:${tier}`
        const before = seenErrors.get(key) ?? 0
        seenErrors.set(key, stats.errors)
        if (stats.errors > before) warn(`${key} errors`, { tier: key, errors: stats.errors - before, breaker: engine.breakerStates[tier] ?? 'n/a' })
      }
    }
  }, 10_000)
  watch.unref()
  app.addHook('onClose', async () => {
    clearInterval(watch)
    await Promise.all(engines.map((engine) => engine.close()))
    await bus?.close()
  })
  return cache
}

/**
 * Step 7 of the order: the identity engines (built from `config.auth` unless given), the
 * session plugin (its hook loads the cookie's session first), API keys on the SQL store
 * (migrated at start), then the auth plugin that admits a bearer token, an API key or that
 * session. A remote JWKS joins `/health` as a non-critical check.
 */
async function registerIdentity(
  app: FastifyInstance,
  options: BackbeatPluginOptions,
  securityEvents: (event: SecurityEvent) => void,
  registry: HealthRegistry,
): Promise<{ identity: Identity; apiKeyService: ApiKeyService | null }> {
  const { config } = options
  const identity = options.identity ?? (await createIdentity(config.auth, { ...(options.kv === undefined ? {} : { kv: options.kv }), securityEvents, logger: app.log }))
  const remoteJwks = identity.remoteJwks
  if (remoteJwks !== undefined) {
    registry.register('jwks', remoteJwks.healthCheck, { critical: false, componentType: 'component' })
    app.addHook('onClose', () => remoteJwks.close())
  }
  const sessions = new SessionManager({
    store: options.redis === undefined ? new MemorySessionStore() : new RedisSessionStore(options.redis),
    idleTimeoutMs: config.auth.sessions.idleTimeoutMinutes * 60_000,
    absoluteTimeoutMs: config.auth.sessions.absoluteTimeoutHours * 3_600_000,
  })
  let csrfSecret = config.auth.sessions.csrfSecret
  if (csrfSecret === undefined) {
    // Production with shared sessions never gets here (the config schema requires the secret).
    csrfSecret = randomBytes(32).toString('base64url')
    if (options.redis !== undefined) app.log.warn('auth: no BACKBEAT_CSRF_SECRET configured; CSRF tokens from this instance are refused by the others sharing its sessions')
  }
  await app.register(sessionPlugin, {
    manager: sessions,
    secure: config.auth.sessions.cookieSecure,
    sameSite: config.auth.sessions.sameSite,
    csrf: { secret: csrfSecret },
    credentialHeaders: ['authorization', config.auth.apiKeys.header],
    securityEvents,
  })
  let apiKeyService: ApiKeyService | null = null
  if (options.apiKeys === undefined && options.sql !== undefined) {
    const store = new SqlApiKeyStore(options.sql)
    await store.migrate()
    const service = new ApiKeyService({ store, prefix: config.auth.apiKeys.prefix, pepper: config.auth.apiKeys.pepper, logger: app.log, onSecurityEvent: securityEvents })
    app.addHook('onClose', () => service.close())
    apiKeyService = service
  }
  const apiKeys = options.apiKeys ?? apiKeyService ?? undefined
  await app.register(authPlugin, {
    verifier: identity.verifier,
    revocations: identity.revocations,
    rbac: identity.rbac,
    realm: config.auth.realm,
    apiKeyHeader: config.auth.apiKeys.header,
    mfaEnforcedRoles: config.auth.mfa.enforcedRoles,
    ...(apiKeys === undefined ? {} : { apiKeys }),
    sessionIdentity: options.sessionIdentity ?? sessionIdentity,
  })
  return { identity, apiKeyService }
}
