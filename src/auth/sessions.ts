import { hash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { z } from 'zod'
import { BackbeatError, ConfigError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import { withTimeout, type RedisConnection } from '../stores/index.ts'

// ── Session IDs ─────────────────────────────────────────────────────────────────

/** Random bytes per session ID: 256 bits, twice OWASP's 128-bit minimum. */
const SESSION_ID_BYTES = 32

/**
 * 32 bytes in canonical unpadded base64url: 43 characters, the last of which carries 4 data
 * bits and 2 zero bits. Anything else is refused before it reaches a store.
 */
const CANONICAL_32_BYTES = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

/**
 * True when `value` has the shape of a session ID (or a session handle): 43 characters of
 * canonical base64url. Cheap enough to run on every cookie before any lookup.
 *
 * @example isSessionId(request.cookies.bb_session) // false for 'garbage'
 */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && value.length === 43 && CANONICAL_32_BYTES.test(value)
}

/**
 * What a store keys a session on: SHA-256 of its ID, base64url. A dump of the store (or a
 * "your devices" list, which shows handles) therefore holds nothing that can be replayed as a
 * cookie.
 *
 * @example const handle = sessionHandle(session.id)
 */
export function sessionHandle(id: string): string {
  return hash('sha256', id, 'base64url')
}

function newSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url')
}

// ── Records and the store contract ──────────────────────────────────────────────

/** What a store holds for one session (never the session ID itself). Times are epoch ms. */
export interface SessionRecord {
  readonly userId: string
  /** The user's roles when the session was created or last rotated (a snapshot, for display and cheap checks). */
  readonly roles?: readonly string[]
  readonly createdAt: number
  /** Last time the session was used, to within the manager's touch interval. */
  readonly lastSeenAt: number
  /** The session ends here unless it is used again (slides on use, never past `absoluteExpiresAt`). */
  readonly idleExpiresAt: number
  /** The session ends here whatever happens. */
  readonly absoluteExpiresAt: number
  /** Time of the last multi-factor authentication in this session, for step-up checks. */
  readonly mfaAt?: number
  /** Client hints for the "your devices" list. */
  readonly userAgent?: string
  readonly ip?: string
  /** Application data (JSON-serialisable). */
  readonly data: Readonly<Record<string, unknown>>
}

/** A record together with the handle it is stored under. */
export interface StoredSession {
  readonly handle: string
  readonly record: SessionRecord
}

/**
 * Where sessions live, keyed by handle (SHA-256 of the session ID), with an index per user.
 * Every method is one atomic operation on the store; `ttlMs` is how long the store keeps the
 * record (the manager enforces the exact idle and absolute expiry itself).
 */
export interface SessionStore {
  /** `memory`, `redis`, ...: reported in errors and logs. */
  readonly kind: string
  /**
   * Stores a new session and indexes it under its user. When the user already holds
   * `maxPerUser` sessions, those closest to expiry are deleted first. Returns how many were.
   */
  create(handle: string, record: SessionRecord, ttlMs: number, maxPerUser: number): Promise<number>
  get(handle: string): Promise<SessionRecord | undefined>
  /** Replaces a session that still exists; never brings back one that was deleted. */
  update(handle: string, record: SessionRecord, ttlMs: number): Promise<boolean>
  /** Moves a session to a new handle: the old one is gone the moment the new one exists. False when `from` is gone. */
  rename(from: string, to: string, record: SessionRecord, ttlMs: number): Promise<boolean>
  delete(handle: string): Promise<boolean>
  /** The user's live sessions, in no particular order. */
  listByUser(userId: string): Promise<StoredSession[]>
  /** Deletes every session of the user except `except`; returns how many it deleted. */
  deleteByUser(userId: string, except?: string): Promise<number>
  close(): Promise<void>
}

const MAX_USER_ID_LENGTH = 256
const MAX_ROLES = 100
const MAX_ROLE_LENGTH = 128
const MAX_USER_AGENT_LENGTH = 512
const MAX_IP_LENGTH = 64

/**
 * The one serialisation of a record, shared by the stores: fixed member order, absent
 * optional members left out, so the Redis scripts can rely on `userId` being there.
 */
export function encodeSessionRecord(record: SessionRecord): string {
  return JSON.stringify({
    userId: record.userId,
    roles: record.roles,
    createdAt: record.createdAt,
    lastSeenAt: record.lastSeenAt,
    idleExpiresAt: record.idleExpiresAt,
    absoluteExpiresAt: record.absoluteExpiresAt,
    mfaAt: record.mfaAt,
    userAgent: record.userAgent,
    ip: record.ip,
    data: record.data,
  })
}

