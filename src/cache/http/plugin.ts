import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest, RouteOptions, onSendAsyncHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import { z } from 'zod'
import { BackbeatError, parseOptions } from '../../core/index.ts'
import { tagKey } from '../keys.ts'
import { type CacheControl } from './cache-control.ts'
import { headerValue, notModified, NOT_MODIFIED_FIELDS, requestCacheControl, usability, type HeaderMap } from './policy.ts'
import { bodyBytes, HttpResponseCache, sameValidator, type HttpResponseCacheOptions, type LookupResult, type StoredResponse } from './response-cache.ts'

/** Per-route response caching, set through the route's `config.cache`. */
export interface RouteCache {
  /** `Cache-Control` given to this route's 2xx responses that do not set one (e.g. `public, max-age=60`). */
  cacheControl?: string
  /** Surrogate keys (tags) for this route's stored responses; purge them with `app.responseCache.purgeTags`. */
  tags?: readonly string[] | ((request: FastifyRequest) => readonly string[])
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: responses of this route are never looked up or stored; an object sets defaults and tags. */
    cache?: false | RouteCache
  }
  interface FastifyInstance {
    /** The RFC 9111 response cache (lookup, store, invalidate, purge by tag). */
    responseCache: HttpResponseCache
  }
}

/** What `X-Cache` says. */
export type XCache = 'HIT' | 'MISS' | 'STALE' | 'BYPASS'

