import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BackbeatError, clientNetwork, parseOptions, type SecurityEventSink } from '../core/index.ts'
import { MemoryRateLimitStore, retryAfterSeconds, type RateLimitRule } from '../ratelimit/index.ts'
import { parseCspReport } from './csp-report.ts'
import { buildHeaderSet, type HeaderSet } from './header-set.ts'
import { routeSecurityHeadersSchema, securityHeadersOptionsSchema, type RouteSecurityHeaders, type SecurityHeadersOptionsInput } from './options.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Overrides for this route (e.g. `{ preset: 'html' }` for a page), or false for none. */
    securityHeaders?: false | RouteSecurityHeaders
  }
  interface FastifyReply {
    /** This response's CSP nonce (html preset): put it in `<script nonce="...">`. Empty otherwise. */
    cspNonce: string
  }
}

export type SecurityHeadersPluginOptions = SecurityHeadersOptionsInput & {
  /** Receives `csp_violation` events; the stack passes its security event log. */
  securityEvents?: SecurityEventSink
}

/**
 * Security headers on every response, errors included: a locked-down CSP, HSTS,
 * `nosniff`, frame denial, referrer and cross-origin policies, a Permissions-Policy denying
 * powerful features, `X-XSS-Protection: 0`, and no `Server`/`X-Powered-By`. The `html`
 * preset gives pages a strict CSP with a fresh nonce per response (`reply.cspNonce`).
 * Routes override through `config.securityHeaders`. CSP violation reports are accepted at
 * `cspReports.path` and recorded as security events, bounded and rate limited per client.
 *
 * @example
 * await app.register(securityHeadersPlugin, { hsts: { preload: true } })
 * app.get('/ops', { config: { securityHeaders: { preset: 'html' } } }, (req, reply) => page(reply.cspNonce))
 */
export const securityHeadersPlugin = fp<SecurityHeadersPluginOptions>(
  async (app, { securityEvents, ...raw }) => {
    const options = parseOptions('securityHeaders', securityHeadersOptionsSchema, raw)
    if (!options.enabled) return
    const reportPath = options.cspReports.enabled ? options.cspReports.path : undefined
    const reportOnApi = options.cspReports.advertiseOn === 'all'
    const base = buildHeaderSet(options, {}, reportPath, reportOnApi)
    const sets = new WeakMap<object, HeaderSet | null>()

    const setOf = (request: FastifyRequest): HeaderSet | null => {
      const config = request.routeOptions.config as { securityHeaders?: false | RouteSecurityHeaders }
      const route = config.securityHeaders
      if (route === undefined) return base
      let set = sets.get(config)
      if (set === undefined) {
        set = route === false ? null : buildHeaderSet(options, parseOptions('route config.securityHeaders', routeSecurityHeadersSchema, route), reportPath, reportOnApi)
        sets.set(config, set)
      }
      return set
    }

    app.decorateReply('cspNonce', '')

    app.addHook('onRequest', (request, reply, done) => {
      const set = setOf(request)
      if (set !== null) apply(reply, set)
      done()
    })

    // We never add these; a route or a proxy library might. Never say what runs here.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (reply.hasHeader('x-powered-by')) reply.removeHeader('x-powered-by')
      if (reply.hasHeader('server')) reply.removeHeader('server')
      done(null, payload)
    })

    if (options.cspReports.enabled) {
      const { path, maxBodyBytes, perClientPerMinute } = options.cspReports
      const store = new MemoryRateLimitStore()
      const rule: RateLimitRule = { name: 'csp-reports', algorithm: 'gcra', limit: perClientPerMinute, windowMs: 60_000, burst: perClientPerMinute }
      app.addHook('onClose', () => {
        store.close()
      })
      await app.register(async (scope) => {
        const parseJson = (_request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void => {
          try {
            done(null, JSON.parse(body))
          } catch {
            done(new BackbeatError('ERR_CSP_REPORT_INVALID'))
          }
        }
        scope.addContentTypeParser(['application/csp-report', 'application/reports+json'], { parseAs: 'string', bodyLimit: maxBodyBytes }, parseJson)
        scope.post(path, { bodyLimit: maxBodyBytes, config: { rateLimit: false, auth: false }, schema: { hide: true } }, async (request, reply) => {
          const client = clientNetwork(request.ip, { ipv4PrefixLength: 32, ipv6PrefixLength: 64 })
          const decision = store.consume(client, rule, 1, Date.now())
          if (!decision.allowed) {
            const retryAfterS = retryAfterSeconds(decision.retryAfterMs)
            throw new BackbeatError('ERR_RATE_LIMITED', { params: { retryAfterS }, headers: { 'retry-after': String(retryAfterS) }, extensions: { 'violated-policies': ['csp-reports'] } })
          }
          const violations = parseCspReport(request.body)
          if (violations === undefined) throw new BackbeatError('ERR_CSP_REPORT_INVALID')
          for (const violation of violations) {
            securityEvents?.({ type: 'csp_violation', severity: 'low', at: Date.now(), requestId: request.id, clientIp: request.ip, details: { ...violation } })
          }
          request.log.info({ violations: violations.length }, 'CSP violation report')
          return reply.code(204).send()
        })
      })
    }
  },
  { name: 'backbeat-security-headers', fastify: '5.x' },
)

function apply(reply: FastifyReply, set: HeaderSet): void {
  for (const [name, value] of set.fixed) reply.header(name, value)
  if (set.csp === undefined) return
  if (!set.needsNonce) {
    reply.header(set.csp.name, set.csp.parts[0] ?? '')
    return
  }
  const nonce = randomBytes(16).toString('base64')
  reply.cspNonce = nonce
  reply.header(set.csp.name, set.csp.parts.join(nonce))
}
