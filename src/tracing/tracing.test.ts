import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { context, ROOT_CONTEXT, trace, TraceFlags, type SpanContext } from '@opentelemetry/api'
import { InMemorySpanExporter, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace'
import { ConfigError } from '../core/index.ts'
import { createTracing, otlpTracesUrl, tracingOptionsFromEnv } from './index.ts'

function fixedIds(traceIds: string[]): IdGenerator {
  let span = 0
  return {
    generateTraceId: () => traceIds.shift() ?? 'f'.repeat(32),
    generateSpanId: () => (++span).toString(16).padStart(16, '0'),
  }
}

function remoteParent(sampled: boolean): SpanContext {
  return { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true }
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return address.port
}

describe('createTracing options', () => {
  it('rejects a sample ratio outside 0..1 and unknown keys with ConfigError', () => {
    assert.throws(() => createTracing({ sampleRatio: 1.5 }), ConfigError)
    assert.throws(() => createTracing({ sampleRatio: -0.1 }), ConfigError)
    assert.throws(() => createTracing({ bogus: 1 } as never), ConfigError)
  })

  it('defaults to a 0.1 ratio, no response header and no exporter', () => {
    const t = createTracing()
    assert.equal(t.options.sampleRatio, 0.1)
    assert.equal(t.options.injectResponseHeader, false)
    assert.equal(t.options.otlpEndpoint, undefined)
  })

  it('reads OTEL_EXPORTER_OTLP_ENDPOINT, JAEGER_ENDPOINT as an alias, and the sampler argument', () => {
    assert.deepEqual(tracingOptionsFromEnv({ JAEGER_ENDPOINT: 'http://jaeger:4318', OTEL_TRACES_SAMPLER_ARG: '0.5', OTEL_SERVICE_NAME: 'api' }), { otlpEndpoint: 'http://jaeger:4318', sampleRatio: 0.5, serviceName: 'api' })
    assert.equal(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', JAEGER_ENDPOINT: 'http://b:4318' }).otlpEndpoint, 'http://a:4318')
    assert.equal(tracingOptionsFromEnv({ TRACING_SAMPLE_RATIO: '1', OTEL_TRACES_SAMPLER_ARG: '0' }).sampleRatio, 1)
    assert.equal(otlpTracesUrl('http://collector:4318/'), 'http://collector:4318/v1/traces')
    assert.equal(otlpTracesUrl('http://collector:4318/v1/traces'), 'http://collector:4318/v1/traces')
  })
})

describe('sampling', () => {
  it('honours the parent sampled flag whatever the ratio', () => {
    const never = createTracing({ sampleRatio: 0, exporter: new InMemorySpanExporter() })
    const always = createTracing({ sampleRatio: 1, exporter: new InMemorySpanExporter() })
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, remoteParent(true))
    const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, remoteParent(false))
    const a = never.tracer.startSpan('child', {}, sampledParent)
    const b = always.tracer.startSpan('child', {}, unsampledParent)
    assert.equal(a.spanContext().traceFlags & TraceFlags.SAMPLED, TraceFlags.SAMPLED)
    assert.equal(a.isRecording(), true)
    assert.equal(b.spanContext().traceFlags & TraceFlags.SAMPLED, 0)
    assert.equal(b.isRecording(), false)
    assert.equal(b.spanContext().traceId, remoteParent(false).traceId, 'an unsampled child still continues the trace')
    assert.notEqual(b.spanContext().spanId, remoteParent(false).spanId)
  })

  it('samples a root when its trace-id falls under the ratio bound', () => {
    const low = '00000001' + '0'.repeat(24)
    const high = 'ffffffff' + '0'.repeat(24)
    const tracing = createTracing({ sampleRatio: 0.5, exporter: new InMemorySpanExporter(), idGenerator: fixedIds([low, high]) })
    assert.equal(tracing.tracer.startSpan('a', {}, ROOT_CONTEXT).isRecording(), true)
    assert.equal(tracing.tracer.startSpan('b', {}, ROOT_CONTEXT).isRecording(), false)
  })

  it('samples about `sampleRatio` of random roots', () => {
    const tracing = createTracing({ sampleRatio: 0.25, exporter: new InMemorySpanExporter() })
    let sampled = 0
    for (let i = 0; i < 4000; i++) if (tracing.tracer.startSpan('r', {}, ROOT_CONTEXT).isRecording()) sampled++
    assert.ok(sampled > 800 && sampled < 1200, `sampled ${String(sampled)} of 4000`)
  })

  it('samples nothing when disabled', () => {
    const tracing = createTracing({ enabled: false, sampleRatio: 1, exporter: new InMemorySpanExporter() })
    assert.equal(tracing.tracer.startSpan('r', {}, ROOT_CONTEXT).isRecording(), false)
  })
})

