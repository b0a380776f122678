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
  type: 'array',
  items: {
    type: 'object',
    properties: {
      componentId: { type: 'string' },
      componentType: { type: 'string' },
      observedValue: { type: 'number' },
      observedUnit: { type: 'string' },
      status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
      time: { type: 'string' },
      output: { type: 'string' },
    },
    required: ['status'],
  },
} as const
const reportSchema = {
  type: 'object',
  description: 'draft-inadvisable-health-check: application/health+json',
  properties: {
    status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
    releaseId: { type: 'string' },
    serviceId: { type: 'string' },
    description: { type: 'string' },
    notes: { type: 'array', items: { type: 'string' } },
    output: { type: 'string' },
    checks: { type: 'object', additionalProperties: checkSchema },
  },
  required: ['status'],
} as const

/**
 * Health endpoints in the shape of the IETF health-check draft
 * (draft-inadvisable-health-check, `application/health+json`, status `pass`/`warn`/`fail`,
 * `checks` keyed `<dependency>:responseTime` with the latency as `observedValue` in `ms` and
 * the reason as `output`):
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

    // The IETF health-check draft's shape: one array per "component:measurement" key, the
    // response time in `observedValue`/`observedUnit`, the reason in `output`.
    const view = (report: HealthReport, detailed: boolean): Record<string, unknown> => {
      const checks: Record<string, unknown[]> = {}
      const failures: string[] = []
      for (const [name, check] of Object.entries(report.checks)) {
        const entry: Record<string, unknown> = {
          componentId: name,
          componentType: check.componentType,
          observedValue: check.latencyMs,
          observedUnit: 'ms',
          status: check.status,
          time: report.checkedAt,
        }
        if (check.message !== undefined && exposeDetails) entry.output = check.message
        if (check.status === 'fail') failures.push(exposeDetails && check.message !== undefined ? `${name}: ${check.message}` : name)
        checks[`${name}:responseTime`] = [entry]
      }
      const status = registry.shuttingDown ? 'fail' : report.status
      const body: Record<string, unknown> = { status }
      if (registry.shuttingDown) body.notes = ['shutting down']
      if (failures.length > 0) body.output = `failing: ${failures.join('; ')}`.slice(0, 1000)
      if (detailed) {
        if (options.service?.version !== undefined) body.releaseId = options.service.version
        if (options.service?.name !== undefined) body.serviceId = options.service.name
        if (options.service?.environment !== undefined) body.description = `${options.service.name ?? 'service'} (${options.service.environment})`
        checks.uptime = [
          { componentType: 'system', observedValue: Math.round((Date.now() - startedAt) / 100) / 10, observedUnit: 's', status: 'pass', time: new Date().toISOString() },
        ]
      }
      body.checks = checks
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

    // Orchestrator probes are never rate limited: a refused probe would take the instance out.
    const probe = { rateLimit: false, auth: false } as const
    app.get('/health/live', { config: probe, schema: { tags: ['health'], description: 'Liveness: the process is up.', response: { 200: reportSchema } } }, (_request, reply) =>
      reply.header('cache-control', 'no-store').type(HEALTH_JSON).send({ status: 'pass' }),
    )

    const ready = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => {
      if (registry.shuttingDown) return send(reply, { status: 'fail', notes: ['shutting down'], checks: {} })
      return send(reply, view(await registry.check(), false))
    }
    app.get('/health/ready', { config: probe, schema: schema('Readiness: every critical dependency passes.') }, ready)
    app.get('/ready', { config: probe, schema: schema('Alias of /health/ready.') }, ready)
    app.get('/health', { schema: schema('Detailed health of the service and each dependency.') }, async (_request, reply) =>
      send(reply, view(await registry.check(), true)),
    )
  },
  { name: 'backbeat-health', fastify: '5.x' },
)
