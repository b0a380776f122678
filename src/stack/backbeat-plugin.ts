import fp from 'fastify-plugin'
import type { BackbeatConfig } from '../config/index.ts'
import { HealthRegistry, healthPlugin } from '../health/index.ts'
import { httpPlugin, type MessageLookup } from '../http/index.ts'
import { requestLoggingPlugin } from '../logging/index.ts'
import { openapiPlugin } from '../openapi/index.ts'

export interface BackbeatPluginOptions {
  config: BackbeatConfig
  /** Share a health registry created elsewhere (createBackbeatApp does). */
  health?: HealthRegistry
  /** Title/detail lookup by error code (the i18n capability supplies one). */
  messages?: MessageLookup
  /** Reported by `/health` and in the OpenAPI document. */
  service?: { name?: string; version?: string; description?: string }
  /**
   * True when the server was built with `backbeatServerOptions(config, backbeatLogger)`,
   * which writes completion lines itself (createBackbeatApp sets it).
   */
  completionLinesFromServerOptions?: boolean
}

/**
 * Registers every capability in the documented order (docs/architecture.md), each only if
 * enabled in `config`:
 * 1. http: request ID, request context, timing header, problem+json errors, 404/405;
 * 2. request logging: one completion line per request (written by the server's log
 *    controller when the server was built by backbeatServerOptions with a BackbeatLogger);
 * 3. openapi: /openapi.json and /docs (before any route, so it documents them all);
 * 4. health: /health/live, /health/ready, /ready, /health.
 * Register it before your routes.
 *
 * @example
 * const app = Fastify(backbeatServerOptions(config, logger))
 * await app.register(backbeat, { config })
 */
export const backbeat = fp<BackbeatPluginOptions>(
  async (app, { config, health, messages, service, completionLinesFromServerOptions = false }) => {
    if (config.http.enabled) {
      await app.register(httpPlugin, { ...config.http, bodyLimitBytes: config.server.bodyLimitBytes, ...(messages === undefined ? {} : { messages }) })
    }
    // With a BackbeatLogger, backbeatServerOptions already writes completion lines through
    // Fastify's log controller; otherwise the hook-based plugin does.
    if (config.logging.enabled && !completionLinesFromServerOptions) {
      await app.register(requestLoggingPlugin, { requestCompletion: config.logging.requestCompletion, slowRequestMs: config.logging.slowRequestMs })
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