/**
 * Parses what {@link encodeSessionRecord} wrote; undefined for anything else (a corrupted or
 * foreign value is treated as no session, never as a crash or a half-valid session).
 */
export function decodeSessionRecord(json: string): SessionRecord | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    return undefined
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined
  const r = raw as Record<string, unknown>
  const times = [r.createdAt, r.lastSeenAt, r.idleExpiresAt, r.absoluteExpiresAt]
  if (!isUserId(r.userId) || !times.every(isTime)) return undefined
  if (r.roles !== undefined && !isRoles(r.roles)) return undefined
  if (r.mfaAt !== undefined && !isTime(r.mfaAt)) return undefined
  if (r.userAgent !== undefined && typeof r.userAgent !== 'string') return undefined
  if (r.ip !== undefined && typeof r.ip !== 'string') return undefined
  if (typeof r.data !== 'object' || r.data === null || Array.isArray(r.data)) return undefined
  return Object.freeze({
    userId: r.userId,
    ...(r.roles === undefined ? {} : { roles: Object.freeze([...r.roles]) }),
    createdAt: r.createdAt as number,
    lastSeenAt: r.lastSeenAt as number,
    idleExpiresAt: r.idleExpiresAt as number,
    absoluteExpiresAt: r.absoluteExpiresAt as number,
    ...(r.mfaAt === undefined ? {} : { mfaAt: r.mfaAt }),
    ...(r.userAgent === undefined ? {} : { userAgent: r.userAgent }),
    ...(r.ip === undefined ? {} : { ip: r.ip }),
    data: Object.freeze(r.data as Record<string, unknown>),
  })
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isUserId(value: unknown): value is string {
  // No control characters: user IDs end up in Redis key names and log lines.
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_USER_ID_LENGTH && !/\p{Cc}/u.test(value)
}

function isRoles(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.length <= MAX_ROLES && value.every((r) => typeof r === 'string' && r.length > 0 && r.length <= MAX_ROLE_LENGTH)
}

// ── The manager ─────────────────────────────────────────────────────────────────

/** A live session as the application sees it. `id` is the secret that goes in the cookie. */
export interface Session extends SessionRecord {
  readonly id: string
  /** SHA-256 of `id`: names the session in lists without revealing it. */
  readonly handle: string
}

/** One entry of a user's session list ("your devices"); carries the handle, never the ID. */
export interface SessionInfo extends SessionRecord {
  readonly handle: string
  /** True for the session the list was asked from. */
  readonly current: boolean
}

/** What a new session starts with. */
export interface SessionMeta {
  roles?: readonly string[]
  userAgent?: string
  ip?: string
  data?: Readonly<Record<string, unknown>>
  /** The user has just passed a multi-factor check: sets `mfaAt` to now. */
  mfa?: boolean
}

/** What a rotation may change besides the ID. */
export interface SessionChanges {
  roles?: readonly string[]
  data?: Readonly<Record<string, unknown>>
  /** A multi-factor check just passed (step-up): sets `mfaAt` to now. */
  mfa?: boolean
  /** The user signed in again: `createdAt` and the absolute timeout start over. */
  reauthenticated?: boolean
  userAgent?: string
  ip?: string
}

/** Counters for metrics. */
export interface SessionStats {
  /** Store calls that failed or timed out (each surfaced as 503 `ERR_DEPENDENCY_UNAVAILABLE`). */
  storeErrors: number
  /** Idle-expiry slides that could not be written (the session stays valid until its stored expiry). */
  touchErrors: number
}

const MAX_DURATION_MS = 2_147_483_647

const managerSchema = z
  .strictObject({
    idleTimeoutMs: z.number().int().min(1_000).max(MAX_DURATION_MS).default(30 * 60_000),
    absoluteTimeoutMs: z.number().int().min(1_000).max(MAX_DURATION_MS).default(12 * 3_600_000),
    touchIntervalMs: z.number().int().min(0).max(MAX_DURATION_MS).optional(),
    operationTimeoutMs: z.number().int().min(1).max(60_000).default(1_000),
    maxSessionsPerUser: z.number().int().min(1).max(10_000).default(50),
    maxDataBytes: z.number().int().min(0).max(1_048_576).default(8_192),
  })
  .refine((o) => o.idleTimeoutMs <= o.absoluteTimeoutMs, { message: 'must not exceed absoluteTimeoutMs', path: ['idleTimeoutMs'] })
  .refine((o) => o.touchIntervalMs === undefined || o.touchIntervalMs < o.idleTimeoutMs, { message: 'must be shorter than idleTimeoutMs', path: ['touchIntervalMs'] })

