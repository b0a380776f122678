import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { Redis } from 'ioredis'
import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { RedisConnection } from '../stores/index.ts'
import { MAX_KEY_CHARS } from './keys.ts'

/** Longest lease the engine may ask for: a lease only covers one loader run. */
export const MAX_LEASE_TTL_MS = 10 * 60_000

/**
 * Cross-instance stampede protection: of the callers that miss the same key at once, one wins
 * the lease and computes; the others wait for its result or serve the stale value. A lease
 * expires on its own (`ttlMs`), so a holder that crashes blocks nobody for long.
 *
 * Semantics on store errors: `acquire` and `release` reject (`ERR_DEPENDENCY_UNAVAILABLE`,
 * `ERR_DEPENDENCY_TIMEOUT` or `ERR_STORE_COMMAND_FAILED`). The engine treats a rejected
 * `acquire` as "not won, compute anyway" (fail open): the lease is an optimisation, and a
 * Redis outage must not stop reads.
 *
 * @example
 * const token = await lease.acquire('catalog:album:1', 5_000).catch(() => undefined)
 * if (token !== undefined) try { await compute() } finally { await lease.release('catalog:album:1', token) }
 */
export interface Lease {
  /** A fresh token when this caller won the lease for `ttlMs`, `undefined` when someone holds it. */
  acquire(key: string, ttlMs: number): Promise<string | undefined>
  /**
   * Ends the lease, only when `token` still holds it (an expired lease taken over by another
   * caller is left alone). Resolves true when it was released.
   */
  release(key: string, token: string): Promise<boolean>
  close(): Promise<void>
}

function checkArgs(key: string, ttlMs?: number): void {
  const issues: Array<{ path: string; message: string }> = []
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_CHARS) issues.push({ path: 'key', message: `must be 1 to ${MAX_KEY_CHARS} characters` })
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LEASE_TTL_MS)) {
    issues.push({ path: 'ttlMs', message: `must be an integer from 1 to ${MAX_LEASE_TTL_MS}` })
  }
  if (issues.length > 0) throw new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: issues.length }, extensions: { errors: issues } })
}

/** 128 random bits: unguessable, so only the holder can release. */
function newToken(): string {
  return randomBytes(16).toString('base64url')
}

/** Runs `fn` as an async call would: a throw becomes a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}

function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

const memoryLeaseOptionsSchema = z.object({
  now: z.custom<Clock>((value) => typeof value === 'function', 'must be a function returning epoch ms').default(() => systemClock),
  /** Above this many leases, expired ones are swept on `acquire` (keeps the map bounded). */
  sweepAbove: z.number().int().min(1).max(10_000_000).default(1_000),
})

/** Options of {@link MemoryLease}. */
export type MemoryLeaseOptions = z.input<typeof memoryLeaseOptionsSchema>

/**
 * {@link Lease} within one process (tests, single-instance deployments), on an injectable
 * clock so tests move time instead of sleeping.
 *
 * @example
 * const lease = new MemoryLease({ now: () => fakeNow })
 * const token = await lease.acquire('k', 1_000)
 */
export class MemoryLease implements Lease {
  readonly #leases = new Map<string, { token: string; expiresAt: number }>()
  readonly #now: Clock
  readonly #sweepAbove: number

  constructor(options: MemoryLeaseOptions = {}) {
    const parsed = parseOptions('cache.lease', memoryLeaseOptionsSchema, options)
    this.#now = parsed.now
    this.#sweepAbove = parsed.sweepAbove
  }

  acquire(key: string, ttlMs: number): Promise<string | undefined> {
    return settle(() => this.#acquire(key, ttlMs))
  }

  release(key: string, token: string): Promise<boolean> {
    return settle(() => this.#release(key, token))
  }

  close(): Promise<void> {
    this.#leases.clear()
    return Promise.resolve()
  }

  #acquire(key: string, ttlMs: number): string | undefined {
    checkArgs(key, ttlMs)
    const now = this.#now()
    if (this.#leases.size > this.#sweepAbove) {
      for (const [k, lease] of this.#leases) if (lease.expiresAt <= now) this.#leases.delete(k)
    }
    const held = this.#leases.get(key)
    if (held !== undefined && held.expiresAt > now) return undefined
    const token = newToken()
    this.#leases.set(key, { token, expiresAt: now + ttlMs })
    return token
  }

  #release(key: string, token: string): boolean {
    checkArgs(key)
    const held = this.#leases.get(key)
    if (held === undefined || typeof token !== 'string' || held.expiresAt <= this.#now() || !sameToken(held.token, token)) return false
    this.#leases.delete(key)
    return true
  }
}

const RELEASE_COMMAND = 'bbCacheLeaseRelease'
/** Compare-and-delete in one step: between a GET and a DEL the lease could change hands. */
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

type WithRelease = Redis & { [RELEASE_COMMAND]: (key: string, token: string) => Promise<number> }

const redisLeaseOptionsSchema = z.object({
  /** Prepended to every lease key (after the connection's own `keyPrefix`). */
  prefix: z.string().max(256).default('lease:'),
})

/** Options of {@link RedisLease}. */
export type RedisLeaseOptions = z.input<typeof redisLeaseOptionsSchema>

/**
 * {@link Lease} shared by every instance on one Redis: `SET key token NX PX ttl` to acquire,
 * a Lua compare-and-delete (EVALSHA via `defineCommand`) to release. Store errors reject,
 * wrapped by the connection; see {@link Lease} for why the engine then fails open.
 *
 * @example
 * const lease = new RedisLease(redis, { prefix: 'cache:lease:' })
 * const token = await lease.acquire('catalog:album:1', 5_000)
 */
export class RedisLease implements Lease {
  readonly options: Readonly<z.output<typeof redisLeaseOptionsSchema>>
  readonly #connection: RedisConnection

  constructor(connection: RedisConnection, options: RedisLeaseOptions = {}) {
    this.options = parseOptions('cache.lease', redisLeaseOptionsSchema, options)
    this.#connection = connection
  }

  async acquire(key: string, ttlMs: number): Promise<string | undefined> {
    checkArgs(key, ttlMs)
    const token = newToken()
    let reply: string | null
    try {
      reply = await this.#connection.client.set(this.options.prefix + key, token, 'PX', ttlMs, 'NX')
    } catch (err) {
      throw this.#connection.wrap('lease.acquire', err)
    }
    return reply === 'OK' ? token : undefined
  }

  async release(key: string, token: string): Promise<boolean> {
    checkArgs(key)
    if (typeof token !== 'string' || token.length === 0) return false
    try {
      return (await this.#scripted()[RELEASE_COMMAND](this.options.prefix + key, token)) === 1
    } catch (err) {
      throw this.#connection.wrap('lease.release', err)
    }
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #scripted(): WithRelease {
    const client = this.#connection.client as WithRelease
    if (typeof client[RELEASE_COMMAND] !== 'function') client.defineCommand(RELEASE_COMMAND, { numberOfKeys: 1, lua: RELEASE_LUA })
    return client
  }
}
