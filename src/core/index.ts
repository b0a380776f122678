/**
 * Framework-neutral building blocks shared by every capability: typed errors with stable
 * codes, the request context, clocks and the health-check contract. No I/O, no HTTP.
 */
export { ERROR_CODES, isErrorCode } from './error-codes.ts'
export type { ErrorCategory, ErrorCode, ErrorCodeSpec } from './error-codes.ts'
export { BackbeatError, ConfigError, formatMessage } from './errors.ts'
export type { BackbeatErrorOptions, ConfigIssue, ErrorParams } from './errors.ts'
export { currentContext, runWithContext } from './context.ts'
export type { RequestContext } from './context.ts'
export { delay, systemClock } from './clock.ts'
export type { Clock } from './clock.ts'
export type { HealthCheck, HealthCheckable, HealthCheckResult } from './health.ts'
export { clientNetwork, IpRangeSet, isIpRange, normalizeIp } from './ip.ts'
export type { IpGrouping } from './ip.ts'
export { SecurityEventLog } from './security-events.ts'
export type { SecurityEvent, SecurityEventSink, SecuritySeverity } from './security-events.ts'
export { parseOptions } from './options.ts'
export { parseVersionedKeys } from './versioned-keys.ts'
