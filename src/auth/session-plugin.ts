import fastifyCookie from '@fastify/cookie'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BackbeatError, ConfigError, type ConfigIssue, type RequestContext, type SecurityEventSink } from '../core/index.ts'
import { CsrfProtection, type CsrfFailure, type CsrfOptions } from './csrf.ts'
import type { AuthIdentity } from './plugin.ts'
import { isSessionId, SessionManager, type Session, type SessionChanges } from './sessions.ts'

/** Per-route session handling, set through the route's `config.session`. */
export interface RouteSession {
  /** Refuse requests without a live session with 401 `ERR_AUTH_SESSION_INVALID` (default false). */
  required?: boolean
}

/** What {@link FastifyRequest.signIn} records besides the user. */
export interface SignInOptions {
  /** Snapshot of the user's roles, kept in the session. */
  roles?: readonly string[]
  /** Application data; on a re-login by the same user the old data is kept unless given. */
  data?: Readonly<Record<string, unknown>>
  /** The sign-in included a multi-factor check: `mfaAt` is set to now. */
  mfa?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: the session cookie is not looked at; `{ required: true }`: 401 without a session. */
    session?: false | RouteSession
    /** `false` exempts the route from CSRF checks (e.g. a webhook); default true. */
    csrf?: boolean
  }
  interface FastifyRequest {
    /** The live session the request's cookie names; null when there is none. */
    session: Session | null
    /**
     * Signs `userId` in: rotates the current session when it is already theirs (a new ID, the
     * old one dead), else ends it and starts a new one; sets the cookie. A state-changing
     * request must come from an allowed origin (login CSRF).
     */
    signIn(userId: string, options?: SignInOptions): Promise<Session>
    /** Ends the current session and clears the cookie. */
    signOut(): Promise<void>
    /** A new ID for the current session (after a role change or an MFA step-up); sets the cookie. */
    rotateSession(changes?: SessionChanges): Promise<Session>
    /** The CSRF token of the current session (undefined without one, or with CSRF disabled). */
    csrfToken(): string | undefined
  }
  interface FastifyInstance {
    /** The session manager behind the cookie: list and revoke sessions from routes. */
    sessions: SessionManager
  }
}

/** `csrf` options of {@link sessionPlugin}. */
export interface SessionCsrfOptions extends CsrfOptions {
  /** Registers `GET <tokenPath>` answering `{ csrfToken }` to a signed-in client (e.g. `/v1/auth/csrf`). */
  tokenPath?: string
}

export interface SessionPluginOptions {
  manager: SessionManager
  /** Default `__Host-bb_session` when `secure`, else `bb_session`. */
  cookieName?: string
  /** `Secure` cookie (default true); switch off only for local http. */
  secure?: boolean
  /** Default `strict` (an admin console has no reason to be entered signed in from other sites). */
  sameSite?: 'lax' | 'strict'
  /** Cookie path (default `/`; must be `/` with a `__Host-` name). */
  path?: string
  /**
   * Send `Max-Age` (the absolute timeout) so the cookie survives a browser restart. Default
   * false: the cookie ends with the browser session, the server-side timeouts apply anyway.
   */
  persistent?: boolean
  /** CSRF protection for cookie-authenticated POST/PUT/PATCH/DELETE; `false` turns it off (not advised). */
  csrf: SessionCsrfOptions | false
  /**
   * Requests carrying one of these headers are authenticated by it, not by the cookie: the
   * session is not loaded and CSRF does not apply (default `authorization`, `x-api-key`). So a
   * bearer-token client on the same site as the console needs no CSRF token, and a request
   * can never pair someone's bearer token with someone else's session.
   */
  credentialHeaders?: readonly string[]
  /** Receives `csrf_rejected` events. */
  securityEvents?: SecurityEventSink
}

interface RoutePlan {
  readonly skip: boolean
  readonly required: boolean
  readonly csrf: boolean
}

/** Requests whose session lookup failed (store down): a route needing credentials answers this, not a 401. */
const LOOKUP_FAILURES = new WeakMap<FastifyRequest, BackbeatError>()

