import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BackbeatError } from 'backbeat'
import type { AuthIdentity, Rbac, TokenService } from 'backbeat/auth'
import { problemResponses } from '../schemas.ts'

const SignInBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 320 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    otp: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  },
  { additionalProperties: false },
)
const HandleParams = Type.Object({ handle: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'A session handle from the list (never a session ID).' }) }, { additionalProperties: false })

const SessionItem = Type.Object({
  handle: Type.String(),
  current: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  last_seen_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  mfa: Type.Boolean(),
})

/** Console routes accept only the session cookie, and only from admins. */
const CONSOLE = { auth: { roles: ['admin'], methods: ['session'] } } as const
const subjectOf = (request: FastifyRequest): string => (request.auth as AuthIdentity).subject

/**
 * The admin console's sign-in: server-side sessions in an HttpOnly cookie (Redis when
 * configured), CSRF-protected state changes, "your sessions" and "sign out other devices".
 */
export function consoleRoutes(app: FastifyInstance, { tokens, rbac }: { tokens: TokenService; rbac: Rbac }): Promise<void> {
  app.post<{ Body: Static<typeof SignInBody> }>(
    '/console/session',
    {
      config: { auth: false },
      schema: {
        tags: ['console'],
        summary: 'Sign in to the admin console',
        description:
          'Checks the password (and the TOTP code of accounts with MFA; lockout as for tokens), then starts a session: a new ID in an HttpOnly, Secure, SameSite=Strict cookie (a fresh ID on every sign-in). Answers the CSRF token to send as X-CSRF-Token on state-changing console requests. Admins only.',
        body: SignInBody,
        response: { 200: Type.Object({ user_id: Type.String(), csrf_token: Type.String() }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { account, amr } = await tokens.authenticate(request.body, { clientIp: request.ip, requestId: request.id })
      if (!rbac.hasRole(account.roles, 'admin')) throw new BackbeatError('ERR_AUTH_ROLE_REQUIRED', { params: { role: 'admin' } })
      await request.signIn(account.id, { roles: account.roles, mfa: amr.includes('otp') })
      return reply.header('cache-control', 'no-store').send({ user_id: account.id, csrf_token: request.csrfToken() ?? '' })
    },
  )

  app.post(
    '/console/session/logout',
    {
      config: { auth: { required: true, methods: ['session'], allowUnenrolled: true } },
      schema: { tags: ['console'], summary: 'Sign out of the console', description: 'Ends this session and clears the cookie.', response: { 204: Type.Null({ description: 'Signed out.' }), ...problemResponses } },
    },
    async (request, reply) => {
      await request.signOut()
      return reply.code(204).send()
    },
  )

  app.get(
    '/console/sessions',
    {
      config: CONSOLE,
      schema: { tags: ['console'], summary: 'Your sessions', description: 'The signed-in admin\'s live sessions, most recently used first.', response: { 200: Type.Object({ items: Type.Array(SessionItem) }), ...problemResponses } },
    },
    async (request, reply) => {
      const list = await app.sessions.listForUser(subjectOf(request), request.session === null ? {} : { currentId: request.session.id })
      const iso = (ms: number): string => new Date(ms).toISOString()
      const items = list.map((s) => ({
        handle: s.handle,
        current: s.current,
        created_at: iso(s.createdAt),
        last_seen_at: iso(s.lastSeenAt),
        expires_at: iso(Math.min(s.idleExpiresAt, s.absoluteExpiresAt)),
        user_agent: s.userAgent ?? null,
        ip: s.ip ?? null,
        mfa: s.mfaAt !== undefined,
      }))
      return reply.header('cache-control', 'no-store').send({ items })
    },
  )

  app.delete<{ Params: Static<typeof HandleParams> }>(
    '/console/sessions/:handle',
    {
      config: CONSOLE,
      schema: { tags: ['console'], summary: 'Sign one session out', params: HandleParams, response: { 204: Type.Null({ description: 'Signed out.' }), ...problemResponses } },
    },
    async (request, reply) => {
      const revoked = await app.sessions.revokeByHandle(subjectOf(request), request.params.handle)
      if (!revoked) throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Session', id: request.params.handle } })
      return reply.code(204).send()
    },
  )

  app.post(
    '/console/sessions/sign-out-others',
    {
      config: CONSOLE,
      schema: { tags: ['console'], summary: 'Sign out other devices', description: 'Ends every session of this admin except the current one.', response: { 200: Type.Object({ signed_out: Type.Integer() }), ...problemResponses } },
    },
    async (request, reply) => {
      const signedOut = await app.sessions.revokeAllForUser(subjectOf(request), request.session === null ? {} : { except: request.session.id })
      return reply.send({ signed_out: signedOut })
    },
  )

  return Promise.resolve()
}
