import { z } from 'zod'

export const tracingOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('OpenTelemetry tracing with W3C Trace Context propagation.'),
  sampleRatio: z.number().min(0).max(1).default(0.1).describe('Share of new (root) traces sampled; a propagated parent decision is always honoured (ParentBased).'),
  serviceName: z.string().min(1).max(256).default('backbeat').describe('`service.name` resource attribute.'),
  serviceVersion: z.string().min(1).max(128).optional().describe('`service.version` resource attribute.'),
  otlpEndpoint: z.url().optional().describe('OTLP/HTTP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, alias JAEGER_ENDPOINT); spans go to `<endpoint>/v1/traces`. Without it spans are not exported.'),
  exportTimeoutMs: z.number().int().min(1).max(120_000).default(10_000).describe('Longest one export (and the final flush on shutdown) may take.'),
  scheduledDelayMs: z.number().int().min(1).max(60_000).default(5_000).describe('Delay between two batch exports.'),
  maxQueueSize: z.number().int().min(1).max(1_000_000).default(2_048).describe('Finished spans kept while waiting for export; beyond it spans are dropped and counted.'),
  maxExportBatchSize: z.number().int().min(1).max(100_000).default(512).describe('Spans per export request (at most maxQueueSize).'),
  injectResponseHeader: z.boolean().default(false).describe('Send `traceresponse` and `traceparent` on responses (exposes trace ids to clients).'),
})

export type TracingOptions = z.infer<typeof tracingOptionsSchema>
export type TracingOptionsInput = z.input<typeof tracingOptionsSchema>
