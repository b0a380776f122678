import type { Socket } from 'node:net'
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BackbeatError, runWithContext, currentContext, type RequestContext } from '../core/index.ts'
import type { HttpOptions } from './options.ts'
import { buildProblem, englishMessages, toBackbeatError, type MessageLookup, type ProblemDetails } from './problem-details.ts'
import { generateRequestId, hasInvalidRequestId } from './request-id.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's context (also reachable anywhere through `currentContext()`). */
    requestContext: RequestContext
  }
}

export interface HttpPluginOptions extends HttpOptions {
  /** The body limit in bytes, quoted in ERR_HTTP_BODY_TOO_LARGE. */
  bodyLimitBytes: number
  /** Title/detail lookup by code; i18n replaces it. Defaults to the English catalogue. */
  messages?: MessageLookup
}

const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

/**
 * The HTTP foundation every other capability relies on: request IDs (validated or UUIDv7),
 * the AsyncLocalStorage request context, `X-Response-Time`, RFC 9457 problem+json for every
 * error, 404 for unknown routes and 405 with `Allow` for a known path with the wrong method.
 * Register it before your routes (the 405 check sees routes added after it).
 *
 * @example
 * await app.register(httpPlugin, { ...config.http, bodyLimitBytes: config.server.bodyLimitBytes })
 */
export const httpPlugin = fp<HttpPluginOptions>(
  async (app, options) => {
    const messages = options.messages ?? englishMessages
    const typeBase = options.problemTypeBaseUri
    const header = options.requestId.header
    const maxLength = options.requestId.maxLength

    // A shadow router of every route, consulted only on a 404 to tell "no such path" from
    // "no such method on this path" (Fastify answers 404 for both).
    const shadow = FindMyWay({ ignoreTrailingSlash: app.initialConfig.ignoreTrailingSlash ?? false, caseSensitive: app.initialConfig.caseSensitive ?? true })
    const methods = new Set<string>()
    app.addHook('onRoute', (route) => {
      const list = Array.isArray(route.method) ? route.method : [route.method]
      for (const method of list) {
        if (shadow.hasRoute(method as HTTPMethod, route.url)) continue
        shadow.on(method as HTTPMethod, route.url, () => undefined)
        methods.add(method)
      }
    })

    // A JSON API answers 415 to text/plain rather than handing routes a string they did not
    // ask for; a route that wants text registers its own parser in its own scope.
    app.removeContentTypeParser('text/plain')

    app.decorateRequest('requestContext', null as unknown as RequestContext)

    // Once the server is closing, requests still arriving on open keep-alive connections
    // get a problem+json 503 (Fastify's own is plain JSON without our headers).
    let closing = false
    app.addHook('preClose', (done) => {
      closing = true
      done()
    })

    app.addHook('onRequest', (request, reply, done) => {
      const context: RequestContext = { requestId: request.id }
      request.requestContext = context
      reply.header(header, request.id)
      const rejection = rejectEarly(request)
      if (rejection !== undefined) {
        runWithContext(context, () => done(rejection))
        return
      }
      runWithContext(context, done)
    })

    function rejectEarly(request: FastifyRequest): BackbeatError | undefined {
      if (hasInvalidRequestId(request.raw)) return new BackbeatError('ERR_HTTP_REQUEST_ID_INVALID', { params: { maxLength } })
      if (closing) return new BackbeatError('ERR_HTTP_SHUTTING_DOWN', { headers: { connection: 'close', 'retry-after': '1' } })
      // RFC 9112 §3.2: an HTTP/1.1 request without a Host header gets 400.
      if (request.headers.host === undefined && request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor === 1) {
        return new BackbeatError('ERR_HTTP_HOST_REQUIRED')
      }
      const encoding = request.headers['content-encoding']
      // RFC 9110 §8.4: a coding the server does not decode gets 415 with Accept-Encoding.
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        return new BackbeatError('ERR_HTTP_CONTENT_ENCODING_UNSUPPORTED', {
          params: { encoding: encoding.slice(0, 50).replace(/[^\x21-\x7e]/g, '?') },
          headers: { 'accept-encoding': 'identity' },
        })
      }
      return undefined
    }

    // Body parsing resumes on the socket's stream events, outside the context entered in
    // onRequest; re-enter it so handlers and everything they call see the request context.
    app.addHook('preValidation', (request, _reply, done) => {
      if (currentContext() === request.requestContext) done()
      else runWithContext(request.requestContext, done)
    })

    if (options.responseTimeHeader) {
      app.addHook('onSend', (_request, reply, payload, done) => {
        reply.header('x-response-time', `${reply.elapsedTime.toFixed(1)}ms`)
        done(null, payload)
      })
    }

    app.setErrorHandler((error: FastifyError, request, reply) => {
      const failure = toBackbeatError(error, options.bodyLimitBytes, request.headers['content-type'])
      if (failure.status >= 500) request.log.error({ err: failure.cause ?? failure, code: failure.code }, 'request failed')
      else request.log.debug({ code: failure.code, err: error }, 'request rejected')
      return sendProblem(reply, request, failure)
    })

    app.setNotFoundHandler((request, reply) => {
      const path = pathOf(request.url)
      const allowed: string[] = []
      for (const method of methods) {
        if (method !== request.method && shadow.find(method as HTTPMethod, path) !== null) allowed.push(method)
      }
      if (allowed.length > 0) {
        const allow = allowed.sort().join(', ')
        return sendProblem(reply, request, new BackbeatError('ERR_HTTP_METHOD_NOT_ALLOWED', { params: { method: request.method, path, allow }, headers: { allow } }))
      }
      return sendProblem(reply, request, new BackbeatError('ERR_HTTP_ROUTE_NOT_FOUND', { params: { method: request.method, path } }))
    })

    function sendProblem(reply: FastifyReply, request: FastifyRequest, error: BackbeatError): FastifyReply {
      const problem: ProblemDetails = buildProblem(error, { requestId: request.id, instance: pathOf(request.url), typeBase, messages })
      if (error.headers !== undefined) reply.headers(error.headers)
      // Serialised here so a route's response schema can never strip problem members.
      return reply.code(error.status).type(PROBLEM_JSON).send(JSON.stringify(problem))
    }
  },
  { name: 'backbeat-http', fastify: '5.x' },
)

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a malformed percent-encoded
 * URL, a failed async constraint) get problem+json like every other error.
 *
 * @example Fastify({ frameworkErrors: createFrameworkErrorHandler(config.http) })
 */
