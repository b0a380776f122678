import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../core/index.ts'
import { loadConfig, maskConfig, maskUrlCredentials, parseConfig } from './index.ts'
import { runCli } from '../cli/index.ts'

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return [...error.issues]
  }
  assert.fail('expected a ConfigError')
}

describe('config: sources and precedence', () => {
  let dir: string
  before(() => (dir = mkdtempSync(join(tmpdir(), 'bb-config-'))))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('uses the development preset with safe defaults when nothing is set', () => {
    const config = loadConfig({ env: {}, cwd: dir })
    assert.equal(config.preset, 'development')
    assert.equal(config.server.host, '127.0.0.1')
    assert.equal(config.server.port, 8080)
    assert.equal(config.server.bodyLimitBytes, 1024 * 1024)
    assert.equal(config.logging.format, 'pretty')
    assert.equal(config.stores.redisUrl, undefined)
  })

  it('layers preset < config file < environment', () => {
    const file = join(dir, 'custom.json')
    writeFileSync(file, JSON.stringify({ preset: 'production', server: { port: 9000, host: '0.0.0.0' }, logging: { level: 'warn' }, auth: { jwt: { secretKey: 'a-production-secret-of-32-characters-or-more' }, vault: { keys: { 1: 'dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy1vayE=' } } } }))
    const config = loadConfig({ env: { BACKBEAT_CONFIG: file, PORT: '9100' }, cwd: dir })
    assert.equal(config.preset, 'production')
    assert.equal(config.logging.format, 'json', 'from the production preset')
    assert.equal(config.server.host, '0.0.0.0', 'from the file')
    assert.equal(config.logging.level, 'warn', 'from the file')
    assert.equal(config.server.port, 9100, 'from the environment')
  })

  it('reads ./backbeat.config.json when BACKBEAT_CONFIG is unset', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'bb-config-cwd-'))
    writeFileSync(join(cwd, 'backbeat.config.json'), JSON.stringify({ server: { port: 7000 } }))
    assert.equal(loadConfig({ env: {}, cwd }).server.port, 7000)
    rmSync(cwd, { recursive: true })
  })

  it('maps the environment names users already use', () => {
    const config = loadConfig({
      cwd: dir,
      env: {
        PORT: '3000',
        HOST: '0.0.0.0',
        LOG_LEVEL: 'WARN',
        ENVIRONMENT: 'staging',
        REDIS_URL: 'redis://127.0.0.1:6379/1',
        DATABASE_URL: 'postgres://app:pw@db:5432/music',
        MEMCACHED_SERVERS: 'a:11211, b:11211',
        NATS_URL: 'nats://127.0.0.1:4222',
        KAFKA_BROKERS: 'k1:9092,k2:9092',
        JWT_SECRET_KEY: 's'.repeat(32),
        JWT_ALGORITHM: 'HS512',
        JWT_ACCESS_TOKEN_EXPIRE_MINUTES: '30',
        DEFAULT_LOCALE: 'pt-BR',
        SUPPORTED_LOCALES: 'en,pt-BR,de',
        SECURITY_LEVEL: 'strict',
        THREAT_DETECTION_ENABLED: 'false',
        COMPLIANCE_FRAMEWORKS: 'GDPR,ccpa',
        DATA_PIPELINE_ENABLED: '1',
        BATCH_SIZE: '250',
        CACHE_TTL_DEFAULT: '60',
        CACHE_L1_SIZE: '500',
      },
    })
    assert.equal(config.server.port, 3000)
    assert.equal(config.server.host, '0.0.0.0')
    assert.equal(config.logging.level, 'warn')
    assert.equal(config.environment, 'staging')
    assert.equal(config.stores.redisUrl, 'redis://127.0.0.1:6379/1')
    assert.deepEqual(config.stores.memcachedServers, ['a:11211', 'b:11211'])
    assert.deepEqual(config.stores.kafkaBrokers, ['k1:9092', 'k2:9092'])
    assert.equal(config.auth.jwt.algorithm, 'HS512')
    assert.equal(config.auth.jwt.accessTokenExpireMinutes, 30)
    assert.deepEqual(config.i18n.supportedLocales, ['en', 'pt-BR', 'de'])
    assert.equal(config.security.level, 'strict')
    assert.equal(config.security.threatDetection.enabled, false)
    assert.deepEqual(config.compliance.frameworks, ['gdpr', 'ccpa'])
    assert.equal(config.pipeline.enabled, true)
    assert.equal(config.pipeline.batchSize, 250)
    assert.equal(config.cache.ttlDefaultS, 60)
    assert.equal(config.cache.l1Size, 500)
  })

  it('picks the production preset from ENVIRONMENT=production', () => {
    assert.equal(loadConfig({ env: { ENVIRONMENT: 'production', JWT_SECRET_KEY: 'a-production-secret-of-32-characters-or-more', BACKBEAT_VAULT_KEYS: '1:dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy1vayE=' }, cwd: dir }).preset, 'production')
  })

  it('returns a deeply frozen object', () => {
    const config = loadConfig({ env: {}, cwd: dir })
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.server) && Object.isFrozen(config.http.requestId))
  })
})

