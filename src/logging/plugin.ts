import fp from 'fastify-plugin'
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
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
  write?: (line: RequestLine, request: FastifyRequest) => void
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
    const write = options.write ?? ((line: RequestLine, request: FastifyRequest) => logThrough(request, line))
    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
      write(requestLine(request, reply, slowMs), request)
      done()
    })
  },
  { name: 'backbeat-request-logging', fastify: '5.x' },
)

/**
 * Fastify's log controller with the completion line built in: Fastify calls
 * `requestCompleted` for every response anyway, so the line costs no extra hook (the
 * backbeat stack uses this; the plugin above is for use on its own). Fastify's own
 * "incoming request" and "request completed" lines are off.
 *
 * @example Fastify({ loggerInstance, logController: createRequestLogController({ slowRequestMs: 1000, write }) })
 */
export function createRequestLogController(options: { slowRequestMs: number; write: (line: RequestLine) => void }): LogController {
  const { slowRequestMs, write } = options
  class RequestLogController extends LogController {
    override incomingRequest(): void {
      // One line per request, written on completion.
    }
    override requestCompleted(_error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
      write(requestLine(request, reply, slowRequestMs))
    }
  }
  return new RequestLogController({ disableRequestLogging: true })
}

/** The completion record of a finished request. */
export function requestLine(request: FastifyRequest, reply: FastifyReply, slowMs: number): RequestLine {
  const durationMs = Math.round(reply.elapsedTime * 10) / 10
  const url = request.url
  const q = url.indexOf('?')
  // Completion runs from the socket's 'finish' event, outside the request's
  // AsyncLocalStorage scope, so the context is taken from the request.
  const context = (request as { requestContext?: RequestContext | null }).requestContext ?? undefined
  return {
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
}

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
