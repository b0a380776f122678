import { BackbeatError } from '../core/index.ts'
import { migrate, type Migration, type SqlDatabase, type SqlExecutor } from '../stores/index.ts'

/**
 * What an admin may see of an API key: everything but the secret and its hash. Times are
 * epoch milliseconds; an optional field is absent (never `undefined`) when unset.
 */
export interface ApiKeyRecord {
  /** Public identifier (`ak_` + 12 base62), safe to log and to show in URLs. */
  readonly id: string
  readonly name: string
  /** The user the key acts for. */
  readonly owner: string
  readonly scopes: readonly string[]
  readonly createdAt: number
  /** The key fails from this instant on; absent means it never expires. */
  readonly expiresAt?: number
  /** Approximate: written at most once per `lastUsedWriteIntervalMs` per key. */
  readonly lastUsedAt?: number
  readonly revokedAt?: number
  /** The key this one replaced by rotation. */
  readonly rotatedFrom?: string
  /** The key that replaced this one; set once, a key is rotated at most once. */
  readonly rotatedTo?: string
  /** A policy name the rate limiter may key on (the per-key rate-limit policy hook). */
  readonly rateLimitPolicy?: string
  /** Recognisable without the secret: the prefix, 4 characters after it and the last 4 (`bb_live_AbCd...9xYz`). */
  readonly hint: string
}

/** A record as stored: with the key's hash, which only the store and the service ever see. */
export interface StoredApiKey extends ApiKeyRecord {
  /** SHA-256 (or HMAC-SHA-256 with the pepper) of the whole key, base64url. */
  readonly hash: string
}

/** One page of {@link ApiKeyStore.list}. */
export interface ApiKeyListQuery {
  /** Only this user's keys. */
  readonly owner?: string
  /** Page size; the service bounds it. */
  readonly limit: number
  /** Continue after this key id (the last of the previous page); an unknown id gives an empty page. */
  readonly after?: string
}

/**
 * Where API keys live. Small and async so Postgres, PGlite or anything else can hold them;
 * every implementation must pass `describeApiKeyStore` from `backbeat/testing`. Records
 * handed out are copies: mutating one never changes the store.
 *
 * @example
 * const store: ApiKeyStore = new MemoryApiKeyStore()
 * await store.insert(stored)
 * const found = await store.findByHash(stored.hash)
 */
export interface ApiKeyStore {
  /** Adds a key; `ERR_RESOURCE_CONFLICT` when its id or hash is already taken. */
  insert(key: StoredApiKey): Promise<void>
  /** The key with exactly this hash, revoked and expired ones included. */
  findByHash(hash: string): Promise<StoredApiKey | undefined>
  get(id: string): Promise<ApiKeyRecord | undefined>
  /** Keys ordered by `createdAt`, then `id` (oldest first), at most `limit` of them. */
  list(query: ApiKeyListQuery): Promise<ApiKeyRecord[]>
  /** Sets `revokedAt` unless already set (the first revocation time stays); undefined for an unknown id. */
  revoke(id: string, at: number): Promise<ApiKeyRecord | undefined>
  /**
   * In one atomic step: inserts `replacement`, marks `id` as rotated to it and lowers its
   * `expiresAt` to `oldExpiresAt` (an earlier expiry stays). Does nothing and resolves
   * undefined unless `id` exists, is not revoked, has not expired at `now` and was never
   * rotated; so two concurrent rotations of one key cannot both succeed.
   */
  rotate(id: string, replacement: StoredApiKey, options: { readonly oldExpiresAt: number; readonly now: number }): Promise<ApiKeyRecord | undefined>
  /** Records a use at `at`; `lastUsedAt` never moves backwards. Unknown ids are ignored. */
  touch(id: string, at: number): Promise<void>
}

/**
 * {@link ApiKeyStore} in process memory, for tests and single-process embedded use: keys are
 * lost on restart.
 *
 * @example
 * const service = new ApiKeyService({ store: new MemoryApiKeyStore() })
 */
export class MemoryApiKeyStore implements ApiKeyStore {
  readonly #byId = new Map<string, StoredApiKey>()
  readonly #idByHash = new Map<string, string>()

  async insert(key: StoredApiKey): Promise<void> {
    this.#insert(key)
  }

  async findByHash(hash: string): Promise<StoredApiKey | undefined> {
    const id = this.#idByHash.get(hash)
    const found = id === undefined ? undefined : this.#byId.get(id)
    return found === undefined ? undefined : copy(found)
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const found = this.#byId.get(id)
    return found === undefined ? undefined : withoutHash(found)
  }

