import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace'
import { SpanKind } from '@opentelemetry/api'
import { createTracing, tracingPlugin, type TraceIds } from './index.ts'

const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

async function build(options: { injectResponseHeader?: boolean; sampleRatio?: number } = {}) {
  const exporter = new InMemorySpanExporter()
  const tracing = createTracing({ sampleRatio: options.sampleRatio ?? 1, exporter, injectResponseHeader: options.injectResponseHeader ?? false, serviceName: 'music', serviceVersion: '1.2.3' })
  const app = Fastify()
  await app.register(tracingPlugin, { instance: tracing })
  let seen: TraceIds | undefined
  app.get('/v1/tracks/:id', async (request) => {
    seen = tracing.currentTraceIds()
    await tracing.withSpan('postgres SELECT tracks', async () => new Promise((resolve) => setTimeout(resolve, 1)), { 'db.system.name': 'postgresql' })
    return { id: (request.params as { id: string }).id }
  })
  app.get('/boom', async () => {
    throw new TypeError('kaput')
  })
  const spans = async () => {
    await tracing.forceFlush()
    return exporter.getFinishedSpans()
  }
  return { app, tracing, spans, seen: () => seen }
}

describe('tracingPlugin', () => {
  it('starts a SERVER span named after the route template with HTTP semantic attributes', async () => {
    const { app, spans } = await build()
    const res = await app.inject({ method: 'GET', url: '/v1/tracks/42?x=1', headers: { 'user-agent': 'test-agent', host: 'api.example:8080' } })
    assert.equal(res.statusCode, 200)
    const server = (await spans()).find((s) => s.kind === SpanKind.SERVER)
    assert.ok(server)
    assert.equal(server.name, 'GET /v1/tracks/:id')
    assert.deepEqual(
      { ...server.attributes },
      {
        'http.request.method': 'GET',
        'url.path': '/v1/tracks/42',
        'url.scheme': 'http',
        'server.address': 'api.example',
        'server.port': 8080,
        'client.address': '127.0.0.1',
        'http.route': '/v1/tracks/:id',
        'user_agent.original': 'test-agent',
        'http.response.status_code': 200,
      },
    )
    assert.equal(server.status.code, 0)
    assert.equal(server.resource.attributes['service.version'], '1.2.3')
    assert.equal(res.headers.traceresponse, undefined, 'no response header by default')
    await app.close()
  })

  it('continues an incoming trace, nests withSpan children and exposes ids inside the handler', async () => {
    const { app, spans, seen } = await build({ sampleRatio: 0 })
    await app.inject({ method: 'GET', url: '/v1/tracks/7', headers: { traceparent: PARENT, tracestate: 'rojo=00f067aa0ba902b7' } })
    const all = await spans()
    const server = all.find((s) => s.kind === SpanKind.SERVER)
    const child = all.find((s) => s.name === 'postgres SELECT tracks')
    assert.ok(server && child, 'sampled because the parent is, although the ratio is 0')
    assert.equal(server.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c')
    assert.equal(server.parentSpanContext?.spanId, 'b7ad6b7169203331')
    assert.equal(server.spanContext().traceState?.serialize(), 'rojo=00f067aa0ba902b7')
    assert.equal(child.parentSpanContext?.spanId, server.spanContext().spanId)
    assert.deepEqual(seen(), { traceId: server.spanContext().traceId, spanId: server.spanContext().spanId, sampled: true })
    await app.close()
  })

  it('starts a new trace when traceparent is malformed', async () => {
    const { app, spans } = await build()
    await app.inject({ method: 'GET', url: '/v1/tracks/7', headers: { traceparent: PARENT.toUpperCase(), tracestate: 'rojo=1' } })
    const server = (await spans()).find((s) => s.kind === SpanKind.SERVER)
    assert.ok(server)
    assert.notEqual(server.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c')
    assert.equal(server.parentSpanContext, undefined)
    assert.equal(server.spanContext().traceState, undefined)
    await app.close()
  })

  it('marks 5xx responses as errors with error.type', async () => {
    const { app, spans } = await build()
    const res = await app.inject({ method: 'GET', url: '/boom' })
    assert.equal(res.statusCode, 500)
    const server = (await spans()).find((s) => s.kind === SpanKind.SERVER)
    assert.ok(server)
    assert.equal(server.name, 'GET /boom')
    assert.equal(server.status.code, 2)
    assert.equal(server.attributes['http.response.status_code'], 500)
    assert.equal(server.attributes['error.type'], 'TypeError')
    await app.close()
  })

  it('names unmatched routes by method only, without http.route', async () => {
    const { app, spans } = await build()
    const res = await app.inject({ method: 'POST', url: '/nowhere' })
    assert.equal(res.statusCode, 404)
    const server = (await spans()).find((s) => s.kind === SpanKind.SERVER)
    assert.ok(server)
    assert.equal(server.name, 'POST')
    assert.equal(server.attributes['http.route'], undefined)
    assert.equal(server.status.code, 0)
    await app.close()
  })

  it('sends traceresponse and traceparent when injectResponseHeader is on', async () => {
    const { app, spans } = await build({ injectResponseHeader: true })
    const res = await app.inject({ method: 'GET', url: '/v1/tracks/1', headers: { traceparent: PARENT } })
    const server = (await spans()).find((s) => s.kind === SpanKind.SERVER)
    assert.ok(server)
    const expected = `00-${server.spanContext().traceId}-${server.spanContext().spanId}-01`
    assert.equal(res.headers.traceresponse, expected)
    assert.equal(res.headers.traceparent, expected)
    await app.close()
  })
})
