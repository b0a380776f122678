import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { compactVerify, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose'
import { BackbeatError, ConfigError, systemClock, type Clock } from '../core/index.ts'
import type { JwtKey, JwtKeySet } from './jwt-keys.ts'

/**
 * Keeps a {@link JwtKeySet} in step with keys published elsewhere (a remote JWKS): told of
 * every verification so it can refresh stale keys in the background, and asked once more when
 * a token names a `kid` the set does not hold.
 *
 * @example
 * const jwks = new RemoteJwks({ url: 'https://idp.example.com/.well-known/jwks.json' })
 * const verifier = new JwtVerifier({ keys: jwks.keys, keySource: jwks, issuer, audience })
 */
export interface JwtKeySource {
  /** The set this source fills; must be the verifier's `keys`. */
  readonly keys: JwtKeySet
  /** Called synchronously on every verification, cached or not: must cost next to nothing. */
  touch(): void
  /**
   * A token names a `kid` (maybe not a string: it is the token's) that the set does not hold.
   * Resolves true when the set may hold it now, so the verifier looks once more. Must never
   * reject and must settle within a bounded time: the request waits for it.
   */
  onUnknownKey(kid: unknown, alg: string): Promise<boolean>
}

export interface JwtVerifierOptions {
  keys: JwtKeySet
  /**
   * Where keys are refreshed from (a {@link RemoteJwks} over `keys`). Without one, the set is
   * all there is and an unknown `kid` fails at once.
   */
  keySource?: JwtKeySource
  /** Required `iss`. */
  issuer: string
  /** Required `aud` (the token's audience must contain one of these). */
  audience: string | readonly string[]
  /** Tolerated clock difference for `exp`, `nbf` and `iat`, seconds (default 30). */
  clockSkewS?: number
  /** Claims that must be present besides `exp`, `iat`, `iss` and `aud` (e.g. `sub`). */
  requiredClaims?: readonly string[]
  /** Longest token accepted, bytes (default 8192): a larger one is refused before parsing. */
  maxTokenBytes?: number
  /** Verified tokens remembered (default 10,000; 0 disables the cache). */
  cacheSize?: number
  now?: Clock
}

/** A token that passed every check. */
export interface VerifiedToken {
  readonly payload: Readonly<JWTPayload>
  /** The key that verified it. */
  readonly kid: string | undefined
  readonly alg: string
  /** True when answered from the verified-token cache. */
  readonly cached: boolean
}

interface CacheEntry {
  payload: Readonly<JWTPayload>
  /** The key that verified it: a hit counts only while the set still holds this very key. */
  key: JwtKey
  /** `exp` in epoch ms. */
  expiresAt: number
}

const ALWAYS_REQUIRED = ['exp', 'iat', 'iss', 'aud'] as const
/**
 * Three canonical base64url segments without padding: a segment of length 1 mod 4 cannot be
 * base64, and the last character of a partial group must leave its unused bits zero.
 */
const SEGMENT = '(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?'
const COMPACT_JWS = new RegExp(`^${SEGMENT}\\.${SEGMENT}\\.${SEGMENT}$`)

/**
 * Verifies JWT access tokens with jose against a {@link JwtKeySet}: the key is chosen by
 * `kid`, the algorithm is the key's pinned one (the token's `alg` must equal it), and
 * `exp`, `iat`, `iss` and `aud` are required and checked with a bounded clock skew. Every
 * refusal is a 401 `BackbeatError` with a stable `ERR_AUTH_*` code.
 *
 * Verified tokens are remembered under a SHA-256 of the token until they expire, so a client
 * sending the same token again costs a hash and a map lookup rather than a signature check;
 * removing a key, {@link forget} and {@link clear} drop what it verified.
 *
 * With a `keySource` (a remote JWKS), a `kid` the set lacks gets one bounded chance to be
 * fetched before the token fails with `ERR_AUTH_KEY_UNKNOWN`; known kids never wait for it.
 *
 * @example
 * const verifier = new JwtVerifier({ keys, issuer: 'https://api.example.com', audience: 'music-api' })
 * const { payload } = await verifier.verify(token)
 */
export class JwtVerifier {
  readonly #keys: JwtKeySet
  readonly #source: JwtKeySource | undefined
  readonly #issuer: string
  readonly #audience: string | string[]
  readonly #skewS: number
  readonly #required: string[]
  readonly #maxBytes: number
  readonly #now: Clock
  readonly #cache: LRUCache<string, CacheEntry> | undefined
  /**
   * The last few tokens seen, by their text, in front of the digest-keyed cache: a hot client
   * skips the SHA-256. Bounded in count and token length (so in memory); each entry is the
   * same object as in the main cache, checked the same way on every hit.
   */
  readonly #hot = new Map<string, CacheEntry>()

  constructor(options: JwtVerifierOptions) {
    this.#keys = options.keys
    this.#source = options.keySource
    if (this.#source !== undefined && this.#source.keys !== this.#keys) throw new ConfigError([{ path: 'auth.jwt.keySource', message: 'fills another key set than the verifier reads: pass keys: source.keys' }])
    this.#issuer = options.issuer
    this.#audience = typeof options.audience === 'string' ? options.audience : [...options.audience]
    this.#skewS = options.clockSkewS ?? 30
    this.#required = [...new Set([...ALWAYS_REQUIRED, ...(options.requiredClaims ?? [])])]
    this.#maxBytes = options.maxTokenBytes ?? 8192
    this.#now = options.now ?? systemClock
    const size = options.cacheSize ?? 10_000
    this.#cache = size > 0 ? new LRUCache<string, CacheEntry>({ max: size }) : undefined
    if (!(this.#skewS >= 0 && this.#skewS <= 300)) throw new TypeError('clockSkewS must be between 0 and 300')
  }

  /**
   * The verification of `token` remembered by the cache, synchronously, or undefined when it
   * must be verified (not seen, expired, or its key removed). Lets a hot request skip a
   * promise; {@link verify} does the same first.
   */
  cached(token: string): VerifiedToken | undefined {
    if (this.#cache === undefined || token.length > this.#maxBytes) return undefined
    this.#source?.touch()
    const hot = this.#hot.get(token)
    if (hot !== undefined) {
      if (this.#valid(hot)) return { payload: hot.payload, kid: hot.key.kid, alg: hot.key.alg, cached: true }
      this.#hot.delete(token)
    }
    const digest = cacheKey(token)
    const verified = this.#lookup(digest)
    if (verified !== undefined && token.length <= HOT_TOKEN_MAX_CHARS) {
      const entry = this.#cache.get(digest)
      if (entry !== undefined) {
        // Insertion order is age: the oldest goes when the memo is full.
        if (this.#hot.size >= HOT_TOKENS) this.#hot.delete(this.#hot.keys().next().value as string)
        this.#hot.set(token, entry)
      }
    }
    return verified
  }

  /** Verifies `token` (the compact JWS, without `Bearer `), or throws an `ERR_AUTH_*` error. */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length > this.#maxBytes) throw new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')
    this.#source?.touch()
    const digest = this.#cache === undefined ? '' : cacheKey(token)
    const hit = this.#cache === undefined ? undefined : this.#lookup(digest)
    if (hit !== undefined) return hit
    const header = headerOf(token)
    // A known kid costs no await: the source is asked only when the set lacks the key.
    const key = pinned(header, this.#keys.find(header.kid) ?? (this.#source === undefined ? undefined : await this.#refetched(header)))
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        issuer: this.#issuer,
        audience: this.#audience,
        clockTolerance: this.#skewS,
        requiredClaims: this.#required,
        currentDate: new Date(this.#now()),
      }))
    } catch (err) {
      throw toAuthError(err)
    }
    // jose checks iat only against a maximum age; a token issued in the future is not valid yet.
    if (typeof payload.iat === 'number' && payload.iat * 1000 > this.#now() + this.#skewS * 1000) throw new BackbeatError('ERR_AUTH_TOKEN_NOT_YET_VALID')
    const expiresAt = (payload.exp as number) * 1000
    if (this.#cache !== undefined) {
      const ttl = expiresAt + this.#skewS * 1000 - this.#now()
      if (ttl > 0) this.#cache.set(digest, { payload: Object.freeze(payload), key, expiresAt }, { ttl })
    }
    return { payload, kid: key.kid, alg: key.alg, cached: false }
  }

  /**
   * Verifies only the signature of a compact JWS (any payload, no claims): the same key
   * choice and algorithm pinning as {@link verify}. For JWS uses other than access tokens,
   * and for conformance tests.
   */
  async verifySignature(jws: string): Promise<{ payload: Uint8Array; header: ProtectedHeaderParameters }> {
    if (jws.length > this.#maxBytes) throw new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')
    this.#source?.touch()
    const header = headerOf(jws)
    const key = pinned(header, this.#keys.find(header.kid) ?? (this.#source === undefined ? undefined : await this.#refetched(header)))
    try {
      const { payload, protectedHeader } = await compactVerify(jws, key.key, { algorithms: [key.alg] })
      return { payload, header: protectedHeader }
    } catch (err) {
      throw toAuthError(err)
    }
  }

  /** Drops cached verifications whose payload matches (e.g. a revoked `jti`, a user signed out everywhere). */
  forget(matches: (payload: Readonly<JWTPayload>) => boolean): number {
    let dropped = 0
    for (const [token, entry] of this.#hot) if (matches(entry.payload)) this.#hot.delete(token)
    if (this.#cache === undefined) return 0
    for (const [digest, entry] of this.#cache.entries()) {
      if (matches(entry.payload)) {
        this.#cache.delete(digest)
        dropped++
      }
    }
    return dropped
  }

  clear(): void {
    this.#hot.clear()
    this.#cache?.clear()
  }

  /** Not expired, and its key is still the very one the set holds for that kid. */
  #valid(entry: CacheEntry): boolean {
    return entry.expiresAt + this.#skewS * 1000 > this.#now() && this.#keys.find(entry.key.kid) === entry.key
  }

  /** A cached verification still valid, and still signed by a key the set holds (the same key, not just the same kid). */
  #lookup(digest: string): VerifiedToken | undefined {
    const hit = this.#cache?.get(digest)
    if (hit === undefined) return undefined
    if (this.#valid(hit)) return { payload: hit.payload, kid: hit.key.kid, alg: hit.key.alg, cached: true }
    this.#cache?.delete(digest)
    return undefined
  }

  /** The key after the source had its one chance to fetch it; a failing source means no key, never a 500. */
  async #refetched(header: Header): Promise<JwtKey | undefined> {
    try {
      if (!(await (this.#source as JwtKeySource).onUnknownKey(header.kid, header.alg))) return undefined
    } catch {
      return undefined
    }
    return this.#keys.find(header.kid)
  }
}

type Header = ProtectedHeaderParameters & { alg: string }

function headerOf(token: string): Header {
  // Strict base64url: decoders skip spaces, padding and stray characters, which would let
  // many strings carry one signature (and a cache or deny list miss the equivalent token).
  if (!COMPACT_JWS.test(token)) throw new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')
  let header: ProtectedHeaderParameters
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')
  }
  if (typeof header.alg !== 'string') throw new BackbeatError('ERR_AUTH_TOKEN_MALFORMED')
  return header as Header
}

function pinned(header: Header, key: JwtKey | undefined): JwtKey {
  if (key === undefined) throw new BackbeatError('ERR_AUTH_KEY_UNKNOWN')
  // The pinned algorithm decides; a token naming another one (none, HS256 against an RSA
  // key, ...) is refused here, before jose sees it.
  if (header.alg !== key.alg) throw new BackbeatError('ERR_AUTH_TOKEN_INVALID', { params: { reason: `alg ${header.alg.slice(0, 20)} is not the key's ${key.alg}` } })
  return key
}

/** Tokens remembered by their text (see `#hot`), and the longest so remembered. */
const HOT_TOKENS = 256
const HOT_TOKEN_MAX_CHARS = 2048

/** One-shot crypto.hash: a third of createHash()'s cost, which is most of a cache hit. */
function cacheKey(token: string): string {
  return hash('sha256', token, 'base64url')
}

function toAuthError(err: unknown): BackbeatError {
  if (err instanceof BackbeatError) return err
  if (err instanceof errors.JWTExpired) return new BackbeatError('ERR_AUTH_TOKEN_EXPIRED', { cause: err })
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || (err.claim === 'iat' && err.reason === 'check_failed')) return new BackbeatError('ERR_AUTH_TOKEN_NOT_YET_VALID', { cause: err })
    return new BackbeatError('ERR_AUTH_TOKEN_CLAIM_INVALID', { params: { claim: err.claim, reason: err.reason }, cause: err })
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new BackbeatError('ERR_AUTH_TOKEN_MALFORMED', { cause: err })
  const reason = err instanceof errors.JOSEError ? err.code : 'verification failed'
  return new BackbeatError('ERR_AUTH_TOKEN_INVALID', { params: { reason }, cause: err })
}