  async list(query: ApiKeyListQuery): Promise<ApiKeyRecord[]> {
    let keys = [...this.#byId.values()]
    if (query.owner !== undefined) keys = keys.filter((k) => k.owner === query.owner)
    keys.sort(byCreation)
    if (query.after !== undefined) {
      const after = this.#byId.get(query.after)
      if (after === undefined) return []
      keys = keys.filter((k) => byCreation(k, after) > 0)
    }
    return keys.slice(0, query.limit).map(withoutHash)
  }

  async revoke(id: string, at: number): Promise<ApiKeyRecord | undefined> {
    const found = this.#byId.get(id)
    if (found === undefined) return undefined
    const next = found.revokedAt === undefined ? { ...found, revokedAt: at } : found
    this.#byId.set(id, next)
    return withoutHash(next)
  }

  async rotate(id: string, replacement: StoredApiKey, options: { readonly oldExpiresAt: number; readonly now: number }): Promise<ApiKeyRecord | undefined> {
    const found = this.#byId.get(id)
    if (found === undefined || found.revokedAt !== undefined || found.rotatedTo !== undefined) return undefined
    if (found.expiresAt !== undefined && found.expiresAt <= options.now) return undefined
    this.#insert(replacement)
    const expiresAt = found.expiresAt === undefined ? options.oldExpiresAt : Math.min(found.expiresAt, options.oldExpiresAt)
    const next: StoredApiKey = { ...found, rotatedTo: replacement.id, expiresAt }
    this.#byId.set(id, next)
    return withoutHash(next)
  }

  async touch(id: string, at: number): Promise<void> {
    const found = this.#byId.get(id)
    if (found === undefined || (found.lastUsedAt !== undefined && found.lastUsedAt >= at)) return
    this.#byId.set(id, { ...found, lastUsedAt: at })
  }

  #insert(key: StoredApiKey): void {
    if (this.#byId.has(key.id)) throw conflict(`an API key with id ${key.id} already exists`)
    if (this.#idByHash.has(key.hash)) throw conflict('an API key with this hash already exists')
    const stored = copy(key)
    this.#byId.set(stored.id, stored)
    this.#idByHash.set(stored.hash, stored.id)
  }
}

const COLUMNS = 'id, hash, name, owner, scopes, hint, created_at, expires_at, last_used_at, revoked_at, rotated_from, rotated_to, rate_limit_policy'

/**
 * The schema of {@link SqlApiKeyStore}, applied by {@link SqlApiKeyStore.migrate} with its
 * own bookkeeping table (`backbeat_api_keys_migrations`), so it never interferes with the
 * application's migrations. Append, never edit.
 */
export const API_KEY_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_api_keys',
    sql: `CREATE TABLE backbeat_api_keys (
  id                text COLLATE "C" PRIMARY KEY,
  hash              text NOT NULL,
  name              text NOT NULL,
  owner             text NOT NULL,
  scopes            text[] NOT NULL DEFAULT '{}',
  hint              text NOT NULL,
  created_at        timestamptz NOT NULL,
  expires_at        timestamptz,
  last_used_at      timestamptz,
  revoked_at        timestamptz,
  rotated_from      text,
  rotated_to        text,
  rate_limit_policy text
);
CREATE UNIQUE INDEX backbeat_api_keys_hash_idx ON backbeat_api_keys (hash);
CREATE INDEX backbeat_api_keys_owner_idx ON backbeat_api_keys (owner, created_at, id);
CREATE INDEX backbeat_api_keys_created_idx ON backbeat_api_keys (created_at, id);`,
  },
]

interface ApiKeyRow {
  id: string
  hash: string
  name: string
  owner: string
  scopes: string[]
  hint: string
  created_at: Date | string
  expires_at: Date | string | null
  last_used_at: Date | string | null
  revoked_at: Date | string | null
  rotated_from: string | null
  rotated_to: string | null
  rate_limit_policy: string | null
}

/**
 * {@link ApiKeyStore} in the `backbeat_api_keys` table of a {@link SqlDatabase}: the same SQL
 * on Postgres and on embedded PGlite, so the CLI and every server instance share the keys.
 * Lookups go through a unique index on the hash. Call {@link migrate} once before use (the
 * constructor does no I/O).
 *
 * @example
 * const store = new SqlApiKeyStore(stores.sql)
 * await store.migrate()
 * const service = new ApiKeyService({ store, pepper: process.env.API_KEY_PEPPER })
 */
export class SqlApiKeyStore implements ApiKeyStore {
  readonly #db: SqlDatabase

  constructor(db: SqlDatabase) {
    this.#db = db
  }

