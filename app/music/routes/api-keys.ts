import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { BackbeatError } from 'backbeat'
import type { ApiKeyRecord, ApiKeyService } from 'backbeat/auth'
import { problemResponses } from '../schemas.ts'

const KeyId = Type.Object({ id: Type.String({ pattern: '^ak_[0-9A-Za-z]{12}$', description: 'The key ID (ak_…), never the key.' }) }, { additionalProperties: false })
const CreateBody = Type.Object(
  {
    owner: Type.String({ minLength: 1, maxLength: 64, description: 'The user the key acts for.' }),
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Optional(Type.Array(Type.String({ pattern: '^(\\*|[a-z][a-z0-9_-]{0,63}:(\\*|[a-z][a-z0-9_-]{0,63}))$' }), { maxItems: 50, description: 'Permissions the key carries (its rights: keys hold no roles).' })),
    expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
    rate_limit_policy: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'A configured rate-limit policy applied to requests made with this key (its tier).' })),
  },
  { additionalProperties: false },
)
const RotateBody = Type.Object({ overlap_hours: Type.Optional(Type.Integer({ minimum: 0, maximum: 720, default: 24, description: 'How long the old key keeps working.' })) }, { additionalProperties: false })

const KeyRecord = Type.Object({
  id: Type.String(),
  name: Type.String(),
  owner: Type.String(),
  scopes: Type.Array(Type.String()),
  hint: Type.String({ description: 'The first and last characters of the secret part, to recognise a key.' }),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  rotated_from: Type.Union([Type.String(), Type.Null()]),
  rate_limit_policy: Type.Union([Type.String(), Type.Null()]),
})

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString())
const toJson = (r: ApiKeyRecord): Static<typeof KeyRecord> => ({
  id: r.id,
  name: r.name,
  owner: r.owner,
  scopes: [...r.scopes],
  hint: r.hint,
  created_at: new Date(r.createdAt).toISOString(),
  expires_at: iso(r.expiresAt),
  last_used_at: iso(r.lastUsedAt),
  revoked_at: iso(r.revokedAt),
  rotated_from: r.rotatedFrom ?? null,
  rate_limit_policy: r.rateLimitPolicy ?? null,
})

const ADMIN = { auth: { permissions: ['apikeys:admin'] } } as const

/** Admin management of API keys: the key itself is answered once, at creation or rotation. */
export function apiKeyRoutes(app: FastifyInstance, { apiKeys }: { apiKeys: ApiKeyService }): Promise<void> {
  app.post<{ Body: Static<typeof CreateBody> }>(
    '/admin/api-keys',
    {
      config: ADMIN,
      schema: {
        tags: ['admin'],
        summary: 'Create an API key',
        description: 'Answers the key once (`bb_live_` + 32 base62 + a CRC32 checksum); only its hash is stored. Send it as `X-API-Key` or as a bearer token.',
        body: CreateBody,
        response: { 201: Type.Object({ key: Type.String(), record: KeyRecord }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const body = request.body
      const created = await apiKeys.create({
        owner: body.owner,
        name: body.name,
        scopes: body.scopes,
        expiresAt: body.expires_in_days === undefined ? undefined : Date.now() + body.expires_in_days * 86_400_000,
        rateLimitPolicy: body.rate_limit_policy,
      })
      return reply.code(201).header('cache-control', 'no-store').send({ key: created.key, record: toJson(created.record) })
    },
  )

  app.get<{ Querystring: { owner?: string } }>(
    '/admin/api-keys',
    {
      config: ADMIN,
      schema: {
        tags: ['admin'],
        summary: 'List API keys',
        description: 'Records only: never a key or its hash.',
        querystring: Type.Object({ owner: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(KeyRecord) }), ...problemResponses },
      },
    },
    async (request) => ({ items: (await apiKeys.list(request.query.owner === undefined ? {} : { owner: request.query.owner })).map(toJson) }),
  )

  app.post<{ Params: Static<typeof KeyId>; Body: Static<typeof RotateBody> | undefined }>(
    '/admin/api-keys/:id/rotate',
    {
      config: ADMIN,
      schema: {
        tags: ['admin'],
        summary: 'Rotate an API key',
        description: 'A new key with the same rights; the old one keeps working for the overlap, then stops. 409 for a revoked, expired or already rotated key.',
        params: KeyId,
        body: Type.Optional(RotateBody),
        response: { 200: Type.Object({ key: Type.String(), record: KeyRecord }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const rotated = await apiKeys.rotate(request.params.id, { overlapMs: (request.body?.overlap_hours ?? 24) * 3_600_000 })
      return reply.header('cache-control', 'no-store').send({ key: rotated.key, record: toJson(rotated.record) })
    },
  )

  app.delete<{ Params: Static<typeof KeyId> }>(
    '/admin/api-keys/:id',
    {
      config: ADMIN,
      schema: { tags: ['admin'], summary: 'Revoke an API key', params: KeyId, response: { 204: Type.Null({ description: 'Revoked.' }), ...problemResponses } },
    },
    async (request, reply) => {
      const existing = await apiKeys.get(request.params.id)
      if (existing === undefined) throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'API key', id: request.params.id } })
      await apiKeys.revoke(request.params.id)
      return reply.code(204).send()
    },
  )

  return Promise.resolve()
}
