import type { BackbeatConfigInput, PresetName } from './schema.ts'

/**
 * Defaults each preset lays under the config file and environment. `bare` is routing only
 * (the benchmark baseline); `development` and `production` turn everything on and differ
 * in log format and strictness.
 */
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
  },
  development: {
    environment: 'development',
    logging: { format: 'pretty', level: 'debug' },
    http: { requestId: { onInvalid: 'reject' } },
  },
  production: {
    environment: 'production',
    logging: { format: 'json', level: 'info' },
    http: { requestId: { onInvalid: 'reject' } },
    openapi: { ui: false },
    stores: { dataDir: '.backbeat/data' },
  },
}
