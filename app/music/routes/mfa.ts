import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AuthIdentity, TokenService } from 'backbeat/auth'
import type { MusicMfa } from '../mfa.ts'
import { problemResponses } from '../schemas.ts'

const PasswordBody = Type.Object({ password: Type.String({ minLength: 1, maxLength: 1024, description: 'The account password again: a stolen access token alone cannot enrol an authenticator.' }) }, { additionalProperties: false })
const CodeBody = Type.Object({ code: Type.String({ minLength: 6, maxLength: 32, description: 'The 6-digit code from the authenticator app (or, for step-up, a recovery code).' }) }, { additionalProperties: false })

const subjectOf = (request: FastifyRequest): string => (request.auth as AuthIdentity).subject
/** Tokens and console sessions only: an API key never manages or proves a second factor. */
const PERSONAL = ['jwt', 'session'] as const

/** TOTP enrolment (`/v1/me/mfa/totp`), removal (needs a recent MFA) and step-up (`/v1/auth/mfa`). */
export function mfaRoutes(app: FastifyInstance, { mfa, tokens, stepUpMaxAgeS }: { mfa: MusicMfa; tokens: TokenService; stepUpMaxAgeS: number }): Promise<void> {
  app.post<{ Body: Static<typeof PasswordBody> }>(
    '/me/mfa/totp',
    {
      config: { auth: { required: true, allowUnenrolled: true, methods: PERSONAL } },
      schema: {
        tags: ['auth'],
        summary: 'Start TOTP enrolment',
        description: 'Needs the password again. A new authenticator secret (160 bits), its otpauth:// URI and the URI as an SVG QR code. Confirm with a first code to switch MFA on. 409 when already enrolled.',
        body: PasswordBody,
        response: {
          200: Type.Object({ secret: Type.String(), otpauth_uri: Type.String(), qr_svg: Type.String() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const enrolment = await mfa.begin(subjectOf(request), request.body.password, request.ip)
      return reply.header('cache-control', 'no-store').send({ secret: enrolment.secret, otpauth_uri: enrolment.uri, qr_svg: enrolment.qrSvg })
    },
  )

  app.post<{ Body: Static<typeof CodeBody> }>(
    '/me/mfa/totp/confirm',
    {
      config: { auth: { required: true, allowUnenrolled: true, methods: PERSONAL } },
      schema: {
        tags: ['auth'],
        summary: 'Confirm TOTP enrolment',
        description: 'Switches MFA on with a first code and answers ten recovery codes, shown this once. Every sign-in of the account ends (tokens and sessions): sign in again with a code.',
        body: CodeBody,
        response: { 200: Type.Object({ recovery_codes: Type.Array(Type.String()) }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const userId = subjectOf(request)
      const codes = await mfa.confirm(userId, request.body.code)
      await tokens.revokeAll(userId)
      return reply.header('cache-control', 'no-store').send({ recovery_codes: codes })
    },
  )

  app.delete(
    '/me/mfa/totp',
    {
      config: { auth: { required: true, mfaMaxAgeS: stepUpMaxAgeS, methods: PERSONAL } },
      schema: {
        tags: ['auth'],
        summary: 'Remove TOTP',
        description: `Switches MFA off and ends every sign-in of the account. Needs a multi-factor authentication within the last ${stepUpMaxAgeS} s (401 ERR_AUTH_MFA_REQUIRED with error="insufficient_user_authentication" otherwise: step up first).`,
        response: { 204: Type.Null({ description: 'Removed.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const userId = subjectOf(request)
      await mfa.remove(userId)
      await tokens.revokeAll(userId)
      return reply.code(204).send()
    },
  )

  app.post<{ Body: Static<typeof CodeBody> }>(
    '/auth/mfa/step-up',
    {
      config: { auth: { required: true, allowUnenrolled: true, methods: ['jwt'] } },
      schema: {
        tags: ['auth'],
        summary: 'Step up',
        description: 'Checks a code of the enrolled authenticator (or a recovery code, spent once) and answers a new access token whose `mfa_time` is now, for routes that need a recent MFA. It expires no later than, and carries no more scope than, the token it was asked with.',
        body: CodeBody,
        response: {
          200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const { claims } = request.auth as AuthIdentity
      const presented = { exp: claims.exp, scope: typeof claims.scope === 'string' ? claims.scope : '', authTime: typeof claims.auth_time === 'number' ? claims.auth_time : undefined, sid: typeof claims.sid === 'string' ? claims.sid : undefined }
      return reply.header('cache-control', 'no-store').send(await tokens.stepUp(subjectOf(request), request.body.code, { clientIp: request.ip, requestId: request.id }, presented))
    },
  )

  return Promise.resolve()
}
