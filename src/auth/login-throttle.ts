import { createHash } from 'node:crypto'
import { BackbeatError, ConfigError, type ConfigIssue, type SecurityEventSink } from '../core/index.ts'
import type { KeyValueStore } from '../stores/index.ts'

/** How one dimension (account or address) locks out. */
export interface LockoutRule {
  /** Failures allowed before the first lock (default 5 per account, 20 per address). */
  freeAttempts?: number
  /** The first lock's length; each further failure doubles it (default 1 s). */
  baseLockMs?: number
  /** The longest lock (default 15 min). */
  maxLockMs?: number
  /** Failures are counted over this window from the first one (default 1 h). */
  windowMs?: number
}

/** Options of {@link LoginThrottle}. */
export interface LoginThrottleOptions {
  store: KeyValueStore
  account?: LockoutRule
  ip?: LockoutRule
  /** Key prefix in the store (default `bb:login:`). */
  prefix?: string
  securityEvents?: SecurityEventSink
  now?: () => number
}

/** Counters for metrics. */
export interface LoginThrottleStats {
  failures: number
  lockouts: number
  refused: number
}

type Rule = Required<LockoutRule>

function rule(path: string, given: LockoutRule | undefined, freeDefault: number, issues: ConfigIssue[]): Rule {
  const r: Rule = { freeAttempts: freeDefault, baseLockMs: 1_000, maxLockMs: 15 * 60_000, windowMs: 60 * 60_000, ...given }
  if (!Number.isInteger(r.freeAttempts) || r.freeAttempts < 1 || r.freeAttempts > 1_000) issues.push({ path: `${path}.freeAttempts`, message: 'must be an integer from 1 to 1000' })
  if (!Number.isInteger(r.baseLockMs) || r.baseLockMs < 1) issues.push({ path: `${path}.baseLockMs`, message: 'must be a positive integer' })
  if (!Number.isInteger(r.maxLockMs) || r.maxLockMs < r.baseLockMs) issues.push({ path: `${path}.maxLockMs`, message: 'must be an integer at least baseLockMs' })
  if (!Number.isInteger(r.windowMs) || r.windowMs < 1_000) issues.push({ path: `${path}.windowMs`, message: 'must be an integer of at least 1000' })
  return r
}

/**
 * Brute-force protection for sign-in: attempts are counted per account (before the password
 * is checked, so parallel guesses are counted too) and failures per client address; past
 * `freeAttempts` each further one locks that dimension for twice as long as the previous one
 * (capped at `maxLockMs`). Accounts that do not exist are counted exactly
 * like those that do, so a lockout does not reveal whether an account exists. Account names
 * are stored hashed. A lock raises an `auth_lockout` security event. A store that cannot be
 * reached refuses the sign-in (the store's error propagates): fail closed.
 *
 * @example
 * await throttle.check(username, ip)                  // counts the attempt; throws ERR_AUTH_LOCKED_OUT while locked
 * if (!ok) await throttle.recordFailure(username, ip)
 * else await throttle.recordSuccess(username)
 */
export class LoginThrottle {
  readonly stats: LoginThrottleStats = { failures: 0, lockouts: 0, refused: 0 }
  readonly #store: KeyValueStore
  readonly #account: Rule
  readonly #ip: Rule
  readonly #prefix: string
  readonly #events: SecurityEventSink | undefined
  readonly #now: () => number

  constructor(options: LoginThrottleOptions) {
    const issues: ConfigIssue[] = []
    this.#account = rule('account', options.account, 5, issues)
    this.#ip = rule('ip', options.ip, 20, issues)
    if (issues.length > 0) throw new ConfigError(issues)
    this.#store = options.store
    this.#prefix = options.prefix ?? 'bb:login:'
    this.#events = options.securityEvents
    this.#now = options.now ?? Date.now
  }

