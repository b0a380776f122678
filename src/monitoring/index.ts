/**
 * Error monitoring and resilience: an ErrorMonitor that groups 5xx responses and unhandled
 * errors into fingerprinted issues with bounded trends, spike detection and advice; its thin
 * Fastify plugin; and cockatiel-based resilience policies (retry, timeout, circuit breaker,
 * bulkhead, fallbacks per failure category) for calls to dependencies, with snapshots and
 * health checks.
 */
export { ErrorMonitor } from './error-monitor.ts'
export type {
  ErrorContext,
  ErrorEvent,
  ErrorInsights,
  ErrorIssue,
  ErrorMonitorInput,
  ErrorMonitorStats,
  IssueSort,
  IssueTrend,
  RouteCount,
  Spike,
} from './error-monitor.ts'
export { errorType, fingerprintError, normalizeMessage, parseStack, redactSecrets } from './fingerprint.ts'
export type { Fingerprint, StackFrame } from './fingerprint.ts'
export { classifyError, recommend } from './recommendations.ts'
export type { IssueCategory } from './recommendations.ts'
export type { TrendBucket } from './ring.ts'
export { errorMonitorOptionsSchema, resiliencePolicyOptionsSchema } from './options.ts'
export type { ErrorMonitorOptions, ErrorMonitorOptionsInput, ResiliencePolicyOptions, ResiliencePolicyOptionsInput } from './options.ts'
export { errorMonitorPlugin } from './plugin.ts'
export type { ErrorMonitorPluginOptions } from './plugin.ts'
export { createResiliencePolicy, ResiliencePolicy, ResilienceRegistry } from './resilience.ts'
export type {
  BreakerStateName,
  FailureCategory,
  ResilienceEvent,
  ResilienceFallbacks,
  ResiliencePolicyInput,
  ResilienceSnapshot,
} from './resilience.ts'
