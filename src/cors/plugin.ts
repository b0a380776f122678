import fp from 'fastify-plugin'
import type { FastifyReply } from 'fastify'
import { BackbeatError, parseOptions } from '../core/index.ts'
import { corsOptionsSchema, type CorsOptionsInput } from './options.ts'
import { OriginMatcher } from './origin-matcher.ts'

export type CorsPluginOptions = CorsOptionsInput

/**
 * CORS per the Fetch standard. Allowed origins get `Access-Control-Allow-Origin` with their
 * own origin (or `*` when any origin is allowed without credentials), credentials when
 * configured, and the exposed headers; preflights (`OPTIONS` with
 * `Access-Control-Request-Method`) are answered 204 before routing with the approved
 * methods and headers and `Access-Control-Max-Age`. A disallowed preflight gets 403
 * problem+json without any CORS header. `Vary: Origin` is sent whenever the answer depends
 * on the origin, so shared caches never serve one origin's answer to another.
 *
 * @example
 * await app.register(corsPlugin, { origins: ['https://app.example.com', 'https://*.example.com'], credentials: true })
 */
export const corsPlugin = fp<CorsPluginOptions>(
  async (app, raw) => {
    const options = parseOptions('cors', corsOptionsSchema, raw)
    if (!options.enabled) return
    const matcher = new OriginMatcher(options.origins)
    // With `*` and no credentials the answer is the same for every origin: no Vary needed.
    const constant = matcher.any && !options.credentials
    const methods = new Set(options.methods.map((m) => m.toUpperCase()))
    const allowMethods = [...methods].join(', ')
    const allowedHeaders = new Set(options.allowedHeaders.map((h) => h.toLowerCase()))
    const exposed = options.exposedHeaders.join(', ')
    const maxAge = String(options.maxAgeS)

    const allowOrigin = (reply: FastifyReply, origin: string): void => {
      reply.header('access-control-allow-origin', constant ? '*' : origin)
      if (options.credentials) reply.header('access-control-allow-credentials', 'true')
    }

    app.addHook('onRequest', (request, reply, done) => {
      const origin = request.headers.origin
      const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined
      if (!constant) reply.header('vary', preflight ? 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' : 'Origin')
      if (origin === undefined) {
        done()
        return
      }
      const allowed = matcher.matches(origin)
      if (preflight) {
        const method = request.headers['access-control-request-method'] ?? ''
        const requested = parseHeaderList(request.headers['access-control-request-headers'])
        const refused = !allowed || (!methods.has(method) && !isSimpleMethod(method)) || requested.some((h) => !allowedHeaders.has(h))
        if (refused) {
          request.log.debug({ origin: origin.slice(0, 200), method, requested }, 'CORS preflight refused')
          done(new BackbeatError('ERR_CORS_ORIGIN_DENIED'))
          return
        }
        allowOrigin(reply, origin)
        reply.header('access-control-allow-methods', allowMethods)
        if (requested.length > 0) reply.header('access-control-allow-headers', requested.join(', '))
        reply.header('access-control-max-age', maxAge)
        if (options.allowPrivateNetwork && request.headers['access-control-request-private-network'] === 'true') reply.header('access-control-allow-private-network', 'true')
        void reply.code(204).send()
        return
      }
      if (allowed) {
        allowOrigin(reply, origin)
        if (exposed !== '') reply.header('access-control-expose-headers', exposed)
      } else if (options.rejectDisallowedOrigins) {
        done(new BackbeatError('ERR_CORS_ORIGIN_DENIED'))
        return
      }
      done()
    })
  },
  { name: 'backbeat-cors', fastify: '5.x' },
)

/** `Access-Control-Request-Headers`: a comma-separated list of lower-case names. */
function parseHeaderList(value: string | undefined): string[] {
  if (value === undefined || value === '') return []
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '')
}

function isSimpleMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'POST'
}
