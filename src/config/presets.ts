import type { BackbeatConfigInput, PresetName } from './schema.ts'

/**
 * Defaults each preset lays under the config file and environment. `bare` is routing only
 * (the benchmark baseline); `development` and `production` turn everything on and differ
 * in log format and strictness.
 */
/**
 * Metrics, tracing and error monitoring are off in every preset for now: switched on, they
 * cost more than their target (>= 90 % of the read route's throughput) until their hot paths
 * are optimised. Turn them on with METRICS_ENABLED, TRACING_ENABLED, ERROR_MONITOR_ENABLED.
 */
const OBSERVABILITY_OFF = { metrics: { enabled: false }, tracing: { enabled: false }, errorMonitor: { enabled: false } } as const

export const PRESET_DEFAULTS: Readonly<Record<PresetName, BackbeatConfigInput>> = {
  bare: {
    http: { enabled: false },
    logging: { enabled: false, level: 'silent' },
    health: { enabled: false },
    shutdown: { enabled: true },
    openapi: { enabled: false, ui: false },
    securityHeaders: { enabled: false },
    cors: { enabled: false },
    limits: { enabled: false },
    rateLimit: { enabled: false },
    auth: { enabled: false },
    cache: { http: { enabled: false } },
    metrics: { enabled: false },
    tracing: { enabled: false },
    errorMonitor: { enabled: false },
  },
  development: {
    environment: 'development',
    ...OBSERVABILITY_OFF,
    logging: { format: 'pretty', level: 'debug' },
    http: { requestId: { onInvalid: 'reject' } },
  },
  production: {
    environment: 'production',
    ...OBSERVABILITY_OFF,
    logging: { format: 'json', level: 'info' },
    http: { requestId: { onInvalid: 'reject' } },
    openapi: { ui: false },
    stores: { dataDir: '.backbeat/data' },
  },
}
