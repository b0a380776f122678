import { importJWK, importSPKI, type CryptoKey, type JWK } from 'jose'
import { ConfigError } from '../core/index.ts'

/** Signature algorithms a key may be pinned to. `none` is not one of them, and never will be. */
export const JWS_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number]

const HMAC_MIN_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 }

/** One verification key with the one algorithm it may verify. */
export interface JwtKey {
  /** Matched against the token's `kid`; undefined only in a set of one key. */
  readonly kid: string | undefined
  /** Pinned: a token naming another algorithm is refused whatever it says. */
  readonly alg: JwsAlgorithm
  readonly key: CryptoKey | Uint8Array
}

/** Longest `kid` looked up; anything longer is refused before any lookup. */
export const MAX_KID_LENGTH = 256

/**
 * The keys tokens may be verified with, each pinned to one algorithm and found by `kid`.
 * The token's own `alg` is never trusted to choose how to verify: it must equal the pinned
 * algorithm of the key its `kid` names, which closes `alg: none` and HS/RS key confusion.
 * Keys are added and removed at run time (rotation): a token signed by a removed key fails.
 *
 * @example
 * const keys = new JwtKeySet()
 * await keys.addSecret('2025-11', 'HS256', secretFromVault)
 * await keys.addJwk({ kty: 'EC', crv: 'P-256', x, y, kid: 'partner-1', alg: 'ES256' })
 */
export class JwtKeySet {
  readonly #byKid = new Map<string, JwtKey>()
  #unnamed: JwtKey | undefined

  /**
   * Adds an HMAC secret (at least as many bytes as the hash: 32 for HS256). It is imported
   * once as a non-extractable CryptoKey: handing jose raw bytes would import them again on
   * every verification.
   */
  async addSecret(kid: string | undefined, alg: 'HS256' | 'HS384' | 'HS512', secret: string | Uint8Array): Promise<JwtKey> {
    const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret
    const min = HMAC_MIN_BYTES[alg] ?? 32
    if (bytes.byteLength < min) throw new ConfigError([{ path: 'auth.jwt.secretKey', message: `${alg} needs a secret of at least ${String(min)} bytes, got ${String(bytes.byteLength)}` }])
    const key = await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify'])
    return this.#add({ kid, alg, key })
  }

  /**
   * Adds a public (or symmetric) JWK. Its algorithm comes from `alg` or the JWK's own `alg`;
   * when both are given they must agree. Private members are refused: verification needs
   * the public half only.
   */
  async addJwk(jwk: JWK, alg?: JwsAlgorithm): Promise<JwtKey> {
    const pinned = alg ?? (jwk.alg as JwsAlgorithm | undefined)
    if (pinned === undefined || !JWS_ALGORITHMS.includes(pinned)) throw keyError(jwk.kid, `a JWK needs an algorithm (its alg or the one given), one of ${JWS_ALGORITHMS.join(', ')}`)
    if (alg !== undefined && jwk.alg !== undefined && jwk.alg !== alg) throw keyError(jwk.kid, `the JWK says alg ${jwk.alg}, but ${alg} was asked for`)
    if (jwk.kty !== 'oct' && jwk.d !== undefined) throw keyError(jwk.kid, 'a private JWK was given; add the public key only')
    if (jwk.use !== undefined && jwk.use !== 'sig') throw keyError(jwk.kid, `the JWK is for use "${jwk.use}", not signatures`)
    if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) throw keyError(jwk.kid, 'the JWK key_ops do not include verify')
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicPart } = jwk
    let key: CryptoKey | Uint8Array
    try {
      key = await importJWK(jwk.kty === 'oct' ? jwk : publicPart, pinned)
    } catch (err) {
      throw keyError(jwk.kid, `cannot be used with ${pinned}: ${(err as Error).message}`)
    }
    if (key instanceof Uint8Array) {
      const min = HMAC_MIN_BYTES[pinned]
      if (min === undefined) throw keyError(jwk.kid, `a symmetric key cannot verify ${pinned}`)
      if (key.byteLength < min) throw keyError(jwk.kid, `${pinned} needs a secret of at least ${String(min)} bytes`)
    }
    return this.#add({ kid: jwk.kid, alg: pinned, key })
  }

  /** Adds a PEM-encoded public key (SPKI, `-----BEGIN PUBLIC KEY-----`). */
  async addPem(kid: string | undefined, alg: Exclude<JwsAlgorithm, 'HS256' | 'HS384' | 'HS512'>, pem: string): Promise<JwtKey> {
    let key: CryptoKey
    try {
      key = await importSPKI(pem, alg)
    } catch (err) {
      throw keyError(kid, `is not a ${alg} public key: ${(err as Error).message}`)
    }
    return this.#add({ kid, alg, key })
  }

  /** Removes the key with `kid` (undefined: the unnamed key); tokens it signed stop verifying. */
  remove(kid: string | undefined): boolean {
    if (kid === undefined) {
      const had = this.#unnamed !== undefined
      this.#unnamed = undefined
      return had
    }
    return this.#byKid.delete(kid)
  }

  /**
   * Whether the set holds a key under exactly this `kid` (undefined: the unnamed key), without
   * {@link find}'s single-key rule. Lets a key source tell its own keys from ones added locally.
   */
  has(kid: string | undefined): boolean {
    return kid === undefined ? this.#unnamed !== undefined : this.#byKid.has(kid)
  }

  get size(): number {
    return this.#byKid.size + (this.#unnamed === undefined ? 0 : 1)
  }

  /**
   * The key a token's `kid` names. A token without `kid` matches only a set holding exactly
   * one key; a `kid` that is too long or names no key matches nothing.
   */
  find(kid: unknown): JwtKey | undefined {
    if (kid === undefined) {
      if (this.#unnamed !== undefined && this.#byKid.size === 0) return this.#unnamed
      if (this.#unnamed === undefined && this.#byKid.size === 1) return this.#byKid.values().next().value
      return undefined
    }
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH) return undefined
    return this.#byKid.get(kid)
  }

  #add(key: JwtKey): JwtKey {
    if (key.kid === undefined) {
      if (this.#unnamed !== undefined) throw keyError(undefined, 'a key without kid is already in the set; give each key a kid')
      this.#unnamed = key
    } else {
      if (key.kid.length > MAX_KID_LENGTH) throw keyError(key.kid.slice(0, 40), `kid longer than ${String(MAX_KID_LENGTH)} characters`)
      this.#byKid.set(key.kid, key)
    }
    return key
  }
}

function keyError(kid: string | undefined, message: string): ConfigError {
  return new ConfigError([{ path: `auth.jwt.keys${kid === undefined ? '' : `[${JSON.stringify(kid)}]`}`, message }])
}
