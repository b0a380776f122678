/**
 * Prometheus metrics on prom-client, in one registry per application: HTTP RED metrics by
 * method, route template and status class (cardinality-capped), in-flight requests and open
 * connections, process and runtime gauges (memory, CPU, event loop, GC), typed business
 * metrics, collectors for other capabilities (the cache among them), trace exemplars on
 * OpenMetrics scrapes, and the Fastify plugin serving `/metrics`.
 */
export { MetricsRegistry } from './registry.ts'
export type {
  BusinessCounter,
  BusinessCounterDefinition,
  BusinessHistogram,
  BusinessHistogramDefinition,
  CollectedMetric,
  CollectedSample,
  Exposition,
  MetricsCollector,
  MetricsRegistryOptions,
} from './registry.ts'
export { cacheCollector } from './cache-collector.ts'
export type { CacheStatsSource, CacheTierCounters } from './cache-collector.ts'
export { formatExposition, negotiateFormat, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from './exposition.ts'
export type { ExposedFamily, ExposedValue, ExpositionFormat, MetricKind } from './exposition.ts'
export { LabelGuard, methodLabel, OVERFLOW, statusClass } from './labels.ts'
export { BYTE_BUCKETS, metricsOptionsSchema, OTEL_HTTP_DURATION_BUCKETS } from './options.ts'
export type { MetricsOptions, MetricsOptionsInput } from './options.ts'
export { metricsPlugin } from './plugin.ts'
export type { MetricsPluginOptions } from './plugin.ts'
