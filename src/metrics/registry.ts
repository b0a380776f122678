import { performance } from 'node:perf_hooks'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type OpenMetricsContentType } from 'prom-client'
import { ConfigError, parseOptions } from '../core/index.ts'
import { formatExposition, negotiateFormat, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, type ExposedFamily, type ExposedValue, type ExpositionFormat } from './exposition.ts'
import { LabelGuard, methodLabel, statusClass } from './labels.ts'
import { metricsOptionsSchema, type MetricsOptions, type MetricsOptionsInput } from './options.ts'
import { registerRuntimeMetrics } from './runtime.ts'

/** One value of a collected metric; label values are capped like every other label. */
export interface CollectedSample {
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
}

/** One metric family reported by a collector at scrape time (counter names end in `_total`). */
export interface CollectedMetric {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge'
  readonly samples: readonly CollectedSample[]
}

/** Called at every scrape; families of the same name from several collectors are merged. */
export type MetricsCollector = () => readonly CollectedMetric[]

export interface BusinessCounterDefinition<L extends string> {
  readonly type: 'counter'
  readonly help: string
  readonly labelNames?: readonly L[]
}

export interface BusinessHistogramDefinition<L extends string> {
  readonly type: 'histogram'
  readonly help: string
  readonly labelNames?: readonly L[]
  /** Bucket bounds, strictly increasing (default: prom-client's 0.005 to 10). */
  readonly buckets?: readonly number[]
}

/** A business counter; every declared label must be given, and no other. */
export interface BusinessCounter<L extends string> {
  readonly name: string
  inc(labels: Readonly<Record<L, string>>, value?: number): void
}

/** A business histogram; every declared label must be given, and no other. */
export interface BusinessHistogram<L extends string> {
  readonly name: string
  observe(labels: Readonly<Record<L, string>>, value: number): void
}

export type MetricsRegistryOptions = MetricsOptionsInput & {
  /** The active trace's id, attached as an exemplar to request durations (OpenMetrics scrapes only). */
  currentTraceId?: () => string | undefined
  /** Monotonic milliseconds, for the CPU gauge (default: performance.now). */
  now?: () => number
}

/** A rendered scrape. */
export interface Exposition {
  readonly contentType: string
  readonly body: string
}

const SNAKE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
const TRACE_ID = /^[0-9a-f]{32}$/
const RESERVED_LABELS: ReadonlySet<string> = new Set(['le', 'quantile'])
const HTTP_LABELS = ['method', 'route', 'status_class'] as const
type HttpLabel = (typeof HTTP_LABELS)[number]

/**
 * All of an application's metrics in one prom-client registry of its own (never the global
 * one): HTTP RED metrics, process and runtime gauges, business metrics and whatever other
 * capabilities contribute through {@link MetricsRegistry.registerCollector}. Framework-neutral:
 * the Fastify plugin only calls `requestStarted` / `requestFinished` and `expose`.
 *
 * @example
 * const metrics = new MetricsRegistry({ namePrefix: 'backbeat_' })
 * const created = metrics.business('playlist_created', { type: 'counter', help: 'Playlists created.', labelNames: ['tier'] })
 * created.inc({ tier: 'premium' })
 * const { contentType, body } = await metrics.expose(request.headers.accept)
 */
export class MetricsRegistry {
  readonly options: MetricsOptions
  /**
   * The prom-client registry, for metrics made directly with prom-client (`registers: [metrics.registry]`).
   * Its content type is OpenMetrics because prom-client allows exemplars only there; `expose()`
   * writes either format regardless.
   */
  readonly registry: Registry<OpenMetricsContentType> = openMetricsRegistry()