/** Cookie names are RFC 6265 tokens. */
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]{0,255}$/
/** Where the onRequest hook leaves the reply, for the request helpers that set the cookie. */
const REPLY = Symbol('backbeat.session.reply')
/** The well-formed session ID the cookie carried, looked up or not (sign-out revokes it even when the lookup failed). */
const COOKIE_ID = Symbol('backbeat.session.cookieId')

type RequestWithReply = FastifyRequest & { [REPLY]: FastifyReply | null; [COOKIE_ID]: string | null }

/**
 * Cookie sessions for the admin console on a {@link SessionManager}. For every route (unless
 * `config.session` is `false`) it reads the session cookie (`HttpOnly` always, `Secure` and
 * `SameSite=Strict` by default, `__Host-` prefixed) into `request.session`; a malformed,
 * unknown or expired cookie counts as no session and is cleared. Routes with
 * `config: { session: { required: true } }` answer 401 `ERR_AUTH_SESSION_INVALID` without one.
 *
 * Cookie-authenticated POST/PUT/PATCH/DELETE requests must pass the CSRF check (origin, then
 * the `X-CSRF-Token` header), else 403 `ERR_AUTH_CSRF_INVALID`. Requests carrying a header
 * credential (`Authorization`, `X-API-Key`) are authenticated by it alone: their cookie is
 * not read, so CSRF does not apply to them.
 *
 * When the store is unreachable, routes that require a session answer 503
 * `ERR_DEPENDENCY_UNAVAILABLE` (fail closed); other routes serve the request as signed out.
 *
 * @example
 * await app.register(sessionPlugin, { manager, csrf: { secret: config.csrfSecret, tokenPath: '/v1/auth/csrf' } })
 * app.post('/v1/auth/login', async (request) => { await request.signIn(user.id, { roles: user.roles }); return { csrfToken: request.csrfToken() } })
 * app.get('/v1/admin/sessions', { config: { session: { required: true } } }, (request) => app.sessions.listForUser(request.session!.userId, { currentId: request.session!.id }))
 */
