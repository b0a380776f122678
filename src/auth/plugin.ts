import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { JWTPayload } from 'jose'
import { BackbeatError, ConfigError, type RequestContext } from '../core/index.ts'
import type { JwtVerifier, VerifiedToken } from './jwt-verifier.ts'

/** Per-route authentication, set through the route's `config.auth`. */
export interface RouteAuth {
  /** Refuse requests without a valid token (default false: the route is public). */
  required?: boolean
  /** Scopes the token must carry, all of them (implies `required`). */
  scopes?: readonly string[]
}

/** Who made the request, once their token verified. */
export interface AuthIdentity {
  /** The token's `sub`. */
  readonly subject: string
  /** From `scope` (space-separated, RFC 8693) or `scp` (a list). */
  readonly scopes: ReadonlySet<string>
  readonly claims: Readonly<JWTPayload>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` never looks at credentials; an object makes the route require a token and scopes. */
    auth?: false | RouteAuth
  }
  interface FastifyRequest {
    /** Set when the request carried a valid bearer token; null otherwise. */
    auth: AuthIdentity | null
  }
}

export interface AuthPluginOptions {
  verifier: JwtVerifier
  /** The `realm` of `WWW-Authenticate` challenges (default `api`). */
  realm?: string
}

/** Longest Authorization header read; a longer one is refused before any parsing. */
const MAX_AUTHORIZATION_BYTES = 16_384
const BEARER = /^Bearer +([^\s]+) *$/i
/** A scope token (RFC 6749 section 3.3). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

interface RoutePlan {
  required: boolean
  scopes: readonly string[]
  /** `config.auth: false`: credentials are not looked at. */
  skip: boolean
}

/**
 * Bearer-token authentication (RFC 6750) for every route, in `onRequest`: a token that is
 * present is verified on every route (a bad token is a 401 even where none is needed), and
 * routes that say `config: { auth: { required: true, scopes } }` refuse requests without one
 * (401 with a `WWW-Authenticate: Bearer` challenge) or without the scopes (403,
 * `error="insufficient_scope"`). The identity is `request.auth`, and `sub` becomes the
 * request context's `userId` (logs, rate-limit `user` keys).
 *
 * @example
 * await app.register(authPlugin, { verifier })
 * app.get('/v1/me', { config: { auth: { required: true } } }, (request) => profileOf(request.auth.subject))
 */
export const authPlugin = fp<AuthPluginOptions>(
  async (app, options) => {
    const realm = options.realm ?? 'api'
    if (!/^[\x21\x23-\x5b\x5d-\x7e ]{1,64}$/.test(realm)) throw new ConfigError([{ path: 'auth.realm', message: 'must be 1-64 printable characters without quotes or backslashes' }])
    const verifier = options.verifier
    const challenge = `Bearer realm="${realm}"`
    const invalid = (err: BackbeatError): BackbeatError =>
      new BackbeatError(err.code, { params: err.params, cause: err, headers: { 'www-authenticate': `${challenge}, error="invalid_token"` } })

    app.decorateRequest('auth', null)
    const identities = new WeakMap<object, AuthIdentity>()

    // One plan per route config object: required or not, and the scopes it needs.
    const plans = new WeakMap<object, RoutePlan>()
    const planOf = (request: FastifyRequest): RoutePlan => {
      const config = request.routeOptions.config as { auth?: false | RouteAuth }
      let plan = plans.get(config)
      if (plan === undefined) {
        const route = config.auth
        plan = route === false ? { required: false, scopes: [], skip: true } : { required: route?.required === true || (route?.scopes?.length ?? 0) > 0, scopes: route?.scopes ?? [], skip: false }
        plans.set(config, plan)
      }
      return plan
    }

    app.addHook('onRoute', (route) => {
      const auth = (route.config as { auth?: unknown } | undefined)?.auth
      if (auth === undefined || auth === false) return
      const scopes = typeof auth === 'object' && auth !== null ? (auth as RouteAuth).scopes : undefined
      const validScopes = scopes === undefined || (Array.isArray(scopes) && scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s)))
      if (typeof auth !== 'object' || auth === null || !validScopes) {
        throw new ConfigError([{ path: `route ${route.url} config.auth`, message: 'must be false or { required?: boolean, scopes?: string[] } with scope tokens (RFC 6749)' }])
      }
    })

    /** Sets the identity of a verified token on the request, or returns why it may not pass. */
    const admit = (request: FastifyRequest, verified: VerifiedToken, scopes: readonly string[]): BackbeatError | undefined => {
      const claims = verified.payload
      // A cached verification returns the same frozen payload: its identity is built once.
      let identity = identities.get(claims)
      if (identity === undefined) {
        if (typeof claims.sub !== 'string' || claims.sub === '') return invalid(new BackbeatError('ERR_AUTH_TOKEN_CLAIM_INVALID', { params: { claim: 'sub', reason: 'missing' } }))
        identity = Object.freeze({ subject: claims.sub, scopes: scopesOf(claims), claims })
        identities.set(claims, identity)
      }
      const held = identity.scopes
      const missing = scopes.filter((s) => !held.has(s))
      if (missing.length > 0) {
        return new BackbeatError('ERR_AUTH_INSUFFICIENT_SCOPE', {
          params: { scope: missing.join(' ') },
          headers: { 'www-authenticate': `${challenge}, error="insufficient_scope", scope="${scopes.join(' ')}"` },
        })
      }
      request.auth = identity
      const context = contextOf(request)
      if (context !== null) context.userId = identity.subject
      return undefined
    }

    // Callback style: a cached token is admitted synchronously, without a promise.
    app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      const plan = planOf(request)
      if (plan.skip) {
        done()
        return
      }
      const header = request.headers.authorization
      if (header === undefined) {
        done(plan.required ? new BackbeatError('ERR_AUTH_TOKEN_MISSING', { headers: { 'www-authenticate': challenge } }) : undefined)
        return
      }
      const match = header.length <= MAX_AUTHORIZATION_BYTES ? BEARER.exec(header) : null
      if (match === null) {
        done(invalid(new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')))
        return
      }
      const token = match[1] as string
      const hit = verifier.cached(token)
      if (hit !== undefined) {
        done(admit(request, hit, plan.scopes))
        return
      }
      verifier.verify(token).then(
        (verified) => {
          done(admit(request, verified, plan.scopes))
        },
        (err: unknown) => {
          done(err instanceof BackbeatError ? invalid(err) : err instanceof Error ? err : new Error(String(err)))
        },
      )
    })
  },
  { name: 'backbeat-auth', fastify: '5.x' },
)

/** The request context, or null when the http plugin (which creates it) is not registered. */
function contextOf(request: FastifyRequest): RequestContext | null {
  return request.requestContext
}

function scopesOf(claims: JWTPayload): ReadonlySet<string> {
  const scope = claims.scope
  if (typeof scope === 'string') return new Set(scope.split(' ').filter((s) => s !== ''))
  const scp = claims.scp
  if (Array.isArray(scp)) return new Set(scp.filter((s): s is string => typeof s === 'string'))
  return new Set()
}
