import { z } from 'zod'

export const healthOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Serves /health/live, /health/ready, /ready and /health.'),
  checkTimeoutMs: z.number().int().positive().max(60_000).default(2000).describe('Each dependency check is abandoned (and fails) after this long.'),
  cacheMs: z.number().int().min(0).max(60_000).default(1000).describe('Readiness results are reused for this long so probes cannot stampede dependencies.'),
  exposeDetails: z.boolean().default(true).describe('Include per-dependency messages in `/health` (turn off if they may leak topology).'),
})
export type HealthOptions = z.infer<typeof healthOptionsSchema>

export const shutdownOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Graceful shutdown on SIGTERM and SIGINT.'),
  drainTimeoutMs: z.number().int().min(0).max(600_000).default(10_000).describe('In-flight requests get this long to finish before connections are cut.'),
  preStopDelayMs: z.number().int().min(0).max(600_000).default(0).describe('Keep serving (with readiness 503) this long before closing, so load balancers stop routing first.'),
})
export type ShutdownOptions = z.infer<typeof shutdownOptionsSchema>
