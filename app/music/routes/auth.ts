import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TokenResponse, TokenService } from 'backbeat/auth'
import { invalidField } from '../errors.ts'
import { parseId } from '../ids.ts'
import type { MusicRepository } from '../repository.ts'
import { IdParams, PrivateUser, problemResponses, refTo } from '../schemas.ts'

const TokenBody = Type.Object(
  {
    grant_type: Type.Union([Type.Literal('password'), Type.Literal('refresh_token')], { description: 'RFC 6749: `password` (demo accounts) or `refresh_token`.' }),
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'The account email (password grant).' })),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    otp: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'The authenticator code or a recovery code, for accounts with MFA.' })),
    scope: Type.Optional(Type.String({ maxLength: 1000, description: 'Space-separated permissions to ask for (default every permission of the roles).' })),
    refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    client_id: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
)
type TokenBodyJson = Static<typeof TokenBody>

const RefreshBody = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false })
const LogoutBody = Type.Object(
  {
    refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Ends this sign-in on every device it was refreshed to.' })),
    everywhere: Type.Optional(Type.Boolean({ description: 'Sign out of every session of this account.' })),
  },
  { additionalProperties: false },
)

export const TokenResponseSchema = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
    refresh_token: Type.String({ description: 'Opaque; rotated on every use. Reusing a spent one signs out the whole sign-in.' }),
    scope: Type.String(),
  },
  { description: 'RFC 6749 section 5.1 token response.' },
)

/** RFC 6749 section 5.1: token responses are never cached. */
function sendTokens(reply: FastifyReply, tokens: TokenResponse): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(tokens)
}

/** The token endpoint (password and refresh grants), refresh, logout, `/v1/me` and the admin "sign out everywhere". */
export function authRoutes(app: FastifyInstance, { tokens, repository }: { tokens: TokenService; repository: MusicRepository }): Promise<void> {
  // RFC 6749 clients send forms; JSON works too. URLSearchParams builds plain own properties,
  // so `__proto__` in a form is just a field the schema then refuses.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16_384 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  const context = (request: { ip: string; id: string }): { clientIp: string; requestId: string } => ({ clientIp: request.ip, requestId: request.id })

  app.post<{ Body: TokenBodyJson }>(
    '/auth/token',
    {
      config: { auth: false },
      schema: {
        tags: ['auth'],
        summary: 'Get tokens',
        description:
          'The OAuth 2.0 token endpoint (JSON or form body). `grant_type=password` signs in a demo account (see the README) and answers an access token and a refresh token; accounts with MFA also send `otp`. Repeated failures lock the account and the address out with 429 and Retry-After; failures never tell whether the account exists. `grant_type=refresh_token` rotates a refresh token.',
        body: TokenBody,
        response: { 200: TokenResponseSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const body = request.body
      if (body.grant_type === 'refresh_token') {
        if (body.refresh_token === undefined) throw invalidField('body', '/refresh_token', 'is required for grant_type refresh_token')
        return sendTokens(reply, await tokens.refreshGrant(body.refresh_token, context(request)))
      }
      if (body.username === undefined) throw invalidField('body', '/username', 'is required for grant_type password')
      if (body.password === undefined) throw invalidField('body', '/password', 'is required for grant_type password')
      return sendTokens(reply, await tokens.passwordGrant({ username: body.username, password: body.password, otp: body.otp, scope: body.scope }, context(request)))
    },
  )

  app.post<{ Body: Static<typeof RefreshBody> }>(
    '/auth/refresh',
    {
      config: { auth: false },
      schema: {
        tags: ['auth'],
        summary: 'Refresh tokens',
        description: 'Spends a refresh token and answers new tokens. A refresh token works once: presenting a spent one again revokes every token descended from the same sign-in (401 ERR_AUTH_REFRESH_TOKEN_REUSED).',
        body: RefreshBody,
        response: { 200: TokenResponseSchema, ...problemResponses },
      },
    },
    async (request, reply) => sendTokens(reply, await tokens.refreshGrant(request.body.refresh_token, context(request))),
  )

  app.post<{ Body: Static<typeof LogoutBody> | undefined }>(
    '/auth/logout',
    {
      config: { auth: { required: true, allowUnenrolled: true, methods: ['jwt'] } },
      schema: {
        tags: ['auth'],
        summary: 'Sign out',
        description: 'Revokes the access token at once (every instance refuses it) and, given its refresh token, the whole sign-in; `everywhere: true` signs the account out of every sign-in.',
        body: Type.Optional(LogoutBody),
        response: { 204: Type.Null({ description: 'Signed out.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const identity = request.auth as NonNullable<typeof request.auth>
      await tokens.logout({ sub: identity.subject, jti: identity.claims.jti, exp: identity.claims.exp }, request.body?.refresh_token)
      if (request.body?.everywhere === true) await tokens.revokeAll(identity.subject)
      return reply.code(204).send()
    },
  )

  app.get(
    '/me',
    {
      config: { auth: { required: true, allowUnenrolled: true } },
      schema: {
        tags: ['users'],
        summary: "Get the signed-in user's profile",
        description: 'As Spotify\'s `GET /v1/me`: the private profile (with email) of the user the token belongs to.',
        response: { 200: refTo(PrivateUser), ...problemResponses },
      },
    },
    async (request) => repository.privateUser((request.auth as NonNullable<typeof request.auth>).subject),
  )

  app.post<{ Params: { user_id: string } }>(
    '/admin/users/:user_id/sign-out',
    {
      config: { auth: { permissions: ['users:admin'] } },
      schema: {
        tags: ['admin'],
        summary: 'Sign a user out everywhere',
        description: 'Admin kill switch: every access and refresh token of the user issued until now stops working on every instance.',
        params: IdParams('user_id', 'user'),
        response: { 204: Type.Null({ description: 'Signed out.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const userId = parseId('user', request.params.user_id)
      await repository.user(userId)
      await tokens.revokeAll(userId)
      return reply.code(204).send()
    },
  )

  return Promise.resolve()
}
