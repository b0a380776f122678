import type { Account, AccountDirectory, PasswordHasher } from 'backbeat/auth'
import type { SqlDatabase } from 'backbeat/stores'
import { demoCatalogue } from './seed.ts'

/** The password of every demo account (documented in the README; demo data only). */
export const DEMO_PASSWORD = 'backbeat-demo-2026'

/** Seeded demo accounts: the first three seeded users, one per role. */
export const DEMO_ACCOUNTS: ReadonlyArray<{ readonly email: string; readonly roles: readonly string[] }> = (() => {
  const users = demoCatalogue().users
  const roles = [['listener'], ['curator'], ['admin']]
  return roles.map((r, i) => ({ email: (users[i] as { email: string }).email, roles: r }))
})()

const ACCOUNTS_SEED = 'demo-accounts-v1'

interface AccountRow {
  id: string
  password_hash: string | null
  roles: string[]
  mfa_enrolled_at: string | Date | null
}

const toAccount = (row: AccountRow): Account => ({ id: row.id, passwordHash: row.password_hash ?? undefined, roles: row.roles, mfaEnrolled: row.mfa_enrolled_at !== null })

/**
 * The user table as the token service's account directory: sign-in by email (compared
 * case-insensitively, as the unique index does), roles, and whether a second factor is enrolled.
 */
export class MusicAccounts implements AccountDirectory {
  readonly #db: SqlDatabase

  constructor(db: SqlDatabase) {
    this.#db = db
  }

  async findByLogin(login: string): Promise<Account | undefined> {
    if (login.length > 320) return undefined
    const { rows } = await this.#db.query<AccountRow>('SELECT id, password_hash, roles, mfa_enrolled_at FROM users WHERE lower(email) = lower($1)', [login])
    return rows[0] === undefined ? undefined : toAccount(rows[0])
  }

  async findById(id: string): Promise<Account | undefined> {
    const { rows } = await this.#db.query<AccountRow>('SELECT id, password_hash, roles, mfa_enrolled_at FROM users WHERE id = $1', [id])
    return rows[0] === undefined ? undefined : toAccount(rows[0])
  }

  async updatePasswordHash(id: string, hash: string): Promise<void> {
    await this.#db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [id, hash])
  }

  async setRoles(id: string, roles: readonly string[]): Promise<void> {
    await this.#db.query('UPDATE users SET roles = $2 WHERE id = $1', [id, [...roles]])
  }
}

/**
 * Gives the demo accounts their password and roles, once per database (recorded in
 * `music_seeds`, like the catalogue).
 */
export async function seedDemoAccounts(db: SqlDatabase, hasher: PasswordHasher): Promise<boolean> {
  const done = await db.query('SELECT 1 FROM music_seeds WHERE name = $1', [ACCOUNTS_SEED])
  if (done.rowCount > 0) return false
  // Hashed before the transaction: scrypt is slow on purpose and must not hold the lock.
  const hashes = await Promise.all(DEMO_ACCOUNTS.map(() => hasher.hash(DEMO_PASSWORD)))
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('music.seed:' || current_schema(), 0))")
    const again = await tx.query('SELECT 1 FROM music_seeds WHERE name = $1', [ACCOUNTS_SEED])
    if (again.rowCount > 0) return false
    for (const [i, account] of DEMO_ACCOUNTS.entries()) {
      await tx.query('UPDATE users SET password_hash = $2, roles = $3 WHERE lower(email) = lower($1)', [account.email, hashes[i], [...account.roles]])
    }
    await tx.query('INSERT INTO music_seeds (name) VALUES ($1)', [ACCOUNTS_SEED])
    return true
  })
}
