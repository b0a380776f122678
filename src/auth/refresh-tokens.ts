import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { BackbeatError, ConfigError, type ConfigIssue, type SecurityEventSink } from '../core/index.ts'
import { withTimeout, type KeyValueStore } from '../stores/index.ts'
import type { RevocationList } from './revocation.ts'

/** Options of {@link RefreshTokenStore}. */
export interface RefreshTokenStoreOptions {
  /** Redis in production, memory when embedded. */
  store: KeyValueStore
  /** Subject-wide revocations ("sign out everywhere") also kill refresh tokens issued before them. */
  revocations?: RevocationList
  /** Lifetime of one refresh token (default 30 days); every use hands out a new one. */
  ttlMs?: number
  /** Lifetime of a family from its sign-in, however often it is rotated (default 90 days). */
  familyTtlMs?: number
  /** Key prefix (default `bb:rt:`). */
  prefix?: string
  /** Store calls slower than this fail (default 1000 ms). */
  timeoutMs?: number
  /** The longest access-token life: how long a revoked family's access tokens stay denied (default 24 h). */
  accessTokenTtlMs?: number
  securityEvents?: SecurityEventSink
  now?: () => number
}

/** What a refresh token stands for. */
export interface RefreshGrant {
  readonly userId: string
  /** All tokens rotated from one sign-in share it; reuse of any of them revokes it. */
  readonly familyId: string
  /** Space-separated scopes granted at sign-in. */
  readonly scope: string
  /** Authentication methods at sign-in (RFC 8176 `amr`: `pwd`, `otp`, ...). */
  readonly amr: readonly string[]
  /** Epoch ms of the sign-in. */
  readonly authTime: number
  /** Epoch ms when this token was issued. */
  readonly issuedAt: number
  readonly expiresAt: number
  readonly familyExpiresAt: number
}

/** Counters for metrics. */
export interface RefreshTokenStats {
  issued: number
  rotated: number
  rejected: number
  reuseDetected: number
}

/** `rt_` then 43 base64url characters: 256 random bits. */
const TOKEN = /^rt_[A-Za-z0-9_-]{43}$/

/**
 * Opaque refresh tokens with rotation and reuse detection (OAuth 2.0 Security BCP, RFC 9700
 * section 4.14): only a SHA-256 of each token is stored; every `rotate` spends the token and
 * hands out a new one in the same family; presenting a spent token again means it leaked, so
 * the whole family is revoked (the thief's and the user's copies alike), with a
 * `refresh_token_reuse` security event. Spending is atomic (`increment` on a per-token marker),
 * so two concurrent uses of one token cannot both succeed.
 *
 * @example
 * const { token } = await refreshTokens.issue({ userId, scope: 'playlist:write', amr: ['pwd'] })
 * const next = await refreshTokens.rotate(token) // next.token replaces token; token is now spent
 */
export class RefreshTokenStore {
  readonly stats: RefreshTokenStats = { issued: 0, rotated: 0, rejected: 0, reuseDetected: 0 }
  readonly #store: KeyValueStore
  readonly #revocations: RevocationList | undefined
  readonly #ttlMs: number
  readonly #familyTtlMs: number
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #accessTtlMs: number
  readonly #events: SecurityEventSink | undefined
  readonly #now: () => number

