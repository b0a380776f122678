import { createPrivateKey, createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto'
import { SignJWT, type JWK } from 'jose'
import { ConfigError, type ConfigIssue } from '../core/index.ts'
import type { JwsAlgorithm } from './jwt-keys.ts'

/** Options of {@link AccessTokenIssuer}. */
export interface AccessTokenIssuerOptions {
  alg: JwsAlgorithm
  /** HS*: the shared secret (at least as many bytes as the hash). Others: a PKCS#8 PEM private key. */
  key: string | Uint8Array
  /** Goes in the header so verifiers pick the key (default: none). */
  kid?: string
  issuer: string
  audience: string
  /** Access-token lifetime in seconds (default 900). */
  ttlS?: number
  now?: () => number
}

/** The claims our access tokens carry besides the registered ones. */
export interface AccessTokenClaims {
  readonly sub: string
  /** Space-separated scopes (RFC 8693 `scope`). */
  readonly scope?: string
  readonly roles?: readonly string[]
  /** Authentication methods (RFC 8176): `pwd`, `otp`, `oauth`, ... */
  readonly amr?: readonly string[]
  /** Epoch seconds of the sign-in (OIDC `auth_time`). */
  readonly authTime?: number
  /** Epoch seconds of the last MFA, for step-up checks. */
  readonly mfaTime?: number
  /** The sign-in (refresh-token family) the token belongs to (OIDC `sid`): revoking it revokes the token. */
  readonly sid?: string
}

/** A freshly signed access token and its RFC 6749 response fields. */
export interface IssuedAccessToken {
  readonly token: string
  readonly jti: string
  /** Epoch seconds. */
  readonly expiresAt: number
  /** Seconds from now (RFC 6749 `expires_in`). */
  readonly expiresIn: number
}

const HMAC_BYTES = { HS256: 32, HS384: 48, HS512: 64 } as const

/**
 * Signs our own access tokens with `jose`: `iss`, `aud`, `sub`, `iat`, `exp`, a random `jti`
 * (so one token can be revoked) and the claims above, with the algorithm pinned by
 * configuration. For asymmetric algorithms `publicJwk` is what `/.well-known/jwks.json` serves
 * and what the verifier's key set holds.
 *
 * @example
 * const issuer = new AccessTokenIssuer({ alg: 'HS256', key: process.env.JWT_SECRET_KEY!, issuer: 'https://api.example.com', audience: 'music-api' })
 * const { token, expiresIn } = await issuer.issue({ sub: userId, scope: 'playlist:write' })
 */
export class AccessTokenIssuer {
  readonly alg: JwsAlgorithm
  readonly kid: string | undefined
  readonly issuer: string
  readonly audience: string
  readonly ttlS: number
  readonly #key: KeyObject
  readonly #now: () => number

  constructor(options: AccessTokenIssuerOptions) {
    const { alg, key, kid, issuer, audience, ttlS = 900 } = options
    const issues: ConfigIssue[] = []
    if (!Number.isInteger(ttlS) || ttlS < 10 || ttlS > 86_400) issues.push({ path: 'ttlS', message: 'must be an integer from 10 to 86400' })
    if (issuer.length === 0) issues.push({ path: 'issuer', message: 'must not be empty' })
    if (audience.length === 0) issues.push({ path: 'audience', message: 'must not be empty' })
    let keyObject: KeyObject | undefined
    if (alg === 'HS256' || alg === 'HS384' || alg === 'HS512') {
      const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key)
      if (bytes.length < HMAC_BYTES[alg]) issues.push({ path: 'key', message: `${alg} needs a secret of at least ${HMAC_BYTES[alg]} bytes` })
      else keyObject = createSecretKey(bytes)
    } else {
      try {
        keyObject = createPrivateKey(typeof key === 'string' ? key : Buffer.from(key))
      } catch {
        issues.push({ path: 'key', message: `${alg} needs a PKCS#8 PEM private key` })
      }
    }
    if (issues.length > 0 || keyObject === undefined) throw new ConfigError(issues)
    this.alg = alg
    this.kid = kid
    this.issuer = issuer
    this.audience = audience
    this.ttlS = ttlS
    this.#key = keyObject
    this.#now = options.now ?? Date.now
  }

  /** The public key as a JWK for asymmetric algorithms; undefined for HS*. */
  get publicJwk(): JWK | undefined {
    if (this.#key.type === 'secret') return undefined
    const jwk = createPublicKey(this.#key).export({ format: 'jwk' }) as JWK
    return { ...jwk, alg: this.alg, use: 'sig', ...(this.kid === undefined ? {} : { kid: this.kid }) }
  }

  /** The verification key material: the secret for HS*, otherwise the public key. */
  get verificationKey(): KeyObject {
    return this.#key.type === 'secret' ? this.#key : createPublicKey(this.#key)
  }

  /**
   * Signs an access token. `notAfter` (epoch seconds) caps its expiry, e.g. at the expiry of the
   * token a step-up was made with.
   */
  async issue(claims: AccessTokenClaims, options: { notAfter?: number } = {}): Promise<IssuedAccessToken> {
    const now = this.#now()
    // Millisecond precision (NumericDate may be fractional, RFC 7519 section 2): "sign out
    // everywhere" then tells a token issued just before it from one issued just after.
    const iat = Math.floor(now) / 1000
    const exp = Math.min(Math.floor(now / 1000) + this.ttlS, options.notAfter ?? Number.POSITIVE_INFINITY)
    const jti = randomBytes(16).toString('base64url')
    const payload: Record<string, unknown> = {}
    if (claims.scope !== undefined && claims.scope !== '') payload.scope = claims.scope
    if (claims.roles !== undefined) payload.roles = [...claims.roles]
    if (claims.amr !== undefined) payload.amr = [...claims.amr]
    if (claims.authTime !== undefined) payload.auth_time = claims.authTime
    if (claims.mfaTime !== undefined) payload.mfa_time = claims.mfaTime
    if (claims.sid !== undefined) payload.sid = claims.sid
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: this.alg, typ: 'at+jwt', ...(this.kid === undefined ? {} : { kid: this.kid }) })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(claims.sub)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.#key)
    return { token, jti, expiresAt: exp, expiresIn: Math.max(0, exp - Math.floor(now / 1000)) }
  }
}
