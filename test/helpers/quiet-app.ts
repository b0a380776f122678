import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { parseConfig, type BackbeatConfig, type BackbeatConfigInput } from '../../src/config/index.ts'
import { createLogger } from '../../src/logging/index.ts'
import { createBackbeatApp, type BackbeatApp, type CreateBackbeatAppOptions } from '../../src/stack/index.ts'

/** The HS256 signing secret of test configurations (production refuses to start without one). */
export const TEST_JWT_SECRET = 'test-only-secret-of-at-least-32-characters!!'
/** The `auth` section of test configurations: the test secret, and cheap scrypt so sign-ins stay fast. */
const TEST_VAULT_KEY = 'dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy1vayE='
const TEST_CSRF_SECRET = 'test-only-csrf-secret-of-32-characters!!'
export const TEST_AUTH = { jwt: { secretKey: TEST_JWT_SECRET }, passwords: { scryptLogN: 10 }, vault: { keys: { 1: TEST_VAULT_KEY } }, sessions: { csrfSecret: TEST_CSRF_SECRET } } as const
/** The same as environment variables, for servers started as processes. */
export const TEST_AUTH_ENV = { JWT_SECRET_KEY: TEST_JWT_SECRET, BACKBEAT_VAULT_KEYS: `1:${TEST_VAULT_KEY}`, BACKBEAT_CSRF_SECRET: TEST_CSRF_SECRET, BACKBEAT_PASSWORD_SCRYPT_LOGN: '10' } as const

/** The production preset without graceful shutdown, with `overrides` on top. */
export function productionConfig(overrides: BackbeatConfigInput = {}): BackbeatConfig {
  const auth = { ...TEST_AUTH, ...overrides.auth, jwt: { ...TEST_AUTH.jwt, ...overrides.auth?.jwt } }
  return parseConfig({ preset: 'production', shutdown: { enabled: false }, ...overrides, auth })
}

/**
 * The whole Backbeat stack from the production preset (plus `overrides`), logging to
 * nowhere: what the edge tests drive with `inject()`. Routes are added by the caller.
 */
export async function quietApp(overrides: BackbeatConfigInput = {}, options: Omit<CreateBackbeatAppOptions, 'logger'> = {}): Promise<FastifyInstance> {
  return (await quietBackbeatApp(overrides, options)).app
}

/** Like {@link quietApp}, returning `listen` and the rest of the BackbeatApp too. */
export async function quietBackbeatApp(overrides: BackbeatConfigInput = {}, options: Omit<CreateBackbeatAppOptions, 'logger'> = {}): Promise<BackbeatApp> {
  const config = productionConfig(overrides)
  const logger = createLogger(config.logging, { destination: new Writable({ write: (_c, _e, cb) => cb() }) })
  return createBackbeatApp(config, { ...options, logger })
}
