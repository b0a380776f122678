import { BackbeatError } from '../core/index.ts'

/**
 * The smallest store most capabilities need (counters, flags, short-lived tokens). Every
 * implementation passes `describeKeyValueStore` from `backbeat/testing`.
 *
 * TTL rules shared by all implementations:
 * - `set` replaces the value and its TTL (no `ttlMs` means it never expires);
 * - `increment` applies `ttlMs` only when it creates the key, so a fixed window keeps its end.
 *
 * @example
 * const hits = await store.increment(`hits:${userId}`, 1, 60_000)
 */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>
  set(key: string, value: string, ttlMs?: number): Promise<void>
  /** Resolves `true` when the key existed (and had not expired). */
  delete(key: string): Promise<boolean>
  /** Atomically adds `by` (an integer) and resolves the new value; a missing key counts as 0. */
  increment(key: string, by: number, ttlMs?: number): Promise<number>
  /** Releases what the store owns; a connection passed in stays open (its owner closes it). */
  close(): Promise<void>
}

/** Rejects TTLs the backends would silently misread (0 means "forever" to memcached). */
export function assertTtl(ttlMs: number | undefined): void {
  if (ttlMs === undefined) return
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive integer number of milliseconds, got ${String(ttlMs)}`)
}

export function assertIncrement(by: number): void {
  if (!Number.isSafeInteger(by)) throw new RangeError(`increment must be a safe integer, got ${String(by)}`)
}

/** The error every store raises when `increment` meets a value that is not an integer. */
export function notAnIntegerError(store: string, name: string): BackbeatError {
  return new BackbeatError('ERR_STORE_COMMAND_FAILED', {
    params: { store, name, operation: 'increment', reason: 'value is not an integer or out of range' },
  })
}
