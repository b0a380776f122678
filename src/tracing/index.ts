/**
 * Distributed tracing: OpenTelemetry spans with spec-exact W3C Trace Context propagation
 * (traceparent/tracestate), a ParentBased ratio sampler, bounded OTLP/HTTP batch export that
 * drops and counts when the collector is down, and the Fastify plugin creating SERVER spans.
 */
export {
  formatTraceparent,
  isValidTracestateKey,
  isValidTracestateValue,
  MAX_TRACESTATE_MEMBERS,
  parseTraceparent,
  RANDOM_TRACE_FLAG,
  setRandomTraceFlag,
  Tracestate,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  W3CTracePropagator,
} from './trace-context.ts'
export type { Traceparent } from './trace-context.ts'
export { AsyncLocalStorageContextManager } from './context-manager.ts'
export { tracingOptionsSchema } from './options.ts'
export type { TracingOptions, TracingOptionsInput } from './options.ts'
export { createTracing, installGlobalContext, otlpTracesUrl, tracingOptionsFromEnv } from './tracing.ts'
export type { CreateTracingOptions, TraceIds, Tracing, TracingStats } from './tracing.ts'
export { tracingPlugin } from './plugin.ts'
export type { TracingPluginOptions } from './plugin.ts'
export { conformanceHandler } from './conformance.ts'
