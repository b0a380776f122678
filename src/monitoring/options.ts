import { z } from 'zod'

/** Options of the error monitor; the schema holds the defaults. */
export const errorMonitorOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Group 5xx responses and unhandled errors into issues with trends and recommendations.'),
  appRoot: z.string().min(1).optional().describe('Absolute path stack frames are made relative to; defaults to the working directory.'),
  minStatus: z.number().int().min(400).max(599).default(500).describe('Responses with this status or above are recorded.'),
  stackFrames: z.number().int().min(0).max(20).default(5).describe('In-app stack frames (function + file, no line/column) that go into a fingerprint.'),
  maxIssues: z.number().int().min(1).max(100_000).default(500).describe('Issues kept; the least recently seen is dropped first.'),
  maxRoutesPerIssue: z.number().int().min(1).max(1_000).default(20).describe('Distinct routes remembered per issue; further routes are only counted.'),
  retentionS: z.number().int().min(60).max(30 * 86_400).default(48 * 3_600).describe('Issues not seen for this long are dropped.'),
  minuteBuckets: z.number().int().min(2).max(1_440).default(60).describe('Per-minute counts kept for trends.'),
  hourBuckets: z.number().int().min(1).max(24 * 30).default(48).describe('Per-hour counts kept for trends.'),
  maxMessageLength: z.number().int().min(32).max(10_000).default(500).describe('Sample messages are cut to this length (after redaction).'),
  maxStackLength: z.number().int().min(0).max(100_000).default(4_000).describe('Sample stacks are cut to this length (after redaction); 0 keeps none.'),
  maxUsersPerIssue: z.number().int().min(0).max(100_000).default(1_000).describe('Distinct user IDs counted per issue (the count saturates there).'),
  spike: z
    .strictObject({
      factor: z.number().min(1).max(1_000).default(3).describe('The current minute is a spike when above `factor` times the trailing per-minute mean...'),
      minEvents: z.number().int().min(1).max(1_000_000).default(10).describe('...and has at least this many events.'),
      baselineMinutes: z.number().int().min(1).max(1_440).default(15).describe('Complete minutes before the current one that make the baseline.'),
    })
    .prefault({}),
  topIssues: z.number().int().min(1).max(100).default(5).describe('Issues listed by `insights()`.'),
  captureProcessErrors: z.boolean().default(false).describe('Plugin only: also record uncaught exceptions and unhandled rejections (Node behaviour unchanged).'),
})
  .refine((o) => o.spike.baselineMinutes < o.minuteBuckets, { message: '`spike.baselineMinutes` must be below `minuteBuckets`', path: ['spike', 'baselineMinutes'] })

export type ErrorMonitorOptions = z.output<typeof errorMonitorOptionsSchema>
export type ErrorMonitorOptionsInput = z.input<typeof errorMonitorOptionsSchema>

const retrySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(20).default(3).describe('Attempts in all, the first included (1 = no retry).'),
  initialDelayMs: z.number().int().min(0).max(60_000).default(100).describe('Delay before the first retry; doubles on each further retry.'),
  maxDelayMs: z.number().int().min(0).max(600_000).default(5_000).describe('Longest delay between attempts.'),
  jitter: z.enum(['none', 'full', 'half', 'decorrelated']).default('decorrelated').describe('Randomisation of delays so that clients do not retry in lockstep.'),
})

/** Options of one resilience policy (retry, timeout, circuit breaker, bulkhead); `false` disables a part. */
export const resiliencePolicyOptionsSchema = z.strictObject({
  retry: z.union([z.literal(false), retrySchema]).prefault({}),
  timeoutMs: z.union([z.literal(false), z.number().int().min(1).max(600_000)]).default(5_000).describe('Deadline of each attempt.'),
  breaker: z
    .union([
      z.literal(false),
      z.strictObject({
        threshold: z.number().int().min(1).max(10_000).default(5).describe('Consecutive failed attempts that open the circuit.'),
        halfOpenAfterMs: z.number().int().min(1).max(3_600_000).default(10_000).describe('Time open before one trial call is let through.'),
      }),
    ])
    .prefault({}),
  bulkhead: z
    .union([
      z.literal(false),
      z.strictObject({
        limit: z.number().int().min(1).max(100_000).default(10).describe('Calls executing at once.'),
        queue: z.number().int().min(0).max(100_000).default(0).describe('Calls waiting for a slot; beyond that calls are rejected.'),
      }),
    ])
    .prefault({}),
})

export type ResiliencePolicyOptions = z.output<typeof resiliencePolicyOptionsSchema>
export type ResiliencePolicyOptionsInput = z.input<typeof resiliencePolicyOptionsSchema>