  readonly #requests: Counter<HttpLabel>
  /** `string` labels: exemplar labels (trace_id) share the type of series labels in prom-client's typings. */
  readonly #duration: Histogram
  readonly #requestSize: Histogram<HttpLabel>
  readonly #responseSize: Histogram<HttpLabel>
  readonly #inFlight: Gauge
  readonly #connections: Gauge
  readonly #collectorErrors: Counter<'collector'>
  readonly #routes: LabelGuard
  readonly #traceId: (() => string | undefined) | undefined
  readonly #collectors = new Map<string, MetricsCollector>()
  readonly #collectedGuards = new Map<string, LabelGuard>()
  readonly #stopRuntime: (() => void) | undefined
  #closed = false

  constructor(input: MetricsRegistryOptions = {}) {
    const { currentTraceId, now, ...raw } = input
    this.options = parseOptions('metrics', metricsOptionsSchema, raw)
    const { namePrefix: prefix, buckets } = this.options
    const registers = [this.registry]
    this.#traceId = currentTraceId
    this.#routes = new LabelGuard(this.options.routeLabelLimit)
    this.#requests = new Counter({ name: `${prefix}http_requests_total`, help: 'HTTP requests answered, by method, route template and status class.', labelNames: HTTP_LABELS, registers })
    this.#duration = new Histogram<string>({
      name: `${prefix}http_request_duration_seconds`,
      help: 'Time from receiving an HTTP request to sending the last byte of its response.',
      labelNames: HTTP_LABELS,
      buckets: [...buckets.durationSeconds],
      enableExemplars: currentTraceId !== undefined,
      registers,
    })
    this.#requestSize = new Histogram({ name: `${prefix}http_request_size_bytes`, help: 'Declared size (Content-Length) of HTTP request bodies.', labelNames: HTTP_LABELS, buckets: [...buckets.requestSizeBytes], registers })
    this.#responseSize = new Histogram({ name: `${prefix}http_response_size_bytes`, help: 'Size (Content-Length) of HTTP response bodies, when known.', labelNames: HTTP_LABELS, buckets: [...buckets.responseSizeBytes], registers })
    this.#inFlight = new Gauge({ name: `${prefix}http_requests_in_flight`, help: 'HTTP requests received and not yet answered.', registers })
    this.#connections = new Gauge({ name: `${prefix}http_open_connections`, help: 'Open TCP connections to the HTTP server.', registers })
    this.#collectorErrors = new Counter({ name: `${prefix}metrics_collector_errors_total`, help: 'Scrapes at which a registered collector threw (its metrics were left out).', labelNames: ['collector'] as const, registers })
    if (this.options.runtimeMetrics) this.#stopRuntime = registerRuntimeMetrics(this.registry, prefix, this.options.eventLoopResolutionMs, now ?? (() => performance.now()))
    if (this.options.collectDefaultMetrics) collectDefaultMetrics({ register: this.registry, prefix })
  }

  /** A request arrived. */
  requestStarted(): void {
    this.#inFlight.inc()
  }

  /**
   * A request was answered. `route` is the route template (`/v1/tracks/:id`), undefined when
   * no route matched; sizes are undefined when unknown.
   */
  requestFinished(method: string, route: string | undefined, status: number, durationS: number, requestBytes?: number, responseBytes?: number): void {
    this.#inFlight.dec()
    const labels = { method: methodLabel(method), route: route === undefined ? 'unmatched' : this.#routes.value(route), status_class: statusClass(status) }
    this.#requests.inc(labels)
    const traceId = this.#traceId?.()
    if (this.#traceId === undefined) this.#duration.observe(labels, durationS)
    else this.#duration.observe(traceId !== undefined && TRACE_ID.test(traceId) ? { labels, value: durationS, exemplarLabels: { trace_id: traceId } } : { labels, value: durationS })
    if (requestBytes !== undefined) this.#requestSize.observe(labels, requestBytes)
    if (responseBytes !== undefined) this.#responseSize.observe(labels, responseBytes)
  }

  connectionOpened(): void {
    this.#connections.inc()
  }

  connectionClosed(): void {
    this.#connections.dec()
  }

  /**
   * Declares a business metric named `business_<name>` (counters end in `_total`). The name
   * and labels are checked now; using an undeclared label, or leaving one out, throws.
   *
   * @example
   * const plays = metrics.business('track_played', { type: 'counter', help: 'Tracks played.', labelNames: ['tier'] })
   * plays.inc({ tier: 'free' })
   */
  business<L extends string = never>(name: string, definition: BusinessCounterDefinition<L>): BusinessCounter<L>
  business<L extends string = never>(name: string, definition: BusinessHistogramDefinition<L>): BusinessHistogram<L>
  business<L extends string>(name: string, definition: BusinessCounterDefinition<L> | BusinessHistogramDefinition<L>): BusinessCounter<L> | BusinessHistogram<L> {
    const path = `metrics.business.${name}`
    const issues: { path: string; message: string }[] = []
    const bare = name.startsWith('business_') ? name.slice('business_'.length) : name
    if (!SNAKE.test(bare) || name.length > 100) issues.push({ path, message: 'metric names are snake_case (a-z, 0-9, single underscores), at most 100 characters' })
    if (definition.type === 'histogram' && bare.endsWith('_total')) issues.push({ path, message: 'only counters end in _total' })
    if (definition.help.trim() === '') issues.push({ path: `${path}.help`, message: 'is required' })
    const labelNames: string[] = [...(definition.labelNames ?? [])]
    if (labelNames.length > 10) issues.push({ path: `${path}.labelNames`, message: 'at most 10 labels' })
    labelNames.forEach((label, i) => {
      if (!SNAKE.test(label) || RESERVED_LABELS.has(label)) issues.push({ path: `${path}.labelNames.${String(i)}`, message: `${JSON.stringify(label)} is not a valid label name (snake_case, not le or quantile)` })
      if (labelNames.indexOf(label) !== i) issues.push({ path: `${path}.labelNames.${String(i)}`, message: `${JSON.stringify(label)} is declared twice` })
    })
    const suffix = definition.type === 'counter' && !bare.endsWith('_total') ? '_total' : ''
    const fullName = `${this.options.namePrefix}business_${bare}${suffix}`
    if (issues.length === 0 && (this.registry.getSingleMetric(fullName) !== undefined || this.#collectedGuards.has(fullName))) issues.push({ path, message: `${fullName} is already registered` })
    if (issues.length > 0) throw new ConfigError(issues)

    const guards = new Map(labelNames.map((l) => [l, new LabelGuard(this.options.labelValueLimit)]))
    const check = (labels: Readonly<Record<string, string>>): Record<string, string> => {
      const out: Record<string, string> = {}
      let count = 0
      for (const key of Object.keys(labels)) {
        const guard = guards.get(key)
        const value = labels[key]
        if (guard === undefined) throw new ConfigError([{ path: `${path}.labels.${key}`, message: `${fullName} has no label ${JSON.stringify(key)}; declared: ${labelNames.join(', ') || '(none)'}` }])
        if (typeof value !== 'string') throw new ConfigError([{ path: `${path}.labels.${key}`, message: 'label values must be strings' }])
        out[key] = guard.value(value)
        count++
      }
      if (count !== labelNames.length) {
        const missing = labelNames.filter((l) => !Object.hasOwn(labels, l))
        throw new ConfigError([{ path: `${path}.labels`, message: `${fullName} needs the label(s) ${missing.join(', ')}` }])
      }
      return out
    }

    if (definition.type === 'counter') {
      const counter = new Counter<string>({ name: fullName, help: definition.help, labelNames, registers: [this.registry] })
      return {
        name: fullName,
        inc(labels, value = 1) {
          if (!Number.isFinite(value) || value < 0) throw new ConfigError([{ path, message: 'a counter only increases by a finite, non-negative amount' }])
          counter.inc(check(labels), value)
        },
      }
    }
    const histogram = new Histogram<string>({ name: fullName, help: definition.help, labelNames, registers: [this.registry], ...(definition.buckets === undefined ? {} : { buckets: [...definition.buckets] }) })
    return {
      name: fullName,
      observe(labels, value) {
        if (!Number.isFinite(value)) throw new ConfigError([{ path, message: 'observed values must be finite numbers' }])
        histogram.observe(check(labels), value)
      },
    }
  }

  /**
   * Lets another capability contribute metrics, read at every scrape. Metric names get the
   * registry's namePrefix; label values are capped at `labelValueLimit` per label. A collector
   * that throws is left out of that scrape and counted in `metrics_collector_errors_total`.
   *
   * @example
   * metrics.registerCollector('cache:tracks', cacheCollector('tracks', tracksCache))
   */
  registerCollector(name: string, collect: MetricsCollector): void {
    if (this.#collectors.has(name)) throw new ConfigError([{ path: `metrics.collectors.${name}`, message: 'a collector with this name is already registered' }])
    this.#collectors.set(name, collect)
  }

  unregisterCollector(name: string): boolean {
    return this.#collectors.delete(name)
  }

  /** Renders every metric in the format the Accept header asks for (OpenMetrics, with exemplars, or Prometheus text 0.0.4). */
  async expose(accept?: string): Promise<Exposition> {
    const format: ExpositionFormat = negotiateFormat(accept)
    // prom-client declares `type` as a numeric enum but sets the string ('counter', 'gauge', ...).
    const collected = this.#collect() // first: its error counter belongs in this scrape
    const own = (await this.registry.getMetricsAsJSON()) as unknown as ExposedFamily[]
    // prom-client's default metrics name three gauges `nodejs_active_*_total`; `_total` is for counters
    // only (promtool rejects them), so they are left out.
    const families = [...own.filter((f) => f.type === 'counter' || !f.name.endsWith('_total')), ...collected]
    return { contentType: format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE, body: formatExposition(families, format) }
  }

  /** Stops the runtime monitors. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#stopRuntime?.()
  }

  #collect(): ExposedFamily[] {
    const merged = new Map<string, { name: string; help: string; type: 'counter' | 'gauge'; values: ExposedValue[] }>()
    for (const [collectorName, collect] of this.#collectors) {
      let metrics: readonly CollectedMetric[]
      try {
        metrics = collect()
      } catch {
        this.#collectorErrors.inc({ collector: collectorName })
        continue
      }
      for (const metric of metrics) {
        const name = `${this.options.namePrefix}${metric.name}`
        if (!SNAKE.test(metric.name) || (metric.type === 'counter' && !name.endsWith('_total')) || this.registry.getSingleMetric(name) !== undefined) {
          this.#collectorErrors.inc({ collector: collectorName })
          continue
        }
        let family = merged.get(name)
        if (family === undefined) {
          family = { name, help: metric.help, type: metric.type, values: [] }
          merged.set(name, family)
        } else if (family.type !== metric.type) {
          this.#collectorErrors.inc({ collector: collectorName })
          continue
        }
        for (const sample of metric.samples) {
          const labels: Record<string, string> = {}
          if (sample.labels !== undefined) {
            for (const key of Object.keys(sample.labels)) {
              const value = sample.labels[key]
              if (value === undefined || !SNAKE.test(key) || RESERVED_LABELS.has(key)) continue
              labels[key] = this.#guardFor(name, key).value(value)
            }
          }
          family.values.push({ labels, value: sample.value })
        }
      }
    }
    return [...merged.values()]
  }

  #guardFor(metric: string, label: string): LabelGuard {
    const key = `${metric}\u0000${label}`
    let guard = this.#collectedGuards.get(key)
    if (guard === undefined) {
      guard = new LabelGuard(this.options.labelValueLimit)
      this.#collectedGuards.set(key, guard)
    }
    return guard
  }
}

function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  // prom-client's typings omit the constructor's content-type argument.
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  return registry
}
