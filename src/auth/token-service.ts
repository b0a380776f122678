import { BackbeatError, type SecurityEventSink } from '../core/index.ts'
import type { JwtVerifier } from './jwt-verifier.ts'
import type { LoginThrottle } from './login-throttle.ts'
import type { PasswordHasher } from './passwords.ts'
import type { Rbac } from './rbac.ts'
import type { RefreshTokenStore } from './refresh-tokens.ts'
import type { RevocationList } from './revocation.ts'
import type { AccessTokenIssuer } from './token-issuer.ts'

/** An account as the token service sees it. */
export interface Account {
  readonly id: string
  /** PHC string from {@link PasswordHasher}; accounts without one cannot use the password grant. */
  readonly passwordHash?: string | undefined
  readonly roles: readonly string[]
  /** True when the account has an authenticator enrolled: the password grant then needs `otp`. */
  readonly mfaEnrolled?: boolean
}

/** Where the token service finds accounts (the application's user table). */
export interface AccountDirectory {
  /** By sign-in name (an email address, compared case-insensitively). */
  findByLogin(login: string): Promise<Account | undefined>
  findById(id: string): Promise<Account | undefined>
  /** Stores a fresh hash after a sign-in found the old parameters outdated. */
  updatePasswordHash(id: string, hash: string): Promise<void>
}

/** Checks a second factor (TOTP or a recovery code); throws `ERR_AUTH_MFA_CODE_INVALID`. */
export type SecondFactorCheck = (account: Account, code: string) => Promise<void>

/** Options of {@link TokenService}. */
export interface TokenServiceOptions {
  issuer: AccessTokenIssuer
  verifier: JwtVerifier
  refreshTokens: RefreshTokenStore
  revocations: RevocationList
  accounts: AccountDirectory
  hasher: PasswordHasher
  throttle: LoginThrottle
  /** Scopes of issued tokens are the permissions of the account's roles. */
  rbac?: Rbac
  secondFactor?: SecondFactorCheck
  /** Server-side sessions, ended with the tokens by {@link TokenService.revokeAll}. */
  sessions?: { revokeAllForUser(userId: string): Promise<number> }
  securityEvents?: SecurityEventSink
  now?: () => number
}

/** An RFC 6749 section 5.1 token response. */
export interface TokenResponse {
  readonly access_token: string
  readonly token_type: 'Bearer'
  readonly expires_in: number
  readonly refresh_token: string
  readonly scope: string
}

/** Who asks, for lockout and security events. */
export interface GrantContext {
  readonly clientIp?: string
  readonly requestId?: string
}

/**
 * The token endpoint's logic, framework-neutral: the password grant (with brute-force lockout,
 * transparent rehash and the second factor), the refresh grant (rotation with reuse detection,
 * roles re-read so a demoted account loses rights at the next refresh), logout and "sign out
 * everywhere" (deny list plus the verified-token cache). Failures never tell whether the
 * account exists: an unknown account costs the same scrypt work and counts toward the same
 * lockout as a wrong password.
 *
 * @example
 * const tokens = await service.passwordGrant({ username: 'ada@example.com', password }, { clientIp })
 * const next = await service.refreshGrant(tokens.refresh_token, { clientIp })
 */
export class TokenService {
  readonly #o: TokenServiceOptions
  readonly #now: () => number

  constructor(options: TokenServiceOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
  }

