import { z } from 'zod'
import { healthOptionsSchema, shutdownOptionsSchema } from '../health/index.ts'
import { httpOptionsSchema } from '../http/index.ts'
import { loggingOptionsSchema } from '../logging/index.ts'
import { openapiOptionsSchema } from '../openapi/index.ts'
import { corsOptionsSchema } from '../cors/index.ts'
import { securityHeadersOptionsSchema } from '../headers/index.ts'
import { limitsOptionsSchema } from '../limits/index.ts'
import { rateLimitOptionsSchema } from '../ratelimit/index.ts'
import { authOptionsSchema } from '../auth/index.ts'
import { cacheOptionsSchema } from '../cache/index.ts'
import { metricsOptionsSchema } from '../metrics/index.ts'
import { tracingOptionsSchema } from '../tracing/index.ts'
import { errorMonitorOptionsSchema } from '../monitoring/index.ts'
import { opsOptionsSchema } from '../ops/index.ts'

export const PRESETS = ['bare', 'development', 'production'] as const
export type PresetName = (typeof PRESETS)[number]

const redisUrl = z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
const postgresUrl = z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' })
const natsUrl = z.url({ protocol: /^(nats|tls|wss?)$/, error: 'must be a nats://, tls:// or ws(s):// URL' })
const hostPort = z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'must be host:port')

const serverSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1').describe('Interface to listen on.'),
  port: z.number().int().min(0).max(65_535).default(8080).describe('TCP port (0 picks a free one).'),
  bodyLimitBytes: z.number().int().positive().max(1024 ** 3).default(1024 * 1024).describe('Largest accepted request body; larger ones get 413 ERR_HTTP_BODY_TOO_LARGE.'),
  requestTimeoutMs: z.number().int().min(0).default(30_000).describe('Node `requestTimeout`: a request whose headers and body have not all arrived within this gets 408 (0 = off); checked every second.'),
  keepAliveTimeoutMs: z.number().int().min(0).default(72_000).describe('Idle keep-alive sockets close after this; keep it above your load balancer\'s idle timeout.'),
  headersTimeoutMs: z.number().int().min(1_000).max(300_000).default(10_000).describe('Node `headersTimeout`: a client must send its complete request headers within this (slowloris defence); 408 otherwise.'),
  maxHeaderSizeBytes: z.number().int().min(1_024).max(1024 * 1024).default(16_384).describe('Largest request line plus headers; larger gets 431 ERR_HTTP_HEADER_TOO_LARGE.'),
  trustProxy: z.union([z.boolean(), z.string().min(1), z.number().int().min(0)]).default(false).describe('Fastify `trustProxy`: false, true, a hop count or a comma-separated list of proxy addresses/CIDRs.'),
})

const storesSchema = z.strictObject({
  redisUrl: redisUrl.optional().describe('Redis for shared state; unset means in-memory stores.'),
  databaseUrl: postgresUrl.optional().describe('PostgreSQL; unset means embedded PGlite.'),
  dataDir: z.string().min(1).default('.backbeat/data').describe('Where embedded PGlite keeps its files (`:memory:` for none).'),
  memcachedServers: z.array(hostPort).default([]).describe('Memcached servers as host:port.'),
  natsUrl: natsUrl.optional().describe('NATS server for the event pipeline.'),
  kafkaBrokers: z.array(hostPort).default([]).describe('Kafka bootstrap brokers as host:port.'),
})

// The sections below configure capabilities that later issues build. Their environment
// variables are part of the public contract now, so they are validated now; each section
// moves into its capability's folder when that capability lands.
const i18nSchema = z.strictObject({
  defaultLocale: z.string().regex(/^[a-z]{2,3}(-[A-Z]{2})?$/, 'must be a BCP 47 tag like en or pt-BR').default('en').describe('Locale used when the request names none we support.'),
  supportedLocales: z.array(z.string().regex(/^[a-z]{2,3}(-[A-Z]{2})?$/, 'must be a BCP 47 tag like en or pt-BR')).min(1).default(['en']).describe('Locales offered to clients.'),
})
const securitySchema = z.strictObject({
  level: z.enum(['low', 'medium', 'high', 'strict']).default('high').describe('Overall strictness of edge protection and threat detection.'),
  threatDetection: z.strictObject({ enabled: z.boolean().default(true).describe('Inspect requests for attacks.') }).prefault({}),
})
const complianceSchema = z.strictObject({
  frameworks: z.array(z.enum(['gdpr', 'ccpa', 'soc2', 'hipaa', 'pci-dss', 'iso27001'])).default(['gdpr']).describe('Compliance frameworks whose controls are enforced.'),
})
const pipelineSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Publish validated events to the configured brokers.'),
  batchSize: z.number().int().min(1).max(10_000).default(100).describe('Events sent per batch.'),
})

