import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type IdGenerator,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
  type Span as SdkSpan,
} from '@opentelemetry/sdk-trace'
import { parseOptions } from '../core/index.ts'
import { AsyncLocalStorageContextManager } from './context-manager.ts'
import { tracingOptionsSchema, type TracingOptions, type TracingOptionsInput } from './options.ts'
import { W3CTracePropagator } from './trace-context.ts'

export interface TraceIds {
  traceId: string
  spanId: string
  /** The trace is sampled (recorded and exported): worth an exemplar. */
  sampled: boolean
}

export interface TracingStats {
  /** Spans lost: queue full, or their export failed or timed out. */
  droppedSpans: number
  /** Finished sampled spans waiting for export. */
  queuedSpans: number
  exportedSpans: number
}

export interface CreateTracingOptions extends TracingOptionsInput {
  /** Replaces the OTLP exporter (tests pass an InMemorySpanExporter). */
  exporter?: SpanExporter
  /** Trace and span id source (tests inject fixed ids to test sampling). */
  idGenerator?: IdGenerator
}

export interface Tracing {
  readonly options: Readonly<TracingOptions>
  readonly tracer: Tracer
  readonly propagator: W3CTracePropagator
  /** Runs `fn` inside a child span of the active span; ends it, records errors as status ERROR. */
  withSpan<T>(name: string, fn: (span: Span) => T | Promise<T>, attributes?: Attributes, kind?: SpanKind): Promise<T>
  /** Ids of the active span (for log lines and metric exemplars), if any. */
  currentTraceIds(): TraceIds | undefined
  stats(): TracingStats
  readonly droppedSpans: number
  /** Exports what is queued, waiting at most `exportTimeoutMs`. */
  forceFlush(): Promise<void>
  /** Flushes (bounded by `exportTimeoutMs`) and stops; never throws. */
  shutdown(): Promise<void>
}

