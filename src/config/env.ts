import type { ConfigIssue } from '../core/index.ts'

type Parser = (raw: string) => { ok: true; value: unknown } | { ok: false; message: string }

const str: Parser = (raw) => ({ ok: true, value: raw })
const int: Parser = (raw) =>
  /^-?\d+$/.test(raw.trim()) ? { ok: true, value: Number(raw.trim()) } : { ok: false, message: `must be an integer, got "${raw}"` }
const bool: Parser = (raw) => {
  const v = raw.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(v)) return { ok: true, value: true }
  if (['0', 'false', 'no', 'off'].includes(v)) return { ok: true, value: false }
  return { ok: false, message: `must be true/false (or 1/0, yes/no, on/off), got "${raw}"` }
}
const ratio: Parser = (raw) => {
  const n = Number(raw.trim())
  return raw.trim() !== '' && Number.isFinite(n) && n >= 0 && n <= 1 ? { ok: true, value: n } : { ok: false, message: `must be a number from 0 to 1, got "${raw}"` }
}
const list: Parser = (raw) => ({
  ok: true,
  value: raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
})
/** PEM from an env var, where newlines are often written as the two characters \\n. */
const pem: Parser = (raw) => ({ ok: true, value: raw.includes('\\n') && !raw.includes('\n') ? raw.replaceAll('\\n', '\n') : raw })
/** `MFA_ENFORCEMENT=admin,curator`; `off` or `none` for nobody. */
const roles: Parser = (raw) => {
  const v = raw.trim().toLowerCase()
  return v === 'off' || v === 'none' ? { ok: true, value: [] } : list(v)
}
/** `1:<base64>,2:<base64>`: keys by version. */
const versionedKeys: Parser = (raw) => {
  const keys: Record<string, string> = {}
  for (const part of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const colon = part.indexOf(':')
    if (colon < 1) return { ok: false, message: 'must be version:key pairs separated by commas, e.g. 1:<base64>,2:<base64>' }
    keys[part.slice(0, colon)] = part.slice(colon + 1)
  }
  return { ok: true, value: keys }
}
const lower: Parser = (raw) => ({ ok: true, value: raw.trim().toLowerCase() })
const trustProxy: Parser = (raw) => {
  const b = bool(raw)
  if (b.ok) return b
  const n = int(raw)
  return n.ok ? n : { ok: true, value: raw.trim() }
}

/** One environment variable and the option it sets. */
export interface EnvBinding {
  readonly name: string
  readonly path: string
  readonly parse: Parser
}

function bind(name: string, path: string, parse: Parser = str): EnvBinding {
  return { name, path, parse }
}

/**
 * Every environment variable Backbeat reads, with the option it sets. The names our users
 * already use come first; `BACKBEAT_*` names cover the rest. Documented in configuration.md
 * (a test keeps the two in step).
 */
