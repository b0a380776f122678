import { z } from 'zod'

export const alertingOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Evaluate alert rules and deliver notifications.'),
  evaluationIntervalMs: z.number().int().min(100).max(3_600_000).default(15_000).describe('How often `start()` evaluates the rules.'),
  groupWaitMs: z.number().int().min(0).max(600_000).default(10_000).describe('Notifications with the same group key within this window are sent as one batch.'),
  historySize: z.number().int().min(1).max(100_000).default(1_000).describe('Alert events kept for the ops API (a ring: oldest dropped).'),
  queueSize: z.number().int().min(1).max(100_000).default(1_000).describe('Notifications waiting per channel; when full the oldest is dropped and counted.'),
  delivery: z
    .strictObject({
      timeoutMs: z.number().int().min(1).max(120_000).default(5_000).describe('A delivery attempt slower than this fails.'),
      retries: z.number().int().min(0).max(20).default(3).describe('Further attempts after a failed delivery.'),
      baseDelayMs: z.number().int().min(1).max(600_000).default(500).describe('First retry delay; doubles each attempt, with full jitter.'),
      maxDelayMs: z.number().int().min(1).max(3_600_000).default(30_000).describe('Longest retry delay.'),
    })
    .prefault({}),
})

export type AlertingOptions = z.infer<typeof alertingOptionsSchema>
export type AlertingOptionsInput = z.input<typeof alertingOptionsSchema>