export const sessionPlugin = fp<SessionPluginOptions>(
  async (app, options) => {
    const issues: ConfigIssue[] = []
    const manager = options.manager as unknown
    if (!(manager instanceof SessionManager)) issues.push({ path: 'sessions.manager', message: 'must be a SessionManager' })
    const secure = options.secure ?? true
    if (typeof secure !== 'boolean') issues.push({ path: 'sessions.secure', message: 'must be a boolean' })
    const sameSite = options.sameSite ?? 'strict'
    if (!['strict', 'lax'].includes(sameSite)) issues.push({ path: 'sessions.sameSite', message: "must be 'strict' or 'lax' (SameSite=None would hand the cookie to every site)" })
    const path = options.path ?? '/'
    if (typeof path !== 'string' || !COOKIE_PATH.test(path)) issues.push({ path: 'sessions.path', message: 'must be a URL path starting with / without ; or control characters' })
    const cookieName = options.cookieName ?? (secure ? '__Host-bb_session' : 'bb_session')
    if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) issues.push({ path: 'sessions.cookieName', message: 'must be a cookie name (an RFC 6265 token)' })
    else if (cookieName.startsWith('__Host-') && (!secure || path !== '/')) issues.push({ path: 'sessions.cookieName', message: 'a __Host- cookie needs secure: true and path: "/"' })
    else if (cookieName.startsWith('__Secure-') && !secure) issues.push({ path: 'sessions.cookieName', message: 'a __Secure- cookie needs secure: true' })
    const persistent = options.persistent ?? false
    const credentialHeaders = options.credentialHeaders ?? ['authorization', 'x-api-key']
    if (!Array.isArray(credentialHeaders) || !credentialHeaders.every((h) => typeof h === 'string' && /^[a-z0-9-]{1,64}$/.test(h))) {
      issues.push({ path: 'sessions.credentialHeaders', message: 'must be a list of lower-case header names' })
    }
    let csrf: CsrfProtection | undefined
    let tokenPath: string | undefined
    if (options.csrf === false) csrf = undefined
    else if (typeof options.csrf !== 'object' || (options.csrf as unknown) === null) issues.push({ path: 'sessions.csrf', message: 'must be CSRF options ({ secret, ... }) or false' })
    else {
      try {
        csrf = new CsrfProtection(options.csrf)
      } catch (err) {
        if (err instanceof ConfigError) issues.push(...err.issues.map((i) => ({ ...i, path: `sessions.${i.path}` })))
        else throw err
      }
      tokenPath = options.csrf.tokenPath
      if (tokenPath !== undefined && (typeof tokenPath !== 'string' || !tokenPath.startsWith('/'))) issues.push({ path: 'sessions.csrf.tokenPath', message: 'must be a route path starting with /' })
    }
    if (issues.length > 0) throw new ConfigError(issues)
    const sessions = manager as SessionManager
    const events = options.securityEvents

    if (!app.hasDecorator('parseCookie')) await app.register(fastifyCookie)

    const cookieOptions = {
      httpOnly: true,
      secure,
      sameSite,
      path,
      ...(persistent ? { maxAge: Math.floor(sessions.absoluteTimeoutMs / 1000) } : {}),
    } as const
    const clearOptions = { httpOnly: true, secure, sameSite, path } as const

    app.decorate('sessions', sessions)
    app.decorateRequest('session', null)
    app.decorateRequest(REPLY, null)
    app.decorateRequest(COOKIE_ID, null)

    const plans = new WeakMap<object, RoutePlan>()
    const planOf = (request: FastifyRequest): RoutePlan => {
      const config = request.routeOptions.config as { session?: false | RouteSession; csrf?: boolean }
      let plan = plans.get(config)
      if (plan === undefined) {
        plan = { skip: config.session === false, required: config.session !== false && config.session?.required === true, csrf: csrf !== undefined && config.csrf !== false }
        plans.set(config, plan)
      }
      return plan
    }

    app.addHook('onRoute', (route) => {
      const config = route.config as { session?: unknown; csrf?: unknown } | undefined
      const session = config?.session
      const validSession = session === undefined || session === false || (typeof session === 'object' && session !== null && isRouteSession(session))
      if (!validSession) throw new ConfigError([{ path: `route ${route.url} config.session`, message: 'must be false or { required?: boolean }' }])
      const routeCsrf = config?.csrf
      if (routeCsrf !== undefined && typeof routeCsrf !== 'boolean') throw new ConfigError([{ path: `route ${route.url} config.csrf`, message: 'must be a boolean' }])
    })

    const invalidSession = (): BackbeatError => new BackbeatError('ERR_AUTH_SESSION_INVALID')

    const rejectCsrf = (request: FastifyRequest, reason: CsrfFailure): BackbeatError => {
      events?.({
        type: 'csrf_rejected',
        severity: 'medium',
        at: Date.now(),
        requestId: request.id,
        clientIp: request.ip,
        details: { reason, method: request.method, path: request.url.split('?', 1)[0]?.slice(0, 256) ?? '', origin: headerOf(request, 'origin')?.slice(0, 256) ?? null },
      })
      request.log.info({ reason, method: request.method }, 'CSRF check failed')
      return new BackbeatError('ERR_AUTH_CSRF_INVALID', { params: { reason } })
    }

    const originFailure = (request: FastifyRequest): CsrfFailure | undefined =>
      csrf?.checkOrigin({
        secFetchSite: headerOf(request, 'sec-fetch-site'),
        origin: headerOf(request, 'origin'),
        referer: headerOf(request, 'referer'),
        targetOrigin: `${request.protocol}://${request.host}`,
      })

    const setSession = (request: FastifyRequest, session: Session | null): void => {
      request.session = session
      // Null or absent when the http plugin (which creates it) is not registered.
      const context = request.requestContext as RequestContext | null | undefined
      if (context !== null && context !== undefined && session !== null) context.userId = session.userId
    }

    const replyOf = (request: FastifyRequest): FastifyReply => {
      const reply = (request as RequestWithReply)[REPLY]
      if (reply === null) throw new Error('session helpers are only available while a request is being served')
      return reply
    }

    const issueCookie = (reply: FastifyReply, session: Session): void => {
      reply.setCookie(cookieName, session.id, cookieOptions)
      // A response that carries a session cookie must never be stored by a shared cache.
      reply.header('cache-control', 'no-store')
    }

    /** After a successful lookup: the session, then the token of a state-changing request. */
    const admit = (request: FastifyRequest, reply: FastifyReply, plan: RoutePlan, session: Session | undefined, checkCsrf: boolean): Error | undefined => {
      if (session === undefined) {
        reply.clearCookie(cookieName, clearOptions)
        return plan.required ? invalidSession() : undefined
      }
      setSession(request, session)
      if (!checkCsrf || csrf === undefined) return undefined
      const token = headerOf(request, csrf.headerName)
      if (token === undefined) return rejectCsrf(request, 'token-missing')
      return csrf.verifyToken(session.id, token) ? undefined : rejectCsrf(request, 'token-invalid')
    }

    // Callback style: requests without a session cookie pass synchronously, without a promise.
    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      ;(request as RequestWithReply)[REPLY] = reply
      const plan = planOf(request)
      if (plan.skip) {
        done()
        return
      }
      const id = credentialHeaders.some((h) => request.headers[h] !== undefined) ? undefined : cookieOf(request, cookieName)
      if (id === undefined) {
        done(plan.required ? invalidSession() : undefined)
        return
      }
      if (!isSessionId(id)) {
        reply.clearCookie(cookieName, clearOptions)
        done(plan.required ? invalidSession() : undefined)
        return
      }
      ;(request as RequestWithReply)[COOKIE_ID] = id
      const checkCsrf = plan.csrf && !CsrfProtection.isSafeMethod(request.method)
      if (checkCsrf) {
        // Before the lookup: an obviously cross-site request costs no store call.
        const failure = originFailure(request)
        if (failure !== undefined) {
          done(rejectCsrf(request, failure))
          return
        }
      }
      sessions.get(id).then(
        (session) => {
          done(admit(request, reply, plan, session, checkCsrf))
        },
        (err: unknown) => {
          if (plan.required) {
            done(err instanceof Error ? err : new Error(String(err)))
            return
          }
          // Fail closed: nobody is signed in on a guess; routes that do not need a session still
          // work, and routes that need any credentials answer the store's 503 (sessionIdentity).
          request.log.warn({ err }, 'session store unavailable: request served as signed out')
          LOOKUP_FAILURES.set(request, err instanceof BackbeatError ? err : new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { cause: err }))
          done()
        },
      )
    })

    app.decorateRequest('signIn', async function signIn(this: FastifyRequest, userId: string, signInOptions: SignInOptions = {}): Promise<Session> {
      const reply = replyOf(this)
      if (planOf(this).csrf && !CsrfProtection.isSafeMethod(this.method)) {
        // Login CSRF: a cross-site form must not sign the victim in to the attacker's account.
        const failure = originFailure(this)
        if (failure !== undefined) throw rejectCsrf(this, failure)
      }
      const hints = clientHints(this)
      const current = this.session
      let session: Session | undefined
      if (current?.userId === userId) {
        session = await sessions.rotate(current.id, {
          reauthenticated: true,
          ...hints,
          ...(signInOptions.roles === undefined ? {} : { roles: signInOptions.roles }),
          ...(signInOptions.data === undefined ? {} : { data: signInOptions.data }),
          ...(signInOptions.mfa === true ? { mfa: true } : {}),
        })
      } else if (current !== null) {
        await sessions.revoke(current.id)
      }
      session ??= await sessions.create(userId, {
        ...hints,
        ...(signInOptions.roles === undefined ? {} : { roles: signInOptions.roles }),
        ...(signInOptions.data === undefined ? {} : { data: signInOptions.data }),
        ...(signInOptions.mfa === true ? { mfa: true } : {}),
      })
      issueCookie(reply, session)
      setSession(this, session)
      return session
    })

    app.decorateRequest('signOut', async function signOut(this: FastifyRequest): Promise<void> {
      const reply = replyOf(this)
      // When the lookup failed (store down), the cookie's ID is revoked all the same, so the
      // store outage surfaces as a 503 rather than as a sign-out that left the session alive.
      const id = this.session?.id ?? (this as RequestWithReply)[COOKIE_ID]
      this.session = null
      // The cookie goes first: even if the store cannot be reached, this browser is signed out.
      reply.clearCookie(cookieName, clearOptions)
      reply.header('cache-control', 'no-store')
      if (id !== null) await sessions.revoke(id)
    })

    app.decorateRequest('rotateSession', async function rotateSession(this: FastifyRequest, changes: SessionChanges = {}): Promise<Session> {
      const reply = replyOf(this)
      const current = this.session
      if (current === null) throw invalidSession()
      const session = await sessions.rotate(current.id, { ...clientHints(this), ...changes })
      if (session === undefined) {
        this.session = null
        reply.clearCookie(cookieName, clearOptions)
        throw invalidSession()
      }
      issueCookie(reply, session)
      setSession(this, session)
      return session
    })

    app.decorateRequest('csrfToken', function csrfToken(this: FastifyRequest): string | undefined {
      return this.session === null || csrf === undefined ? undefined : csrf.tokenFor(this.session.id)
    })

    if (tokenPath !== undefined) {
      app.get(tokenPath, { config: { session: { required: true } } }, async (request, reply) => {
        void reply.header('cache-control', 'no-store')
        return { csrfToken: request.csrfToken() }
      })
    }
  },
  { name: 'backbeat-session', fastify: '5.x' },
)