const pluginSchema = z
  .object({
    /** `all`: every GET/HEAD route (responses decide through Cache-Control); `opt-in`: only routes with a `config.cache` object. */
    routes: z.enum(['all', 'opt-in']).default('all'),
    /** The name of this cache in `Cache-Status` (RFC 9211). */
    cacheStatusName: z.string().regex(/^[A-Za-z*][A-Za-z0-9_.:/*-]*$/, 'must be a structured-field token').default('backbeat'),
    /** Send `X-Cache: HIT | MISS | STALE | BYPASS`. */
    xCache: z.boolean().default(true),
    /** Keep `Surrogate-Key`/`Cache-Tag` on responses to clients (by default they are for this cache only, like a CDN). */
    exposeSurrogateKeys: z.boolean().default(false),
    /** Refresh stale-while-revalidate entries in the background (an internal request through the whole stack). */
    backgroundRevalidation: z.boolean().default(true),
    /**
     * Request collapsing: while one request for a URI runs its handler, others for the same
     * URI (without credentials) wait up to this many ms and are answered from what it stored;
     * 0 turns it off.
     */
    collapseWaitMs: z.number().int().min(0).max(60_000).default(3_000),
    /**
     * Hit-for-pass: a URI whose response could not be stored (no freshness, no-store, private,
     * Set-Cookie...) is not looked up again for this long, in seconds; its responses are still
     * judged, and the first storable one is stored and ends the pass. 0 turns it off.
     */
    passTtlS: z.number().int().min(0).max(3_600).default(60),
    /** An admin route purging by tag: `POST <path>` with `{ "tags": [...] }`; `false` for none. */
    purge: z
      .union([
        z.literal(false),
        z
          .object({
            path: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/, 'must be a path'),
            /** Route config of the purge route (e.g. `{ auth: { permissions: ['cache:purge'] } }`). */
            config: z.record(z.string(), z.unknown()).default({}),
          })
          .strict(),
      ])
      .default(false),
  })
  .strict()

export type ResponseCachePluginOptions = (HttpResponseCacheOptions | { http: HttpResponseCache; cache?: never }) & z.input<typeof pluginSchema>

interface CacheState {
  readonly requestTime: number
  readonly requestCc: CacheControl
  readonly host: string
  /** A stale entry the handler is revalidating or replacing. */
  stale?: StoredResponse
  /** We added If-None-Match/If-Modified-Since from `stale`: a 304 is for us, not the client. */
  conditionalAdded?: boolean
  /** Answered from storage in the lookup hook: nothing to store. */
  served?: boolean
  missReason?: string
  /** Internal background revalidation. */
  background?: boolean
  /** Header names already on the reply when the lookup decided to revalidate (set by hooks before it): kept when a stored response replaces the handler's. */
  baseHeaders?: readonly string[]
  /** This request's handler run is the one others with the same URI wait for: call to let them look again. */
  release?: () => void
  /** Waited for another request's response to the same URI and reused it (RFC 9211 `collapsed`). */
  collapsed?: boolean
  /** Not looked up: the URI's last response could not be stored (why, for Cache-Status). */
  pass?: string
  /** The request's primary key, computed once by the lookup. */
  key?: string
}

const kState = Symbol('backbeat.responseCache')
type WithState = FastifyRequest & { [kState]?: CacheState }

const MAX_PURGE_TAGS = 100
/** Background refreshes running at once, at most. */
const MAX_BACKGROUND = 32
/** Why a response was not stored that says the same URI will likely answer the same way (not a request-specific reason). */
const PASS_REASONS: ReadonlySet<string> = new Set(['no-freshness', 'no-store', 'private', 'set-cookie', 'vary-star', 'status', 'must-understand', 'csp-nonce', 'too-large'])
/** The statuses RFC 5861 counts as an origin error. */
const ORIGIN_ERRORS = new Set([500, 502, 503, 504])
const REVALIDATE_HEADER = 'x-backbeat-cache-revalidate'

/**
 * A shared HTTP cache (RFC 9111) in front of the routes. For every GET/HEAD route (unless
 * `config.cache` is `false`) it looks up a stored response right before the handler, after
 * every other hook (auth, rate limits, validation still apply to hits), and stores the
 * handler's response after every other `onSend` hook when RFC 9111 allows it. A fresh
 * response is served with `Age`; a stale one within `stale-while-revalidate` is served
 * while an internal request refreshes it; otherwise the handler runs with the stored
 * validators added, and a 304 from it freshens and serves the stored response. A 5xx within
 * `stale-if-error` is replaced by the stale response. Conditional requests from clients are
 * answered with 304 from storage. A successful unsafe request (POST, PUT, PATCH, DELETE...)
 * invalidates its URI and the same-origin `Location`/`Content-Location` (RFC 9111 §4.4).
 * Every response says what happened: `Cache-Status` (RFC 9211) and `X-Cache`.
 *
 * Route guards that run in the route's own `preHandler`/`onRequest` hooks still run on hits
 * (the lookup is the last preHandler). A response private to a user must say so
 * (`Cache-Control: private`), as with any shared cache; requests with `Authorization` only
 * get responses marked `public`, `s-maxage` or `must-revalidate` (RFC 9111 §3.5).
 *
 * @example
 * await app.register(responseCachePlugin, { cache: new TieredCache({ namespace: 'http', tiers: [redisStore] }) })
 * app.get('/v1/tracks/:id', { config: { cache: { cacheControl: 'public, max-age=60', tags: (r) => [`track:${r.params.id}`] } } }, handler)
 */
export const responseCachePlugin = fp<ResponseCachePluginOptions>(
  async (app, options) => {
    const { http: given, routes, cacheStatusName, xCache, exposeSurrogateKeys, backgroundRevalidation, collapseWaitMs, passTtlS, purge, ...engineOptions } = options as HttpResponseCacheOptions & z.input<typeof pluginSchema> & { http?: HttpResponseCache }
    const settings = parseOptions('responseCache', pluginSchema, { routes, cacheStatusName, xCache, exposeSurrogateKeys, backgroundRevalidation, collapseWaitMs, passTtlS, purge })
    const http = given ?? new HttpResponseCache(engineOptions)
    const now = http.options.now
    const surrogateHeaders = http.options.surrogateKeyHeaders
    const secret = randomBytes(18).toString('base64url')
    const revalidating = new Set<string>()
    const keepOnReplace: ReadonlySet<string> = new Set([...http.options.excludeHeaders, 'set-cookie'])
    const background = new Set<Promise<unknown>>()
    /** Handler runs in progress for a URI (by primary key), for request collapsing. */
    const leaders = new Map<string, Promise<void>>()
    /** URIs recently answered with a response that could not be stored: not looked up until it expires (hit-for-pass). */
    const passes = settings.passTtlS === 0 ? undefined : new LRUCache<string, string>({ max: 10_000, ttl: settings.passTtlS * 1_000, ttlAutopurge: false })
    app.decorate('responseCache', http)

    const status = (detail: string): string => `${settings.cacheStatusName}; ${detail}`
    const mark = (reply: FastifyReply, x: XCache, cacheStatus: string): void => {
      if (settings.xCache) void reply.header('x-cache', x)
      const upstream = reply.getHeader('cache-status')
      const existing = upstream === undefined ? '' : `${Array.isArray(upstream) ? upstream.join(', ') : String(upstream)}, `
      void reply.header('cache-status', existing + status(cacheStatus))
    }
    const hideSurrogates = (reply: FastifyReply): void => {
      if (!settings.exposeSurrogateKeys) for (const name of surrogateHeaders) reply.removeHeader(name)
    }

    const requestOf = (request: FastifyRequest, state: CacheState) => ({ method: request.method, host: state.host, url: request.url, headers: request.headers as HeaderMap })

    /** Writes a stored response to the reply (the caller sends the returned body): 304, 206 for one byte range, or all of it. */
    const applyStored = (request: FastifyRequest, reply: FastifyReply, stored: StoredResponse, ageMs: number): Buffer | string | undefined => {
      const requestHeaders = request.headers as HeaderMap
      const conditional = stored.status === 200 && notModified(requestHeaders, stored.headers)
      void reply.header('age', String(Math.floor(ageMs / 1_000)))
      if (conditional) {
        void reply.code(304)
        for (const name of NOT_MODIFIED_FIELDS) {
          const value = stored.headers[name]
          if (value !== undefined) void reply.header(name, value)
        }
        hideSurrogates(reply)
        // No body: nothing for Fastify to give a Content-Type or Content-Length to.
        reply.removeHeader('content-type')
        return undefined
      }
      const storedHeaders = stored.headers
      for (const name in storedHeaders) void reply.header(name, storedHeaders[name])
      hideSurrogates(reply)
      const content = stored.body
      const range = stored.status === 200 && request.method === 'GET' && requestHeaders['range'] !== undefined ? byteRange(requestHeaders, stored.headers, bodyBytes(content)) : undefined
      if (range === undefined) {
        void reply.code(stored.status)
        return typeof content === 'string' ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength)
      }
      const body = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content.buffer, content.byteOffset, content.byteLength)
      if (range === 'unsatisfiable') {
        for (const name of ['content-type', 'etag', 'last-modified', 'content-encoding']) reply.removeHeader(name)
        void reply.code(416).header('content-range', `bytes */${body.length}`)
        return undefined
      }
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${body.length}`)
      return body.subarray(range.start, range.end + 1)
    }

    const revalidateInBackground = (request: FastifyRequest, state: CacheState): void => {
      if (!settings.backgroundRevalidation) return
      const key = state.key ?? http.primaryKey({ host: state.host, url: request.url })
      // One refresh per key, and a bounded number at once: a burst of stale keys must not become a burst of origin calls.
      if (revalidating.has(key) || background.size >= MAX_BACKGROUND) return
      revalidating.add(key)
      const headers: Record<string, string | string[]> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined || name.startsWith('if-') || name === 'cache-control' || name === 'pragma' || name === 'content-length' || http.options.excludeHeaders.includes(name)) continue
        headers[name] = value
      }
      headers[REVALIDATE_HEADER] = secret
      const run = app
        // The socket's own address: with trustProxy, forwarded fields are then trusted as for the original.
        .inject({ method: 'GET', url: request.url, headers, remoteAddress: request.raw.socket.remoteAddress ?? request.ip })
        .catch((err: unknown) => {
          app.log.warn({ err, url: request.url }, 'response cache: background revalidation failed')
        })
        .finally(() => {
          revalidating.delete(key)
          background.delete(run)
        })
      background.add(run)
    }

    /** Makes this request the one others for `key` wait for, until its response is stored or it ends. */
    const lead = (key: string, reply: FastifyReply, state: CacheState): void => {
      let release!: () => void
      const done = new Promise<void>((resolve) => {
        release = resolve
      })
      leaders.set(key, done)
      let released = false
      state.release = () => {
        if (released) return
        released = true
        if (leaders.get(key) === done) leaders.delete(key)
        release()
      }
      // Whatever happens to this request (an error, an abort), the waiters are let go.
      reply.raw.once('close', state.release)
    }

    /** After a lookup: serve from storage (true: the reply is sent) or let the handler run, maybe revalidating. */
    const decide = (request: FastifyRequest, reply: FastifyReply, state: CacheState, found: LookupResult): boolean => {
      if (!found.found) {
        state.missReason = found.reason
        if (state.requestCc.onlyIfCached) throw new BackbeatError('ERR_CACHE_NOT_CACHED')
        return false
      }
      const { stored, ageMs } = found
      const use = usability({ ageMs, lifetimeMs: stored.lifetimeMs, noCache: stored.noCache, mustRevalidate: stored.mustRevalidate, staleWhileRevalidateMs: stored.staleWhileRevalidateMs }, state.requestCc)
      const ttlS = Math.floor((stored.lifetimeMs - ageMs) / 1_000)
      if (use.use === 'fresh') {
        state.served = true
        mark(reply, ttlS >= 0 ? 'HIT' : 'STALE', state.collapsed === true ? `fwd=uri-miss; collapsed; ttl=${ttlS}` : `hit; ttl=${ttlS}`)
        void reply.send(applyStored(request, reply, stored, ageMs))
        return true
      }
      if (use.use === 'stale-while-revalidate') {
        state.served = true
        mark(reply, 'STALE', `hit; ttl=${ttlS}; detail=stale-while-revalidate`)
        revalidateInBackground(request, state)
        void reply.send(applyStored(request, reply, stored, ageMs))
        return true
      }
      if (state.requestCc.onlyIfCached) throw new BackbeatError('ERR_CACHE_NOT_CACHED')
      state.stale = stored
      state.baseHeaders = Object.keys(reply.getHeaders())
      state.missReason = use.reason
      const headers = request.headers
      const clientConditional = headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined || headers['if-match'] !== undefined || headers['if-unmodified-since'] !== undefined || headers['if-range'] !== undefined
      if (!clientConditional) {
        const etag = headerValue(stored.headers, 'etag')
        const lastModified = headerValue(stored.headers, 'last-modified')
        if (etag !== undefined) headers['if-none-match'] = etag
        if (lastModified !== undefined) headers['if-modified-since'] = lastModified
        state.conditionalAdded = etag !== undefined || lastModified !== undefined
      }
      return false
    }

    /**
     * The last preHandler of a cacheable route. Callback-style on purpose: a hit found in L1
     * is answered synchronously (no promise, no microtask), the way the handler it replaces
     * would have answered.
     */
    const lookup: preHandlerHookHandler = function lookupHook(request, reply, done) {
      const method = request.method
      if (method !== 'GET' && method !== 'HEAD') {
        done()
        return
      }
      const headers = request.headers
      let internal = false
      if (headers['x-backbeat-cache-revalidate'] !== undefined) {
        // Only this process's own background requests skip the lookup.
        internal = headers['x-backbeat-cache-revalidate'] === secret
        delete headers['x-backbeat-cache-revalidate']
      }
      const host = request.host
      // A Host that is not host[:port], or a target that is not a path, is never looked up or stored (cache poisoning).
      if (!http.cacheableTarget(host, request.url)) {
        done()
        return
      }
      const state: CacheState = {
        requestTime: now(),
        requestCc: requestCacheControl(headers['cache-control'], headers.pragma),
        host,
      }
      ;(request as WithState)[kState] = state
      if (internal) {
        state.background = true
        done()
        return
      }
      const cacheRequest = requestOf(request, state)
      // Computed once: the pass check, both lookups, collapsing and the store hook share it.
      const key = http.primaryKey(cacheRequest)
      state.key = key
      if (passes !== undefined) {
        const pass = passes.get(key)
        if (pass !== undefined) {
          if (state.requestCc.onlyIfCached) {
            done(new BackbeatError('ERR_CACHE_NOT_CACHED'))
            return
          }
          state.missReason = 'miss'
          state.pass = pass
          done()
          return
        }
      }
      let quick: LookupResult | undefined
      try {
        quick = http.peek(cacheRequest, key)
      } catch (err) {
        // Never a 500 from the cache: the tiers and the handler can still answer.
        request.log.warn({ err }, 'response cache: L1 lookup failed')
      }
      if (quick !== undefined) {
        try {
          if (!decide(request, reply, state, quick)) done()
        } catch (err) {
          done(err as Error)
        }
        return
      }
      http.lookup(cacheRequest, key).then(
        async (found) => {
          try {
            if (!found.found && found.reason !== 'credentials' && settings.collapseWaitMs > 0 && !state.requestCc.onlyIfCached && !http.hasCredentials(cacheRequest)) {
              const leader = leaders.get(key)
              if (leader === undefined) lead(key, reply, state)
              else {
                // Another request is computing this URI: wait for it, then look again (once).
                await waitAtMost(leader, settings.collapseWaitMs)
                const again = await http.lookup(cacheRequest, key).catch(() => found)
                if (again.found) state.collapsed = true
                if (!decide(request, reply, state, again)) done()
                return
              }
            }
            if (!decide(request, reply, state, found)) done()
          } catch (err) {
            done(err as Error)
          }
        },
        (err: unknown) => {
          // A failing lookup is a miss: the cache must never fail a request.
          request.log.warn({ err }, 'response cache: lookup failed; answering from the handler')
          state.missReason = 'miss'
          done()
        },
      )
    }

    /** The onSend hook: a response served from storage passes straight through (no promise, no microtask). */
    const store: onSendHookHandler = function storeHook(request, reply, payload, done) {
      const state = (request as WithState)[kState]
      if (state?.served !== true) {
        // The route's default Cache-Control for 2xx responses that set none (a hit carries the stored one).
        const routeCache = request.routeOptions.config.cache
        const statusCode = reply.statusCode
        if (routeCache !== undefined && routeCache !== false && routeCache.cacheControl !== undefined && statusCode >= 200 && statusCode < 300 && !reply.hasHeader('cache-control')) {
          void reply.header('cache-control', routeCache.cacheControl)
        }
      }
      if (state === undefined) {
        // GET/HEAD that never reached the lookup (a hook answered first): the cache was not consulted.
        if (request.method === 'GET' || request.method === 'HEAD') mark(reply, 'BYPASS', 'fwd=bypass')
        done(null, payload)
        return
      }
      if (state.served === true) {
        done(null, payload)
        return
      }
      storeResponse(request, reply, payload, state).then(
        (next) => {
          done(null, next)
        },
        (err: unknown) => {
          done(err as Error)
        },
      )
    }

    const storeResponse = async (request: FastifyRequest, reply: FastifyReply, payload: unknown, state: CacheState): Promise<unknown> => {
      try {
        return await storeOrReplace(request, reply, payload, state)
      } finally {
        // Stored (or not storable): the requests waiting for this one may look again.
        state.release?.()
      }
    }

    const storeOrReplace = async (request: FastifyRequest, reply: FastifyReply, payload: unknown, state: CacheState): Promise<unknown> => {
      if (state.conditionalAdded === true) {
        // Ours, not the client's: gone before anything after the handler (error reporters, logs) reads the request.
        delete request.headers['if-none-match']
        delete request.headers['if-modified-since']
      }
      const responseTime = now()
      const statusCode = reply.statusCode
      const stale = state.stale
      const fwd =
        state.background === true
          ? 'fwd=request; detail=background'
          : stale !== undefined
            ? state.missReason === 'request-no-cache'
              ? 'fwd=request'
              : 'fwd=stale'
            : state.missReason === 'credentials'
              ? 'fwd=request; detail=credentials'
              : `fwd=${state.missReason ?? 'miss'}`
      const cacheRequest = requestOf(request, state)
      const responseHeaders = reply.getHeaders() as HeaderMap

      if (statusCode === 304 && stale !== undefined && (state.conditionalAdded === true || sameValidator(stale.headers, responseHeaders))) {
        // The handler confirmed the stored response: freshen it, then answer with it (or the client's own 304).
        const freshened = await http.freshen(cacheRequest, stale, { headers: responseHeaders, requestTime: state.requestTime, responseTime })
        if (state.conditionalAdded !== true) {
          mark(reply, 'MISS', `${fwd}; fwd-status=304`)
          return payload
        }
        // The validators were ours: the client asked unconditionally and gets the full response.
        clearHandlerHeaders(reply, state, keepOnReplace)
        const body = applyStored(request, reply, freshened, http.ageMs(freshened, responseTime))
        mark(reply, 'HIT', `${fwd}; fwd-status=304; ttl=${Math.floor((freshened.lifetimeMs - http.ageMs(freshened, responseTime)) / 1_000)}`)
        return body
      }
      if (ORIGIN_ERRORS.has(statusCode) && stale !== undefined && !stale.mustRevalidate && !stale.noCache) {
        // RFC 5861 stale-if-error from the response, or the request's unless the response forbids stale;
        // else, unless forbidden, RFC 9111 §4.2.4 (a disconnected cache).
        const staleness = http.ageMs(stale, responseTime) - stale.lifetimeMs
        const explicit = Math.max(stale.staleIfErrorMs, stale.noStaleOnError ? -1 : (state.requestCc.staleIfError ?? -1) * 1_000)
        const allowed = Math.max(explicit, stale.noStaleOnError ? -1 : http.options.staleOnErrorS * 1_000)
        if (staleness <= allowed) {
          clearHandlerHeaders(reply, state, keepOnReplace)
          const body = applyStored(request, reply, stale, http.ageMs(stale, responseTime))
          mark(reply, 'STALE', `${fwd}; fwd-status=${statusCode}; ttl=${Math.floor(-staleness / 1_000)}; detail=stale-if-error`)
          return body
        }
      }
      const bytes = toBytes(payload)
      if (bytes === undefined) {
        hideSurrogates(reply)
        mark(reply, 'MISS', `${fwd}; fwd-status=${statusCode}; detail=stream`)
        return payload
      }
      const routeCache = request.routeOptions.config.cache
      const tags = routeCache === undefined || routeCache === false ? undefined : routeTags(routeCache, request)
      const result = request.method === 'HEAD' ? ({ stored: false, reason: 'method' } as const) : await http.store(cacheRequest, { status: statusCode, headers: responseHeaders, body: bytes, requestTime: state.requestTime, responseTime, ...(tags === undefined ? {} : { tags }) }, state.requestCc)
      if (result.stored) {
        const etag = result.entry.headers['etag']
        if (etag !== undefined && reply.getHeader('etag') === undefined) void reply.header('etag', etag)
        if (state.pass !== undefined && state.key !== undefined) passes?.delete(state.key)
      } else if (passes !== undefined && PASS_REASONS.has(result.reason) && request.method === 'GET' && stale === undefined && !state.requestCc.noStore && !http.hasCredentials(cacheRequest)) {
        // What the URI answers cannot be stored: skip looking it up for a while.
        passes.set(state.key ?? http.primaryKey(cacheRequest), result.reason)
      }
      hideSurrogates(reply)
      mark(reply, 'MISS', `${state.pass === undefined ? fwd : `fwd=miss; detail=pass-${state.pass}`}; fwd-status=${statusCode}${result.stored ? '; stored' : `; detail=${result.reason}`}`)
      return payload
    }

    const invalidate: onSendAsyncHookHandler = async function invalidateHook(request, reply, payload) {
      const statusCode = reply.statusCode
      if (statusCode < 200 || statusCode >= 400) return payload
      const host = request.host
      if (!http.cacheableTarget(host, request.url)) return payload
      const targets = new Set<string>([request.url])
      for (const name of ['location', 'content-location']) {
        const value = reply.getHeader(name)
        if (typeof value !== 'string') continue
        const path = sameOriginPath(value, request)
        if (path !== undefined) targets.add(path)
      }
      try {
        await Promise.all([...targets].map((url) => http.invalidate({ host, url })))
      } catch (err) {
        request.log.warn({ err }, 'response cache: invalidation failed')
      }
      mark(reply, 'BYPASS', 'fwd=method')
      return payload
    }

    app.addHook('onRoute', (route: RouteOptions) => {
      const configured = (route.config as { cache?: unknown } | undefined)?.cache
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      const safe = methods.every((m) => m === 'GET' || m === 'HEAD')
      // `cache: false` keeps a route's responses out of the cache; its writes still invalidate what is stored.
      if (configured === false) {
        if (!safe && methods.some((m) => m !== 'OPTIONS' && m !== 'TRACE')) addRouteHook(route, 'onSend', invalidate, 'last')
        return
      }
      // Opt-in governs what is served from storage; writes always invalidate what is stored.
      if (safe && settings.routes === 'opt-in' && (configured === undefined || configured === null)) return
      const unsafe = methods.some((m) => m !== 'GET' && m !== 'HEAD' && m !== 'OPTIONS' && m !== 'TRACE')
      if (safe) {
        addRouteHook(route, 'preHandler', lookup, 'last')
        addRouteHook(route, 'onSend', store, 'last')
      } else if (unsafe) {
        // A route serving GET and POST alike (a catch-all proxy) gets both behaviours, by method.
        if (methods.some((m) => m === 'GET' || m === 'HEAD')) {
          addRouteHook(route, 'preHandler', lookup, 'last')
          addRouteHook(route, 'onSend', byMethod(store, invalidate), 'last')
        } else addRouteHook(route, 'onSend', invalidate, 'last')
      }
    })

    if (settings.purge !== false) {
      const { path, config } = settings.purge
      app.post<{ Body: { tags?: unknown } }>(
        path,
        {
          config: { ...config, cache: false },
          schema: {
            tags: ['admin'],
            summary: 'Purge cached responses by tag',
            description: 'Voids every stored response carrying any of the tags (surrogate keys), on every cache tier and instance.',
            body: { type: 'object', required: ['tags'], additionalProperties: false, properties: { tags: { type: 'array', minItems: 1, maxItems: MAX_PURGE_TAGS, items: { type: 'string', minLength: 1, maxLength: 128 } } } },
            response: { 200: { type: 'object', properties: { purged: { type: 'array', items: { type: 'string' } } } } },
          },
        },
        async (request) => {
          const tags = request.body.tags
          if (!Array.isArray(tags) || tags.length === 0 || tags.length > MAX_PURGE_TAGS) throw new BackbeatError('ERR_CACHE_PURGE_INVALID', { params: { max: MAX_PURGE_TAGS } })
          try {
            for (const tag of tags) tagKey(String(tag))
          } catch {
            throw new BackbeatError('ERR_CACHE_PURGE_INVALID', { params: { max: MAX_PURGE_TAGS } })
          }
          await http.purgeTags(tags as string[])
          return { purged: tags as string[] }
        },
      )
    }

    app.addHook('onClose', async () => {
      await Promise.allSettled([...background])
    })
  },
  { name: 'backbeat-response-cache', fastify: '5.x' },
)

/**
 * The one byte range of a `Range: bytes=...` request that a stored complete response can
 * answer (RFC 9110 §14): undefined to send it all (no Range, several ranges, another unit, or
 * an `If-Range` that does not match strongly), or 'unsatisfiable'.
 */
function byteRange(request: HeaderMap, stored: Readonly<Record<string, string | string[]>>, length: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const range = headerValue(request, 'range')
  if (range === undefined) return undefined
  const ifRange = headerValue(request, 'if-range')
  if (ifRange !== undefined) {
    const etag = typeof stored['etag'] === 'string' ? stored['etag'] : undefined
    const lastModified = typeof stored['last-modified'] === 'string' ? stored['last-modified'] : undefined
    const strongMatch = ifRange.startsWith('"') ? etag !== undefined && !etag.startsWith('W/') && etag === ifRange.trim() : lastModified !== undefined && lastModified === ifRange.trim()
    if (!strongMatch) return undefined
  }
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range)
  if (m === null) return undefined
  const [, first = '', last = ''] = m
  if (first === '' && last === '') return undefined
  // Nothing to select from an empty representation (RFC 9110 §14.1.1).
  if (length === 0) return 'unsatisfiable'
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0) return 'unsatisfiable'
    return { start: Math.max(0, length - suffix), end: length - 1 }
  }
  const start = Number(first)
  if (start >= length) return 'unsatisfiable'
  const end = last === '' ? length - 1 : Math.min(Number(last), length - 1)
  if (end < start) return undefined
  return { start, end }
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    timer.unref()
    void promise.finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

function routeTags(routeCache: RouteCache, request: FastifyRequest): readonly string[] | undefined {
  const tags = routeCache.tags
  if (tags === undefined) return undefined
  const list = typeof tags === 'function' ? tags(request) : tags
  const out: string[] = []
  for (const tag of list) {
    try {
      out.push(tagKey(tag))
    } catch {
      request.log.warn({ tag }, 'response cache: invalid route tag skipped')
    }
  }
  return out
}

function toBytes(payload: unknown): Uint8Array | string | undefined {
  if (payload === null || payload === undefined) return ''
  if (typeof payload === 'string') return payload
  if (payload instanceof Uint8Array) return payload
  return undefined
}

/**
 * Removes what the handler set on the reply before a stored response replaces its answer,
 * keeping what earlier hooks set (request ID, security headers, RateLimit fields, a session
 * cookie's rotation) and the per-request fields the cache never stores.
 */
function clearHandlerHeaders(reply: FastifyReply, state: { readonly baseHeaders?: readonly string[] }, keep: ReadonlySet<string>): void {
  const base = state.baseHeaders ?? []
  for (const name of Object.keys(reply.getHeaders())) {
    if (base.includes(name) || keep.has(name)) continue
    reply.removeHeader(name)
  }
}

function sameOriginPath(value: string, request: FastifyRequest): string | undefined {
  try {
    const base = `${request.protocol}://${request.host}`
    const url = new URL(value, `${base}${request.url}`)
    if (url.host !== request.host.toLowerCase()) return undefined
    return `${url.pathname}${url.search}`
  } catch {
    return undefined
  }
}


function byMethod(safe: onSendHookHandler, unsafe: onSendAsyncHookHandler): onSendHookHandler {
  return function cacheByMethod(request, reply, payload, done) {
    if (request.method === 'GET' || request.method === 'HEAD') {
      safe.call(this, request, reply, payload, done)
      return
    }
    unsafe.call(this, request, reply, payload).then(
      (next) => {
        done(null, next)
      },
      (err: unknown) => {
        done(err as Error)
      },
    )
  }
}

/**
 * Adds a hook to a route's own hooks (they run after the instance's): `last` makes ours the
 * final preHandler/onSend whatever else the route declares. Idempotent per function (Fastify
 * derives HEAD routes from GET routes with the same options).
 */
function addRouteHook(route: RouteOptions, phase: 'preHandler' | 'onSend', hook: unknown, where: 'first' | 'last'): void {
  const existing: unknown = route[phase]
  const list: unknown[] = existing === undefined || existing === null ? [] : Array.isArray(existing) ? [...(existing as unknown[])] : [existing]
  if (list.includes(hook)) return
  if (where === 'last') list.push(hook)
  else list.unshift(hook)
  ;(route as unknown as Record<string, unknown>)[phase] = list
}