/** Options of {@link SessionManager}; durations in milliseconds. */
export type SessionManagerOptions = z.input<typeof managerSchema> & {
  /** {@link RedisSessionStore} in production, {@link MemorySessionStore} when embedded. */
  store: SessionStore
  /**
   * How often a session's idle expiry is written back while it is in use (default a quarter
   * of `idleTimeoutMs`, at most 60 s). Between writes the session can expire up to this much
   * earlier than `idleTimeoutMs` after its last use, never later.
   */
  touchIntervalMs?: number
  /** A store call slower than this fails with 503 (default 1000). */
  operationTimeoutMs?: number
  now?: Clock
}

/**
 * Server-side sessions: 256-bit random IDs (the store keys on their SHA-256), idle and
 * absolute timeouts, a new ID on every login and privilege change, per-user lists and
 * "sign out other devices". Framework-neutral; `sessionPlugin` puts it behind a cookie.
 *
 * Store failures and slow answers fail closed: the call rejects with 503
 * `ERR_DEPENDENCY_UNAVAILABLE` within `operationTimeoutMs`, so nobody is treated as signed in
 * on a guess.
 *
 * @example
 * const sessions = new SessionManager({ store: new RedisSessionStore(redis) })
 * const session = await sessions.create('user-42', { roles: ['admin'], userAgent, ip })
 * const again = await sessions.get(session.id)          // slides the idle timeout
 * const rotated = await sessions.rotate(session.id, { mfa: true }) // old ID dead at once
 */
export class SessionManager {
  readonly idleTimeoutMs: number
  readonly absoluteTimeoutMs: number
  readonly touchIntervalMs: number
  readonly stats: SessionStats = { storeErrors: 0, touchErrors: 0 }
  readonly #store: SessionStore
  readonly #now: Clock
  readonly #operationTimeoutMs: number
  readonly #maxPerUser: number
  readonly #maxDataBytes: number

  constructor(options: SessionManagerOptions) {
    const { store, now, ...rest } = options
    const issues = []
    if (!isSessionStore(store)) issues.push({ path: 'sessions.store', message: 'must be a SessionStore' })
    if (now !== undefined && typeof now !== 'function') issues.push({ path: 'sessions.now', message: 'must be a function returning epoch milliseconds' })
    if (issues.length > 0) throw new ConfigError(issues)
    const parsed = parseOptions('sessions', managerSchema, rest)
    this.idleTimeoutMs = parsed.idleTimeoutMs
    this.absoluteTimeoutMs = parsed.absoluteTimeoutMs
    this.touchIntervalMs = parsed.touchIntervalMs ?? Math.min(60_000, Math.floor(parsed.idleTimeoutMs / 4))
    this.#operationTimeoutMs = parsed.operationTimeoutMs
    this.#maxPerUser = parsed.maxSessionsPerUser
    this.#maxDataBytes = parsed.maxDataBytes
    this.#store = store
    this.#now = now ?? systemClock
  }

