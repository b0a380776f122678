import { BackbeatError } from 'backbeat'
import { generateRecoveryCodes, redeemRecoveryCode, type Account, type Identity, type SecondFactorCheck, type TotpEnrolment } from 'backbeat/auth'
import type { SqlDatabase } from 'backbeat/stores'

/** Binds each sealed secret to its user: a ciphertext copied to another row does not open. */
const aad = (userId: string): string => `mfa-totp:${userId}`
const TOTP_CODE = /^\d{6}$/

interface MfaRow {
  password_hash: string | null
  mfa_secret: string | null
  mfa_pending_secret: string | null
  mfa_recovery_hashes: string[]
  email: string
}

/**
 * TOTP enrolment and checks for the music API's users: secrets sealed with the vault key
 * (AES-256-GCM) in the user row, recovery codes stored as hashes and spent atomically.
 */
export class MusicMfa {
  readonly #db: SqlDatabase
  readonly #identity: Identity

  constructor(db: SqlDatabase, identity: Identity) {
    this.#db = db
    this.#identity = identity
  }

  async #row(userId: string): Promise<MfaRow> {
    const { rows } = await this.#db.query<MfaRow>('SELECT password_hash, mfa_secret, mfa_pending_secret, mfa_recovery_hashes, email FROM users WHERE id = $1', [userId])
    const row = rows[0]
    if (row === undefined) throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'User', id: userId } })
    return row
  }

  /** Starts an enrolment: a fresh secret, kept pending (sealed) until a first code confirms it. */
  async begin(userId: string, password: string, clientIp?: string): Promise<TotpEnrolment> {
    const row = await this.#row(userId)
    // Re-authentication, throttled like sign-in: a stolen token alone must not enrol the
    // thief's authenticator (which would lock the owner out).
    const { throttle, hasher } = this.#identity
    await throttle.check(`reauth:${userId}`, clientIp)
    const check = row.password_hash === null ? (await hasher.verifyDummy(), { ok: false }) : await hasher.verify(password, row.password_hash)
    if (!check.ok) {
      await throttle.recordFailure(`reauth:${userId}`, clientIp)
      throw new BackbeatError('ERR_AUTH_CREDENTIALS_INVALID')
    }
    await throttle.recordSuccess(`reauth:${userId}`)
    if (row.mfa_secret !== null) throw new BackbeatError('ERR_AUTH_MFA_ALREADY_ENROLLED')
    const enrolment = await this.#identity.totp.enrol(row.email)
    await this.#db.query('UPDATE users SET mfa_pending_secret = $2 WHERE id = $1', [userId, this.#identity.secretBox.seal(enrolment.secret, aad(userId))])
    return enrolment
  }

  /** Confirms the pending secret with a code from the app; answers the recovery codes, shown once. */
  async confirm(userId: string, code: string): Promise<string[]> {
    const row = await this.#row(userId)
    if (row.mfa_secret !== null) throw new BackbeatError('ERR_AUTH_MFA_ALREADY_ENROLLED')
    if (row.mfa_pending_secret === null) throw new BackbeatError('ERR_AUTH_MFA_NOT_ENROLLED')
    const secret = this.#identity.secretBox.open(row.mfa_pending_secret, aad(userId))
    await this.#identity.totp.verify(userId, secret, code)
    const { codes, hashes } = generateRecoveryCodes(10)
    // Guarded on the pending secret still being the one checked: a concurrent re-enrolment loses.
    const result = await this.#db.query(
      'UPDATE users SET mfa_secret = mfa_pending_secret, mfa_pending_secret = NULL, mfa_enrolled_at = now(), mfa_recovery_hashes = $3 WHERE id = $1 AND mfa_pending_secret = $2 AND mfa_secret IS NULL',
      [userId, row.mfa_pending_secret, hashes],
    )
    if (result.rowCount !== 1) throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: 'The enrolment changed meanwhile; start again.' } })
    return [...codes]
  }

  /** Removes the second factor (the route requires a recent MFA first). */
  async remove(userId: string): Promise<void> {
    await this.#db.query("UPDATE users SET mfa_secret = NULL, mfa_pending_secret = NULL, mfa_enrolled_at = NULL, mfa_recovery_hashes = '{}' WHERE id = $1", [userId])
  }

  /** The token service's second-factor check: a TOTP code, or a recovery code spent once. */
  readonly check: SecondFactorCheck = async (account: Account, code: string) => {
    const row = await this.#row(account.id)
    if (row.mfa_secret === null) throw new BackbeatError('ERR_AUTH_MFA_NOT_ENROLLED')
    if (TOTP_CODE.test(code)) {
      await this.#identity.totp.verify(account.id, this.#identity.secretBox.open(row.mfa_secret, aad(account.id)), code)
      return
    }
    const redeemed = code.length <= 32 ? redeemRecoveryCode(row.mfa_recovery_hashes, code) : undefined
    if (redeemed === undefined) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
    // Spent atomically: of two requests with the same code, one removes it and the other finds it gone.
    const spent = await this.#db.query('UPDATE users SET mfa_recovery_hashes = array_remove(mfa_recovery_hashes, $2) WHERE id = $1 AND $2 = ANY(mfa_recovery_hashes)', [account.id, redeemed.hash])
    if (spent.rowCount !== 1) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
  }
}
