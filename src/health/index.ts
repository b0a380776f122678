/**
 * Health checks and lifecycle: a registry any dependency registers a check with, the
 * live/ready/detailed endpoints, and graceful shutdown.
 */
export { HealthRegistry } from './registry.ts'
export type { CheckReport, HealthReport, HealthRegistryOptions, HealthStatus, RegisterCheckOptions } from './registry.ts'
export { healthPlugin } from './plugin.ts'
export type { HealthPluginOptions } from './plugin.ts'
export { installGracefulShutdown } from './shutdown.ts'
export type { GracefulShutdown, GracefulShutdownOptions } from './shutdown.ts'
export { healthOptionsSchema, shutdownOptionsSchema } from './options.ts'
export type { HealthOptions, ShutdownOptions } from './options.ts'