/** The whole validated configuration: one section per capability. */
export const configSchema = z.strictObject({
  preset: z.enum(PRESETS).default('development').describe('Which preset supplied the defaults.'),
  environment: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a lower-case name such as production').default('development').describe('Deployment environment name, reported in logs and health.'),
  server: serverSchema.prefault({}),
  http: httpOptionsSchema.prefault({}),
  logging: loggingOptionsSchema.prefault({}),
  health: healthOptionsSchema.prefault({}),
  shutdown: shutdownOptionsSchema.prefault({}),
  openapi: openapiOptionsSchema.prefault({}),
  securityHeaders: securityHeadersOptionsSchema.prefault({}),
  cors: corsOptionsSchema.prefault({}),
  limits: limitsOptionsSchema.prefault({}),
  rateLimit: rateLimitOptionsSchema.prefault({}),
  stores: storesSchema.prefault({}),
  auth: authOptionsSchema.prefault({}),
  i18n: i18nSchema.prefault({}),
  security: securitySchema.prefault({}),
  compliance: complianceSchema.prefault({}),
  pipeline: pipelineSchema.prefault({}),
  cache: cacheOptionsSchema.prefault({}),
  metrics: metricsOptionsSchema.prefault({}),
  tracing: tracingOptionsSchema.prefault({}),
  errorMonitor: errorMonitorOptionsSchema.prefault({}),
  ops: opsOptionsSchema.prefault({}),
}).superRefine((config, ctx) => {
  const { jwt } = config.auth
  const hmac = jwt.algorithm.startsWith('HS')
  if (hmac && jwt.privateKey !== undefined) ctx.addIssue({ code: 'custom', path: ['auth', 'jwt', 'privateKey'], message: `is for asymmetric algorithms; ${jwt.algorithm} signs with secretKey` })
  if (!hmac && jwt.secretKey !== undefined) ctx.addIssue({ code: 'custom', path: ['auth', 'jwt', 'secretKey'], message: `is for HS* algorithms; ${jwt.algorithm} signs with privateKey` })
  // Fail closed: a production server never signs with a key nobody configured.
  if (config.preset === 'production' && config.auth.enabled && config.stores.redisUrl !== undefined && config.auth.sessions.csrfSecret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'sessions', 'csrfSecret'], message: 'is required in production with a shared session store (set BACKBEAT_CSRF_SECRET): every instance must accept the CSRF tokens of the others' })
  }
  if (config.preset === 'production' && config.auth.enabled && Object.keys(config.auth.vault.keys).length === 0) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'vault', 'keys'], message: 'are required in production (set BACKBEAT_VAULT_KEYS=1:<32 random bytes, base64>): TOTP secrets and provider tokens sealed with a per-process key would be lost at the next restart' })
  }
  const versions = Object.keys(config.auth.vault.keys).map(Number)
  if (config.auth.vault.currentKey !== undefined && !versions.includes(config.auth.vault.currentKey)) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'vault', 'currentKey'], message: `must be one of the configured key versions (${versions.join(', ') || 'none'})` })
  }
  if (config.preset === 'production' && config.auth.enabled && jwt.secretKey === undefined && jwt.privateKey === undefined) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'jwt', hmac ? 'secretKey' : 'privateKey'], message: `is required in production (set ${hmac ? 'JWT_SECRET_KEY' : 'JWT_PRIVATE_KEY'}), or set BACKBEAT_AUTH_ENABLED=false` })
  }
})

/** The effective, frozen configuration. */
export type BackbeatConfig = z.infer<typeof configSchema>
/** What a config file or code may supply: every field optional. */
export type BackbeatConfigInput = z.input<typeof configSchema>

/** Dotted paths whose values are secrets and are masked when printed. */
export const SECRET_PATHS: readonly string[] = ['auth.jwt.secretKey', 'auth.jwt.privateKey', 'auth.apiKeys.pepper', 'auth.sessions.csrfSecret', 'auth.spotify.clientSecret', 'auth.vault.keys']
