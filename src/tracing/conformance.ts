import type { FastifyReply, FastifyRequest } from 'fastify'
import { context, SpanKind } from '@opentelemetry/api'
import type { Tracing } from './tracing.ts'

interface ConformanceCall {
  url: string
  arguments: unknown
}

function isCall(value: unknown): value is ConformanceCall {
  return typeof value === 'object' && value !== null && typeof (value as { url?: unknown }).url === 'string' && 'arguments' in value
}

/**
 * Route handler for the W3C trace-context test suite (w3c/trace-context test/test.py): the body
 * is a JSON list of `{ url, arguments }`; each url gets a POST of its `arguments`, carrying the
 * traceparent/tracestate of a CLIENT span that is a child of the request's SERVER span.
 */
export function conformanceHandler(tracing: Tracing, options: { timeoutMs?: number } = {}) {
  const timeoutMs = options.timeoutMs ?? 5_000
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const body: unknown = request.body
    const calls = Array.isArray(body) ? body.filter(isCall) : []
    for (const call of calls) {
      await tracing.withSpan(
        'POST',
        async () => {
          const headers: Record<string, string> = { 'content-type': 'application/json' }
          tracing.propagator.inject(context.active(), headers, {
            set: (carrier: Record<string, string>, key, value) => {
              carrier[key] = value
            },
          })
          const response = await fetch(call.url, { method: 'POST', headers, body: JSON.stringify(call.arguments), signal: AbortSignal.timeout(timeoutMs) })
          await response.arrayBuffer()
        },
        { 'http.request.method': 'POST', 'url.full': call.url },
        SpanKind.CLIENT,
      )
    }
    await reply.code(200).send({ calls: calls.length })
  }
}