  #keys(account: string | undefined, ip: string | undefined): Array<{ kind: 'account' | 'ip'; id: string; rule: Rule }> {
    const keys: Array<{ kind: 'account' | 'ip'; id: string; rule: Rule }> = []
    if (account !== undefined) keys.push({ kind: 'account', id: `a:${hashAccount(account)}`, rule: this.#account })
    if (ip !== undefined) keys.push({ kind: 'ip', id: `i:${ip}`, rule: this.#ip })
    return keys
  }

  /**
   * Call before checking a password: throws `ERR_AUTH_LOCKED_OUT` (429 with Retry-After) while
   * the account or address is locked, and counts the attempt against the account BEFORE the
   * (slow) check, so concurrent guesses cannot all slip in before the first failure is
   * recorded. A success clears the count ({@link recordSuccess}).
   */
  async check(account: string | undefined, ip: string | undefined): Promise<void> {
    const now = this.#now()
    const keys = this.#keys(account, ip)
    const locks = await Promise.all(keys.map((k) => this.#store.get(`${this.#prefix}lock:${k.id}`)))
    let until = 0
    for (const lock of locks) if (lock !== undefined) until = Math.max(until, Number(lock))
    if (until > now) throw this.#refused(until, now)
    const accountKey = keys.find((k) => k.kind === 'account')
    if (accountKey !== undefined) {
      const attempts = await this.#store.increment(`${this.#prefix}fail:${accountKey.id}`, 1, accountKey.rule.windowMs)
      const lockedUntil = await this.#lockIfOver(accountKey, attempts, ip, now)
      if (lockedUntil !== undefined) throw this.#refused(lockedUntil, now)
    }
  }

  /** Counts a failed attempt against the address (the account's was counted by {@link check}). */
  async recordFailure(_account: string | undefined, ip: string | undefined): Promise<void> {
    this.stats.failures++
    if (ip === undefined) return
    const k = this.#keys(undefined, ip)[0]
    if (k === undefined) return
    const failures = await this.#store.increment(`${this.#prefix}fail:${k.id}`, 1, k.rule.windowMs)
    await this.#lockIfOver(k, failures, ip, this.#now())
  }

  /** Past the free attempts: lock for base * 2^(over - 1), capped; resolves the lock's end. */
  async #lockIfOver(k: { kind: 'account' | 'ip'; id: string; rule: Rule }, count: number, ip: string | undefined, now: number): Promise<number | undefined> {
    const over = count - k.rule.freeAttempts
    if (over <= 0) return undefined
    const lockMs = Math.min(k.rule.maxLockMs, k.rule.baseLockMs * 2 ** Math.min(over - 1, 40))
    await this.#store.set(`${this.#prefix}lock:${k.id}`, String(now + lockMs), lockMs)
    this.stats.lockouts++
    this.#events?.({
      type: 'auth_lockout',
      severity: over === 1 ? 'low' : 'medium',
      at: now,
      ...(ip === undefined ? {} : { clientIp: ip }),
      details: { dimension: k.kind, attempts: count, lockMs, ...(k.kind === 'account' ? { account: k.id.slice(2, 14) } : {}) },
    })
    return now + lockMs
  }

  #refused(until: number, now: number): BackbeatError {
    this.stats.refused++
    const retryAfterS = Math.max(1, Math.ceil((until - now) / 1000))
    return new BackbeatError('ERR_AUTH_LOCKED_OUT', { params: { retryAfterS }, headers: { 'retry-after': String(retryAfterS) } })
  }

  /** A successful sign-in clears the account's counter (the address keeps its own). */
  async recordSuccess(account: string): Promise<void> {
    const id = `a:${hashAccount(account)}`
    await Promise.all([this.#store.delete(`${this.#prefix}fail:${id}`), this.#store.delete(`${this.#prefix}lock:${id}`)])
  }
}

/** Account names are compared case-insensitively and never stored in clear. */
function hashAccount(account: string): string {
  return createHash('sha256').update(account.normalize('NFKC').toLowerCase()).digest('base64url').slice(0, 32)
}