  constructor(options: RefreshTokenStoreOptions) {
    const { ttlMs = 30 * 86_400_000, familyTtlMs = 90 * 86_400_000, timeoutMs = 1_000 } = options
    const issues: ConfigIssue[] = []
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 60_000) issues.push({ path: 'ttlMs', message: 'must be an integer of at least 60000' })
    if (!Number.isSafeInteger(familyTtlMs) || familyTtlMs < ttlMs) issues.push({ path: 'familyTtlMs', message: 'must be an integer at least ttlMs' })
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) issues.push({ path: 'timeoutMs', message: 'must be a positive integer' })
    if (issues.length > 0) throw new ConfigError(issues)
    this.#store = options.store
    this.#revocations = options.revocations
    this.#ttlMs = ttlMs
    this.#familyTtlMs = familyTtlMs
    this.#prefix = options.prefix ?? 'bb:rt:'
    this.#timeoutMs = timeoutMs
    this.#accessTtlMs = options.accessTokenTtlMs ?? 86_400_000
    this.#events = options.securityEvents
    this.#now = options.now ?? Date.now
  }

  /** Starts a new family at sign-in. */
  async issue(grant: { userId: string; scope: string; amr: readonly string[]; authTime?: number }): Promise<{ token: string; grant: RefreshGrant }> {
    const now = this.#now()
    const familyExpiresAt = now + this.#familyTtlMs
    const next = await this.#write({ userId: grant.userId, familyId: randomUUID(), scope: grant.scope, amr: grant.amr, authTime: grant.authTime ?? now, issuedAt: now, expiresAt: Math.min(now + this.#ttlMs, familyExpiresAt), familyExpiresAt })
    this.stats.issued++
    return next
  }

  /**
   * Spends `token` and returns its successor. Throws `ERR_AUTH_REFRESH_TOKEN_INVALID` for an
   * unknown, expired or revoked token and `ERR_AUTH_REFRESH_TOKEN_REUSED` for a spent one (whose
   * family is then revoked). `context` goes into the reuse security event.
   */
  async rotate(token: string, context: { clientIp?: string; requestId?: string } = {}): Promise<{ token: string; grant: RefreshGrant }> {
    const grant = await this.#live(token)
    const now = this.#now()
    const spent = await this.#call(this.#store.increment(`${this.#prefix}spent:${digest(token)}`, 1, Math.max(1, grant.expiresAt - now)))
    if (spent > 1) {
      this.stats.reuseDetected++
      this.stats.rejected++
      await this.revokeFamily(grant.familyId, grant.familyExpiresAt)
      this.#events?.({
        type: 'refresh_token_reuse',
        severity: 'high',
        at: now,
        ...(context.clientIp === undefined ? {} : { clientIp: context.clientIp }),
        ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
        details: { userId: grant.userId, familyId: grant.familyId },
      })
      throw new BackbeatError('ERR_AUTH_REFRESH_TOKEN_REUSED')
    }
    const next = await this.#write({ ...grant, issuedAt: now, expiresAt: Math.min(now + this.#ttlMs, grant.familyExpiresAt) })
    this.stats.rotated++
    return next
  }

  /** What `token` stands for, without spending it; throws like {@link rotate} for a dead token. */
  async inspect(token: string): Promise<RefreshGrant> {
    const grant = await this.#live(token)
    const spent = await this.#call(this.#store.get(`${this.#prefix}spent:${digest(token)}`))
    if (spent !== undefined) throw this.#reject()
    return grant
  }

  /**
   * Revokes `token`'s family (logout); an unknown token is ignored, and so is one that belongs to
   * another user than `owner` when given (a caller signs out only their own sign-ins).
   */
  async revoke(token: string, owner?: string): Promise<void> {
    if (!TOKEN.test(token)) return
    const raw = await this.#call(this.#store.get(`${this.#prefix}t:${digest(token)}`))
    const grant = raw === undefined ? undefined : parse(raw)
    if (grant !== undefined && (owner === undefined || grant.userId === owner)) await this.revokeFamily(grant.familyId, grant.familyExpiresAt)
  }

  /**
   * Revokes every token of one family: its refresh tokens, and (with a revocation list) the
   * access tokens issued from it, which carry the family as `sid`.
   */
  async revokeFamily(familyId: string, familyExpiresAt = this.#now() + this.#familyTtlMs): Promise<void> {
    await this.#call(this.#store.set(`${this.#prefix}f:${familyId}`, '1', Math.max(1, familyExpiresAt - this.#now())))
    await this.#revocations?.revokeSession(familyId, this.#accessTtlMs)
  }

  async #live(token: string): Promise<RefreshGrant> {
    if (typeof token !== 'string' || !TOKEN.test(token)) throw this.#reject()
    const raw = await this.#call(this.#store.get(`${this.#prefix}t:${digest(token)}`))
    const grant = raw === undefined ? undefined : parse(raw)
    if (grant === undefined || grant.expiresAt <= this.#now()) throw this.#reject()
    const [familyRevoked, cutoff] = await Promise.all([
      this.#call(this.#store.get(`${this.#prefix}f:${grant.familyId}`)),
      this.#revocations === undefined ? Promise.resolve(0) : this.#revocations.subjectCutoff(grant.userId),
    ])
    if (familyRevoked !== undefined || (cutoff > 0 && grant.authTime <= cutoff)) throw this.#reject()
    return grant
  }

  async #write(grant: RefreshGrant): Promise<{ token: string; grant: RefreshGrant }> {
    const token = `rt_${randomBytes(32).toString('base64url')}`
    await this.#call(this.#store.set(`${this.#prefix}t:${digest(token)}`, JSON.stringify(grant), Math.max(1, grant.expiresAt - this.#now())))
    return { token, grant }
  }

  #reject(): BackbeatError {
    this.stats.rejected++
    return new BackbeatError('ERR_AUTH_REFRESH_TOKEN_INVALID')
  }

  /** Store failures become 503 ERR_DEPENDENCY_UNAVAILABLE: a token is never accepted unchecked. */
  async #call<T>(promise: Promise<T>): Promise<T> {
    try {
      return await withTimeout(promise, this.#timeoutMs, () => new Error(`refresh-token store did not answer within ${this.#timeoutMs} ms`))
    } catch (err) {
      if (err instanceof BackbeatError && err.status < 500) throw err
      throw new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { cause: err })
    }
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

function parse(raw: string): RefreshGrant | undefined {
  try {
    const value = JSON.parse(raw) as Partial<RefreshGrant>
    if (typeof value.userId !== 'string' || typeof value.familyId !== 'string' || typeof value.expiresAt !== 'number' || typeof value.familyExpiresAt !== 'number') return undefined
    return value as RefreshGrant
  } catch {
    return undefined
  }
}
