import { createHmac, createSecretKey, hash, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { LRUCache } from 'lru-cache'
import { z } from 'zod'
import { BackbeatError, currentContext, parseOptions, systemClock, type Clock, type SecurityEventSink, type SecuritySeverity } from '../core/index.ts'
import type { ApiKeyRecord, ApiKeyStore, StoredApiKey } from './api-key-store.ts'

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
/** Random base62 characters after the prefix: 32 × log2(62) ≈ 190.5 bits. */
export const API_KEY_RANDOM_LENGTH = 32
/** Base62 characters of the CRC32 that ends a key (62^6 > 2^32, left-padded with `0`). */
export const API_KEY_CHECKSUM_LENGTH = 6
/** The prefix of new keys unless configured otherwise. */
export const DEFAULT_API_KEY_PREFIX = 'bb_live_'

const TAIL = new RegExp(`^[0-9A-Za-z]{${String(API_KEY_RANDOM_LENGTH + API_KEY_CHECKSUM_LENGTH)}}$`)
// Lower-case words ending in `_`, like `bb_live_`; `_` is not base62, so the prefix never
// runs into the random part.
const PREFIX = /^[a-z][a-z0-9]{0,15}_(?:[a-z0-9]{1,16}_)?$/
const KEY_ID = /^ak_[0-9A-Za-z]{12}$/

/** A key that passed {@link parseApiKey}: right prefix, length, alphabet and checksum. */
export interface ParsedApiKey {
  readonly key: string
  readonly prefix: string
  /** The key's secret random part. */
  readonly random: string
  /** What {@link ApiKeyRecord.hint} shows for this key. */
  readonly hint: string
}

/**
 * Checks the form of an API key without any lookup: the expected prefix, exact length, base62
 * alphabet and the CRC32 checksum over prefix and random part. A typo or a truncated paste
 * fails here, for the cost of a CRC over 40 bytes; so does a key of another environment
 * (`bb_test_` where `bb_live_` is expected). Throws `ERR_AUTH_API_KEY_MALFORMED` (401) with
 * `params.reason` (`prefix`, `length`, `alphabet` or `checksum`) for the log.
 *
 * @example
 * const { hint } = parseApiKey('bb_live_...', { prefix: 'bb_live_' })
 */
export function parseApiKey(text: string, options: { prefix?: string } = {}): ParsedApiKey {
  const prefix = options.prefix ?? DEFAULT_API_KEY_PREFIX
  if (!PREFIX.test(prefix)) throw new TypeError(`API key prefix ${JSON.stringify(prefix)} must be lower-case words each ending in "_", like "bb_live_"`)
  const failure = malformation(text, prefix)
  if (failure !== undefined) throw new BackbeatError('ERR_AUTH_API_KEY_MALFORMED', { params: { reason: failure } })
  const random = text.slice(prefix.length, prefix.length + API_KEY_RANDOM_LENGTH)
  return { key: text, prefix, random, hint: hintOf(prefix, text) }
}

/**
 * The hash an API key is stored and looked up under: SHA-256 of the whole key, or
 * HMAC-SHA-256 keyed with `pepper` when one is configured; base64url. A fast hash is enough
 * because a key carries 190 random bits (nothing to brute-force, unlike a password); the
 * pepper means a leaked table cannot even confirm a candidate key without the server secret.
 *
 * @example
 * const stored = hashApiKey(key, process.env.API_KEY_PEPPER)
 */
export function hashApiKey(key: string, pepper?: string): string {
  return pepper === undefined ? hash('sha256', key, 'base64url') : createHmac('sha256', pepper).update(key).digest('base64url')
}

/** The subset of a pino/Fastify logger the service writes to. */
export interface ApiKeyLogger {
  warn(fields: Record<string, unknown>, message: string): void
}

/** Options of {@link ApiKeyService}; durations in milliseconds. */
export interface ApiKeyServiceOptions {
  store: ApiKeyStore
  /** Prefix of the keys this environment issues and accepts (default `bb_live_`; `bb_test_` outside production). */
  prefix?: string
  /** Server-side secret (32+ characters) that keys the hash; changing it invalidates every key. */
  pepper?: string | undefined
  now?: Clock
  /**
   * How long a verified key is answered from memory (default 5000; 0 disables). Revocation
   * through this instance takes effect at once; through another instance, within this bound.
   */
  cacheTtlMs?: number
  /** Verified keys remembered (default 10,000). */
  cacheSize?: number
  /** `lastUsedAt` is written at most once per this interval per key and instance (default 60,000). */
  lastUsedWriteIntervalMs?: number
  /** Told when a `lastUsedAt` write fails (the request is not). */
  logger?: ApiKeyLogger
  /** Receives `api_key_created`, `api_key_rotated`, `api_key_revoked` and `api_key_revoked_used`. */
  onSecurityEvent?: SecurityEventSink
}

/** What {@link ApiKeyService.create} takes (the body of an admin's create request). */
export interface ApiKeyCreateInput {
  /** The user the key acts for. */
  owner: string
  /** A label for people: "CI deploys", "partner X". */
  name: string
  /** OAuth-style scope tokens (`playlist:write`); duplicates are dropped. */
  scopes?: readonly string[] | undefined
  /** Epoch ms from which the key fails; omitted means never. */
  expiresAt?: number | undefined
  /** A rate-limit policy name for requests made with this key. */
  rateLimitPolicy?: string | undefined
}

/** A new key: the secret, shown once and never retrievable again, and its record. */
export interface CreatedApiKey {
  readonly key: string
  readonly record: ApiKeyRecord
}

/** A key issued by {@link ApiKeyService.rotate}, and the key it replaces as now stored. */
export interface RotatedApiKey extends CreatedApiKey {
  /** The old key, with `rotatedTo` and its shortened `expiresAt`. */
  readonly previous: ApiKeyRecord
}

/** Options of {@link ApiKeyService.rotate}. */
export interface RotateApiKeyOptions {
  /** How long the old key keeps working (0: it fails at once); its expiry never moves later. */
  overlapMs: number
  /**
   * Expiry of the new key: epoch ms, or null for never. Omitted: a key that expired gets the
   * same lifetime again from now, one that never expired never does.
   */
  expiresAt?: number | null | undefined
}

/** Options of {@link ApiKeyService.list}. */
export interface ApiKeyListOptions {
  owner?: string | undefined
  /** Page size, 1 to 1000 (default 100). */
  limit?: number | undefined
  /** The id of the last key of the previous page. */
  after?: string | undefined
}

const isFunction = (value: unknown): boolean => typeof value === 'function'
const STORE_METHODS = ['insert', 'findByHash', 'get', 'list', 'revoke', 'rotate', 'touch'] as const

const serviceOptionsSchema = z.strictObject({
  store: z.custom<ApiKeyStore>(
    (value) => typeof value === 'object' && value !== null && STORE_METHODS.every((m) => isFunction((value as Record<string, unknown>)[m])),
    `must implement ApiKeyStore (${STORE_METHODS.join(', ')})`,
  ),
  prefix: z.string().regex(PREFIX, 'must be lower-case words each ending in "_", like "bb_live_"').default(DEFAULT_API_KEY_PREFIX),
  pepper: z.string().min(32, 'must be at least 32 characters').optional(),
  now: z.custom<Clock>(isFunction, 'must be a function returning epoch ms').optional(),
  cacheTtlMs: z.number().int().min(0).max(300_000).default(5_000),
  cacheSize: z.number().int().min(1).max(1_000_000).default(10_000),
  lastUsedWriteIntervalMs: z.number().int().min(0).max(86_400_000).default(60_000),
  logger: z.custom<ApiKeyLogger>((value) => typeof value === 'object' && value !== null && isFunction((value as Record<string, unknown>).warn), 'must have a warn(fields, message) method').optional(),
  onSecurityEvent: z.custom<SecurityEventSink>(isFunction, 'must be a function').optional(),
})

// Printable text: no control or format characters (a bidi override in a name would make an
// admin console show something other than what is stored).
const LABEL = /^[^\p{Cc}\p{Cf}]*$/u
const OWNER = /^[^\s\p{C}]+$/u
// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/
const POLICY = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/
const MAX_TIME = 253_402_300_799_999 // 9999-12-31T23:59:59.999Z

const createSchema = z.strictObject({
  owner: z.string().min(1).max(200).regex(OWNER, 'must be printable, without spaces'),
  name: z.string().max(200).regex(LABEL, 'must not contain control characters').refine((s) => s.trim() !== '', 'must not be blank'),
  scopes: z.array(z.string().min(1).max(128).regex(SCOPE, 'must be a scope token (printable ASCII, no space, " or \\)')).max(100).optional(),
  expiresAt: z.number().int().max(MAX_TIME).optional(),
  rateLimitPolicy: z.string().min(1).max(64).regex(POLICY, 'must be letters, digits and _ . : -').optional(),
})

const rotateSchema = z.strictObject({
  overlapMs: z.number().int().min(0).max(366 * 86_400_000),
  expiresAt: z.number().int().max(MAX_TIME).nullable().optional(),
})

const listSchema = z.strictObject({
  owner: z.string().min(1).max(200).optional(),
  limit: z.number().int().min(1).max(1_000).default(100),
  after: z.string().min(1).max(64).optional(),
})

interface CacheEntry {
  readonly record: ApiKeyRecord
  /** Epoch ms after which the store must be asked again. */
  readonly until: number
}

/**
 * Issues, verifies, rotates and revokes API keys (`bb_live_` + 32 random base62 + a 6-character
 * CRC32). Only a hash of each key is stored. Framework-neutral: the auth plugin and the admin
 * endpoints call it.
 *
 * Verification is built for the request path: a malformed key is refused without a lookup,
 * a key verified in the last `cacheTtlMs` costs a hash and a map lookup, concurrent first
 * verifications of one key share a single store lookup, and `lastUsedAt` is written in the
 * background at most once per `lastUsedWriteIntervalMs` (a failed write is logged, never
 * failing the request). A store failure during verification rejects with the store's error
 * (503), never accepting the key.
 *
 * @example
 * const keys = new ApiKeyService({ store: new SqlApiKeyStore(stores.sql), pepper: process.env.API_KEY_PEPPER })
 * const { key } = await keys.create({ owner: 'user-1', name: 'CI', scopes: ['playlist:write'] })
 * const record = await keys.verify(key)   // ERR_AUTH_API_KEY_INVALID once revoked or expired
 */
export class ApiKeyService {
  /** Prefix of the keys this service issues and accepts. */
  readonly prefix: string
  readonly #store: ApiKeyStore
  readonly #pepper: KeyObject | undefined
  readonly #now: Clock
  readonly #cacheTtlMs: number
  readonly #cache: LRUCache<string, CacheEntry> | undefined
  readonly #lastWrite: LRUCache<string, number>
  readonly #writeIntervalMs: number
  readonly #logger: ApiKeyLogger | undefined
  readonly #onEvent: SecurityEventSink | undefined
  readonly #inflight = new Map<string, Promise<StoredApiKey | undefined>>()
  readonly #pending = new Set<Promise<void>>()
  // Bumped by every revocation and rotation: a lookup that started before one must not
  // put what it read into the cache afterwards.
  #epoch = 0
  #closed = false

  constructor(options: ApiKeyServiceOptions) {
    const o = parseOptions('apiKeys', serviceOptionsSchema, options)
    this.prefix = o.prefix
    this.#store = o.store
    // A KeyObject made once: HMAC with it skips re-importing the secret on every request.
    this.#pepper = o.pepper === undefined ? undefined : createSecretKey(Buffer.from(o.pepper, 'utf8'))
    this.#now = o.now ?? systemClock
    this.#cacheTtlMs = o.cacheTtlMs
    this.#cache = o.cacheTtlMs > 0 ? new LRUCache<string, CacheEntry>({ max: o.cacheSize }) : undefined
    this.#lastWrite = new LRUCache<string, number>({ max: o.cacheSize })
    this.#writeIntervalMs = o.lastUsedWriteIntervalMs
    this.#logger = o.logger
    this.#onEvent = o.onSecurityEvent
  }

  /** Issues a key. The returned `key` is the only time the secret exists outside the caller. */
  async create(input: ApiKeyCreateInput): Promise<CreatedApiKey> {
    const now = this.#now()
    const valid = validate(createSchema, input)
    if (valid.expiresAt !== undefined && valid.expiresAt <= now) throw invalidField('/expiresAt', 'must be in the future')
    const minted = this.#mint({
      owner: valid.owner,
      name: valid.name,
      scopes: [...new Set(valid.scopes ?? [])],
      createdAt: now,
      ...(valid.expiresAt === undefined ? {} : { expiresAt: valid.expiresAt }),
      ...(valid.rateLimitPolicy === undefined ? {} : { rateLimitPolicy: valid.rateLimitPolicy }),
    })
    await this.#store.insert(minted.stored)
    this.#event('api_key_created', 'info', minted.record)
    return { key: minted.key, record: minted.record }
  }

  /**
   * The record of a valid key, or `ERR_AUTH_API_KEY_MALFORMED` (bad form, no lookup made)
   * or `ERR_AUTH_API_KEY_INVALID` (unknown, revoked or expired; `params.reason` says which,
   * for the log only). Scopes are the caller's to check.
   */
  async verify(key: string): Promise<ApiKeyRecord> {
    const reason = malformation(key, this.prefix)
    if (reason !== undefined) throw new BackbeatError('ERR_AUTH_API_KEY_MALFORMED', { params: { reason } })
    const slot = cacheSlot(key)
    const hit = this.#hit(slot, this.#now())
    if (hit !== undefined) return hit
    const epoch = this.#epoch
    const stored = await this.#lookup(this.#pepper === undefined ? slot : this.#hash(key))
    if (stored === undefined) throw new BackbeatError('ERR_AUTH_API_KEY_INVALID', { params: { reason: 'unknown' } })
    const record = publicRecord(stored)
    const now = this.#now()
    if (record.revokedAt !== undefined) {
      this.#event('api_key_revoked_used', 'medium', record)
      throw new BackbeatError('ERR_AUTH_API_KEY_INVALID', { params: { reason: 'revoked', keyId: record.id } })
    }
    if (record.expiresAt !== undefined && now >= record.expiresAt) throw new BackbeatError('ERR_AUTH_API_KEY_INVALID', { params: { reason: 'expired', keyId: record.id } })
    if (this.#cache !== undefined && epoch === this.#epoch) this.#cache.set(slot, { record, until: now + this.#cacheTtlMs })
    this.#noteUse(record, now)
    return record
  }

  /**
   * True when `value` starts with this service's prefix: how the auth plugin tells an API key
   * sent as a bearer token from a JWT. Says nothing about validity ({@link verify} does).
   */
  looksLikeKey(value: string): boolean {
    return value.startsWith(this.prefix)
  }

  /** {@link verify} under the name the auth plugin's `ApiKeyAuthenticator` uses. */
  authenticate(key: string): Promise<ApiKeyRecord> {
    return this.verify(key)
  }

  /**
   * The record of `key` when the cache can answer for it right now, synchronously; undefined
   * when {@link verify} must decide (not cached, malformed, cache off). Lets a hot request
   * skip a promise.
   */
  cached(key: string): ApiKeyRecord | undefined {
    if (this.#cache === undefined || malformation(key, this.prefix) !== undefined) return undefined
    return this.#hit(cacheSlot(key), this.#now())
  }

  /**
   * Issues a replacement with the same owner, name, scopes and rate-limit policy; the old key
   * keeps working until `now + overlapMs`, then fails. A key is rotated once (rotate its
   * successor next): `ERR_RESOURCE_CONFLICT` for a key already rotated, revoked or expired,
   * `ERR_RESOURCE_NOT_FOUND` for an unknown id.
   */
  async rotate(id: string, options: RotateApiKeyOptions): Promise<RotatedApiKey> {
    const valid = validate(rotateSchema, options)
    const current = KEY_ID.test(id) ? await this.#store.get(id) : undefined
    if (current === undefined) throw notFound(id)
    const now = this.#now()
    const refusal = whyNotRotatable(current, now)
    if (refusal !== undefined) throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: refusal } })
    let expiresAt: number | undefined
    if (valid.expiresAt === undefined) expiresAt = current.expiresAt === undefined ? undefined : now + (current.expiresAt - current.createdAt)
    else expiresAt = valid.expiresAt ?? undefined
    if (expiresAt !== undefined && expiresAt <= now) throw invalidField('/expiresAt', 'must be in the future')
    const minted = this.#mint({
      owner: current.owner,
      name: current.name,
      scopes: [...current.scopes],
      createdAt: now,
      rotatedFrom: current.id,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(current.rateLimitPolicy === undefined ? {} : { rateLimitPolicy: current.rateLimitPolicy }),
    })
    const previous = await this.#store.rotate(id, minted.stored, { oldExpiresAt: now + valid.overlapMs, now })
    if (previous === undefined) {
      // Lost a race (rotated or revoked meanwhile): say what happened rather than a bare 409.
      const after = await this.#store.get(id)
      if (after === undefined) throw notFound(id)
      throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: whyNotRotatable(after, this.#now()) ?? `API key ${id} changed while it was being rotated; retry` } })
    }
    this.#forget(id)
    this.#event('api_key_rotated', 'info', minted.record, { rotatedFrom: id, overlapMs: valid.overlapMs })
    return { key: minted.key, record: minted.record, previous: freeze(previous) }
  }

  /**
   * Revokes a key at once for this instance (its cache entry is dropped), and for other
   * instances within their `cacheTtlMs`. Revoking twice keeps the first time.
   * `ERR_RESOURCE_NOT_FOUND` for an unknown id.
   */
  async revoke(id: string): Promise<ApiKeyRecord> {
    const record = KEY_ID.test(id) ? await this.#store.revoke(id, this.#now()) : undefined
    if (record === undefined) throw notFound(id)
    this.#forget(id)
    this.#event('api_key_revoked', 'low', record)
    return freeze(record)
  }

  /** One page of records (never hashes or secrets), oldest first, revoked and expired ones included. */
  async list(options: ApiKeyListOptions = {}): Promise<ApiKeyRecord[]> {
    const valid = validate(listSchema, options)
    const records = await this.#store.list({
      limit: valid.limit,
      ...(valid.owner === undefined ? {} : { owner: valid.owner }),
      ...(valid.after === undefined ? {} : { after: valid.after }),
    })
    return records.map(freeze)
  }

  /** The record of key `id` (never its hash), or undefined. */
  async get(id: string): Promise<ApiKeyRecord | undefined> {
    if (!KEY_ID.test(id)) return undefined
    const record = await this.#store.get(id)
    return record === undefined ? undefined : freeze(record)
  }

  /** Forgets every cached verification (for example after keys were revoked by another process). */
  clearCache(): void {
    this.#epoch++
    this.#cache?.clear()
    this.#inflight.clear()
  }

  /** Resolves once the background `lastUsedAt` writes started so far have finished. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }

  /** Stops writing `lastUsedAt` and waits for the writes in flight; verification keeps working. */
  async close(): Promise<void> {
    this.#closed = true
    await this.flush()
  }

  /** What the store knows the key by: {@link hashApiKey} with this service's pepper. */
  #hash(key: string): string {
    return this.#pepper === undefined ? hash('sha256', key, 'base64url') : createHmac('sha256', this.#pepper).update(key).digest('base64url')
  }

  #hit(slot: string, now: number): ApiKeyRecord | undefined {
    const entry = this.#cache?.get(slot)
    if (entry === undefined) return undefined
    if (now >= entry.until || (entry.record.expiresAt !== undefined && now >= entry.record.expiresAt)) {
      this.#cache?.delete(slot)
      return undefined
    }
    this.#noteUse(entry.record, now)
    return entry.record
  }

  /** One store lookup per hash at a time, shared by the verifications waiting for it. */
  #lookup(digest: string): Promise<StoredApiKey | undefined> {
    const running = this.#inflight.get(digest)
    if (running !== undefined) return running
    const lookup = (async () => {
      const stored = await this.#store.findByHash(digest)
      // The store matched on an index; the comparison that decides is constant-time.
      return stored !== undefined && sameDigest(stored.hash, digest) ? stored : undefined
    })().finally(() => {
      if (this.#inflight.get(digest) === lookup) this.#inflight.delete(digest)
    })
    this.#inflight.set(digest, lookup)
    return lookup
  }

  /** Schedules a `lastUsedAt` write unless one was made for this key within the interval. */
  #noteUse(record: ApiKeyRecord, now: number): void {
    if (this.#closed) return
    const last = Math.max(this.#lastWrite.get(record.id) ?? -Infinity, record.lastUsedAt ?? -Infinity)
    if (now - last < this.#writeIntervalMs) return
    this.#lastWrite.set(record.id, now)
    const write = Promise.resolve()
      .then(() => this.#store.touch(record.id, now))
      .catch((err: unknown) => {
        // Forget the attempt so the next use retries; the request that triggered it has gone on.
        if (this.#lastWrite.get(record.id) === now) this.#lastWrite.delete(record.id)
        this.#logger?.warn({ err, keyId: record.id }, 'could not record the API key\'s last use')
      })
      .finally(() => this.#pending.delete(write))
    this.#pending.add(write)
  }

  /** Drops what this instance remembers about key `id`, and stops lookups in flight from caching it. */
  #forget(id: string): void {
    this.#epoch++
    this.#inflight.clear()
    if (this.#cache === undefined) return
    for (const [slot, entry] of this.#cache.entries()) if (entry.record.id === id) this.#cache.delete(slot)
  }

  #mint(fields: Omit<ApiKeyRecord, 'id' | 'hint'>): { key: string; record: ApiKeyRecord; stored: StoredApiKey } {
    const random = randomBase62(API_KEY_RANDOM_LENGTH)
    const key = `${this.prefix}${random}${checksumOf(this.prefix + random)}`
    const record = freeze({ id: `ak_${randomBase62(12)}`, ...fields, hint: hintOf(this.prefix, key) })
    return { key, record, stored: { ...record, hash: this.#hash(key) } }
  }

  #event(type: string, severity: SecuritySeverity, record: ApiKeyRecord, extra: Record<string, unknown> = {}): void {
    if (this.#onEvent === undefined) return
    const requestId = currentContext()?.requestId
    try {
      this.#onEvent({ type, severity, at: this.#now(), ...(requestId === undefined ? {} : { requestId }), details: { keyId: record.id, owner: record.owner, ...extra } })
    } catch (err) {
      // The store change has happened; a broken sink must not turn it into a failure.
      this.#logger?.warn({ err, type }, 'the security event sink threw')
    }
  }
}

/** Why `text` is not a well-formed key with `prefix`, or undefined when it is one. */
function malformation(text: unknown, prefix: string): 'prefix' | 'length' | 'alphabet' | 'checksum' | undefined {
  if (typeof text !== 'string' || !text.startsWith(prefix)) return 'prefix'
  if (text.length !== prefix.length + API_KEY_RANDOM_LENGTH + API_KEY_CHECKSUM_LENGTH) return 'length'
  const tail = text.slice(prefix.length)
  if (!TAIL.test(tail)) return 'alphabet'
  if (checksumOf(prefix + tail.slice(0, API_KEY_RANDOM_LENGTH)) !== tail.slice(API_KEY_RANDOM_LENGTH)) return 'checksum'
  return undefined
}

/**
 * The in-process cache key: plain SHA-256 (one-shot `crypto.hash`) even with a pepper, so a
 * hot key costs no HMAC (about five times dearer). It never leaves the process, which holds
 * the pepper anyway; the store only ever sees the peppered hash.
 */
function cacheSlot(key: string): string {
  return hash('sha256', key, 'base64url')
}

/** CRC32 (node:zlib) of `text` as 6 base62 digits, most significant first. */
function checksumOf(text: string): string {
  let value = crc32(text)
  let out = ''
  for (let i = 0; i < API_KEY_CHECKSUM_LENGTH; i++) {
    out = BASE62.charAt(value % 62) + out
    value = Math.floor(value / 62)
  }
  return out
}

/** Uniform base62 by rejection sampling: 248 = 4 × 62, so bytes 248-255 are discarded, not folded (which would bias). */
function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length + 8)) {
      if (byte >= 248) continue
      out += BASE62.charAt(byte % 62)
      if (out.length === length) break
    }
  }
  return out
}

function hintOf(prefix: string, key: string): string {
  return `${prefix}${key.slice(prefix.length, prefix.length + 4)}...${key.slice(-4)}`
}

function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}

function whyNotRotatable(record: ApiKeyRecord, now: number): string | undefined {
  if (record.revokedAt !== undefined) return `API key ${record.id} is revoked; create a new key instead`
  if (record.rotatedTo !== undefined) return `API key ${record.id} was already rotated to ${record.rotatedTo}; rotate that key instead`
  if (record.expiresAt !== undefined && now >= record.expiresAt) return `API key ${record.id} has expired; create a new key instead`
  return undefined
}

/** A record without the hash, frozen: cached records are shared by concurrent requests. */
function publicRecord(stored: StoredApiKey): ApiKeyRecord {
  const { hash: _hash, ...record } = stored
  return freeze(record)
}

function freeze(record: ApiKeyRecord): ApiKeyRecord {
  return Object.freeze({ ...record, scopes: Object.freeze([...record.scopes]) })
}

function notFound(id: string): BackbeatError {
  return new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'API key', id: id.slice(0, 64) } })
}

// The management inputs arrive as a request body, so field errors use the same shape as
// schema validation (in + JSON Pointer) and clients handle one format.
function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const errors = result.error.issues.map((issue) => ({ in: 'body', pointer: pointerOf(issue.path), detail: issue.message }))
  throw new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: errors.length }, extensions: { errors } })
}

function invalidField(pointer: string, detail: string): BackbeatError {
  return new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: 1 }, extensions: { errors: [{ in: 'body', pointer, detail }] } })
}

function pointerOf(path: readonly PropertyKey[]): string {
  return path.map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('')
}