  /** Starts a session for `userId` with a fresh ID. */
  async create(userId: string, meta: SessionMeta = {}): Promise<Session> {
    assertUserId(userId)
    const now = this.#now()
    const record = this.#checked({
      userId,
      ...(meta.roles === undefined ? {} : { roles: meta.roles }),
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: now + this.idleTimeoutMs,
      absoluteExpiresAt: now + this.absoluteTimeoutMs,
      ...(meta.mfa === true ? { mfaAt: now } : {}),
      ...hints(meta),
      data: meta.data ?? {},
    })
    const id = newSessionId()
    const handle = sessionHandle(id)
    await this.#guard('create', () => this.#store.create(handle, record, ttlOf(record, now), this.#maxPerUser))
    return sessionOf(id, handle, record)
  }

  /**
   * The live session with this ID, or undefined when the ID is malformed, unknown, revoked or
   * past its idle or absolute timeout. Slides the idle timeout, writing at most once per
   * `touchIntervalMs`. Rejects with 503 when the store cannot answer.
   */
  async get(id: string): Promise<Session | undefined> {
    const found = await this.#load(id)
    if (found === undefined) return undefined
    const { handle, record, now } = found
    if (now - record.lastSeenAt < this.touchIntervalMs) return sessionOf(id, handle, record)
    const touched = this.#slid(record, now)
    try {
      // Written only if the session still exists: a revocation racing this request wins.
      const alive = await this.#guard('touch', () => this.#store.update(handle, touched, ttlOf(touched, now)))
      return alive ? sessionOf(id, handle, touched) : undefined
    } catch {
      // The read just succeeded, so the session is valid; its stored expiry simply did not slide.
      this.stats.touchErrors++
      return sessionOf(id, handle, record)
    }
  }

  /**
   * Gives the session a new ID and kills the old one in the same store operation. Call it on
   * every login and privilege change (role change, MFA step-up). Undefined when the session is
   * gone, or when a concurrent rotation of the same ID won.
   */
  async rotate(id: string, changes: SessionChanges = {}): Promise<Session | undefined> {
    const found = await this.#load(id)
    if (found === undefined) return undefined
    const { handle, record, now } = found
    const restart = changes.reauthenticated === true
    const absoluteExpiresAt = restart ? now + this.absoluteTimeoutMs : record.absoluteExpiresAt
    const next = this.#checked({
      ...record,
      ...(changes.roles === undefined ? {} : { roles: changes.roles }),
      ...(changes.data === undefined ? {} : { data: changes.data }),
      ...(changes.mfa === true ? { mfaAt: now } : {}),
      ...hints(changes),
      createdAt: restart ? now : record.createdAt,
      lastSeenAt: now,
      idleExpiresAt: Math.min(now + this.idleTimeoutMs, absoluteExpiresAt),
      absoluteExpiresAt,
    })
    const newId = newSessionId()
    const newHandle = sessionHandle(newId)
    const moved = await this.#guard('rotate', () => this.#store.rename(handle, newHandle, next, ttlOf(next, now)))
    return moved ? sessionOf(newId, newHandle, next) : undefined
  }

  /** Records a passed multi-factor check (step-up) and rotates the ID, as for any privilege change. */
  markMfa(id: string): Promise<Session | undefined> {
    return this.rotate(id, { mfa: true })
  }

  /** Replaces the session's application data (not a privilege change: the ID stays). */
  async setData(id: string, data: Readonly<Record<string, unknown>>): Promise<Session | undefined> {
    const found = await this.#load(id)
    if (found === undefined) return undefined
    const { handle, record, now } = found
    const next = this.#checked({ ...this.#slid(record, now), data })
    const alive = await this.#guard('update', () => this.#store.update(handle, next, ttlOf(next, now)))
    return alive ? sessionOf(id, handle, next) : undefined
  }

  /** Ends the session ("sign out"). False when it was already gone or the ID is malformed. */
  async revoke(id: string): Promise<boolean> {
    if (!isSessionId(id)) return false
    const handle = sessionHandle(id)
    return this.#guard('revoke', () => this.#store.delete(handle))
  }

  /**
   * Ends one of `userId`'s sessions by the handle shown in {@link listForUser}. False when
   * the handle is unknown or belongs to somebody else (so a user can only end their own).
   */
  async revokeByHandle(userId: string, handle: string): Promise<boolean> {
    if (!isSessionId(handle)) return false
    const record = await this.#guard('get', () => this.#store.get(handle))
    if (record?.userId !== userId) return false
    return this.#guard('revoke', () => this.#store.delete(handle))
  }

  /** The user's live sessions, most recently used first ("your sessions"). */
  async listForUser(userId: string, options: { currentId?: string } = {}): Promise<SessionInfo[]> {
    assertUserId(userId)
    const current = options.currentId !== undefined && isSessionId(options.currentId) ? sessionHandle(options.currentId) : undefined
    const stored = await this.#guard('list', () => this.#store.listByUser(userId))
    const now = this.#now()
    return stored
      .filter(({ record }) => record.userId === userId && now < record.idleExpiresAt && now < record.absoluteExpiresAt)
      .map(({ handle, record }) => Object.freeze({ ...record, handle, current: handle === current }))
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt)
  }

  /** Ends every session of the user but `except` ("sign out other devices"); returns how many. */
  async revokeAllForUser(userId: string, options: { except?: string } = {}): Promise<number> {
    assertUserId(userId)
    const except = options.except !== undefined && isSessionId(options.except) ? sessionHandle(options.except) : undefined
    return this.#guard('revokeAll', () => this.#store.deleteByUser(userId, except))
  }

  /** Reads and checks a session without touching it; undefined when it is not live. */
  async #load(id: string): Promise<{ handle: string; record: SessionRecord; now: number } | undefined> {
    if (!isSessionId(id)) return undefined
    const handle = sessionHandle(id)
    const record = await this.#guard('get', () => this.#store.get(handle))
    if (record === undefined) return undefined
    const now = this.#now()
    if (now >= record.idleExpiresAt || now >= record.absoluteExpiresAt) {
      // The store's TTL would drop it soon anyway; deleting now keeps lists exact.
      await this.#guard('revoke', () => this.#store.delete(handle)).catch(() => undefined)
      return undefined
    }
    return { handle, record, now }
  }

  #slid(record: SessionRecord, now: number): SessionRecord {
    return { ...record, lastSeenAt: now, idleExpiresAt: Math.min(now + this.idleTimeoutMs, record.absoluteExpiresAt) }
  }

  /** Validates what the application put in a record (programming errors, so TypeError). */
  #checked(record: SessionRecord): SessionRecord {
    if (record.roles !== undefined && !isRoles(record.roles)) throw new TypeError(`roles must be at most ${MAX_ROLES} non-empty strings of at most ${MAX_ROLE_LENGTH} characters`)
    const data: unknown = record.data
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new TypeError('session data must be a plain object')
    const bytes = Buffer.byteLength(JSON.stringify(data))
    if (bytes > this.#maxDataBytes) throw new TypeError(`session data is ${bytes} bytes of JSON; the limit (maxDataBytes) is ${this.#maxDataBytes}`)
    return record
  }

  /** Runs one store call with the timeout; every failure becomes a 503 (fail closed). */
  #guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    let pending: Promise<T>
    try {
      pending = call()
    } catch (err) {
      pending = Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    const ms = this.#operationTimeoutMs
    return withTimeout(pending, ms, () => new Error(`no answer within ${ms} ms`)).catch((err: unknown) => {
      this.stats.storeErrors++
      throw new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', {
        params: { store: `sessions:${this.#store.kind}`, operation, reason: reasonOf(err) },
        headers: { 'retry-after': '1' },
        cause: err,
      })
    })
  }
}

