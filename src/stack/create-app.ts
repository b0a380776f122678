import Fastify, { type FastifyInstance } from 'fastify'
import type { BackbeatConfig } from '../config/index.ts'
import { HealthRegistry, installGracefulShutdown, type GracefulShutdown } from '../health/index.ts'
import { createLogger, type BackbeatLogger } from '../logging/index.ts'
import { backbeat, type BackbeatPluginOptions } from './backbeat-plugin.ts'
import type { BackbeatStores } from './open-stores.ts'
import { backbeatServerOptions } from './server-options.ts'
import { withDevelopmentSecrets } from './dev-secrets.ts'

export interface BackbeatApp {
  app: FastifyInstance
  logger: BackbeatLogger
  health: HealthRegistry
  config: BackbeatConfig
  /** Listens on the configured host and port, installs graceful shutdown and returns the URL. */
  listen: () => Promise<string>
}

export interface CreateBackbeatAppOptions extends Omit<BackbeatPluginOptions, 'config' | 'health' | 'completionLinesFromServerOptions'> {
  /** Replaces the configured logger (tests pass one writing to memory). */
  logger?: BackbeatLogger
  /** Passed to graceful shutdown; tests replace `process.exit`. */
  exit?: (code: number) => void
  /**
   * Stores opened with `openStores(config)` beforehand: their health checks join the app's
   * `/health`, and their Redis (unless `redis` is given) carries the rate-limit counters, so
   * every instance sharing that Redis shares the limits. The caller still closes them.
   */
  stores?: BackbeatStores
}

/**
 * Builds a Fastify instance with the whole Backbeat stack registered from one config, ready
 * for your routes.
 *
 * @example
 * const { app, listen } = await createBackbeatApp(loadConfig())
 * app.get('/hello', async () => ({ hello: 'world' }))
 * console.log(await listen())
 */
export async function createBackbeatApp(given: BackbeatConfig, options: CreateBackbeatAppOptions = {}): Promise<BackbeatApp> {
  const written: string[] = []
  const config = withDevelopmentSecrets(given, (path) => written.push(path))
  const logger = options.logger ?? createLogger(config.logging, { base: { environment: config.environment, ...(options.service?.name === undefined ? {} : { service: options.service.name }) } })
  const health = new HealthRegistry({ checkTimeoutMs: config.health.checkTimeoutMs, cacheMs: config.health.cacheMs })
  const app = Fastify(backbeatServerOptions(config, logger))
  for (const path of written) app.log.warn({ path }, 'development: generated the signing, vault and CSRF secrets the configuration leaves unset, kept next to the embedded data (never used in production)')
  const { logger: _logger, exit, stores, ...pluginOptions } = options
  if (stores !== undefined) stores.registerHealthChecks(health)
  const redis = pluginOptions.redis ?? stores?.redis
  const kv = pluginOptions.kv ?? stores?.kv
  const sql = pluginOptions.sql ?? stores?.sql
  const memcached = pluginOptions.memcached ?? stores?.memcached
  await app.register(backbeat, { ...pluginOptions, ...(redis === undefined ? {} : { redis }), ...(memcached === undefined ? {} : { memcached }), ...(kv === undefined ? {} : { kv }), ...(sql === undefined ? {} : { sql }), config, health, completionLinesFromServerOptions: true })
  app.addHook('onClose', async () => {
    await logger.flush()
  })

  let shutdown: GracefulShutdown | undefined
  // Registered now: Fastify refuses new hooks once it is listening.
  app.addHook('onClose', (_instance, done) => {
    shutdown?.dispose()
    done()
  })
  return {
    app,
    logger,
    health,
    config,
    listen: async () => {
      const address = await app.listen({ host: config.server.host, port: config.server.port })
      if (config.shutdown.enabled && shutdown === undefined) {
        shutdown = installGracefulShutdown(app, {
          registry: health,
          drainTimeoutMs: config.shutdown.drainTimeoutMs,
          preStopDelayMs: config.shutdown.preStopDelayMs,
          flush: logger.flush,
          ...(exit === undefined ? {} : { exit }),
        })
      }
      return address
    },
  }
}
