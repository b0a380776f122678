import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RequestContext } from '../core/index.ts'
import { contextFields } from './logger.ts'
import type { LoggingOptions } from './options.ts'

export interface RequestLoggingOptions {
  requestCompletion: LoggingOptions['requestCompletion']
  slowRequestMs: LoggingOptions['slowRequestMs']
}

/**
 * Writes one completion line per request (method, route template, path, status,
 * duration, bytes in and out), at `warn` with `slow: true` above `slowRequestMs`. The path
 * is logged without its query string, which often carries tokens. Used alone, switch off
 * Fastify's own request lines (`logController: new LogController({ disableRequestLogging: true })`)
 * or each request is logged twice.
 *
 * @example
 * await app.register(requestLoggingPlugin, { requestCompletion: true, slowRequestMs: 500 })
 */
export const requestLoggingPlugin = fp<RequestLoggingOptions>(
  async (app, options) => {
    if (!options.requestCompletion) return
    const slowMs = options.slowRequestMs
    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
      const durationMs = Math.round(reply.elapsedTime * 10) / 10
      const url = request.url
      const q = url.indexOf('?')
      // onResponse fires from the socket's 'finish' event, outside the request's
      // AsyncLocalStorage scope, so the context fields are added explicitly.
      const ctx = (request as { requestContext?: RequestContext | null }).requestContext
      const line = {
        ...(ctx == null ? { requestId: request.id } : contextFields(ctx)),
        method: request.method,
        route: request.routeOptions.url,
        path: q === -1 ? url : url.slice(0, q),
        status: reply.statusCode,
        durationMs,
        bytesIn: contentLength(request.headers['content-length']),
        bytesOut: contentLength(reply.getHeader('content-length')),
      }
      if (durationMs > slowMs) request.log.warn({ ...line, slow: true }, 'request completed slowly')
      else request.log.info(line, 'request completed')
      done()
    })
  },
  { name: 'backbeat-request-logging', fastify: '5.x' },
)

function contentLength(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string') {
    const n = Number.parseInt(value, 10)
    return Number.isNaN(n) ? 0 : n
  }
  return 0
}