/** The store's own reason when it gave one (a wrapped Redis error), else the message. */
function reasonOf(err: unknown): string {
  if (err instanceof BackbeatError && typeof err.params.reason === 'string') return err.params.reason
  return err instanceof Error ? err.message : String(err)
}

function isSessionStore(value: unknown): value is SessionStore {
  if (typeof value !== 'object' || value === null) return false
  const store = value as Record<string, unknown>
  return ['create', 'get', 'update', 'rename', 'delete', 'listByUser', 'deleteByUser', 'close'].every((m) => typeof store[m] === 'function')
}

function assertUserId(userId: unknown): asserts userId is string {
  if (!isUserId(userId)) throw new TypeError(`userId must be 1 to ${MAX_USER_ID_LENGTH} characters without control characters`)
}

/** Client hints, bounded so a huge User-Agent cannot bloat the store. */
function hints(from: { userAgent?: string; ip?: string }): { userAgent?: string; ip?: string } {
  return {
    ...(from.userAgent === undefined ? {} : { userAgent: from.userAgent.slice(0, MAX_USER_AGENT_LENGTH) }),
    ...(from.ip === undefined ? {} : { ip: from.ip.slice(0, MAX_IP_LENGTH) }),
  }
}

function ttlOf(record: SessionRecord, now: number): number {
  return Math.max(1, Math.min(record.idleExpiresAt, record.absoluteExpiresAt) - now)
}

function sessionOf(id: string, handle: string, record: SessionRecord): Session {
  return Object.freeze({ ...record, id, handle })
}

// ── Memory store ────────────────────────────────────────────────────────────────

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /** Most sessions held; past it the oldest are dropped (default 100,000). */
  maxSessions?: number
  /** How often expired sessions are swept (default 60 s; 0 disables the timer, for tests). */
  sweepIntervalMs?: number
  /** Time source for expiry; pass a fake clock in tests. */
  now?: Clock
}

interface MemoryEntry {
  /** Serialised, as a remote store would hold it: callers never share a mutable object. */
  readonly json: string
  readonly userId: string
  readonly expiresAt: number
}

