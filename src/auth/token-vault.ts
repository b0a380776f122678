import { hash, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { BackbeatError, ConfigError, delay, parseOptions, systemClock, type Clock, type SecurityEventSink } from '../core/index.ts'
import { migrate, type KeyValueStore, type Migration, type SqlDatabase } from '../stores/index.ts'
import type { OAuthTokens, RefreshedTokens } from './oauth2-client.ts'
import type { SecretBox } from './secret-box.ts'

/** One stored entry: who, which provider, and the sealed tokens. */
export interface VaultRow {
  readonly userId: string
  readonly provider: string
  readonly sealed: string
}

/** Where a {@link VaultStore.list} page starts after (exclusive), in (userId, provider) order. */
export interface VaultCursor {
  readonly userId: string
  readonly provider: string
}

/**
 * Storage for sealed provider tokens, one value per (userId, provider). The vault encrypts
 * before it stores, so a store only ever sees ciphertext. `swap` and the conditional `delete`
 * compare the whole sealed value, so a writer that read an older entry never overwrites a
 * newer one (a refresh racing a new sign-in, a lazy re-encryption racing a refresh).
 *
 * @example
 * const store: VaultStore = new MemoryVaultStore()
 * await store.put('user-7', 'spotify', box.seal(json, 'user-7/spotify'))
 */
export interface VaultStore {
  get(userId: string, provider: string): Promise<string | undefined>
  /** Inserts or replaces. */
  put(userId: string, provider: string, sealed: string): Promise<void>
  /** Replaces the value only if it is still `expected`; resolves whether it did. */
  swap(userId: string, provider: string, expected: string, next: string): Promise<boolean>
  /** Deletes (only while the value is still `expected`, when given); resolves whether it did. */
  delete(userId: string, provider: string, expected?: string): Promise<boolean>
  /** Up to `limit` rows after `after`, ordered by userId then provider (in an order the store keeps stable, for paging). */
  list(after: VaultCursor | undefined, limit: number): Promise<VaultRow[]>
  close(): Promise<void>
}

/**
 * The embedded {@link VaultStore}: a map in process memory, for one instance and for tests.
 *
 * @example const vault = new TokenVault({ store: new MemoryVaultStore(), box, clients: { spotify } })
 */
export class MemoryVaultStore implements VaultStore {
  readonly #rows = new Map<string, VaultRow>()

  get(userId: string, provider: string): Promise<string | undefined> {
    return Promise.resolve(this.#rows.get(rowKey(userId, provider))?.sealed)
  }

  put(userId: string, provider: string, sealed: string): Promise<void> {
    this.#rows.set(rowKey(userId, provider), { userId, provider, sealed })
    return Promise.resolve()
  }

  swap(userId: string, provider: string, expected: string, next: string): Promise<boolean> {
    const key = rowKey(userId, provider)
    if (this.#rows.get(key)?.sealed !== expected) return Promise.resolve(false)
    this.#rows.set(key, { userId, provider, sealed: next })
    return Promise.resolve(true)
  }

  delete(userId: string, provider: string, expected?: string): Promise<boolean> {
    const key = rowKey(userId, provider)
    const row = this.#rows.get(key)
    if (row === undefined || (expected !== undefined && row.sealed !== expected)) return Promise.resolve(false)
    return Promise.resolve(this.#rows.delete(key))
  }

  list(after: VaultCursor | undefined, limit: number): Promise<VaultRow[]> {
    const rows = [...this.#rows.values()].filter((r) => after === undefined || compareRows(r, after) > 0).sort(compareRows)
    return Promise.resolve(rows.slice(0, limit))
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

const TABLE = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * The {@link VaultStore} on a SQL database (Postgres, or PGlite embedded), in the table
 * `backbeat_provider_tokens` created by {@link SqlVaultStore.migrate}. The database is the
 * caller's: `close` leaves it open.
 *
 * @example
 * const store = new SqlVaultStore({ db })
 * await store.migrate()
 */
export class SqlVaultStore implements VaultStore {
  readonly table: string
  readonly #db: SqlDatabase

  constructor(options: { db: SqlDatabase; table?: string }) {
    const table = options.table ?? 'backbeat_provider_tokens'
    if (!TABLE.test(table)) throw new ConfigError([{ path: 'vault.table', message: 'must be a lowercase SQL identifier (a-z, 0-9, _)' }])
    this.table = table
    this.#db = options.db
  }

  /**
   * The schema, as migrations for `migrate` from `backbeat/stores`.
   *
   * @example await migrate(db, [...SqlVaultStore.migrations(), ...appMigrations])
   */
  static migrations(table = 'backbeat_provider_tokens'): Migration[] {
    return [
      {
        id: `auth_vault_0001_${table}`,
        sql: `CREATE TABLE IF NOT EXISTS ${table} (
  user_id text COLLATE "C" NOT NULL,
  provider text COLLATE "C" NOT NULL,
  sealed text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, provider)
)`,
      },
    ]
  }

  /** Creates the table when missing (idempotent; safe when instances start together). */
  async migrate(): Promise<string[]> {
    return migrate(this.#db, SqlVaultStore.migrations(this.table))
  }

  async get(userId: string, provider: string): Promise<string | undefined> {
    const { rows } = await this.#db.query<{ sealed: string }>(`SELECT sealed FROM ${this.table} WHERE user_id = $1 AND provider = $2`, [userId, provider])
    return rows[0]?.sealed
  }

  async put(userId: string, provider: string, sealed: string): Promise<void> {
    await this.#db.query(
      `INSERT INTO ${this.table} (user_id, provider, sealed) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, provider) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()`,
      [userId, provider, sealed],
    )
  }

  async swap(userId: string, provider: string, expected: string, next: string): Promise<boolean> {
    const { rowCount } = await this.#db.query(`UPDATE ${this.table} SET sealed = $4, updated_at = now() WHERE user_id = $1 AND provider = $2 AND sealed = $3`, [userId, provider, expected, next])
    return rowCount === 1
  }

  async delete(userId: string, provider: string, expected?: string): Promise<boolean> {
    const { rowCount } =
      expected === undefined
        ? await this.#db.query(`DELETE FROM ${this.table} WHERE user_id = $1 AND provider = $2`, [userId, provider])
        : await this.#db.query(`DELETE FROM ${this.table} WHERE user_id = $1 AND provider = $2 AND sealed = $3`, [userId, provider, expected])
    return rowCount === 1
  }

  async list(after: VaultCursor | undefined, limit: number): Promise<VaultRow[]> {
    // The key columns use the "C" collation, so this walks the primary key index in the same
    // order on every server, whatever the database's locale.
    const { rows } =
      after === undefined
        ? await this.#db.query<{ user_id: string; provider: string; sealed: string }>(`SELECT user_id, provider, sealed FROM ${this.table} ORDER BY user_id, provider LIMIT $1`, [limit])
        : await this.#db.query<{ user_id: string; provider: string; sealed: string }>(
            `SELECT user_id, provider, sealed FROM ${this.table} WHERE (user_id, provider) > ($1, $2) ORDER BY user_id, provider LIMIT $3`,
            [after.userId, after.provider, limit],
          )
    return rows.map((r) => ({ userId: r.user_id, provider: r.provider, sealed: r.sealed }))
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

/** What the vault holds for one (user, provider). */
export interface StoredTokens {
  readonly accessToken: string
  readonly tokenType: string
  readonly refreshToken?: string
  /** Epoch milliseconds; absent when the provider gave no lifetime (never refreshed proactively). */
  readonly expiresAt?: number
  readonly scopes: readonly string[]
  /** When these tokens were stored, epoch milliseconds. */
  readonly updatedAt: number
}

/** What the vault needs of a provider client: {@link OAuth2Client} fits. */
export interface TokenRefresher {
  refresh(refreshToken: string): Promise<RefreshedTokens>
  /** The client's request timeout; the lock TTL must outlast it. */
  readonly timeoutMs?: number
}

/** The result of {@link TokenVault.rotateAll}. */
export interface RotationReport {
  scanned: number
  rotated: number
  /** Entries that could not be opened (unknown key version, tampered), left as they are. */
  failed: Array<{ userId: string; provider: string; code: string }>
}

const vaultOptionsSchema = z.strictObject({
  /** Refresh when the access token expires within this long. */
  refreshSkewMs: z.number().int().min(0).max(3_600_000).default(60_000),
  /** Lifetime of the cross-instance refresh lock; must outlast one refresh (the client's timeout). */
  lockTtlMs: z.number().int().min(1_000).max(600_000).default(30_000),
  /** How long a caller waits for another instance's refresh before giving up (default lockTtlMs + 5 s). */
  lockWaitMs: z.number().int().min(0).max(600_000).optional(),
  /** Interval between looks at the lock while another instance refreshes. */
  lockPollMs: z.number().int().min(5).max(10_000).default(100),
  /** Prefix of lock keys in the lock store. */
  lockKeyPrefix: z.string().max(64).default('backbeat:vault-lock:'),
})

/** Options of {@link TokenVault}. */
export type TokenVaultOptions = z.input<typeof vaultOptionsSchema> & {
  store: VaultStore
  box: SecretBox
  /** Provider name (`spotify`) to the client that refreshes its tokens. */
  clients: Readonly<Record<string, TokenRefresher>>
  /**
   * Shared store for the cross-instance refresh lock (Redis when several instances run).
   * Without it only refreshes within this process are deduplicated.
   */
  lock?: KeyValueStore
  now?: Clock
  /** Receives `provider_grant_revoked` when a provider refuses a refresh token. */
  securityEvents?: SecurityEventSink
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
const MAX_USER_ID = 255
const PAYLOAD_VERSION = 1

interface Payload {
  v: number
  at: string
  tt: string
  rt?: string
  exp?: number
  scp: string[]
  upd: number
}

interface Loaded {
  sealed: string
  tokens: StoredTokens
}

/**
 * Provider tokens (Spotify's access and refresh tokens) encrypted at rest per (userId,
 * provider) with a {@link SecretBox}, the row identity bound as associated data.
 *
 * {@link accessToken} answers a valid access token, refreshing it first when it expires within
 * `refreshSkewMs`. Rotating refresh tokens must never be spent twice (the provider would
 * revoke the whole grant), so there is one refresh in flight per (user, provider): callers in
 * this process share one promise, and instances share a lock in a `KeyValueStore`
 * (`increment(key, 1, ttl) === 1` acquires; the others poll, and re-read the entry before
 * taking the lock, so a refresh another instance finished is used, not repeated). The rotated
 * refresh token is stored before the new access token is returned. A refused refresh token
 * (`invalid_grant`) deletes the entry and throws `ERR_AUTH_PROVIDER_RELINK_REQUIRED`.
 *
 * Entries sealed with an older key version are re-sealed when read (lazy rotation);
 * {@link rotateAll} re-seals the rest in pages.
 *
 * A lock store that fails makes refreshes fail (the error propagates) rather than risk a
 * double spend; access tokens that are still valid keep being served.
 *
 * @example
 * const vault = new TokenVault({ store: new SqlVaultStore({ db }), box, clients: { spotify }, lock: redisKv })
 * await vault.save(user.id, 'spotify', tokens)
 * const token = await vault.accessToken(user.id, 'spotify')
 */
export class TokenVault {
  readonly #store: VaultStore
  readonly #box: SecretBox
  readonly #clients: ReadonlyMap<string, TokenRefresher>
  readonly #lock: KeyValueStore | undefined
  readonly #now: Clock
  readonly #events: SecurityEventSink | undefined
  readonly #skewMs: number
  readonly #lockTtlMs: number
  readonly #lockPollMs: number
  readonly #lockAttempts: number
  readonly #lockPrefix: string
  readonly #inflight = new Map<string, Promise<StoredTokens>>()

  constructor(options: TokenVaultOptions) {
    const { store, box, clients, lock, now, securityEvents, ...rest } = options
    const parsed = parseOptions('vault', vaultOptionsSchema, rest)
    const issues: Array<{ path: string; message: string }> = []
    const given = clients as unknown
    const entries = typeof given === 'object' && given !== null ? Object.entries(given as Record<string, TokenRefresher>) : []
    if (entries.length === 0) issues.push({ path: 'vault.clients', message: 'must name at least one provider client' })
    for (const [name, client] of entries) {
      if (!PROVIDER_NAME.test(name)) issues.push({ path: `vault.clients.${name}`, message: 'provider names are lower-case tokens like spotify' })
      else if (typeof client.refresh !== 'function') issues.push({ path: `vault.clients.${name}`, message: 'must have a refresh(refreshToken) method' })
      // The lock must outlive the slowest refresh, or a second instance could take it while
      // the first still holds a spendable refresh token.
      else if (lock !== undefined && client.timeoutMs !== undefined && parsed.lockTtlMs < client.timeoutMs * 2) {
        issues.push({ path: 'vault.lockTtlMs', message: `must be at least twice the ${name} client's timeout (${client.timeoutMs} ms)` })
      }
    }
    const lockWaitMs = parsed.lockWaitMs ?? parsed.lockTtlMs + 5_000
    if (lock !== undefined && lockWaitMs < parsed.lockTtlMs) issues.push({ path: 'vault.lockWaitMs', message: 'must be at least lockTtlMs, so a lock left by a crashed instance expires while callers wait' })
    if (issues.length > 0) throw new ConfigError(issues)
    this.#store = store
    this.#box = box
    this.#clients = new Map(entries)
    this.#lock = lock
    this.#now = now ?? systemClock
    this.#events = securityEvents
    this.#skewMs = parsed.refreshSkewMs
    this.#lockTtlMs = parsed.lockTtlMs
    this.#lockPollMs = parsed.lockPollMs
    this.#lockAttempts = Math.max(1, Math.ceil(lockWaitMs / parsed.lockPollMs))
    this.#lockPrefix = parsed.lockKeyPrefix
  }

  /** Stores (or replaces) the tokens of a sign-in. */
  async save(userId: string, provider: string, tokens: OAuthTokens | StoredTokens): Promise<void> {
    this.#check(userId, provider)
    const stored: StoredTokens = {
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      ...(tokens.refreshToken === undefined ? {} : { refreshToken: tokens.refreshToken }),
      ...(tokens.expiresAt === undefined ? {} : { expiresAt: tokens.expiresAt }),
      scopes: [...tokens.scopes],
      updatedAt: this.#now(),
    }
    await this.#store.put(userId, provider, this.#seal(userId, provider, stored))
  }

  /** The stored tokens, decrypted (re-sealed with the current key when older), or undefined. */
  async get(userId: string, provider: string): Promise<StoredTokens | undefined> {
    this.#check(userId, provider)
    return (await this.#load(userId, provider))?.tokens
  }

  /**
   * A valid access token for the user at the provider, refreshed first when it expires within
   * `refreshSkewMs`. Throws `ERR_AUTH_PROVIDER_RELINK_REQUIRED` when nothing is stored, when it
   * expired without a refresh token, or when the provider refused the refresh token.
   *
   * Pass `rejected`, the token the provider's API just answered 401 to, to refresh early: only
   * while the vault still holds that very token, so callers that all saw the same 401 cause
   * one refresh between them.
   *
   * @example
   * let token = await vault.accessToken(userId, 'spotify')
   * if ((await callSpotify(token)).status === 401) token = await vault.accessToken(userId, 'spotify', { rejected: token })
   */
  async accessToken(userId: string, provider: string, options: { rejected?: string } = {}): Promise<string> {
    this.#check(userId, provider)
    this.#clientFor(provider)
    const loaded = await this.#load(userId, provider)
    if (loaded === undefined) throw relink(provider)
    if (this.#fresh(loaded.tokens, options.rejected)) return loaded.tokens.accessToken
    return (await this.#refreshOnce(userId, provider, options.rejected)).accessToken
  }

  /** Forgets the user's tokens at the provider (unlink); resolves whether there were any. */
  async delete(userId: string, provider: string): Promise<boolean> {
    this.#check(userId, provider)
    return this.#store.delete(userId, provider)
  }

  /**
   * Re-seals every entry sealed with an older key version, `batchSize` rows at a time, so the
   * old version can be removed afterwards. Entries changed meanwhile are left to the writer
   * (they are sealed with the current key already).
   */
  async rotateAll(options: { batchSize?: number } = {}): Promise<RotationReport> {
    const batchSize = options.batchSize ?? 100
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new ConfigError([{ path: 'vault.rotateAll.batchSize', message: 'must be an integer from 1 to 10000' }])
    const report: RotationReport = { scanned: 0, rotated: 0, failed: [] }
    let after: VaultCursor | undefined
    for (;;) {
      const rows = await this.#store.list(after, batchSize)
      for (const row of rows) {
        report.scanned++
        try {
          if (!this.#box.needsRotation(row.sealed)) continue
          const next = this.#box.reseal(row.sealed, aad(row.userId, row.provider))
          if (await this.#store.swap(row.userId, row.provider, row.sealed, next)) report.rotated++
        } catch (err) {
          if (!(err instanceof BackbeatError)) throw err
          report.failed.push({ userId: row.userId, provider: row.provider, code: err.code })
        }
      }
      const last = rows.at(-1)
      if (last === undefined || rows.length < batchSize) return report
      after = { userId: last.userId, provider: last.provider }
    }
  }

  /** Usable as is: not within the skew of expiry, and not the token the caller saw refused. */
  #fresh(tokens: StoredTokens, rejected?: string): boolean {
    if (rejected !== undefined && sameSecret(tokens.accessToken, rejected)) return false
    return tokens.expiresAt === undefined || tokens.expiresAt - this.#skewMs > this.#now()
  }

  #refreshOnce(userId: string, provider: string, rejected: string | undefined): Promise<StoredTokens> {
    const key = rowKey(userId, provider)
    let flight = this.#inflight.get(key)
    if (flight === undefined) {
      flight = this.#refreshAcrossInstances(userId, provider, rejected).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, flight)
    }
    return flight
  }

  async #refreshAcrossInstances(userId: string, provider: string, rejected: string | undefined): Promise<StoredTokens> {
    const lock = this.#lock
    if (lock === undefined) return this.#refreshHoldingLock(userId, provider, rejected)
    const lockKey = this.#lockPrefix + hash('sha256', `${provider}\0${userId}`, 'base64url')
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        // Another instance held the lock: if it refreshed meanwhile, use its tokens.
        const current = await this.#load(userId, provider)
        if (current === undefined) throw relink(provider)
        if (this.#fresh(current.tokens, rejected)) return current.tokens
      }
      if ((await lock.increment(lockKey, 1, this.#lockTtlMs)) === 1) {
        try {
          return await this.#refreshHoldingLock(userId, provider, rejected)
        } finally {
          // A failed release is harmless: the TTL frees the lock.
          await lock.delete(lockKey).catch(() => undefined)
        }
      }
      if (attempt + 1 >= this.#lockAttempts) {
        throw new BackbeatError('ERR_DEPENDENCY_TIMEOUT', { params: { dependency: 'vault refresh lock', reason: `another instance held the ${provider} refresh lock for too long` } })
      }
      await delay(this.#lockPollMs)
    }
  }

  async #refreshHoldingLock(userId: string, provider: string, rejected: string | undefined): Promise<StoredTokens> {
    // Re-read under the lock: the holder before us may have refreshed already.
    const loaded = await this.#load(userId, provider)
    if (loaded === undefined) throw relink(provider)
    if (this.#fresh(loaded.tokens, rejected)) return loaded.tokens
    const { refreshToken } = loaded.tokens
    if (refreshToken === undefined) {
      await this.#store.delete(userId, provider, loaded.sealed)
      throw relink(provider)
    }
    let refreshed: RefreshedTokens
    try {
      refreshed = await this.#clientFor(provider).refresh(refreshToken)
    } catch (err) {
      if (err instanceof BackbeatError && err.code === 'ERR_AUTH_PROVIDER_RELINK_REQUIRED') {
        await this.#store.delete(userId, provider, loaded.sealed)
        this.#events?.({ type: 'provider_grant_revoked', severity: 'low', at: this.#now(), details: { provider } })
      }
      throw err
    }
    const next: StoredTokens = {
      accessToken: refreshed.accessToken,
      tokenType: refreshed.tokenType,
      // Providers that do not rotate (Spotify, usually) keep the refresh token valid.
      refreshToken: refreshed.refreshToken ?? refreshToken,
      ...(refreshed.expiresAt === undefined ? {} : { expiresAt: refreshed.expiresAt }),
      scopes: [...(refreshed.scopes ?? loaded.tokens.scopes)],
      updatedAt: this.#now(),
    }
    // Persist the rotated refresh token before anyone sees the new access token: losing it
    // would strand the grant. A failed swap means a newer sign-in replaced (or an unlink
    // removed) the entry while we refreshed; that entry wins.
    const swapped = await this.#store.swap(userId, provider, loaded.sealed, this.#seal(userId, provider, next))
    if (!swapped && (await this.#store.get(userId, provider)) === undefined) throw relink(provider)
    return next
  }

  async #load(userId: string, provider: string): Promise<Loaded | undefined> {
    const sealed = await this.#store.get(userId, provider)
    if (sealed === undefined) return undefined
    const tokens = this.#open(userId, provider, sealed)
    if (!this.#box.needsRotation(sealed)) return { sealed, tokens }
    // Lazy rotation; a lost race or a store hiccup only postpones it to the next read.
    const resealed = this.#seal(userId, provider, tokens)
    try {
      if (await this.#store.swap(userId, provider, sealed, resealed)) return { sealed: resealed, tokens }
    } catch {
      // The read itself succeeded; serve it.
    }
    return { sealed, tokens }
  }

  #seal(userId: string, provider: string, tokens: StoredTokens): string {
    const payload: Payload = {
      v: PAYLOAD_VERSION,
      at: tokens.accessToken,
      tt: tokens.tokenType,
      ...(tokens.refreshToken === undefined ? {} : { rt: tokens.refreshToken }),
      ...(tokens.expiresAt === undefined ? {} : { exp: tokens.expiresAt }),
      scp: [...tokens.scopes],
      upd: tokens.updatedAt,
    }
    return this.#box.seal(JSON.stringify(payload), aad(userId, provider))
  }

  #open(userId: string, provider: string, sealed: string): StoredTokens {
    const payload = JSON.parse(this.#box.open(sealed, aad(userId, provider))) as Partial<Payload>
    if (payload.v !== PAYLOAD_VERSION || typeof payload.at !== 'string' || typeof payload.tt !== 'string' || !Array.isArray(payload.scp) || typeof payload.upd !== 'number') {
      throw new BackbeatError('ERR_INTERNAL', { params: { reason: `vault entry of ${provider} has an unknown layout` } })
    }
    return {
      accessToken: payload.at,
      tokenType: payload.tt,
      ...(typeof payload.rt === 'string' ? { refreshToken: payload.rt } : {}),
      ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp } : {}),
      scopes: payload.scp.filter((s): s is string => typeof s === 'string'),
      updatedAt: payload.upd,
    }
  }

  #clientFor(provider: string): TokenRefresher {
    const client = this.#clients.get(provider)
    if (client === undefined) throw new ConfigError([{ path: `vault.clients.${provider}`, message: 'no client is configured for this provider' }])
    return client
  }

  #check(userId: string, provider: string): void {
    if (typeof userId !== 'string' || userId === '' || userId.length > MAX_USER_ID) throw new TypeError(`userId must be a string of 1 to ${MAX_USER_ID} characters`)
    if (typeof provider !== 'string' || !PROVIDER_NAME.test(provider)) throw new TypeError('provider must be a lower-case provider name like spotify')
  }
}

/** The row identity, authenticated with every sealed entry so rows cannot be swapped. */
function aad(userId: string, provider: string): string {
  return `backbeat.vault\0${provider}\0${userId}`
}

function relink(provider: string): BackbeatError {
  return new BackbeatError('ERR_AUTH_PROVIDER_RELINK_REQUIRED', { params: { provider } })
}

function sameSecret(a: string, b: string): boolean {
  // Equal-length digests, so the comparison time says nothing about the tokens.
  return timingSafeEqual(Buffer.from(hash('sha256', a, 'base64url')), Buffer.from(hash('sha256', b, 'base64url')))
}

function rowKey(userId: string, provider: string): string {
  return `${provider}\0${userId}`
}

function compareRows(a: VaultCursor, b: VaultCursor): number {
  if (a.userId !== b.userId) return a.userId < b.userId ? -1 : 1
  if (a.provider !== b.provider) return a.provider < b.provider ? -1 : 1
  return 0
}