export function createFrameworkErrorHandler(
  options: Pick<HttpOptions, 'problemTypeBaseUri' | 'requestId'>,
): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, request, reply) => {
    const failure = toBackbeatError(error, 0)
    const path = pathOf(request.url)
    const problem = buildProblem(failure, { requestId: request.id, instance: path, typeBase: options.problemTypeBaseUri, messages: englishMessages })
    // These requests never reach the hooks, so their log line is written here.
    request.log.info({ requestId: request.id, method: request.method, path, status: failure.status, code: failure.code }, 'request rejected before routing')
    void reply.code(failure.status).header(options.requestId.header, request.id).type(PROBLEM_JSON).send(JSON.stringify(problem))
  }
}

/**
 * Fastify's `clientErrorHandler`: answers requests Node's HTTP parser rejects (control
 * characters in headers, oversized headers, malformed request lines) with problem+json
 * instead of Node's bare 400.
 *
 * @example Fastify({ clientErrorHandler: createClientErrorHandler(config.http) })
 */
export function createClientErrorHandler(
  options: Pick<HttpOptions, 'problemTypeBaseUri' | 'requestId'>,
): (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) => void {
  return function onClientError(this: FastifyInstance, error, socket) {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const code =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'ERR_HTTP_HEADER_TOO_LARGE'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'ERR_HTTP_TIMEOUT'
          : error.code === 'HPE_INVALID_METHOD' && hasWellFormedRequestLine(error)
            ? 'ERR_HTTP_METHOD_NOT_IMPLEMENTED'
          : error.code === 'HPE_INVALID_HEADER_TOKEN' || error.code === 'HPE_INVALID_HEADER_VALUE' || error.code === 'HPE_CR_EXPECTED' || error.code === 'HPE_LF_EXPECTED'
            ? 'ERR_HTTP_HEADER_INVALID'
            : 'ERR_HTTP_BAD_REQUEST'
    const requestId = generateRequestId()
    const problem = buildProblem(new BackbeatError(code), { requestId, typeBase: options.problemTypeBaseUri, messages: englishMessages })
    const body = JSON.stringify(problem)
    // No request object exists yet; this line stands in for the completion line.
    this.log.info({ requestId, status: problem.status, code, reason: error.code }, 'request rejected by the HTTP parser')
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}\r\n` +
          `Content-Type: ${PROBLEM_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `${options.requestId.header}: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy(error)
  }
}

/** A method Node does not know on an otherwise valid request line is 501, not garbage. */
function hasWellFormedRequestLine(error: NodeJS.ErrnoException & { rawPacket?: Buffer }): boolean {
  const head = error.rawPacket?.subarray(0, 8192).toString('latin1') ?? ''
  const line = head.slice(0, head.indexOf('\r\n') === -1 ? head.length : head.indexOf('\r\n'))
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/1\.[01]$/.test(line)
}