/**
 * Sessions in this process, for one instance or tests. Operations are synchronous under the
 * hood, hence atomic; expiry follows the injected clock.
 *
 * @example
 * const store = new MemorySessionStore({ now: () => fakeNow, sweepIntervalMs: 0 })
 * const sessions = new SessionManager({ store, now: () => fakeNow })
 */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory'
  readonly #sessions = new Map<string, MemoryEntry>()
  readonly #byUser = new Map<string, Set<string>>()
  readonly #max: number
  readonly #now: Clock
  readonly #timer: NodeJS.Timeout | undefined

  constructor(options: MemorySessionStoreOptions = {}) {
    const { maxSessions = 100_000, sweepIntervalMs = 60_000 } = options
    const issues = []
    if (!Number.isInteger(maxSessions) || maxSessions < 1) issues.push({ path: 'maxSessions', message: 'must be a positive integer' })
    if (!Number.isInteger(sweepIntervalMs) || sweepIntervalMs < 0) issues.push({ path: 'sweepIntervalMs', message: 'must be an integer of at least 0' })
    if (issues.length > 0) throw new ConfigError(issues)
    this.#max = maxSessions
    this.#now = options.now ?? systemClock
    if (sweepIntervalMs > 0) {
      this.#timer = setInterval(() => this.sweep(), sweepIntervalMs)
      this.#timer.unref()
    }
  }

  create(handle: string, record: SessionRecord, ttlMs: number, maxPerUser: number): Promise<number> {
    const now = this.#now()
    const owned = [...this.#userSet(record.userId)].flatMap((h) => {
      const entry = this.#live(h, now)
      return entry === undefined ? [] : [{ h, expiresAt: entry.expiresAt }]
    })
    let evicted = 0
    if (owned.length >= maxPerUser) {
      owned.sort((a, b) => a.expiresAt - b.expiresAt)
      for (const { h } of owned.slice(0, owned.length - maxPerUser + 1)) evicted += this.#remove(h) ? 1 : 0
    }
    if (!this.#sessions.has(handle) && this.#sessions.size >= this.#max) this.#evictOldest()
    this.#put(handle, record, ttlMs, now)
    return Promise.resolve(evicted)
  }

  get(handle: string): Promise<SessionRecord | undefined> {
    const entry = this.#live(handle, this.#now())
    return Promise.resolve(entry === undefined ? undefined : decodeSessionRecord(entry.json))
  }

  update(handle: string, record: SessionRecord, ttlMs: number): Promise<boolean> {
    const now = this.#now()
    if (this.#live(handle, now) === undefined) return Promise.resolve(false)
    this.#put(handle, record, ttlMs, now)
    return Promise.resolve(true)
  }

  rename(from: string, to: string, record: SessionRecord, ttlMs: number): Promise<boolean> {
    const now = this.#now()
    if (this.#live(from, now) === undefined) return Promise.resolve(false)
    this.#remove(from)
    this.#put(to, record, ttlMs, now)
    return Promise.resolve(true)
  }

  delete(handle: string): Promise<boolean> {
    const live = this.#live(handle, this.#now()) !== undefined
    this.#remove(handle)
    return Promise.resolve(live)
  }

  listByUser(userId: string): Promise<StoredSession[]> {
    const now = this.#now()
    const out: StoredSession[] = []
    for (const handle of this.#byUser.get(userId) ?? []) {
      const entry = this.#live(handle, now)
      const record = entry === undefined ? undefined : decodeSessionRecord(entry.json)
      if (record !== undefined) out.push({ handle, record })
    }
    return Promise.resolve(out)
  }

  deleteByUser(userId: string, except?: string): Promise<number> {
    const now = this.#now()
    let deleted = 0
    for (const handle of [...(this.#byUser.get(userId) ?? [])]) {
      if (handle === except) continue
      if (this.#live(handle, now) !== undefined) deleted++
      this.#remove(handle)
    }
    return Promise.resolve(deleted)
  }

  /** Drops expired sessions; runs on a timer, callable directly. Returns how many it dropped. */
  sweep(): number {
    const now = this.#now()
    let dropped = 0
    for (const [handle, entry] of this.#sessions) {
      if (entry.expiresAt <= now) {
        this.#remove(handle)
        dropped++
      }
    }
    return dropped
  }

  /** Sessions held, expired ones not yet swept included. */
  get size(): number {
    return this.#sessions.size
  }

  close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#sessions.clear()
    this.#byUser.clear()
    return Promise.resolve()
  }

  #live(handle: string, now: number): MemoryEntry | undefined {
    const entry = this.#sessions.get(handle)
    if (entry === undefined) return undefined
    if (entry.expiresAt > now) return entry
    this.#remove(handle)
    return undefined
  }

  #put(handle: string, record: SessionRecord, ttlMs: number, now: number): void {
    this.#remove(handle)
    this.#sessions.set(handle, { json: encodeSessionRecord(record), userId: record.userId, expiresAt: now + ttlMs })
    this.#userSet(record.userId).add(handle)
  }

  #remove(handle: string): boolean {
    const entry = this.#sessions.get(handle)
    if (entry === undefined) return false
    this.#sessions.delete(handle)
    const set = this.#byUser.get(entry.userId)
    set?.delete(handle)
    if (set?.size === 0) this.#byUser.delete(entry.userId)
    return true
  }

  #userSet(userId: string): Set<string> {
    let set = this.#byUser.get(userId)
    if (set === undefined) {
      set = new Set()
      this.#byUser.set(userId, set)
    }
    return set
  }

  #evictOldest(): void {
    // Insertion order is creation/last-write order: drop the oldest 1 % at once so eviction stays rare.
    let toDrop = Math.max(1, Math.floor(this.#sessions.size / 100))
    for (const handle of this.#sessions.keys()) {
      this.#remove(handle)
      if (--toDrop === 0) break
    }
  }
}

