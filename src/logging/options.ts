import { z } from 'zod'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const loggingOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Structured logging with one completion line per request.'),
  level: z.enum(LOG_LEVELS).default('info').describe('Minimum level written.'),
  format: z.enum(['json', 'pretty']).default('json').describe('`json` for machines, `pretty` for humans.'),
  file: z.string().min(1).optional().describe('Write logs to this file (appended, async, flushed on shutdown) instead of stdout.'),
  flushIntervalMs: z.number().int().min(10).max(60_000).default(1000).describe('Buffered JSON log lines are written at least this often.'),
  requestCompletion: z.boolean().default(true).describe('Log one line per completed request.'),
  slowRequestMs: z.number().int().positive().default(1000).describe('Completion lines above this duration are logged at `warn` with `slow: true`.'),
  redactKeys: z.array(z.string().min(1)).default([]).describe('Extra field names to redact at any depth (added to the built-in list).'),
})
export type LoggingOptions = z.infer<typeof loggingOptionsSchema>
