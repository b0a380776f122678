import fp from 'fastify-plugin'
import type { BackbeatConfig } from '../config/index.ts'
import { HealthRegistry, healthPlugin } from '../health/index.ts'
import { httpPlugin, type MessageLookup } from '../http/index.ts'
import { requestLoggingPlugin, type RequestLine } from '../logging/index.ts'
import { openapiPlugin } from '../openapi/index.ts'

export interface BackbeatPluginOptions {
  config: BackbeatConfig
  /** Share a health registry created elsewhere (createBackbeatApp does). */
  health?: HealthRegistry
  /** Title/detail lookup by error code (the i18n capability supplies one). */
  messages?: MessageLookup
  /** Reported by `/health` and in the OpenAPI document. */
  service?: { name?: string; version?: string; description?: string }
  /** The shared logger's fast completion-line writer (createBackbeatApp passes it). */
  requestLineWriter?: (line: RequestLine) => void
}

/**
 * Registers every capability in the documented order (docs/architecture.md), each only if
 * enabled in `config`:
 * 1. http: request ID, request context, timing header, problem+json errors, 404/405;
 * 2. request logging: one completion line per request;
 * 3. openapi: /openapi.json and /docs (before any route, so it documents them all);
 * 4. health: /health/live, /health/ready, /ready, /health.
 * Register it before your routes.
 *
 * @example
 * const app = Fastify(backbeatServerOptions(config, logger))
 * await app.register(backbeat, { config })
 */
export const backbeat = fp<BackbeatPluginOptions>(
  async (app, { config, health, messages, service, requestLineWriter }) => {
    if (config.http.enabled) {
      await app.register(httpPlugin, { ...config.http, bodyLimitBytes: config.server.bodyLimitBytes, ...(messages === undefined ? {} : { messages }) })
    }
    if (config.logging.enabled) {
      await app.register(requestLoggingPlugin, {
        requestCompletion: config.logging.requestCompletion,
        slowRequestMs: config.logging.slowRequestMs,
        ...(requestLineWriter === undefined ? {} : { write: requestLineWriter }),
      })
    }
    await app.register(openapiPlugin, {
      ...config.openapi,
      ...(service?.description === undefined ? {} : { description: service.description }),
    })
    const registry = health ?? new HealthRegistry({ checkTimeoutMs: config.health.checkTimeoutMs, cacheMs: config.health.cacheMs })
    await app.register(healthPlugin, {
      ...config.health,
      registry,
      service: { environment: config.environment, ...(service?.name === undefined ? {} : { name: service.name }), ...(service?.version === undefined ? {} : { version: service.version }) },
    })
  },
  { name: 'backbeat', fastify: '5.x' },
)