// ── Redis store ─────────────────────────────────────────────────────────────────

/** Options of {@link RedisSessionStore}. */
export interface RedisSessionStoreOptions {
  /** Put before every key (after the connection's own keyPrefix); default `bb:sess:`. */
  prefix?: string
}

// Redis' own clock scores the per-user index, so index pruning agrees with PX expiry.
const LUA_PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function index_add(index, handle, ttl)
  redis.call('ZADD', index, now_ms() + ttl, handle)
  -- The index lives as long as its longest-lived session.
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
`

// KEYS: session, index, session key base. ARGV: handle, json, ttl, max per user.
const CREATE_LUA = `${LUA_PRELUDE}
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms())
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4]) + 1
local evicted = 0
if excess > 0 then
  -- Lowest scores first: the sessions closest to expiry make room.
  for _, handle in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    evicted = evicted + redis.call('DEL', KEYS[3] .. handle)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
index_add(KEYS[2], ARGV[1], ttl)
return evicted
`

// KEYS: session, index. ARGV: handle, json, ttl. XX: a deleted session is never brought back.
const UPDATE_LUA = `${LUA_PRELUDE}
local ttl = tonumber(ARGV[3])
if not redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'XX') then return 0 end
index_add(KEYS[2], ARGV[1], ttl)
return 1
`

// KEYS: old session, new session, index. ARGV: old handle, new handle, json, ttl.
const RENAME_LUA = `${LUA_PRELUDE}
local ttl = tonumber(ARGV[4])
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
index_add(KEYS[3], ARGV[2], ttl)
return 1
`

// KEYS: session, index key base. ARGV: handle. The user comes from the record itself.
const DELETE_LUA = `
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
redis.call('DEL', KEYS[1])
local ok, record = pcall(cjson.decode, value)
if ok and type(record) == 'table' and type(record.userId) == 'string' then
  redis.call('ZREM', KEYS[2] .. record.userId, ARGV[1])