  /**
   * Checks a password (and the second factor of accounts that have one) with lockout, without
   * issuing anything: the password grant and session sign-in both start here. Resolves the
   * account and its authentication methods (`['pwd']` or `['pwd', 'otp']`).
   */
  async authenticate(credentials: { username: string; password: string; otp?: string | undefined }, context: GrantContext = {}): Promise<{ account: Account; amr: string[] }> {
    const { hasher, throttle, accounts } = this.#o
    const { username, password } = credentials
    await throttle.check(username, context.clientIp)
    const account = await accounts.findByLogin(username)
    let ok = false
    if (account?.passwordHash === undefined) {
      await hasher.verifyDummy()
    } else {
      const check = await hasher.verify(password, account.passwordHash)
      ok = check.ok
      if (ok && check.needsRehash) {
        // The upgrade is best effort: the sign-in succeeds with the old hash either way.
        await hasher.hash(password).then((hash) => accounts.updatePasswordHash(account.id, hash)).catch(() => undefined)
      }
    }
    if (!ok || account === undefined) {
      await throttle.recordFailure(username, context.clientIp)
      this.#event('auth_failure', 'low', context, { reason: 'credentials' })
      throw new BackbeatError('ERR_AUTH_CREDENTIALS_INVALID')
    }
    const amr = ['pwd']
    if (account.mfaEnrolled === true) {
      if (credentials.otp === undefined || credentials.otp === '') throw new BackbeatError('ERR_AUTH_MFA_CODE_REQUIRED')
      if (this.#o.secondFactor === undefined) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
      try {
        await this.#o.secondFactor(account, credentials.otp)
      } catch (err) {
        if (err instanceof BackbeatError && err.code === 'ERR_AUTH_MFA_CODE_INVALID') {
          await throttle.recordFailure(username, context.clientIp)
          this.#event('auth_failure', 'medium', context, { reason: 'second_factor', userId: account.id })
        }
        throw err
      }
      amr.push('otp')
    }
    await throttle.recordSuccess(username)
    return { account, amr }
  }

  async passwordGrant(credentials: { username: string; password: string; otp?: string | undefined; scope?: string | undefined }, context: GrantContext = {}): Promise<TokenResponse> {
    const { account, amr } = await this.authenticate(credentials, context)
    const authTime = this.#now()
    const scope = this.#scopeFor(account, credentials.scope === undefined || credentials.scope.trim() === '' ? undefined : credentials.scope)
    const refresh = await this.#o.refreshTokens.issue({ userId: account.id, scope, amr, authTime })
    return this.#respond(account, scope, amr, authTime, refresh.token, refresh.grant.familyId)
  }

  /**
   * Tokens for an account that proved who it is elsewhere (an OAuth provider's callback, a
   * session). `amr` names how (`['oauth']`, RFC 8176 style); no password check, no lockout.
   */
  async signInVerified(userId: string, amr: readonly string[]): Promise<TokenResponse> {
    const account = await this.#o.accounts.findById(userId)
    if (account === undefined) throw new BackbeatError('ERR_AUTH_CREDENTIALS_INVALID')
    // Another provider's sign-in is one factor: an account with MFA signs in with its code.
    if (account.mfaEnrolled === true) throw new BackbeatError('ERR_AUTH_MFA_CODE_REQUIRED')
    const authTime = this.#now()
    const scope = this.#scopeFor(account, undefined)
    const refresh = await this.#o.refreshTokens.issue({ userId: account.id, scope, amr, authTime })
    return this.#respond(account, scope, amr, authTime, refresh.token, refresh.grant.familyId)
  }

  async refreshGrant(refreshToken: string, context: GrantContext = {}): Promise<TokenResponse> {
    const next = await this.#o.refreshTokens.rotate(refreshToken, context)
    const { grant } = next
    const account = await this.#o.accounts.findById(grant.userId)
    if (account === undefined) {
      await this.#o.refreshTokens.revokeFamily(grant.familyId, grant.familyExpiresAt)
      throw new BackbeatError('ERR_AUTH_REFRESH_TOKEN_INVALID')
    }
    // Narrowed to what the roles still allow: a demotion takes effect at the next refresh.
    const scope = this.#scopeFor(account, grant.scope)
    return this.#respond(account, scope, grant.amr, grant.authTime, next.token, grant.familyId)
  }

  /** Issues a fresh access token with `mfa_time` now, after the caller passed a second factor (step-up). */
  async stepUp(
    userId: string,
    code: string,
    context: GrantContext = {},
    presented: { exp?: number | undefined; scope?: string | undefined; authTime?: number | undefined; sid?: string | undefined } = {},
  ): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }> {
    const account = await this.#o.accounts.findById(userId)
    if (account?.mfaEnrolled !== true || this.#o.secondFactor === undefined) throw new BackbeatError('ERR_AUTH_MFA_NOT_ENROLLED')
    // Codes are short: guessing them is throttled like passwords, per account and address.
    const throttleKey = `mfa:${userId}`
    await this.#o.throttle.check(throttleKey, context.clientIp)
    try {
      await this.#o.secondFactor(account, code)
    } catch (err) {
      if (err instanceof BackbeatError && err.code === 'ERR_AUTH_MFA_CODE_INVALID') {
        await this.#o.throttle.recordFailure(throttleKey, context.clientIp)
        this.#event('auth_failure', 'medium', context, { reason: 'step_up', userId })
      }
      throw err
    }
    await this.#o.throttle.recordSuccess(throttleKey)
    const now = this.#now()
    // The new token never outlives, nor outreaches, the one it was asked with: a step-up adds a
    // fresh second factor, not time or rights.
    const issued = await this.#o.issuer.issue(
      { sub: account.id, scope: this.#scopeFor(account, presented.scope ?? ''), roles: account.roles, amr: ['pwd', 'otp'], authTime: presented.authTime ?? Math.floor(now / 1000), mfaTime: Math.floor(now / 1000), ...(presented.sid === undefined ? {} : { sid: presented.sid }) },
      presented.exp === undefined ? {} : { notAfter: presented.exp },
    )
    return { access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn }
  }

  /** Logout: the access token (by `jti`) and the refresh token's whole family stop working. */
  async logout(access: { sub?: string | undefined; jti?: string | undefined; exp?: number | undefined }, refreshToken?: string): Promise<void> {
    if (access.jti !== undefined && access.exp !== undefined) {
      const { jti } = access
      await this.#o.revocations.revokeToken(jti, access.exp)
      this.#o.verifier.forget((payload) => payload.jti === jti)
    }
    // Only the caller's own sign-ins: a refresh token of someone else is ignored.
    if (refreshToken !== undefined && access.sub !== undefined) await this.#o.refreshTokens.revoke(refreshToken, access.sub)
  }

  /** Sign out everywhere (or an admin kill): every token of `userId` issued until now dies. */
  async revokeAll(userId: string): Promise<void> {
    await this.#o.revocations.revokeSubject(userId, this.#now())
    this.#o.verifier.forget((payload) => payload.sub === userId)
    await this.#o.sessions?.revokeAllForUser(userId)
  }

  async #respond(account: Account, scope: string, amr: readonly string[], authTimeMs: number, refreshToken: string, sid: string): Promise<TokenResponse> {
    const authTime = Math.floor(authTimeMs / 1000)
    const issued = await this.#o.issuer.issue({ sub: account.id, scope, roles: account.roles, amr, authTime, sid, ...(amr.includes('otp') ? { mfaTime: authTime } : {}) })
    return { access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn, refresh_token: refreshToken, scope }
  }

  /** The requested scopes the roles allow, or every permission of the roles when none were asked for. */
  #scopeFor(account: Account, requested: string | undefined): string {
    const rbac = this.#o.rbac
    if (rbac === undefined) return requested ?? ''
    if (requested !== undefined) {
      return requested.split(' ').filter((s) => s !== '' && rbac.can(account.roles, s)).join(' ')
    }
    return [...rbac.permissionsOf(account.roles)].sort().join(' ')
  }

  #event(type: string, severity: 'low' | 'medium', context: GrantContext, details: Record<string, unknown>): void {
    this.#o.securityEvents?.({
      type,
      severity,
      at: this.#now(),
      ...(context.clientIp === undefined ? {} : { clientIp: context.clientIp }),
      ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
      details,
    })
  }
}
