import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AuthIdentity, TokenService } from 'backbeat/auth'
import type { MusicMfa } from '../mfa.ts'
import { problemResponses } from '../schemas.ts'

const CodeBody = Type.Object({ code: Type.String({ minLength: 6, maxLength: 32, description: 'The 6-digit code from the authenticator app (or, for step-up, a recovery code).' }) }, { additionalProperties: false })

const subjectOf = (request: FastifyRequest): string => (request.auth as AuthIdentity).subject

/** TOTP enrolment (`/v1/me/mfa/totp`), removal (needs a recent MFA) and step-up (`/v1/auth/mfa`). */
export function mfaRoutes(app: FastifyInstance, { mfa, tokens, stepUpMaxAgeS }: { mfa: MusicMfa; tokens: TokenService; stepUpMaxAgeS: number }): Promise<void> {
  app.post(
    '/me/mfa/totp',
    {
      config: { auth: { required: true, allowUnenrolled: true } },
      schema: {
        tags: ['auth'],
        summary: 'Start TOTP enrolment',
        description: 'A new authenticator secret (160 bits), its otpauth:// URI and the URI as an SVG QR code. Confirm with a first code to switch MFA on. 409 when already enrolled.',
        response: {
          200: Type.Object({ secret: Type.String(), otpauth_uri: Type.String(), qr_svg: Type.String() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const enrolment = await mfa.begin(subjectOf(request))
      return reply.header('cache-control', 'no-store').send({ secret: enrolment.secret, otpauth_uri: enrolment.uri, qr_svg: enrolment.qrSvg })
    },
  )

  app.post<{ Body: Static<typeof CodeBody> }>(
    '/me/mfa/totp/confirm',
    {
      config: { auth: { required: true, allowUnenrolled: true } },
      schema: {
        tags: ['auth'],
        summary: 'Confirm TOTP enrolment',
        description: 'Switches MFA on with a first code and answers ten recovery codes, shown this once. Sign in again (or step up) for tokens that carry the second factor.',
        body: CodeBody,
        response: { 200: Type.Object({ recovery_codes: Type.Array(Type.String()) }), ...problemResponses },
      },
    },
    async (request, reply) => reply.header('cache-control', 'no-store').send({ recovery_codes: await mfa.confirm(subjectOf(request), request.body.code) }),
  )

  app.delete(
    '/me/mfa/totp',
    {
      config: { auth: { required: true, mfaMaxAgeS: stepUpMaxAgeS } },
      schema: {
        tags: ['auth'],
        summary: 'Remove TOTP',
        description: `Switches MFA off. Needs a multi-factor authentication within the last ${stepUpMaxAgeS} s (401 ERR_AUTH_MFA_REQUIRED with error="insufficient_user_authentication" otherwise: step up first).`,
        response: { 204: Type.Null({ description: 'Removed.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      await mfa.remove(subjectOf(request))
      return reply.code(204).send()
    },
  )

  app.post<{ Body: Static<typeof CodeBody> }>(
    '/auth/mfa/step-up',
    {
      config: { auth: { required: true, allowUnenrolled: true } },
      schema: {
        tags: ['auth'],
        summary: 'Step up',
        description: 'Checks a code of the enrolled authenticator (or a recovery code, spent once) and answers a new access token whose `mfa_time` is now, for routes that need a recent MFA.',
        body: CodeBody,
        response: {
          200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => reply.header('cache-control', 'no-store').send(await tokens.stepUp(subjectOf(request), request.body.code, { clientIp: request.ip, requestId: request.id })),
  )

  return Promise.resolve()
}