end
return 1
`

// KEYS: index, session key base. Returns handle, json, handle, json, ...
const LIST_LUA = `${LUA_PRELUDE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local out = {}
for _, handle in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local value = redis.call('GET', KEYS[2] .. handle)
  if value then
    out[#out + 1] = handle
    out[#out + 1] = value
  else
    redis.call('ZREM', KEYS[1], handle)
  end
end
return out
`

// KEYS: index, session key base. ARGV: handle to keep ('' for none).
const DELETE_BY_USER_LUA = `
local deleted = 0
for _, handle in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if handle ~= ARGV[1] then
    deleted = deleted + redis.call('DEL', KEYS[2] .. handle)
    redis.call('ZREM', KEYS[1], handle)
  end
end
return deleted
`

const COMMANDS = {
  bbSessionCreate: { numberOfKeys: 3, lua: CREATE_LUA },
  bbSessionUpdate: { numberOfKeys: 2, lua: UPDATE_LUA },
  bbSessionRename: { numberOfKeys: 3, lua: RENAME_LUA },
  bbSessionDelete: { numberOfKeys: 2, lua: DELETE_LUA },
  bbSessionList: { numberOfKeys: 2, lua: LIST_LUA },
  bbSessionDeleteByUser: { numberOfKeys: 2, lua: DELETE_BY_USER_LUA },
} as const

type Scripted = Redis & { [K in keyof typeof COMMANDS]: (...args: Array<string | number>) => Promise<unknown> }

/**
 * Sessions in Redis, shared by every instance: one JSON value per session (`<prefix>s:<handle>`,
 * with PX expiry) and a sorted set per user (`<prefix>u:<userId>`, scored by expiry, pruned
 * as it is read). Each operation that touches both is one Lua script (EVALSHA, loaded once per
 * client), so a rotation or a revocation is never half done.
 *
 * The scripts reach session keys through the user's index, so a user's sessions and index
 * must live on one node: use a single Redis (with replicas or Sentinel), not Redis Cluster.
 *
 * @example
 * const store = new RedisSessionStore(redisConnection, { prefix: 'bb:sess:' })
 * const sessions = new SessionManager({ store })
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis'
  readonly #connection: RedisConnection
  readonly #prefix: string

  constructor(connection: RedisConnection, options: RedisSessionStoreOptions = {}) {
    const prefix = options.prefix ?? 'bb:sess:'
    if (typeof prefix !== 'string' || prefix.length > 128) throw new ConfigError([{ path: 'sessions.redis.prefix', message: 'must be a string of at most 128 characters' }])
    this.#connection = connection
    this.#prefix = prefix
  }

  async create(handle: string, record: SessionRecord, ttlMs: number, maxPerUser: number): Promise<number> {
    const reply = await this.#run('create', (c) => c.bbSessionCreate(this.#key(handle), this.#index(record.userId), this.#sessionBase(), handle, encodeSessionRecord(record), ttlMs, maxPerUser))
    return Number(reply)
  }

  async get(handle: string): Promise<SessionRecord | undefined> {
    const json = await this.#run('get', (c) => c.get(this.#key(handle)))
    return typeof json === 'string' ? decodeSessionRecord(json) : undefined
  }

  async update(handle: string, record: SessionRecord, ttlMs: number): Promise<boolean> {
    return (await this.#run('update', (c) => c.bbSessionUpdate(this.#key(handle), this.#index(record.userId), handle, encodeSessionRecord(record), ttlMs))) === 1
  }

  async rename(from: string, to: string, record: SessionRecord, ttlMs: number): Promise<boolean> {
    return (await this.#run('rename', (c) => c.bbSessionRename(this.#key(from), this.#key(to), this.#index(record.userId), from, to, encodeSessionRecord(record), ttlMs))) === 1
  }

  async delete(handle: string): Promise<boolean> {
    return (await this.#run('delete', (c) => c.bbSessionDelete(this.#key(handle), this.#indexBase(), handle))) === 1
  }

  async listByUser(userId: string): Promise<StoredSession[]> {
    const reply = await this.#run('list', (c) => c.bbSessionList(this.#index(userId), this.#sessionBase()))
    const flat = Array.isArray(reply) ? (reply as unknown[]) : []
    const out: StoredSession[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const handle = flat[i]
      const json = flat[i + 1]
      const record = typeof json === 'string' ? decodeSessionRecord(json) : undefined
      if (typeof handle === 'string' && record !== undefined) out.push({ handle, record })
    }
    return out
  }

  async deleteByUser(userId: string, except?: string): Promise<number> {
    return Number(await this.#run('revokeAll', (c) => c.bbSessionDeleteByUser(this.#index(userId), this.#sessionBase(), except ?? '')))
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #key(handle: string): string {
    return `${this.#prefix}s:${handle}`
  }

  #sessionBase(): string {
    return `${this.#prefix}s:`
  }

  #index(userId: string): string {
    return `${this.#indexBase()}${userId}`
  }

  #indexBase(): string {
    return `${this.#prefix}u:`
  }

  async #run(operation: string, call: (client: Scripted) => Promise<unknown>): Promise<unknown> {
    try {
      return await call(this.#scripted())
    } catch (err) {
      throw this.#connection.wrap(`session ${operation}`, err)
    }
  }

  #scripted(): Scripted {
    const client = this.#connection.client as Scripted
    // ioredis sends EVALSHA and falls back to EVAL once on NOSCRIPT; define once per client.
    if (typeof (client as Partial<Scripted>).bbSessionCreate !== 'function') {
      for (const [name, definition] of Object.entries(COMMANDS)) client.defineCommand(name, definition)
    }
    return client
  }
}
