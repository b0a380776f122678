/**
 * The ops API (issue 6, in progress): admin-only endpoints over the other capabilities'
 * engines. So far `/ops/errors`, `/ops/errors/trends`, `/ops/errors/insights` (error
 * monitoring) and `/ops/cache` (cache counters and breaker states).
 */
export { opsPlugin, opsOptionsSchema } from './plugin.ts'
export type { OpsCacheSource, OpsOptionsInput, OpsPluginOptions } from './plugin.ts'