describe('withSpan and currentTraceIds', () => {
  it('nests children under the active span across awaits and records errors', async () => {
    const exporter = new InMemorySpanExporter()
    const tracing = createTracing({ sampleRatio: 1, exporter, scheduledDelayMs: 1 })
    assert.equal(tracing.currentTraceIds(), undefined)
    let inner: { traceId: string; spanId: string; sampled: boolean } | undefined
    await tracing.withSpan('phase', async (parent) => {
      await new Promise((resolve) => setImmediate(resolve))
      await tracing.withSpan('redis GET', async () => {
        await Promise.resolve()
        inner = tracing.currentTraceIds()
      }, { 'db.system.name': 'redis' })
      await assert.rejects(tracing.withSpan('postgres', () => Promise.reject(new RangeError('boom'))), RangeError)
      assert.equal(tracing.currentTraceIds()?.spanId, parent.spanContext().spanId)
    })
    await tracing.forceFlush()
    const spans = exporter.getFinishedSpans()
    const byName = new Map(spans.map((s) => [s.name, s]))
    const phase = byName.get('phase')
    const redis = byName.get('redis GET')
    const pg = byName.get('postgres')
    assert.ok(phase && redis && pg)
    assert.equal(redis.parentSpanContext?.spanId, phase.spanContext().spanId)
    assert.equal(pg.parentSpanContext?.spanId, phase.spanContext().spanId)
    assert.equal(redis.attributes['db.system.name'], 'redis')
    assert.deepEqual(inner, { traceId: redis.spanContext().traceId, spanId: redis.spanContext().spanId, sampled: true })
    assert.equal(pg.status.code, 2)
    assert.equal(pg.attributes['error.type'], 'RangeError')
    assert.equal(pg.events[0]?.name, 'exception')
    assert.equal(phase.resource.attributes['service.name'], 'backbeat')
    assert.equal(context.active(), ROOT_CONTEXT)
  })
})

describe('export failures', () => {
  it('drops and counts spans when the OTLP collector is down, keeping the queue bounded', async () => {
    const port = await closedPort()
    const tracing = createTracing({ sampleRatio: 1, otlpEndpoint: `http://127.0.0.1:${String(port)}`, maxQueueSize: 10, exportTimeoutMs: 1_000 })
    for (let i = 0; i < 100; i++) tracing.tracer.startSpan(`s${String(i)}`, {}, ROOT_CONTEXT).end()
    assert.equal(tracing.stats().queuedSpans, 10)
    assert.equal(tracing.droppedSpans, 90)
    await tracing.forceFlush()
    await tracing.shutdown()
    assert.deepEqual(tracing.stats(), { droppedSpans: 100, queuedSpans: 0, exportedSpans: 0 })
  })

  it('shutdown gives up after exportTimeoutMs when the exporter hangs', async () => {
    const hanging: SpanExporter = { export: () => undefined, shutdown: () => new Promise(() => undefined) }
    const tracing = createTracing({ sampleRatio: 1, exporter: hanging, exportTimeoutMs: 50 })
    tracing.tracer.startSpan('s', {}, ROOT_CONTEXT).end()
    const started = performance.now()
    await tracing.shutdown()
    assert.ok(performance.now() - started < 1_000)
  })

  it('counts exported spans on success', async () => {
    const exporter = new InMemorySpanExporter()
    const tracing = createTracing({ sampleRatio: 1, exporter })
    for (let i = 0; i < 3; i++) tracing.tracer.startSpan('s', {}, ROOT_CONTEXT).end()
    await tracing.forceFlush()
    assert.deepEqual(tracing.stats(), { droppedSpans: 0, queuedSpans: 0, exportedSpans: 3 })
    assert.equal(exporter.getFinishedSpans().length, 3)
  })
})
