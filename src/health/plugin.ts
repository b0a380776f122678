import fp from 'fastify-plugin'
import type { FastifyReply } from 'fastify'
import type { HealthOptions } from './options.ts'
import { HealthRegistry, type HealthReport } from './registry.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where dependencies register their health checks: `app.health.register('redis', check)`. */
    health: HealthRegistry
  }
}

export interface HealthPluginOptions extends HealthOptions {
  /** Share a registry created elsewhere (the backbeat stack does, for shutdown). */
  registry?: HealthRegistry
  /** Reported by `/health`. */
  service?: { name?: string; version?: string; environment?: string }
}

const HEALTH_JSON = 'application/health+json; charset=utf-8'
const checkSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
    critical: { type: 'boolean' },
    latencyMs: { type: 'number' },
    message: { type: 'string' },
  },
  required: ['status', 'latencyMs'],
} as const
const reportSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
    checks: { type: 'object', additionalProperties: checkSchema },
    checkedAt: { type: 'string' },
    service: { type: 'string' },
    version: { type: 'string' },
    environment: { type: 'string' },
    uptimeS: { type: 'number' },
    shuttingDown: { type: 'boolean' },
  },
  required: ['status'],
} as const

/**
 * Health endpoints in the shape of the IETF health-check draft (`application/health+json`,
 * status `pass`/`warn`/`fail`):
 * - `GET /health/live`: the process answers (stays 200 during shutdown so it is not killed early);
 * - `GET /health/ready` and `GET /ready`: every critical dependency passes and we are not
 *   shutting down, else 503 with the reasons;
 * - `GET /health`: the detailed report (status, latency and message per dependency).
 *
 * @example
 * await app.register(healthPlugin, config.health)
 * app.health.register('postgres', db.healthCheck)
 */
export const healthPlugin = fp<HealthPluginOptions>(
  async (app, options) => {
    const registry = options.registry ?? new HealthRegistry({ checkTimeoutMs: options.checkTimeoutMs, cacheMs: options.cacheMs })
    app.decorate('health', registry)
    if (!options.enabled) return
    const startedAt = Date.now()
    const exposeDetails = options.exposeDetails

    const view = (report: HealthReport, detailed: boolean): Record<string, unknown> => {
      const checks: Record<string, unknown> = {}
      for (const [name, check] of Object.entries(report.checks)) {
        checks[name] = exposeDetails || check.message === undefined ? check : { ...check, message: undefined }
      }
      const status = registry.shuttingDown ? 'fail' : report.status
      const body: Record<string, unknown> = { status, checks, checkedAt: report.checkedAt }
      if (registry.shuttingDown) body.shuttingDown = true
      if (detailed) {
        if (options.service?.name !== undefined) body.service = options.service.name
        if (options.service?.version !== undefined) body.version = options.service.version
        if (options.service?.environment !== undefined) body.environment = options.service.environment
        body.uptimeS = Math.round((Date.now() - startedAt) / 1000)
      }
      return body
    }

    const send = (reply: FastifyReply, body: Record<string, unknown>): FastifyReply =>
      reply
        .code(body.status === 'fail' ? 503 : 200)
        .header('cache-control', 'no-store')
        .type(HEALTH_JSON)
        .send(body)

    const schema = (description: string) => ({
      tags: ['health'],
      description,
      response: { 200: reportSchema, 503: reportSchema },
    })

    app.get('/health/live', { schema: { tags: ['health'], description: 'Liveness: the process is up.', response: { 200: reportSchema } } }, (_request, reply) =>
      reply.header('cache-control', 'no-store').type(HEALTH_JSON).send({ status: 'pass' }),
    )

    const ready = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => {
      if (registry.shuttingDown) return send(reply, { status: 'fail', shuttingDown: true, checks: {} })
      return send(reply, view(await registry.check(), false))
    }
    app.get('/health/ready', { schema: schema('Readiness: every critical dependency passes.') }, ready)
    app.get('/ready', { schema: schema('Alias of /health/ready.') }, ready)
    app.get('/health', { schema: schema('Detailed health of the service and each dependency.') }, async (_request, reply) =>
      send(reply, view(await registry.check(), true)),
    )
  },
  { name: 'backbeat-health', fastify: '5.x' },
)
