import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import Fastify from 'fastify'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace'
import { conformanceHandler, createTracing, parseTraceparent, tracingPlugin } from './index.ts'

describe('conformanceHandler', () => {
  it('calls each url with its arguments and a child traceparent plus the incoming tracestate', async () => {
    const received: { url: string; headers: IncomingHttpHeaders; body: string }[] = []
    const harness = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => (body += chunk))
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body })
        res.end('ok')
      })
    })
    await new Promise<void>((resolve) => harness.listen(0, '127.0.0.1', resolve))
    const address = harness.address()
    assert.ok(address !== null && typeof address === 'object')
    const base = `http://127.0.0.1:${String(address.port)}`

    const tracing = createTracing({ sampleRatio: 0, exporter: new InMemorySpanExporter() })
    const app = Fastify()
    await app.register(tracingPlugin, { instance: tracing })
    app.post('/test', conformanceHandler(tracing))
    const incoming = '00-12345678901234567890123456789012-1234567890123456-00'
    const res = await app.inject({
      method: 'POST',
      url: '/test',
      headers: { traceparent: incoming, tracestate: 'foo=1,bar=2' },
      payload: [
        { url: `${base}/a`, arguments: [{ url: `${base}/nested`, arguments: [] }] },
        { url: `${base}/b`, arguments: [] },
      ],
    })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(received.map((r) => r.url), ['/a', '/b'])
    assert.deepEqual(JSON.parse(received[0]?.body ?? ''), [{ url: `${base}/nested`, arguments: [] }])
    const ids = new Set<string>()
    for (const call of received) {
      const tp = parseTraceparent(call.headers.traceparent as string)
      assert.ok(tp)
      assert.equal(tp.version, 0)
      assert.equal(tp.traceId, '12345678901234567890123456789012')
      assert.notEqual(tp.parentId, '1234567890123456')
      assert.equal(tp.traceFlags, 0, 'an unsampled parent stays unsampled')
      assert.equal(call.headers.tracestate, 'foo=1,bar=2')
      ids.add(tp.parentId)
    }
    assert.equal(ids.size, 2, 'each call is its own child span')

    received.length = 0
    await app.inject({ method: 'POST', url: '/test', payload: [{ url: `${base}/c`, arguments: [] }] })
    const root = parseTraceparent(received[0]?.headers.traceparent as string)
    assert.ok(root, 'without a parent a new trace is started and propagated')
    assert.equal(root.traceFlags & 0x02, 0x02, 'a trace we start carries the Level 2 random flag')
    assert.equal(received[0]?.headers.tracestate, undefined)
    await app.close()
    await new Promise<void>((resolve) => harness.close(() => { resolve() }))
  })
})
