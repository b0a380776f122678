import fp from 'fastify-plugin'
import type { FastifyRequest, preValidationHookHandler } from 'fastify'
import { BackbeatError, clientNetwork, IpRangeSet, parseOptions, type IpGrouping, type SecurityEventSink } from '../core/index.ts'
import type { CountryResolver } from './country.ts'
import { createDbIpCountryResolver } from './dbip-country.ts'
import { checkJsonShape } from './json-shape.ts'
import { limitsOptionsSchema, type LimitsOptionsInput } from './options.ts'

export type { CountryResolver } from './country.ts'

export type LimitsPluginOptions = LimitsOptionsInput & {
  /**
   * Resolves client countries for `countries` rules. Without one, the offline DB-IP table of
   * the optional package `@ip-location-db/dbip-country` is loaded (see `createDbIpCountryResolver`).
   */
  countryResolver?: CountryResolver
  /** Receives `ip_denied` and `country_denied` events. */
  securityEvents?: SecurityEventSink
  /** How client addresses are grouped for the concurrency cap (default /32 and /64). */
  grouping?: IpGrouping
}

const COUNTED = Symbol('backbeat.limits.counted')
type Counted = FastifyRequest & { [COUNTED]?: string | undefined }

/**
 * Request hygiene at the edge, before routing work: 414 for an over-long request target,
 * 431 for too many header fields, 403 for denied addresses (CIDR allow/deny lists) and
 * countries (through a pluggable offline resolver), 429 when one client has too many
 * requests in progress, and 400 for JSON bodies nested too deeply or with too many members.
 * Header size, body size and slow-client timeouts are server options (see
 * `backbeatServerOptions`).
 *
 * @example
 * await app.register(limitsPlugin, { ip: { deny: ['203.0.113.0/24'] }, concurrency: { perClient: 16 } })
 */
export const limitsPlugin = fp<LimitsPluginOptions>(
  async (app, { countryResolver, securityEvents, grouping = { ipv4PrefixLength: 32, ipv6PrefixLength: 64 }, ...raw }) => {
    const options = parseOptions('limits', limitsOptionsSchema, raw)
    if (!options.enabled) return
    const allowIps = new IpRangeSet(options.ip.allow)
    const denyIps = new IpRangeSet(options.ip.deny)
    const countries = options.countries
    const checkCountries = countries.allow.length > 0 || countries.deny.length > 0
    // Without a resolver of your own, the offline DB-IP table (an optional peer package).
    let resolveCountry = checkCountries ? countryResolver : undefined
    if (checkCountries && resolveCountry === undefined) {
      const dbip = await createDbIpCountryResolver()
      app.log.info({ ipv4Ranges: dbip.ranges.ipv4, ipv6Ranges: dbip.ranges.ipv6, version: dbip.version }, 'country database loaded (IP to Country Lite by DB-IP.com, CC BY 4.0)')
      resolveCountry = dbip
    }
    const allowCountries = new Set(countries.allow)
    const denyCountries = new Set(countries.deny)
    const { maxUrlLength, maxHeaderCount } = options
    const maxRawHeaders = maxHeaderCount * 2
    const perClient = options.concurrency.perClient
    const inFlight = new Map<string, number>()
    const { maxDepth, maxKeys } = options.json

    const deny = (request: FastifyRequest, type: 'ip_denied' | 'country_denied', details: Record<string, unknown>): BackbeatError => {
      securityEvents?.({ type, severity: 'low', at: Date.now(), requestId: request.id, clientIp: request.ip, details })
      return new BackbeatError(type === 'ip_denied' ? 'ERR_EDGE_IP_DENIED' : 'ERR_EDGE_COUNTRY_DENIED')
    }

    app.addHook('onRequest', (request, _reply, done) => {
      const ip = request.ip
      const notAllowed = allowIps.size > 0 && !allowIps.has(ip)
      if (notAllowed || (denyIps.size > 0 && denyIps.has(ip))) {
        done(deny(request, 'ip_denied', { list: notAllowed ? 'not-allowed' : 'denied' }))
        return
      }
      if (resolveCountry !== undefined) {
        const country = resolveCountry(ip)
        const refused = country === undefined ? countries.unknown === 'deny' : allowCountries.size > 0 ? !allowCountries.has(country) : denyCountries.has(country)
        if (refused) {
          done(deny(request, 'country_denied', { country: country ?? 'unknown' }))
          return
        }
      }
      if (request.url.length > maxUrlLength) {
        done(new BackbeatError('ERR_EDGE_URI_TOO_LONG', { params: { limit: maxUrlLength } }))
        return
      }
      if (request.raw.rawHeaders.length > maxRawHeaders) {
        done(new BackbeatError('ERR_EDGE_TOO_MANY_HEADERS', { params: { limit: maxHeaderCount } }))
        return
      }
      if (perClient > 0) {
        const client = clientNetwork(ip, grouping)
        const current = inFlight.get(client) ?? 0
        if (current >= perClient) {
          done(new BackbeatError('ERR_EDGE_TOO_MANY_CONCURRENT', { params: { limit: perClient }, headers: { 'retry-after': '1' } }))
          return
        }
        inFlight.set(client, current + 1)
        ;(request as Counted)[COUNTED] = client
      }
      done()
    })

    if (perClient > 0) {
      const release = (request: FastifyRequest): void => {
        const client = (request as Counted)[COUNTED]
        if (client === undefined) return
        ;(request as Counted)[COUNTED] = undefined
        const current = inFlight.get(client) ?? 1
        if (current <= 1) inFlight.delete(client)
        else inFlight.set(client, current - 1)
      }
      app.addHook('onResponse', (request, _reply, done) => {
        release(request)
        done()
      })
      app.addHook('onRequestAbort', (request, done) => {
        release(request)
        done()
      })
    }

    const checkShape: preValidationHookHandler = (request, _reply, done) => {
      const body = request.body
      if (typeof body !== 'object' || body === null) {
        done()
        return
      }
      const violation = checkJsonShape(body, maxDepth, maxKeys)
      if (violation === 'depth') done(new BackbeatError('ERR_EDGE_JSON_TOO_DEEP', { params: { limit: maxDepth } }))
      else if (violation === 'keys') done(new BackbeatError('ERR_EDGE_JSON_TOO_MANY_KEYS', { params: { limit: maxKeys } }))
      else done()
    }
    // Only routes that can receive a body get the check: a hook costs every request it runs on.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      if (methods.every((m) => m === 'GET' || m === 'HEAD')) return
      const existing = route.preValidation
      route.preValidation = existing === undefined ? [checkShape] : [...(Array.isArray(existing) ? existing : [existing]), checkShape]
    })
  },
  { name: 'backbeat-limits', fastify: '5.x' },
)
