import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { BackbeatError, ConfigError, type ConfigIssue } from '../core/index.ts'
import { withTimeout, type KeyValueStore } from '../stores/index.ts'

/** Options of {@link RevocationList}. */
export interface RevocationListOptions {
  /** Redis in production (every instance sees a revocation), memory when embedded. */
  store: KeyValueStore
  /** Key prefix (default `bb:revoked:`). */
  prefix?: string
  /**
   * How long this instance trusts an answer it read from the store (default 1000 ms; 0 asks
   * the store on every request). A token revoked through another instance can be accepted here
   * for at most this long; one revoked through this instance is refused at once.
   */
  cacheMs?: number
  /** Entries held by the local cache (default 10,000). */
  cacheSize?: number
  /** A store call slower than this counts as an outage (default 250 ms). */
  timeoutMs?: number
  /** The verifier's clock skew: a revoked token is remembered until exp plus this (default 30). */
  clockSkewS?: number
  /**
   * How long a subject-wide revocation ("sign out everywhere") is remembered: at least the
   * longest lifetime of any token it must kill, refresh tokens included (default 30 days).
   */
  subjectRevocationTtlMs?: number
  now?: () => number
}

/** What identifies one access token for revocation. */
export interface RevocableToken {
  readonly jti?: string | undefined
  /** The sign-in the token belongs to (`sid`): revoked with its refresh-token family. */
  readonly sid?: string | undefined
  readonly sub?: string | undefined
  /** Issued at, in seconds (JWT `iat`). */
  readonly iat?: number | undefined
}

/** Counters for metrics: `failClosed` counts requests refused because the store was unreachable. */
export interface RevocationStats {
  checks: number
  revoked: number
  failClosed: number
}

interface Cached {
  /** Epoch ms before which every token of the subject is revoked (0 when none). */
  readonly value: number
}

const MAX_ID = 256

/**
 * The deny list behind logout and "sign out everywhere": single tokens by `jti` until they
 * expire, and every token of a subject issued before a moment. It fails CLOSED: when the store
 * cannot answer within `timeoutMs`, `assertNotRevoked` throws `ERR_AUTH_REVOCATION_UNAVAILABLE`
 * (503) and counts it in `stats.failClosed`, because accepting a possibly revoked token is the
 * failure users cannot see.
 *
 * @example
 * const revocations = new RevocationList({ store: stores.kv })
 * await revocations.revokeToken(claims.jti, claims.exp)          // logout
 * await revocations.revokeSubject(userId)                        // admin kill
 * await revocations.assertNotRevoked(claims)                     // on each request
 */
export class RevocationList {
  readonly stats: RevocationStats = { checks: 0, revoked: 0, failClosed: 0 }
  readonly #store: KeyValueStore
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #skewMs: number
  readonly #subjectTtlMs: number
  readonly #now: () => number
  readonly #cache: LRUCache<string, Cached> | undefined