describe('config: invalid input stops start-up with every problem listed', () => {
  it('lists every bad variable by path and source, not just the first', () => {
    const issues = issuesOf(() =>
      loadConfig({ env: { PORT: 'eighty', REDIS_URL: 'http://nope', BACKBEAT_PRESET: 'fast', BATCH_SIZE: '0', JWT_SECRET_KEY: 'short', THREAT_DETECTION_ENABLED: 'maybe' } }),
    )
    const paths = issues.map((i) => i.path)
    assert.deepEqual(paths.sort(), [
      'auth.jwt.secretKey (from JWT_SECRET_KEY)',
      'pipeline.batchSize (from BATCH_SIZE)',
      'preset (from BACKBEAT_PRESET)',
      'security.threatDetection.enabled (from THREAT_DETECTION_ENABLED)',
      'server.port (from PORT)',
      'stores.redisUrl (from REDIS_URL)',
    ])
  })

  it('rejects out-of-range values rather than clamping them', () => {
    const issues = issuesOf(() => parseConfig({ server: { port: 70_000 }, logging: { slowRequestMs: -5 } }))
    assert.deepEqual(issues.map((i) => i.path).sort(), ['logging.slowRequestMs', 'server.port'])
  })

  it('rejects unknown options in the config file (typos are errors)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-config-typo-'))
    const file = join(dir, 'c.json')
    writeFileSync(file, JSON.stringify({ server: { prot: 1 } }))
    const issues = issuesOf(() => loadConfig({ env: { BACKBEAT_CONFIG: file }, cwd: dir }))
    assert.deepEqual(issues, [{ path: 'server', message: 'unknown option(s): prot' }])
    rmSync(dir, { recursive: true })
  })

  it('reports a missing or malformed config file', () => {
    assert.match(issuesOf(() => loadConfig({ env: { BACKBEAT_CONFIG: '/nonexistent/bb.json' } }))[0]?.message ?? '', /cannot read/)
    const dir = mkdtempSync(join(tmpdir(), 'bb-config-bad-'))
    writeFileSync(join(dir, 'backbeat.config.json'), '{ nope')
    assert.match(issuesOf(() => loadConfig({ env: {}, cwd: dir }))[0]?.message ?? '', /not valid JSON/)
    rmSync(dir, { recursive: true })
  })

  it('makes `backbeat config` exit with code 2 and print every problem', () => {
    let err = ''
    const code = runCli(['config'], { env: { PORT: 'x', LOG_LEVEL: 'loud' }, cwd: tmpdir(), stdout: () => undefined, stderr: (t) => (err += t) })
    assert.equal(code, 2)
    assert.match(err, /server\.port \(from PORT\)/)
    assert.match(err, /logging\.level \(from LOG_LEVEL\)/)
  })
})

describe('config: printing', () => {
  it('masks secrets and URL passwords in `backbeat config` output', () => {
    let out = ''
    const code = runCli(['config'], {
      env: { JWT_SECRET_KEY: 'k'.repeat(40), DATABASE_URL: 'postgres://music:hunter2@db:5432/music', REDIS_URL: 'redis://:redispw@cache:6379' },
      cwd: tmpdir(),
      stdout: (t) => (out += t),
    })
    assert.equal(code, 0)
    assert.doesNotMatch(out, /kkkk|hunter2|redispw/)
    const printed = JSON.parse(out) as { auth: { jwt: { secretKey: string } }; stores: { databaseUrl: string; redisUrl: string } }
    assert.equal(printed.auth.jwt.secretKey, '********')
    assert.equal(printed.stores.databaseUrl, 'postgres://music:********@db:5432/music')
    assert.equal(printed.stores.redisUrl, 'redis://:********@cache:6379')
  })

  it('masks secret query parameters in connection URLs', () => {
    assert.equal(maskUrlCredentials('postgres://127.0.0.1:5432/x?password=QPASS&sslmode=require'), 'postgres://127.0.0.1:5432/x?password=********&sslmode=require')
    assert.equal(maskUrlCredentials('redis://127.0.0.1:6379/0?password=RPASS'), 'redis://127.0.0.1:6379/0?password=********')
  })

  it('rejects unknown CLI options instead of ignoring them', () => {
    let err = ''
    assert.equal(runCli(['config', '--bogus'], { env: {}, cwd: tmpdir(), stdout: () => undefined, stderr: (t) => (err += t) }), 1)
    assert.match(err, /unknown option --bogus/)
  })

  it('leaves URLs without credentials alone', () => {
    assert.equal(maskUrlCredentials('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222')
    assert.equal(maskUrlCredentials('redis://token@host:6379'), 'redis://********@host:6379')
    assert.equal(maskConfig(parseConfig()).preset, 'development')
  })
})