const IDENTITIES = new WeakMap<Session, AuthIdentity>()
const NO_SCOPES: ReadonlySet<string> = new Set()

/**
 * The request's session as the auth plugin's identity (`method: 'session'`, the session's
 * roles, `amr` with `mfa` and `mfaTime` after a multi-factor check, `sessionId` set to the
 * handle, never the secret ID); null without a session. Pass it as the auth plugin's
 * `sessionIdentity`, and register {@link sessionPlugin} first so the session is loaded.
 *
 * @example
 * await app.register(sessionPlugin, { manager, csrf: { secret } })
 * await app.register(authPlugin, { verifier, sessionIdentity })
 */
export function sessionIdentity(request: FastifyRequest): AuthIdentity | BackbeatError | null {
  // Undefined when the session plugin is not registered at all.
  const session = request.session as Session | null | undefined
  if (session === null || session === undefined) return LOOKUP_FAILURES.get(request) ?? null
  let identity = IDENTITIES.get(session)
  if (identity === undefined) {
    identity = Object.freeze({
      subject: session.userId,
      method: 'session',
      scopes: NO_SCOPES,
      roles: new Set(session.roles ?? []),
      amr: new Set(session.mfaAt === undefined ? [] : ['mfa']),
      mfaTime: session.mfaAt === undefined ? undefined : Math.floor(session.mfaAt / 1000),
      claims: {},
      sessionId: session.handle,
    } satisfies AuthIdentity)
    IDENTITIES.set(session, identity)
  }
  return identity
}

function isRouteSession(value: object): boolean {
  const keys = Object.keys(value)
  return keys.every((k) => k === 'required') && ((value as RouteSession).required === undefined || typeof (value as RouteSession).required === 'boolean')
}

/** One header's value; a repeated one is joined with commas, which no origin or token check accepts. */
function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined
}

function cookieOf(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie
  if (header === undefined) return undefined
  // @fastify/cookie parses in its own onRequest hook; parse here if it was set to a later hook.
  const parsed = request.cookies as Record<string, string | undefined> | null
  const jar = parsed ?? request.server.parseCookie(header)
  return jar[name]
}

function clientHints(request: FastifyRequest): { userAgent?: string; ip?: string } {
  const userAgent = request.headers['user-agent']
  return { ...(typeof userAgent === 'string' ? { userAgent } : {}), ip: request.ip }
}