  constructor(options: RevocationListOptions) {
    const { cacheMs = 1_000, cacheSize = 10_000, timeoutMs = 250, subjectRevocationTtlMs = 30 * 24 * 3_600_000 } = options
    const issues: ConfigIssue[] = []
    if (!Number.isInteger(cacheMs) || cacheMs < 0 || cacheMs > 60_000) issues.push({ path: 'cacheMs', message: 'must be an integer from 0 to 60000' })
    if (!Number.isInteger(cacheSize) || cacheSize < 1) issues.push({ path: 'cacheSize', message: 'must be a positive integer' })
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) issues.push({ path: 'timeoutMs', message: 'must be a positive integer' })
    if (!Number.isInteger(subjectRevocationTtlMs) || subjectRevocationTtlMs < 60_000) issues.push({ path: 'subjectRevocationTtlMs', message: 'must be an integer of at least 60000' })
    if (issues.length > 0) throw new ConfigError(issues)
    this.#store = options.store
    this.#prefix = options.prefix ?? 'bb:revoked:'
    this.#timeoutMs = timeoutMs
    this.#skewMs = (options.clockSkewS ?? 30) * 1000
    this.#subjectTtlMs = subjectRevocationTtlMs
    this.#now = options.now ?? Date.now
    this.#cache = cacheMs === 0 ? undefined : new LRUCache<string, Cached>({ max: cacheSize, ttl: cacheMs, ttlAutopurge: false, ttlResolution: 0, perf: { now: () => this.#now() } })
  }

  /** Revokes one token until `expiresAtS` (its `exp`), after which it is dead anyway. */
  async revokeToken(jti: string, expiresAtS: number): Promise<void> {
    const id = storeId(jti)
    // Kept until the verifier stops accepting the token: its exp plus the clock skew.
    const ttlMs = Math.ceil(expiresAtS * 1000 + this.#skewMs + 1_000 - this.#now())
    this.#cache?.set(`j:${id}`, { value: 1 })
    if (ttlMs <= 0) return
    await this.#store.set(`${this.#prefix}j:${id}`, '1', ttlMs)
  }

  /**
   * Revokes every access token of one sign-in (`sid`, the refresh-token family): on logout and
   * when a refresh token is reused. Kept for `ttlMs` (the longest access-token life plus skew).
   */
  async revokeSession(sid: string, ttlMs: number): Promise<void> {
    const id = storeId(sid)
    this.#cache?.set(`f:${id}`, { value: 1 })
    await this.#store.set(`${this.#prefix}f:${id}`, '1', Math.max(1_000, Math.ceil(ttlMs + this.#skewMs)))
  }

  /** Revokes every token of `sub` issued before `atMs` (default now): "sign out everywhere". */
  async revokeSubject(sub: string, atMs = this.#now()): Promise<void> {
    const id = storeId(sub)
    // Our tokens carry `iat` in milliseconds, so the cutoff is exact: tokens issued up to this
    // moment are revoked, those issued after it are not. (A token with a whole-second `iat`,
    // from another issuer, issued later in the same second is revoked too: the safe side.)
    const cutoff = Math.floor(atMs)
    this.#cache?.set(`s:${id}`, { value: cutoff })
    await this.#store.set(`${this.#prefix}s:${id}`, String(cutoff), this.#subjectTtlMs)
  }

  /** The moment before which every token of `sub` is revoked (0 when none); fails closed. */
  async subjectCutoff(sub: string): Promise<number> {
    try {
      return await this.#read(`s:${storeId(sub)}`)
    } catch (err) {
      this.stats.failClosed++
      throw err
    }
  }

  /**
   * The answer from the local cache: true (revoked), false (not revoked: both parts cached), or
   * undefined (ask {@link assertNotRevoked}). Lets the hot path skip a promise.
   */
  cachedRevoked(token: RevocableToken): boolean | undefined {
    if (this.#cache === undefined) return undefined
    let known = true
    if (token.jti !== undefined) {
      const j = this.#cache.get(`j:${storeId(token.jti)}`)
      if (j === undefined) known = false
      else if (j.value !== 0) return true
    }
    if (token.sid !== undefined) {
      const f = this.#cache.get(`f:${storeId(token.sid)}`)
      if (f === undefined) known = false
      else if (f.value !== 0) return true
    }
    if (token.sub !== undefined) {
      const s = this.#cache.get(`s:${storeId(token.sub)}`)
      if (s === undefined) known = false
      else if (issuedBefore(token.iat, s.value)) return true
    }
    return known ? false : undefined
  }

  /** Throws `ERR_AUTH_TOKEN_REVOKED` (401) or, when the store is unreachable, `ERR_AUTH_REVOCATION_UNAVAILABLE` (503). */
  async assertNotRevoked(token: RevocableToken): Promise<void> {
    this.stats.checks++
    let jtiRevoked: number
    let cutoff: number
    let sessionRevoked: number
    try {
      ;[jtiRevoked, cutoff, sessionRevoked] = await Promise.all([
        token.jti === undefined || token.jti === '' ? 0 : this.#read(`j:${storeId(token.jti)}`),
        token.sub === undefined || token.sub === '' ? 0 : this.#read(`s:${storeId(token.sub)}`),
        token.sid === undefined || token.sid === '' ? 0 : this.#read(`f:${storeId(token.sid)}`),
      ])
    } catch (err) {
      this.stats.failClosed++
      throw err
    }
    if (jtiRevoked !== 0 || sessionRevoked !== 0 || issuedBefore(token.iat, cutoff)) {
      this.stats.revoked++
      throw new BackbeatError('ERR_AUTH_TOKEN_REVOKED')
    }
  }

  async #read(key: string): Promise<number> {
    const cached = this.#cache?.get(key)
    if (cached !== undefined) return cached.value
    let raw: string | undefined
    try {
      raw = await withTimeout(this.#store.get(`${this.#prefix}${key}`), this.#timeoutMs, () => new Error(`revocation store did not answer within ${this.#timeoutMs} ms`))
    } catch (err) {
      throw new BackbeatError('ERR_AUTH_REVOCATION_UNAVAILABLE', { params: { reason: err instanceof Error ? err.message : String(err) }, cause: err })
    }
    const value = raw === undefined ? 0 : Number(raw) || 0
    this.#cache?.set(key, { value })
    return value
  }
}

/** Ids as store keys: short ones as they are, long or odd ones (a remote issuer's) by digest. */
function storeId(id: string): string {
  return id.length <= MAX_ID && !/[\s:]/.test(id) ? id : `#${createHash('sha256').update(id).digest('base64url')}`
}

/** Whether a token issued at `iat` (seconds, possibly fractional) falls at or before `cutoffMs`. */
function issuedBefore(iat: number | undefined, cutoffMs: number): boolean {
  return cutoffMs > 0 && Math.round((iat ?? 0) * 1000) <= cutoffMs
}
