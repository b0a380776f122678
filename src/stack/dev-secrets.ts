import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BackbeatConfig } from '../config/index.ts'

interface DevSecrets {
  jwtSecret: string
  vaultKey: string
  csrfSecret: string
}

const FILE = 'dev-secrets.json'

/**
 * Development only: the secrets the configuration leaves unset (the HMAC signing secret, the
 * vault key, the CSRF secret) are generated once and kept in `<stores.dataDir>/dev-secrets.json`
 * (mode 0600), next to the embedded database they protect, so tokens, sessions and sealed TOTP
 * secrets survive a restart of `npm start`. Production never gets here (the config schema
 * requires those secrets), nor does an in-memory data directory. Returns the config unchanged
 * when nothing is missing; `onCreate` is told when the file is written.
 *
 * @example const effective = withDevelopmentSecrets(config, (path) => logger.warn(`wrote ${path}`))
 */
export function withDevelopmentSecrets(config: BackbeatConfig, onCreate?: (path: string) => void): BackbeatConfig {
  const { auth, stores } = config
  if (config.preset !== 'development' || !auth.enabled || stores.dataDir === ':memory:') return config
  const needsJwt = auth.jwt.algorithm.startsWith('HS') && auth.jwt.secretKey === undefined
  const needsVault = Object.keys(auth.vault.keys).length === 0
  const needsCsrf = auth.sessions.csrfSecret === undefined
  if (!needsJwt && !needsVault && !needsCsrf) return config
  const secrets = load(stores.dataDir, onCreate)
  return Object.freeze({
    ...config,
    auth: Object.freeze({
      ...auth,
      jwt: Object.freeze({ ...auth.jwt, ...(needsJwt ? { secretKey: secrets.jwtSecret } : {}) }),
      vault: Object.freeze({ ...auth.vault, ...(needsVault ? { keys: Object.freeze({ 1: secrets.vaultKey }) } : {}) }),
      sessions: Object.freeze({ ...auth.sessions, ...(needsCsrf ? { csrfSecret: secrets.csrfSecret } : {}) }),
    }),
  })
}

function load(dataDir: string, onCreate: ((path: string) => void) | undefined): DevSecrets {
  const path = join(dataDir, FILE)
  if (existsSync(path)) {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<DevSecrets>
      if (typeof parsed.jwtSecret === 'string' && typeof parsed.vaultKey === 'string' && typeof parsed.csrfSecret === 'string') return parsed as DevSecrets
    } catch {
      // A damaged file is replaced below: development data only.
    }
  }
  const secrets: DevSecrets = { jwtSecret: randomBytes(48).toString('base64url'), vaultKey: randomBytes(32).toString('base64'), csrfSecret: randomBytes(32).toString('base64url') }
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(path, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 })
  chmodSync(path, 0o600)
  onCreate?.(path)
  return secrets
}
