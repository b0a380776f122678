import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { context, defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import { createTracing, type CreateTracingOptions, type Tracing } from './tracing.ts'
import { formatTraceparent, setRandomTraceFlag } from './trace-context.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The tracing engine (withSpan, currentTraceIds, stats). */
    tracing: Tracing
  }
  interface FastifyRequest {
    /** The SERVER span of this request, when tracing is enabled. */
    traceSpan: Span | undefined
    /** The context holding that span (for code that runs outside the request's async chain). */
    traceContext: Context | undefined
  }
}

export type TracingPluginOptions = CreateTracingOptions & {
  /** A ready engine (shared with workers); otherwise one is built from the options and shut down on close. */
  instance?: Tracing
}

const errors = new WeakMap<FastifyRequest, Error>()

function serverPort(request: FastifyRequest): number | undefined {
  const port = request.port
  if (typeof port === 'number' && Number.isInteger(port) && port > 0) return port
  return request.protocol === 'https' ? 443 : 80
}

export const tracingPlugin = fp<TracingPluginOptions>(
  async (app, pluginOptions) => {
    const { instance, ...options } = pluginOptions
    const tracing = instance ?? createTracing(options)
    app.decorate('tracing', tracing)
    app.decorateRequest('traceSpan', undefined)
    app.decorateRequest('traceContext', undefined)
    if (instance === undefined) app.addHook('onClose', async () => tracing.shutdown())
    if (!tracing.options.enabled) return

    app.addHook('onRequest', (request, _reply, done) => {
      const extracted = tracing.propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter)
      const hasParent = trace.getSpanContext(extracted) !== undefined
      const route = request.routeOptions.url
      const path = request.url.split('?', 1)[0] ?? request.url
      const userAgent = request.headers['user-agent']
      const span = tracing.tracer.startSpan(
        route === undefined ? request.method : `${request.method} ${route}`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': request.method,
            'url.path': path,
            'url.scheme': request.protocol,
            'server.address': request.hostname,
            'client.address': request.ip,
            ...(route === undefined ? {} : { 'http.route': route }),
            ...(userAgent === undefined ? {} : { 'user_agent.original': userAgent }),
          },
        },
        extracted,
      )
      const port = serverPort(request)
      if (port !== undefined) span.setAttribute('server.port', port)
      // A trace we start has a random trace-id (Level 2 random flag); a propagated one keeps the caller's flag.
      const base = hasParent ? extracted : setRandomTraceFlag(extracted, true)
      const ctx = trace.setSpan(base, span)
      request.traceSpan = span
      request.traceContext = ctx
      // Running the rest of the lifecycle inside the context makes the span active in handlers.
      context.with(ctx, done)
    })

    app.addHook('onError', async (request, _reply, error) => {
      errors.set(request, error)
    })

    if (tracing.options.injectResponseHeader) {
      app.addHook('onSend', async (request, reply, payload) => {
        const span = request.traceSpan
        if (span !== undefined) {
          const sc = span.spanContext()
          const value = formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags)
          reply.header('traceresponse', value)
          reply.header('traceparent', value)
        }
        return payload
      })
    }

    app.addHook('onResponse', async (request, reply) => {
      const span = request.traceSpan
      if (span === undefined) return
      const status = reply.statusCode
      span.setAttribute('http.response.status_code', status)
      if (status >= 500) {
        const error = errors.get(request)
        span.setAttribute('error.type', error?.name ?? String(status))
        if (error !== undefined) span.recordException(error)
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.end()
    })
  },
  { name: 'backbeat-tracing', fastify: '5.x' },
)
