import { z } from 'zod'

/** OpenTelemetry's advisory buckets for `http.server.request.duration`, in seconds. */
export const OTEL_HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])

/** Body size buckets in bytes: 128 B to 16 MiB, by factors of 4. */
export const BYTE_BUCKETS: readonly number[] = Object.freeze([128, 512, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216])

const buckets = z
  .array(z.number().positive())
  .min(1)
  .max(64)
  .refine((b) => b.every((v, i) => i === 0 || v > (b[i - 1] ?? 0)), 'bucket bounds must be strictly increasing')

export const metricsOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Prometheus metrics: HTTP RED metrics, process/runtime, business metrics and capability collectors.'),
  path: z.string().regex(/^\/[\w\-./]*$/, 'must be an absolute URL path such as /metrics').default('/metrics').describe('Where the scrape endpoint is served.'),
  namePrefix: z
    .string()
    .regex(/^([a-z][a-z0-9_]*_)?$/, 'must be empty or snake_case ending in an underscore, e.g. backbeat_')
    .default('')
    .describe('Prepended to every metric name.'),
  routeLabelLimit: z.number().int().min(1).max(100_000).default(500).describe('Distinct `route` label values kept; later ones are reported as `_overflow`.'),
  labelValueLimit: z.number().int().min(1).max(100_000).default(500).describe('Distinct values kept per label of business metrics and collectors; later ones become `_overflow`.'),
  buckets: z
    .strictObject({
      durationSeconds: buckets.default([...OTEL_HTTP_DURATION_BUCKETS]).describe('http_request_duration_seconds bucket bounds (default: the OpenTelemetry advisory list).'),
      requestSizeBytes: buckets.default([...BYTE_BUCKETS]).describe('http_request_size_bytes bucket bounds.'),
      responseSizeBytes: buckets.default([...BYTE_BUCKETS]).describe('http_response_size_bytes bucket bounds.'),
    })
    .prefault({}),
  runtimeMetrics: z.boolean().default(true).describe('Memory, CPU, event-loop delay and utilisation, GC pauses.'),
  eventLoopResolutionMs: z.number().int().min(1).max(1_000).default(20).describe('Sampling resolution of the event-loop delay monitor.'),
  collectDefaultMetrics: z.boolean().default(false).describe("Also expose prom-client's default Node.js metrics (`process_*`, `nodejs_*`, after `namePrefix`)."),
})

export type MetricsOptions = z.infer<typeof metricsOptionsSchema>
export type MetricsOptionsInput = z.input<typeof metricsOptionsSchema>
