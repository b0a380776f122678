import fp from 'fastify-plugin'
import { z } from 'zod'
import { parseOptions } from '../core/index.ts'
import type { ErrorMonitor, IssueSort } from '../monitoring/index.ts'

/** Anything with per-tier counters, such as the tiered cache (`stats()`) and its breakers. */
export interface OpsCacheSource {
  stats(): Readonly<Record<string, unknown>>
  readonly breakerStates: Readonly<Record<string, string>>
}

export const opsOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('The admin-only ops API under `prefix`.'),
  prefix: z.string().regex(/^\/[A-Za-z0-9/_.-]*[A-Za-z0-9_.-]$/, 'must be a path without a trailing slash').default('/ops').describe('Where the ops routes live.'),
  permission: z.string().regex(/^[a-z][a-z0-9_-]*:[a-z*][a-z0-9_*-]*$/, 'must be resource:action').default('ops:read').describe('The RBAC permission the ops routes require.'),
})

export type OpsOptionsInput = z.input<typeof opsOptionsSchema>

export type OpsPluginOptions = OpsOptionsInput & {
  /** Route config every ops route gets (the stack passes its auth requirement). */
  routeConfig?: Record<string, unknown>
  errorMonitor?: ErrorMonitor
  caches?: Readonly<Record<string, OpsCacheSource>>
}

const SORTS: readonly IssueSort[] = ['count', 'lastSeen', 'firstSeen', 'lastHour', 'lastMinute']
const MAX_LIMIT = 500

/**
 * The ops API (admin-only through `routeConfig`): error issues, their trends and insights
 * from the error monitor, and the caches' counters and breaker states. Each section is
 * registered only when its engine is given. More sections (alerts, security, the live
 * stream) join as their capabilities land.
 *
 * @example
 * await app.register(opsPlugin, { errorMonitor: app.errorMonitor, caches: { app: app.cache }, routeConfig: { auth: { permissions: ['ops:read'] } } })
 */
export const opsPlugin = fp<OpsPluginOptions>(
  async (app, options) => {
    const { routeConfig = {}, errorMonitor, caches, ...rest } = options
    const settings = parseOptions('ops', opsOptionsSchema, rest)
    if (!settings.enabled) return
    const prefix = settings.prefix
    const config = { ...routeConfig, cache: false as const }
    const hide = { hide: true }
    if (errorMonitor !== undefined) {
      const querystring = {
        type: 'object',
        additionalProperties: false,
        properties: { sort: { type: 'string', enum: SORTS }, limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT } },
      } as const
      app.get<{ Querystring: { sort?: IssueSort; limit?: number } }>(`${prefix}/errors`, { config, schema: { ...hide, querystring } }, async (request, reply) => {
        void reply.header('cache-control', 'no-store')
        return { issues: errorMonitor.issues({ sort: request.query.sort ?? 'lastSeen', limit: request.query.limit ?? 50 }), stats: errorMonitor.stats() }
      })
      app.get(`${prefix}/errors/trends`, { config, schema: hide }, async (_request, reply) => {
        void reply.header('cache-control', 'no-store')
        return errorMonitor.trends() ?? {}
      })
      app.get(`${prefix}/errors/insights`, { config, schema: hide }, async (_request, reply) => {
        void reply.header('cache-control', 'no-store')
        return errorMonitor.insights()
      })
    }
    if (caches !== undefined) {
      app.get(`${prefix}/cache`, { config, schema: hide }, async (_request, reply) => {
        void reply.header('cache-control', 'no-store')
        const out: Record<string, { tiers: Readonly<Record<string, unknown>>; breakers: Readonly<Record<string, string>> }> = {}
        for (const [name, cache] of Object.entries(caches)) out[name] = { tiers: cache.stats(), breakers: cache.breakerStates }
        return { caches: out }
      })
    }
  },
  { name: 'backbeat-ops', fastify: '5.x' },
)