/** The OTLP/HTTP traces URL for a base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT semantics). */
export function otlpTracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '')
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`
}

/** Reads tracing settings from the standard environment variables (strings parsed at the boundary). */
export function tracingOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): TracingOptionsInput {
  const out: TracingOptionsInput = {}
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.JAEGER_ENDPOINT
  if (endpoint !== undefined && endpoint !== '') out.otlpEndpoint = endpoint
  const ratio = env.TRACING_SAMPLE_RATIO ?? env.OTEL_TRACES_SAMPLER_ARG
  if (ratio !== undefined && ratio !== '') out.sampleRatio = Number(ratio)
  if (env.OTEL_SERVICE_NAME !== undefined && env.OTEL_SERVICE_NAME !== '') out.serviceName = env.OTEL_SERVICE_NAME
  if (env.OTEL_SDK_DISABLED === 'true') out.enabled = false
  return out
}

/** Wraps the exporter to count exported and failed spans; the queue bound is enforced by BoundedBatchProcessor. */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #counters: { dropped: number; exported: number; inFlight: number }
  constructor(inner: SpanExporter, counters: { dropped: number; exported: number; inFlight: number }) {
    this.#inner = inner
    this.#counters = counters
  }
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const counters = this.#counters
    counters.inFlight += spans.length
    let done = false
    this.#inner.export(spans, (result) => {
      if (done) return
      done = true
      counters.inFlight -= spans.length
      if (result.code === ExportResultCode.SUCCESS) counters.exported += spans.length
      else counters.dropped += spans.length
      resultCallback(result)
    })
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve()
  }
}

/**
 * Keeps at most `maxQueueSize` spans between end and export result (queued plus in flight): a
 * slow or dead exporter makes us drop and count, never buffer without bound.
 */
class BoundedBatchProcessor implements SpanProcessor {
  readonly #inner: BatchSpanProcessor
  readonly #counters: { dropped: number; exported: number; inFlight: number; accepted: number }
  readonly #max: number
  constructor(inner: BatchSpanProcessor, counters: { dropped: number; exported: number; inFlight: number; accepted: number }, max: number) {
    this.#inner = inner
    this.#counters = counters
    this.#max = max
  }
  pending(): number {
    const c = this.#counters
    return c.accepted - c.exported - c.dropped
  }
  onStart(span: SdkSpan, parentContext: Context): void {
    this.#inner.onStart(span, parentContext)
  }
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & 1) === 0) return
    if (this.pending() >= this.#max) {
      this.#counters.dropped++
      this.#counters.accepted++
      return
    }
    this.#counters.accepted++
    this.#inner.onEnd(span)
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush()
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
    timer.unref()
  })
  return Promise.race([promise.then(() => undefined, () => undefined), timeout]).finally(() => {
    clearTimeout(timer)
  })
}

let contextManagerInstalled = false

/** Installs the AsyncLocalStorage context manager and the W3C propagator globally (once). */
export function installGlobalContext(): void {
  if (contextManagerInstalled) return
  contextManagerInstalled = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTracePropagator())
}

/**
 * Builds the tracer provider: Resource (service.name/version), ParentBased(TraceIdRatioBased)
 * sampler, a bounded BatchSpanProcessor to OTLP/HTTP (or the given exporter). No I/O happens
 * until spans are exported. Without `otlpEndpoint` or `exporter` spans are created (ids for
 * logs) but not exported.
 */
export function createTracing(input: CreateTracingOptions = {}): Tracing {
  const { exporter: givenExporter, idGenerator, ...rest } = input
  const options = parseOptions('tracing', tracingOptionsSchema, rest)
  installGlobalContext()
  const counters = { dropped: 0, exported: 0, inFlight: 0, accepted: 0 }
  const baseExporter =
    givenExporter ?? (options.otlpEndpoint === undefined ? undefined : new OTLPTraceExporter({ url: otlpTracesUrl(options.otlpEndpoint), timeoutMillis: options.exportTimeoutMs, concurrencyLimit: 2 }))
  const spanProcessors: SpanProcessor[] = []
  let bounded: BoundedBatchProcessor | undefined
  if (baseExporter !== undefined && options.enabled) {
    const batch = new BatchSpanProcessor({
      exporter: new CountingExporter(baseExporter, counters),
      maxQueueSize: options.maxQueueSize,
      maxExportBatchSize: Math.min(options.maxExportBatchSize, options.maxQueueSize),
      scheduledDelayMillis: options.scheduledDelayMs,
      exportTimeoutMillis: options.exportTimeoutMs,
    })
    bounded = new BoundedBatchProcessor(batch, counters, options.maxQueueSize)
    spanProcessors.push(bounded)
  }
  const resource = resourceFromAttributes({ 'service.name': options.serviceName, ...(options.serviceVersion === undefined ? {} : { 'service.version': options.serviceVersion }) })
  const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.enabled ? options.sampleRatio : 0) })
  const provider = new TracerProvider({ resource, sampler, spanProcessors, ...(idGenerator === undefined ? {} : { idGenerator }) })
  const tracer = provider.getTracer('backbeat', options.serviceVersion)
  const propagator = new W3CTracePropagator()
  let stopped: Promise<void> | undefined

  const stats = (): TracingStats => ({ droppedSpans: counters.dropped, queuedSpans: bounded?.pending() ?? 0, exportedSpans: counters.exported })

  return {
    options,
    tracer,
    propagator,
    async withSpan<T>(name: string, fn: (span: Span) => T | Promise<T>, attributes: Attributes = {}, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
      return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
        try {
          return await fn(span)
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error))
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
          if (error instanceof Error) span.setAttribute('error.type', error.name)
          throw error
        } finally {
          span.end()
        }
      })
    },
    currentTraceIds(): TraceIds | undefined {
      const spanContext = trace.getActiveSpan()?.spanContext()
      if (spanContext === undefined || !trace.isSpanContextValid(spanContext)) return undefined
      return { traceId: spanContext.traceId, spanId: spanContext.spanId, sampled: (spanContext.traceFlags & 1) === 1 }
    },
    stats,
    get droppedSpans() {
      return counters.dropped
    },
    forceFlush() {
      return withTimeout(provider.forceFlush({ timeoutMillis: options.exportTimeoutMs }), options.exportTimeoutMs)
    },
    shutdown() {
      stopped ??= withTimeout(provider.shutdown(), options.exportTimeoutMs)
      return stopped
    },
  }
}
