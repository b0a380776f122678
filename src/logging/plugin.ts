import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RequestContext } from '../core/index.ts'
import { contextFields, type RequestLine } from './logger.ts'
import type { LoggingOptions } from './options.ts'

export interface RequestLoggingOptions {
  requestCompletion: LoggingOptions['requestCompletion']
  slowRequestMs: LoggingOptions['slowRequestMs']
  /**
   * Writes the line; `createBackbeatApp` passes the shared logger's fast writer. Without
   * it the line goes through `request.log`.
   */
  write?: (line: RequestLine) => void
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
    const write = options.write
    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
      const durationMs = Math.round(reply.elapsedTime * 10) / 10
      const url = request.url
      const q = url.indexOf('?')
      // onResponse fires from the socket's 'finish' event, outside the request's
      // AsyncLocalStorage scope, so the context is taken from the request.
      const context = (request as { requestContext?: RequestContext | null }).requestContext ?? undefined
      const line: RequestLine = {
        context,
        requestId: request.id,
        method: request.method,
        route: request.routeOptions.url,
        path: q === -1 ? url : url.slice(0, q),
        status: reply.statusCode,
        durationMs,
        bytesIn: contentLength(request.headers['content-length']),
        bytesOut: contentLength(reply.getHeader('content-length')),
        slow: durationMs > slowMs,
      }
      if (write !== undefined) write(line)
      else logThrough(request, line)
      done()
    })
  },
  { name: 'backbeat-request-logging', fastify: '5.x' },
)

function logThrough(request: FastifyRequest, line: RequestLine): void {
  const { context, slow, ...fields } = line
  const record = { ...(context === undefined ? {} : contextFields(context)), ...fields }
  if (slow) request.log.warn({ ...record, slow: true }, 'request completed slowly')
  else request.log.info(record, 'request completed')
}

function contentLength(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string') {
    const n = Number.parseInt(value, 10)
    return Number.isNaN(n) ? 0 : n
  }
  return 0
}
