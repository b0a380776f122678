import { generateKeyPairSync, randomBytes } from 'node:crypto'
import type { SecurityEventSink } from '../core/index.ts'
import { MemoryKeyValueStore, type KeyValueStore } from '../stores/index.ts'
import { JwtKeySet } from './jwt-keys.ts'
import { JwtVerifier } from './jwt-verifier.ts'
import { RemoteJwks, type RemoteJwksLogger } from './remote-jwks.ts'
import { LoginThrottle } from './login-throttle.ts'
import type { AuthOptions } from './options.ts'
import { PasswordHasher } from './passwords.ts'
import { Rbac } from './rbac.ts'
import { RefreshTokenStore } from './refresh-tokens.ts'
import { RevocationList } from './revocation.ts'
import { AccessTokenIssuer } from './token-issuer.ts'
import { SecretBox } from './secret-box.ts'
import { Totp } from './totp.ts'

/** What {@link createIdentity} needs besides the options. */
export interface IdentityDependencies {
  /** Shared state (deny list, refresh tokens, lockout counters): Redis in production. */
  kv?: KeyValueStore
  securityEvents?: SecurityEventSink
  /** Told when a key is a random one that dies with the process, and about the remote JWKS. */
  logger?: RemoteJwksLogger
  now?: () => number
}

/** The identity engines one process runs, built once from the `auth` options. */
export interface Identity {
  readonly options: AuthOptions
  readonly keys: JwtKeySet
  readonly issuer: AccessTokenIssuer
  readonly verifier: JwtVerifier
  readonly revocations: RevocationList
  readonly refreshTokens: RefreshTokenStore
  readonly throttle: LoginThrottle
  readonly hasher: PasswordHasher
  readonly rbac: Rbac
  /** AES-256-GCM with versioned keys (`auth.vault`): TOTP secrets and provider tokens at rest. */
  readonly secretBox: SecretBox
  /** TOTP with replay protection in the shared store. */
  readonly totp: Totp
  /** The shared key-value store the engines keep state in. */
  readonly kv: KeyValueStore
  /** Keys published at `auth.jwt.jwksUrl`, when configured (its `healthCheck` belongs in /health). */
  readonly remoteJwks: RemoteJwks | undefined
  /** True when no key was configured and a random one signs tokens (development only). */
  readonly ephemeralKey: boolean
}

const HMAC_BYTES = { HS256: 32, HS384: 48, HS512: 64 } as const

/**
 * Builds the identity engines from the validated `auth` options: the signing key (the
 * configured secret or private key; in development, a random one with a warning), the key set
 * and verifier that accept our own tokens, the deny list, refresh tokens, lockout, password
 * hashing and RBAC. Production configurations without a key never get here: the config schema
 * refuses them.
 *
 * @example
 * const identity = await createIdentity(config.auth, { kv: stores.kv, securityEvents })
 * const { token } = await identity.issuer.issue({ sub: userId })
 */
export async function createIdentity(options: AuthOptions, deps: IdentityDependencies = {}): Promise<Identity> {
  const { jwt } = options
  const kv = deps.kv ?? new MemoryKeyValueStore()
  const now = deps.now ?? Date.now
  const hmac = jwt.algorithm === 'HS256' || jwt.algorithm === 'HS384' || jwt.algorithm === 'HS512'
  let key: string | Uint8Array | undefined = hmac ? jwt.secretKey : jwt.privateKey
  const ephemeralKey = key === undefined
  if (key === undefined) {
    if (hmac) key = randomBytes(HMAC_BYTES[jwt.algorithm as keyof typeof HMAC_BYTES])
    else key = ephemeralPrivateKey(jwt.algorithm)
    deps.logger?.warn({}, `auth: no ${hmac ? 'JWT_SECRET_KEY' : 'JWT_PRIVATE_KEY'} configured; tokens are signed with a random key that dies with this process and is not shared with other instances`)
  }
  const issuer = new AccessTokenIssuer({ alg: jwt.algorithm, key, kid: jwt.keyId, issuer: jwt.issuer, audience: jwt.audience, ttlS: jwt.accessTokenExpireMinutes * 60, now })
  const keys = new JwtKeySet()
  if (hmac) await keys.addSecret(jwt.keyId, jwt.algorithm as 'HS256' | 'HS384' | 'HS512', issuer.verificationKey.export())
  else await keys.addJwk(issuer.publicJwk ?? {}, jwt.algorithm)
  // Tokens signed by an identity provider's published keys verify too (same iss and aud rules):
  // the remote keys join the same pinned-algorithm set, fetched when an unknown kid appears.
  const remoteJwks =
    jwt.jwksUrl === undefined
      ? undefined
      : new RemoteJwks({ url: jwt.jwksUrl, keys, timeoutMs: jwt.jwksTimeoutMs, cooldownMs: jwt.jwksCooldownMs, allowedAlgorithms: jwt.jwksAlgorithms, now, ...(deps.logger === undefined ? {} : { logger: deps.logger }) })
  if (remoteJwks !== undefined) await remoteJwks.start()
  const verifier = new JwtVerifier({ keys, issuer: jwt.issuer, audience: jwt.audience, clockSkewS: jwt.clockSkewS, cacheSize: jwt.cacheSize, now, ...(remoteJwks === undefined ? {} : { keySource: remoteJwks }) })
  const refreshTtlMs = jwt.refreshTokenExpireDays * 86_400_000
  const familyTtlMs = Math.max(refreshTtlMs, jwt.refreshFamilyExpireDays * 86_400_000)
  const revocations = new RevocationList({ store: kv, cacheMs: options.revocation.cacheMs, timeoutMs: options.revocation.timeoutMs, clockSkewS: jwt.clockSkewS, subjectRevocationTtlMs: familyTtlMs, now })
  const refreshTokens = new RefreshTokenStore({ store: kv, revocations, ttlMs: refreshTtlMs, familyTtlMs, accessTokenTtlMs: jwt.accessTokenExpireMinutes * 60_000, now, ...(deps.securityEvents === undefined ? {} : { securityEvents: deps.securityEvents }) })
  const throttle = new LoginThrottle({ store: kv, account: options.lockout.account, ip: options.lockout.ip, now, ...(deps.securityEvents === undefined ? {} : { securityEvents: deps.securityEvents }) })
  const hasher = new PasswordHasher({ scrypt: { logN: options.passwords.scryptLogN, r: options.passwords.scryptR, p: options.passwords.scryptP }, minLength: options.passwords.minLength })
  const rbac = new Rbac(options.roles)
  let vaultKeys: Record<string, string> = options.vault.keys
  if (Object.keys(vaultKeys).length === 0) {
    vaultKeys = { 1: SecretBox.generateKey() }
    deps.logger?.warn({}, 'auth: no BACKBEAT_VAULT_KEYS configured; TOTP secrets and provider tokens are sealed with a random key that dies with this process')
  }
  const versions = Object.keys(vaultKeys).map(Number)
  const secretBox = new SecretBox({ keys: vaultKeys, current: options.vault.currentKey ?? Math.max(...versions) })
  const totp = new Totp({ store: kv, issuer: options.mfa.issuer, ...(deps.now === undefined ? {} : { now: deps.now }) })
  return { options, keys, issuer, verifier, revocations, refreshTokens, throttle, hasher, rbac, secretBox, totp, kv, remoteJwks, ephemeralKey }
}

function ephemeralPrivateKey(alg: string): string {
  const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}