  /** Creates or upgrades the table; safe to run from several instances at once. Resolves the migration ids applied. */
  migrate(): Promise<string[]> {
    return migrate(this.#db, API_KEY_MIGRATIONS, { table: 'backbeat_api_keys_migrations' })
  }

  async insert(key: StoredApiKey): Promise<void> {
    await insertRow(this.#db, key)
  }

  async findByHash(hash: string): Promise<StoredApiKey | undefined> {
    const { rows } = await this.#db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM backbeat_api_keys WHERE hash = $1`, [hash])
    const row = rows[0]
    return row === undefined ? undefined : fromRow(row)
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM backbeat_api_keys WHERE id = $1`, [id])
    const row = rows[0]
    return row === undefined ? undefined : withoutHash(fromRow(row))
  }

  async list(query: ApiKeyListQuery): Promise<ApiKeyRecord[]> {
    // Keyset pagination: the row comparison uses the (owner, created_at, id) index, and an
    // unknown `after` id makes the subquery NULL, so the page is empty rather than restarting.
    // `id` is COLLATE "C" so ties sort by code point, as in every other store.
    const { rows } = await this.#db.query<ApiKeyRow>(
      `SELECT ${COLUMNS} FROM backbeat_api_keys
        WHERE ($1::text IS NULL OR owner = $1)
          AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at, id FROM backbeat_api_keys WHERE id = $2))
        ORDER BY created_at, id
        LIMIT $3`,
      [query.owner ?? null, query.after ?? null, query.limit],
    )
    return rows.map((row) => withoutHash(fromRow(row)))
  }

  async revoke(id: string, at: number): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#db.query<ApiKeyRow>(
      `UPDATE backbeat_api_keys SET revoked_at = COALESCE(revoked_at, $2::timestamptz) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, iso(at)],
    )
    const row = rows[0]
    return row === undefined ? undefined : withoutHash(fromRow(row))
  }

  async rotate(id: string, replacement: StoredApiKey, options: { readonly oldExpiresAt: number; readonly now: number }): Promise<ApiKeyRecord | undefined> {
    return this.#db.transaction(async (tx) => {
      // The row lock taken by UPDATE makes a concurrent rotation wait, then re-check
      // `rotated_to IS NULL` on the committed row and match nothing: one rotation wins.
      const { rows } = await tx.query<ApiKeyRow>(
        `UPDATE backbeat_api_keys SET rotated_to = $2, expires_at = LEAST(expires_at, $3::timestamptz)
          WHERE id = $1 AND rotated_to IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4::timestamptz)
          RETURNING ${COLUMNS}`,
        [id, replacement.id, iso(options.oldExpiresAt), iso(options.now)],
      )
      const row = rows[0]
      if (row === undefined) return undefined
      await insertRow(tx, replacement)
      return withoutHash(fromRow(row))
    })
  }

  async touch(id: string, at: number): Promise<void> {
    await this.#db.query(
      'UPDATE backbeat_api_keys SET last_used_at = $2::timestamptz WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz)',
      [id, iso(at)],
    )
  }
}

async function insertRow(db: SqlExecutor, key: StoredApiKey): Promise<void> {
  try {
    await db.query(
      `INSERT INTO backbeat_api_keys (${COLUMNS})
       VALUES ($1, $2, $3, $4, $5::text[], $6, $7::timestamptz, $8::timestamptz, $9::timestamptz, $10::timestamptz, $11, $12, $13)`,
      [
        key.id,
        key.hash,
        key.name,
        key.owner,
        [...key.scopes],
        key.hint,
        iso(key.createdAt),
        optionalIso(key.expiresAt),
        optionalIso(key.lastUsedAt),
        optionalIso(key.revokedAt),
        key.rotatedFrom ?? null,
        key.rotatedTo ?? null,
        key.rateLimitPolicy ?? null,
      ],
    )
  } catch (err) {
    // 23505 unique_violation: the id or the hash exists (both 2^-70 or less by chance).
    if (err instanceof BackbeatError && err.params.sqlState === '23505') throw conflict(`an API key with id ${key.id} or the same hash already exists`, err)
    throw err
  }
}

function fromRow(row: ApiKeyRow): StoredApiKey {
  return {
    id: row.id,
    hash: row.hash,
    name: row.name,
    owner: row.owner,
    scopes: [...row.scopes],
    hint: row.hint,
    createdAt: epochMs(row.created_at),
    ...(row.expires_at === null ? {} : { expiresAt: epochMs(row.expires_at) }),
    ...(row.last_used_at === null ? {} : { lastUsedAt: epochMs(row.last_used_at) }),
    ...(row.revoked_at === null ? {} : { revokedAt: epochMs(row.revoked_at) }),
    ...(row.rotated_from === null ? {} : { rotatedFrom: row.rotated_from }),
    ...(row.rotated_to === null ? {} : { rotatedTo: row.rotated_to }),
    ...(row.rate_limit_policy === null ? {} : { rateLimitPolicy: row.rate_limit_policy }),
  }
}

/** Both engines return `timestamptz` as a Date; a string is accepted in case a driver changes that. */
function epochMs(value: Date | string): number {
  return (value instanceof Date ? value : new Date(value)).getTime()
}

// ISO strings rather than Date parameters: pg would render a Date in the process's local
// time zone, and timestamptz keeps the milliseconds exactly either way.
function iso(ms: number): string {
  return new Date(ms).toISOString()
}

function optionalIso(ms: number | undefined): string | null {
  return ms === undefined ? null : iso(ms)
}

function byCreation(a: ApiKeyRecord, b: ApiKeyRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

function copy(key: StoredApiKey): StoredApiKey {
  return { ...key, scopes: [...key.scopes] }
}

/** A record without its hash: what leaves the store through get, list, revoke and rotate. */
function withoutHash(key: StoredApiKey): ApiKeyRecord {
  const { hash: _hash, ...record } = key
  return { ...record, scopes: [...record.scopes] }
}

function conflict(reason: string, cause?: unknown): BackbeatError {
  return new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason }, ...(cause === undefined ? {} : { cause }) })
}
