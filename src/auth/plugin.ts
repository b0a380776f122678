import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { JWTPayload } from 'jose'
import { BackbeatError, ConfigError, type RequestContext } from '../core/index.ts'
import type { JwtVerifier, VerifiedToken } from './jwt-verifier.ts'
import type { Rbac } from './rbac.ts'
import type { RevocationList } from './revocation.ts'

/** Per-route authentication, set through the route's `config.auth`. */
export interface RouteAuth {
  /** Refuse requests without valid credentials (default false: the route is public). */
  required?: boolean
  /** Scopes the credentials must carry, all of them (implies `required`). */
  scopes?: readonly string[]
  /** RBAC permissions the caller must hold, all of them (implies `required`; needs `rbac`). */
  permissions?: readonly string[]
  /** Roles the caller must hold, any of them, through the hierarchy (implies `required`; needs `rbac`). */
  roles?: readonly string[]
  /** Step-up: the caller must have passed MFA within this many seconds (implies `required`). */
  mfaMaxAgeS?: number
  /** Let callers whose role requires MFA but who have not enrolled yet through (the enrolment routes). */
  allowUnenrolled?: boolean
  /** Credentials this route accepts (default every configured kind). */
  methods?: readonly AuthMethod[]
}

/** How the caller proved who they are. */
export type AuthMethod = 'jwt' | 'api_key' | 'session'

/** Who made the request, once their credentials verified. */
export interface AuthIdentity {
  /** The token's `sub`, the API key's owner, or the session's user. */
  readonly subject: string
  readonly method: AuthMethod
  /** From `scope` (space-separated, RFC 8693) or `scp` (a list); an API key's scopes. */
  readonly scopes: ReadonlySet<string>
  /** From the `roles` claim or the session; API keys hold none (their scopes are their rights). */
  readonly roles: ReadonlySet<string>
  /** Authentication methods (RFC 8176), e.g. `pwd`, `otp`. */
  readonly amr: ReadonlySet<string>
  /** Epoch seconds of the last MFA, when there was one. */
  readonly mfaTime: number | undefined
  /** The verified JWT claims (empty for API keys and sessions). */
  readonly claims: Readonly<JWTPayload>
  /** Set when an API key authenticated the request. */
  readonly apiKey?: { readonly id: string; readonly rateLimitPolicy?: string | undefined }
  /** Set when a session cookie authenticated the request. */
  readonly sessionId?: string
}

