import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { currentContext } from 'backbeat/core'
import { quietApp } from '../helpers/quiet-app.ts'

/**
 * The stack as shipped (production preset) with metrics, tracing and error monitoring on:
 * one read route, one failing route, and what each capability makes of them.
 */
describe('observability in the stack', () => {
  let app: FastifyInstance
  const seen: { traceId?: string | undefined; spanId?: string | undefined }[] = []

  before(async () => {
    app = await quietApp({ rateLimit: { enabled: false }, cache: { http: { enabled: false } }, metrics: { enabled: true }, tracing: { enabled: true, sampleRatio: 1 }, errorMonitor: { enabled: true } })
    app.get('/v1/things/:id', { config: { auth: false } }, async () => {
      const context = currentContext()
      seen.push({ traceId: context?.traceId, spanId: context?.spanId })
      return { ok: true }
    })
    app.get('/v1/broken', { config: { auth: false } }, async () => {
      throw new TypeError('cannot read properties of undefined (reading "id") for user 12345')
    })
    await app.ready()
  })
  after(async () => {
    await app.close()
  })

  it('counts requests by route template, method and status class in /metrics', async () => {
    for (const id of ['a', 'b', 'c']) assert.equal((await app.inject(`/v1/things/${id}`)).statusCode, 200)
    await app.inject('/no/such/route')
    const metrics = await app.inject('/metrics')
    assert.equal(metrics.statusCode, 200)
    assert.match(metrics.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/)
    assert.match(metrics.body, /http_requests_total\{method="GET",route="\/v1\/things\/:id",status_class="2xx"\} 3/)
    assert.match(metrics.body, /route="unmatched",status_class="4xx"/)
    assert.match(metrics.body, /http_request_duration_seconds_bucket\{.*le="0\.005"/)
    assert.match(metrics.body, /memory_usage_bytes\{type="rss"\}/)
    assert.match(metrics.body, /cache_hits_total\{cache="app",tier="l1"\}/)
  })

  it('continues the caller\'s trace and puts its IDs in the request context (and so in every log line)', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    seen.length = 0
    const res = await app.inject({ url: '/v1/things/t', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: 'vendor=abc' } })
    assert.equal(res.statusCode, 200)
    const [continued] = seen
    assert.ok(continued)
    assert.equal(continued.traceId, traceId)
    assert.match(continued.spanId ?? '', /^[0-9a-f]{16}$/)
    assert.notEqual(continued.spanId, '00f067aa0ba902b7', 'a new span, child of the caller\'s')
    // A malformed traceparent starts a new trace.
    seen.length = 0
    await app.inject({ url: '/v1/things/t', headers: { traceparent: '00-zzzz-00f067aa0ba902b7-01' } })
    const [fresh] = seen
    assert.ok(fresh)
    assert.match(fresh.traceId ?? '', /^[0-9a-f]{32}$/)
    assert.notEqual(fresh.traceId, traceId)
  })

  it('groups 5xx errors into one issue with the route and a request ID', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await app.inject('/v1/broken')).statusCode, 500)
    const issues = app.errorMonitor.issues({ limit: 10 })
    const issue = issues.find((candidate) => candidate.routes.some((route) => route.route === 'GET /v1/broken'))
    assert.ok(issue, JSON.stringify(issues))
    assert.equal(issue.count, 3)
    assert.equal(issue.category, 'code_bug')
    // Volatile parts of the message are normalised; the sample keeps the real one.
    assert.equal(issue.title, 'cannot read properties of undefined (reading <str>) for user <n>')
    assert.match(issue.lastRequestId ?? '', /^[0-9a-f-]{36}$/)
  })
})