export const ENV_BINDINGS: readonly EnvBinding[] = [
  bind('PORT', 'server.port', int),
  bind('HOST', 'server.host'),
  bind('LOG_LEVEL', 'logging.level', lower),
  bind('ENVIRONMENT', 'environment', lower),
  bind('REDIS_URL', 'stores.redisUrl'),
  bind('DATABASE_URL', 'stores.databaseUrl'),
  bind('MEMCACHED_SERVERS', 'stores.memcachedServers', list),
  bind('NATS_URL', 'stores.natsUrl'),
  bind('KAFKA_BROKERS', 'stores.kafkaBrokers', list),
  bind('JWT_SECRET_KEY', 'auth.jwt.secretKey'),
  bind('JWT_ALGORITHM', 'auth.jwt.algorithm'),
  bind('JWT_ACCESS_TOKEN_EXPIRE_MINUTES', 'auth.jwt.accessTokenExpireMinutes', int),
  bind('JWT_REFRESH_TOKEN_EXPIRE_DAYS', 'auth.jwt.refreshTokenExpireDays', int),
  bind('JWT_PRIVATE_KEY', 'auth.jwt.privateKey', pem),
  bind('JWT_ISSUER', 'auth.jwt.issuer'),
  bind('JWT_AUDIENCE', 'auth.jwt.audience'),
  bind('JWT_JWKS_URL', 'auth.jwt.jwksUrl'),
  bind('MFA_ENFORCEMENT', 'auth.mfa.enforcedRoles', roles),
  bind('SPOTIFY_CLIENT_ID', 'auth.spotify.clientId'),
  bind('SPOTIFY_CLIENT_SECRET', 'auth.spotify.clientSecret'),
  bind('SPOTIFY_REDIRECT_URI', 'auth.spotify.redirectUri'),
  bind('DEFAULT_LOCALE', 'i18n.defaultLocale'),
  bind('SUPPORTED_LOCALES', 'i18n.supportedLocales', list),
  bind('SECURITY_LEVEL', 'security.level', lower),
  bind('THREAT_DETECTION_ENABLED', 'security.threatDetection.enabled', bool),
  bind('COMPLIANCE_FRAMEWORKS', 'compliance.frameworks', (raw) => list(raw.toLowerCase())),
  bind('DATA_PIPELINE_ENABLED', 'pipeline.enabled', bool),
  bind('BATCH_SIZE', 'pipeline.batchSize', int),
  bind('CACHE_TTL_DEFAULT', 'cache.ttlDefaultS', int),
  bind('CACHE_L1_SIZE', 'cache.l1Size', int),
  bind('CACHE_L1_MAX_BYTES', 'cache.l1MaxBytes', int),
  bind('CACHE_HTTP_ENABLED', 'cache.http.enabled', bool),
  bind('METRICS_ENABLED', 'metrics.enabled', bool),
  bind('METRICS_PATH', 'metrics.path'),
  bind('TRACING_ENABLED', 'tracing.enabled', bool),
  bind('OTEL_SERVICE_NAME', 'tracing.serviceName'),
  // Both name the OTLP/HTTP base endpoint; OTEL_EXPORTER_OTLP_ENDPOINT wins when both are set (the later binding).
  bind('JAEGER_ENDPOINT', 'tracing.otlpEndpoint'),
  bind('OTEL_EXPORTER_OTLP_ENDPOINT', 'tracing.otlpEndpoint'),
  bind('TRACING_SAMPLE_RATIO', 'tracing.sampleRatio', ratio),
  bind('ERROR_MONITOR_ENABLED', 'errorMonitor.enabled', bool),
  bind('BACKBEAT_PRESET', 'preset', lower),
  bind('BACKBEAT_LOG_FORMAT', 'logging.format', lower),
  bind('BACKBEAT_LOG_FILE', 'logging.file'),
  bind('BACKBEAT_SLOW_REQUEST_MS', 'logging.slowRequestMs', int),
  bind('BACKBEAT_BODY_LIMIT_BYTES', 'server.bodyLimitBytes', int),
  bind('BACKBEAT_TRUST_PROXY', 'server.trustProxy', trustProxy),
  bind('BACKBEAT_DATA_DIR', 'stores.dataDir'),
  bind('BACKBEAT_SHUTDOWN_TIMEOUT_MS', 'shutdown.drainTimeoutMs', int),
  bind('BACKBEAT_HEALTH_TIMEOUT_MS', 'health.checkTimeoutMs', int),
  bind('BACKBEAT_REQUEST_ID_ON_INVALID', 'http.requestId.onInvalid', lower),
  bind('BACKBEAT_DOCS_UI', 'openapi.ui', bool),
  bind('BACKBEAT_CORS_ORIGINS', 'cors.origins', list),
  bind('BACKBEAT_CORS_CREDENTIALS', 'cors.credentials', bool),
  bind('BACKBEAT_RATE_LIMIT_ENABLED', 'rateLimit.enabled', bool),
  bind('BACKBEAT_RATE_LIMIT_STORE', 'rateLimit.store', lower),
  bind('BACKBEAT_IP_ALLOW', 'limits.ip.allow', list),
  bind('BACKBEAT_IP_DENY', 'limits.ip.deny', list),
  bind('BACKBEAT_COUNTRY_ALLOW', 'limits.countries.allow', list),
  bind('BACKBEAT_COUNTRY_DENY', 'limits.countries.deny', list),
  bind('BACKBEAT_HSTS_PRELOAD', 'securityHeaders.hsts.preload', bool),
  bind('BACKBEAT_AUTH_ENABLED', 'auth.enabled', bool),
  bind('BACKBEAT_API_KEY_PREFIX', 'auth.apiKeys.prefix'),
  bind('BACKBEAT_API_KEY_PEPPER', 'auth.apiKeys.pepper'),
  bind('BACKBEAT_SESSION_COOKIE_SECURE', 'auth.sessions.cookieSecure', bool),
  bind('BACKBEAT_CSRF_SECRET', 'auth.sessions.csrfSecret'),
  bind('BACKBEAT_VAULT_KEYS', 'auth.vault.keys', versionedKeys),
  bind('BACKBEAT_PASSWORD_SCRYPT_LOGN', 'auth.passwords.scryptLogN', int),
]

/** Variables read by the loader itself rather than mapped onto an option. */
export const LOADER_ENV = ['BACKBEAT_CONFIG'] as const


/**
 * Turns the environment into a partial config tree. Empty strings count as unset (a common
 * way to "clear" a variable in compose files). Unparseable values are reported, not dropped.
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): {
  values: Record<string, unknown>
  sources: Map<string, string>
  issues: ConfigIssue[]
} {
  const values: Record<string, unknown> = {}
  const sources = new Map<string, string>()
  const issues: ConfigIssue[] = []
  for (const binding of ENV_BINDINGS) {
    const raw = env[binding.name]
    if (raw === undefined || raw.trim() === '') continue
    const parsed = binding.parse(raw)
    if (!parsed.ok) {
      issues.push({ path: `${binding.path} (from ${binding.name})`, message: parsed.message })
      continue
    }
    setPath(values, binding.path, parsed.value)
    sources.set(binding.path, binding.name)
  }
  return { values, sources, issues }
}

/** Sets `obj.a.b.c = value` for path `a.b.c`, creating plain objects on the way. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let node = obj
  for (const key of keys.slice(0, -1)) {
    const next = node[key]
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) node = next as Record<string, unknown>
    else {
      const created: Record<string, unknown> = {}
      node[key] = created
      node = created
    }
  }
  node[keys[keys.length - 1] as string] = value
}