/** What the auth plugin needs from an API-key service (`ApiKeyService` fits). */
export interface ApiKeyAuthenticator {
  /** Cheap syntactic check: does this look like one of our keys (prefix)? */
  looksLikeKey(value: string): boolean
  /** Resolves the key's owner and scopes; throws a BackbeatError (401) for a bad key. */
  authenticate(key: string): Promise<{ id: string; owner: string; scopes: readonly string[]; rateLimitPolicy?: string | undefined }>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` never looks at credentials; an object makes the route require credentials, scopes, rights. */
    auth?: false | RouteAuth
  }
  interface FastifyRequest {
    /** Set when the request carried valid credentials; null otherwise. */
    auth: AuthIdentity | null
  }
}

export interface AuthPluginOptions {
  verifier: JwtVerifier
  /** The `realm` of `WWW-Authenticate` challenges (default `api`). */
  realm?: string
  /** Deny list checked for every JWT (fails closed with 503 when its store is down). */
  revocations?: RevocationList
  /** Accepts API keys in `X-API-Key` or as a bearer token with the key's prefix. */
  apiKeys?: ApiKeyAuthenticator
  /** Header for API keys (default `x-api-key`). */
  apiKeyHeader?: string
  /** Needed by routes that declare `permissions` or `roles`. */
  rbac?: Rbac
  /** Callers holding one of these roles must have passed MFA (`amr` has `otp`), except on `allowUnenrolled` routes. */
  mfaEnforcedRoles?: readonly string[]
  /**
   * The identity of the request's session cookie, read when no Authorization or API-key header
   * is present; the session plugin (registered before this one) resolves it in its own hook.
   */
  sessionIdentity?: (request: FastifyRequest) => AuthIdentity | BackbeatError | null
  now?: () => number
}

/** Longest Authorization header read; a longer one is refused before any parsing. */
const MAX_AUTHORIZATION_BYTES = 16_384
const BEARER = /^Bearer +([^\s]+) *$/i

/**
 * The token of `Bearer <token>` (scheme case-insensitive, RFC 9110), or undefined. The common
 * shape, one space and no trailing whitespace, is read without a regex (a hot path).
 */
function bearerToken(header: string): string | undefined {
  if (header.length > 7 && header.charCodeAt(6) === 32 && header.charCodeAt(7) !== 32 && (header.startsWith('Bearer') || header.slice(0, 6).toLowerCase() === 'bearer')) {
    const token = header.slice(7)
    if (!/\s/.test(token)) return token
  }
  const match = BEARER.exec(header)
  return match === null ? undefined : match[1]
}
/** A scope token (RFC 6749 section 3.3). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/
const PERMISSION = /^(\*|[a-z][a-z0-9_-]{0,63}:(\*|[a-z][a-z0-9_-]{0,63}))$/
const ROLE = /^[a-z][a-z0-9_-]{0,63}$/
const METHODS: readonly AuthMethod[] = ['jwt', 'api_key', 'session']
const MFA_METHODS = ['otp', 'mfa', 'hwk', 'swk']
const NO_CLAIMS: Readonly<JWTPayload> = Object.freeze({})

interface RoutePlan {
  required: boolean
  scopes: readonly string[]
  permissions: readonly string[]
  roles: readonly string[]
  mfaMaxAgeS: number | undefined
  allowUnenrolled: boolean
  methods: ReadonlySet<AuthMethod>
  /** `config.auth: false`: credentials are not looked at. */
  skip: boolean
}

/**
 * Authentication for every route, in `onRequest`: a bearer JWT (RFC 6750), checked against the
 * revocation list, or an API key (`X-API-Key`, or a bearer token with the key prefix).
 * Credentials that are present are verified on every route (bad ones are a 401 even where none
 * are needed), and routes that say `config: { auth: { ... } }` refuse requests without them
 * (401 with a `WWW-Authenticate: Bearer` challenge), without the scopes (403,
 * `error="insufficient_scope"`), permissions or roles (403), or without a recent enough MFA
 * (401, `error="insufficient_user_authentication"`, RFC 9470). The identity is `request.auth`,
 * and its subject becomes the request context's `userId` (logs, rate-limit `user` keys).
 *
 * @example
 * await app.register(authPlugin, { verifier, revocations, rbac })
 * app.get('/v1/me', { config: { auth: { required: true } } }, (request) => profileOf(request.auth.subject))
 * app.put('/v1/playlists/:id', { config: { auth: { permissions: ['playlist:write'] } } }, handler)
 */
export const authPlugin = fp<AuthPluginOptions>(
  async (app, options) => {
    const realm = options.realm ?? 'api'
    if (!/^[\x21\x23-\x5b\x5d-\x7e ]{1,64}$/.test(realm)) throw new ConfigError([{ path: 'auth.realm', message: 'must be 1-64 printable characters without quotes or backslashes' }])
    const { verifier, revocations, apiKeys, rbac, sessionIdentity } = options
    const apiKeyHeader = (options.apiKeyHeader ?? 'x-api-key').toLowerCase()
    const enforced = new Set(options.mfaEnforcedRoles ?? [])
    const now = options.now ?? Date.now
    const challenge = `Bearer realm="${realm}"`
    /** A session-only route asks for a session; others for a bearer token, with the RFC 6750 challenge. */
    const missingFor = (plan: RoutePlan): BackbeatError =>
      plan.methods.size === 1 && plan.methods.has('session') ? new BackbeatError('ERR_AUTH_SESSION_INVALID') : new BackbeatError('ERR_AUTH_TOKEN_MISSING', { headers: { 'www-authenticate': challenge } })
    const invalid = (err: BackbeatError): BackbeatError =>
      err.status === 401 ? new BackbeatError(err.code, { params: err.params, cause: err, headers: { 'www-authenticate': `${challenge}, error="invalid_token"` } }) : err

    app.decorateRequest('auth', null)
    const identities = new WeakMap<object, AuthIdentity>()

    // One plan per route config object: what the route requires.
    const plans = new WeakMap<object, RoutePlan>()
    const planOf = (request: FastifyRequest): RoutePlan => {
      const config = request.routeOptions.config as { auth?: false | RouteAuth }
      let plan = plans.get(config)
      if (plan === undefined) {
        plan = planFor(config.auth)
        plans.set(config, plan)
      }
      return plan
    }

    app.addHook('onRoute', (route) => {
      const auth = (route.config as { auth?: unknown } | undefined)?.auth
      if (auth === undefined || auth === false) return
      const problem = routeAuthProblem(auth)
      if (problem !== undefined) throw new ConfigError([{ path: `route ${route.url} config.auth`, message: problem }])
      const declared = auth as RouteAuth
      if (((declared.permissions?.length ?? 0) > 0 || (declared.roles?.length ?? 0) > 0) && rbac === undefined) {
        throw new ConfigError([{ path: `route ${route.url} config.auth`, message: 'permissions and roles need the auth plugin\'s rbac option' }])
      }
    })

    /** Whether the identity holds an MFA-enforced role, directly or through the hierarchy; once per identity. */
    const enforcedFor = new WeakMap<AuthIdentity, boolean>()
    const mustUseMfa = (identity: AuthIdentity): boolean => {
      let must = enforcedFor.get(identity)
      if (must === undefined) {
        must = [...enforced].some((role) => (rbac === undefined ? identity.roles.has(role) : rbac.hasRole(identity.roles, role)))
        enforcedFor.set(identity, must)
      }
      return must
    }

    /** Checks what the route requires of an identity and sets it on the request, or returns why it may not pass. */
    const admit = (request: FastifyRequest, identity: AuthIdentity, plan: RoutePlan): BackbeatError | undefined => {
      if (!plan.methods.has(identity.method)) {
        return missingFor(plan)
      }
      if (plan.scopes.length > 0) {
        const missing = plan.scopes.filter((s) => !identity.scopes.has(s))
        if (missing.length > 0) {
          return new BackbeatError('ERR_AUTH_INSUFFICIENT_SCOPE', {
            params: { scope: missing.join(' ') },
            headers: { 'www-authenticate': `${challenge}, error="insufficient_scope", scope="${plan.scopes.join(' ')}"` },
          })
        }
      }
      if (rbac !== undefined) {
        for (const permission of plan.permissions) {
          if (!holds(rbac, identity, permission)) return new BackbeatError('ERR_AUTH_PERMISSION_DENIED', { params: { permission } })
        }
        if (plan.roles.length > 0 && !plan.roles.some((role) => rbac.hasRole(identity.roles, role))) {
          return new BackbeatError('ERR_AUTH_ROLE_REQUIRED', { params: { role: plan.roles.join(' or ') } })
        }
      }
      if (enforced.size > 0 && !plan.allowUnenrolled && identity.method !== 'api_key' && !hasMfa(identity) && mustUseMfa(identity)) {
        return new BackbeatError('ERR_AUTH_MFA_ENROLLMENT_REQUIRED')
      }
      if (plan.mfaMaxAgeS !== undefined) {
        // An API key has no second factor: it never passes a step-up route.
        const mfaTime = identity.method === 'api_key' ? undefined : identity.mfaTime
        if (mfaTime === undefined || mfaTime * 1000 < now() - plan.mfaMaxAgeS * 1000) {
          return new BackbeatError('ERR_AUTH_MFA_REQUIRED', {
            params: { maxAgeS: plan.mfaMaxAgeS },
            headers: { 'www-authenticate': `${challenge}, error="insufficient_user_authentication", error_description="A recent multi-factor authentication is required", max_age=${plan.mfaMaxAgeS}` },
          })
        }
      }
      request.auth = identity
      const context = contextOf(request)
      if (context !== null) {
        context.userId = identity.subject
        if (identity.apiKey !== undefined) {
          context.apiKeyId = identity.apiKey.id
          if (identity.apiKey.rateLimitPolicy !== undefined) context.rateLimitPolicy = identity.apiKey.rateLimitPolicy
        }
      }
      return undefined
    }

    /** The identity of a verified token; a cached verification returns the same frozen payload, so it is built once. */
    const jwtIdentity = (verified: VerifiedToken): AuthIdentity | BackbeatError => {
      const claims = verified.payload
      let identity = identities.get(claims)
      if (identity === undefined) {
        if (typeof claims.sub !== 'string' || claims.sub === '') return invalid(new BackbeatError('ERR_AUTH_TOKEN_CLAIM_INVALID', { params: { claim: 'sub', reason: 'missing' } }))
        const mfaTime = typeof claims.mfa_time === 'number' ? claims.mfa_time : undefined
        identity = Object.freeze({ subject: claims.sub, method: 'jwt' as const, scopes: scopesOf(claims), roles: stringSet(claims.roles), amr: stringSet(claims.amr), mfaTime, claims })
        identities.set(claims, identity)
      }
      return identity
    }

    const admitToken = (request: FastifyRequest, verified: VerifiedToken, plan: RoutePlan, done: (err?: Error) => void): void => {
      const identity = jwtIdentity(verified)
      if (identity instanceof BackbeatError) {
        done(identity)
        return
      }
      if (revocations === undefined) {
        done(admit(request, identity, plan))
        return
      }
      const claims = verified.payload
      const token = { jti: claims.jti, sub: claims.sub, iat: claims.iat, sid: typeof claims.sid === 'string' ? claims.sid : undefined }
      const known = revocations.cachedRevoked(token)
      if (known === false) {
        done(admit(request, identity, plan))
        return
      }
      if (known === true) {
        done(invalid(new BackbeatError('ERR_AUTH_TOKEN_REVOKED')))
        return
      }
      revocations.assertNotRevoked(token).then(
        () => {
          done(admit(request, identity, plan))
        },
        (err: unknown) => {
          done(err instanceof BackbeatError ? invalid(err) : toError(err))
        },
      )
    }

    const admitApiKey = (request: FastifyRequest, key: string, plan: RoutePlan, done: (err?: Error) => void): void => {
      if (apiKeys === undefined) {
        done(invalid(new BackbeatError('ERR_AUTH_API_KEY_INVALID')))
        return
      }
      apiKeys.authenticate(key).then(
        (record) => {
          const identity: AuthIdentity = Object.freeze({
            subject: record.owner,
            method: 'api_key' as const,
            scopes: new Set(record.scopes),
            roles: new Set<string>(),
            amr: new Set<string>(),
            mfaTime: undefined,
            claims: NO_CLAIMS,
            apiKey: { id: record.id, rateLimitPolicy: record.rateLimitPolicy },
          })
          done(admit(request, identity, plan))
        },
        (err: unknown) => {
          done(err instanceof BackbeatError ? invalid(err) : toError(err))
        },
      )
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
        const key = apiKeys === undefined ? undefined : request.headers[apiKeyHeader]
        if (typeof key === 'string') {
          admitApiKey(request, key, plan, done)
          return
        }
        const session = sessionIdentity?.(request) ?? null
        if (session instanceof BackbeatError) {
          // The session store is down: a route that needs credentials answers its 503, never a 401.
          done(plan.required ? session : undefined)
          return
        }
        if (session !== null) {
          done(admit(request, session, plan))
          return
        }
        done(plan.required ? missingFor(plan) : undefined)
        return
      }
      const token = header.length <= MAX_AUTHORIZATION_BYTES ? bearerToken(header) : undefined
      if (token === undefined) {
        done(invalid(new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')))
        return
      }
      if (apiKeys?.looksLikeKey(token) === true) {
        admitApiKey(request, token, plan, done)
        return
      }
      const hit = verifier.cached(token)
      if (hit !== undefined) {
        admitToken(request, hit, plan, done)
        return
      }
      verifier.verify(token).then(
        (verified) => {
          admitToken(request, verified, plan, done)
        },
        (err: unknown) => {
          done(err instanceof BackbeatError ? invalid(err) : toError(err))
        },
      )
    })

  },
  { name: 'backbeat-auth', fastify: '5.x' },
)

function planFor(route: false | RouteAuth | undefined): RoutePlan {
  if (route === false) return { required: false, scopes: [], permissions: [], roles: [], mfaMaxAgeS: undefined, allowUnenrolled: true, methods: new Set(METHODS), skip: true }
  const scopes = route?.scopes ?? []
  const permissions = route?.permissions ?? []
  const roles = route?.roles ?? []
  const mfaMaxAgeS = route?.mfaMaxAgeS
  return {
    required: route?.required === true || scopes.length > 0 || permissions.length > 0 || roles.length > 0 || mfaMaxAgeS !== undefined,
    scopes,
    permissions,
    roles,
    mfaMaxAgeS,
    allowUnenrolled: route?.allowUnenrolled === true,
    methods: new Set(route?.methods ?? METHODS),
    skip: false,
  }
}

/** Why a route's `config.auth` is invalid, or undefined. */
function routeAuthProblem(auth: unknown): string | undefined {
  const shape = 'must be false or { required?, scopes?, permissions?, roles?, mfaMaxAgeS?, allowUnenrolled?, methods? }'
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) return shape
  const a = auth as Record<string, unknown>
  for (const key of Object.keys(a)) if (!['required', 'scopes', 'permissions', 'roles', 'mfaMaxAgeS', 'allowUnenrolled', 'methods'].includes(key)) return `${shape}; unknown option ${key}`
  const list = (value: unknown, pattern: RegExp): boolean => value === undefined || (Array.isArray(value) && value.every((v) => typeof v === 'string' && pattern.test(v)))
  if (a.required !== undefined && typeof a.required !== 'boolean') return 'required must be a boolean'
  if (a.allowUnenrolled !== undefined && typeof a.allowUnenrolled !== 'boolean') return 'allowUnenrolled must be a boolean'
  if (!list(a.scopes, SCOPE_TOKEN)) return 'scopes must be scope tokens (RFC 6749)'
  if (!list(a.permissions, PERMISSION)) return 'permissions must be resource:action, resource:* or *'
  if (!list(a.roles, ROLE)) return 'roles must be lower-case role names'
  if (a.methods !== undefined && !(Array.isArray(a.methods) && a.methods.length > 0 && a.methods.every((m) => METHODS.includes(m as AuthMethod)))) return `methods must be a non-empty list of ${METHODS.join(', ')}`
  if (a.mfaMaxAgeS !== undefined && !(Number.isInteger(a.mfaMaxAgeS) && (a.mfaMaxAgeS as number) > 0)) return 'mfaMaxAgeS must be a positive integer'
  return undefined
}

/**
 * Whether an identity holds a permission: a session through its roles; an API key through its
 * scopes (keys hold no roles); a JWT through its roles and its `scope` both.
 */
export function holds(rbac: Rbac, identity: AuthIdentity, permission: string): boolean {
  if (identity.method === 'api_key') return scopeAllows(identity.scopes, permission)
  // A token holds what its roles allow AND what its scope was narrowed to at issue time.
  if (identity.method === 'jwt') return rbac.can(identity.roles, permission) && scopeAllows(identity.scopes, permission)
  return rbac.can(identity.roles, permission)
}

/** `permission` itself, `resource:*` or `*` among the scopes. */
function scopeAllows(scopes: ReadonlySet<string>, permission: string): boolean {
  const colon = permission.indexOf(':')
  return scopes.has(permission) || scopes.has('*') || (colon > 0 && scopes.has(`${permission.slice(0, colon)}:*`))
}

function hasMfa(identity: AuthIdentity): boolean {
  return MFA_METHODS.some((m) => identity.amr.has(m))
}

function stringSet(value: unknown): ReadonlySet<string> {
  return Array.isArray(value) ? new Set(value.filter((v): v is string => typeof v === 'string')) : new Set()
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

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
