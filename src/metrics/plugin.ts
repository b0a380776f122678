import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import fp from 'fastify-plugin'
import { MetricsRegistry, type MetricsRegistryOptions } from './registry.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The application's metrics: business metrics, collectors, `expose()`. */
    metrics: MetricsRegistry
  }
  interface FastifyRequest {
    /** performance.now() when the request arrived; 0 once it has been counted. */
    metricsStartMs: number
  }
}

export type MetricsPluginOptions = MetricsRegistryOptions & {
  /** A registry built elsewhere (shared with other capabilities); otherwise the plugin builds one and closes it. */
  registry?: MetricsRegistry
}

function contentLength(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value !== 'string' || value === '') return undefined
  const n = Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * Prometheus metrics for a Fastify app: counts, durations (with trace exemplars on
 * OpenMetrics scrapes) and body sizes by method, route template and status class;
 * in-flight requests; open connections; process and runtime gauges; and `GET /metrics`.
 *
 * @example
 * await app.register(metricsPlugin, { path: '/metrics', currentTraceId: () => trace.getActiveSpan()?.spanContext().traceId })
 * app.metrics.business('playlist_created', { type: 'counter', help: 'Playlists created.', labelNames: ['tier'] }).inc({ tier: 'free' })
 */
export const metricsPlugin = fp<MetricsPluginOptions>(
  async (app, pluginOptions) => {
    const { registry: given, ...options } = pluginOptions
    const metrics = given ?? new MetricsRegistry(options)
    if (!metrics.options.enabled) {
      if (given === undefined) metrics.close()
      return
    }
    app.decorate('metrics', metrics)
    app.decorateRequest('metricsStartMs', 0)

    const onConnection = (socket: Socket): void => {
      metrics.connectionOpened()
      socket.once('close', () => {
        metrics.connectionClosed()
      })
    }
    app.server.on('connection', onConnection)

    app.addHook('onRequest', (request, _reply, done) => {
      request.metricsStartMs = performance.now()
      metrics.requestStarted()
      done()
    })

    app.addHook('onResponse', (request, reply, done) => {
      const start = request.metricsStartMs
      if (start !== 0) {
        request.metricsStartMs = 0
        metrics.requestFinished(
          request.method,
          request.routeOptions.url,
          reply.statusCode,
          (performance.now() - start) / 1000,
          contentLength(request.headers['content-length']),
          contentLength(reply.getHeader('content-length')),
        )
      }
      done()
    })

    // A client that goes away before the answer: the request is no longer in flight.
    app.addHook('onRequestAbort', (request, done) => {
      const start = request.metricsStartMs
      if (start !== 0) {
        request.metricsStartMs = 0
        metrics.requestFinished(request.method, request.routeOptions.url, 499, (performance.now() - start) / 1000, contentLength(request.headers['content-length']))
      }
      done()
    })

    app.get(
      metrics.options.path,
      { config: { auth: false, rateLimit: false, cache: false } as Record<string, unknown>, logLevel: 'warn', schema: { hide: true } },
      async (request, reply) => {
        const { contentType, body } = await metrics.expose(request.headers.accept)
        return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body)
      },
    )

    app.addHook('onClose', async () => {
      app.server.off('connection', onConnection)
      if (given === undefined) metrics.close()
    })
  },
  { name: 'backbeat-metrics', fastify: '5.x' },
)
