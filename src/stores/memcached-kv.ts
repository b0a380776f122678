import { BackbeatError } from '../core/index.ts'
import { assertIncrement, assertTtl, notAnIntegerError, type KeyValueStore } from './key-value-store.ts'
import type { MemcachedConnection } from './memcached.ts'

/** Options of {@link MemcachedKeyValueStore}. */
export interface MemcachedKeyValueStoreOptions {
  /** Prepended to every key; prefix plus key must stay within memcached's 250 bytes. */
  prefix?: string
}

const MAX_KEY_BYTES = 250
/** Beyond 30 days memcached reads the expiry as a Unix timestamp instead of seconds. */
const RELATIVE_LIMIT_S = 60 * 60 * 24 * 30
/** memjs decodes the 64-bit incr reply incorrectly above 2^32 (see report); refuse instead. */
const MAX_COUNTER = 2 ** 32 - 1

/**
 * {@link KeyValueStore} on a shared {@link MemcachedConnection}. memcached has one-second
 * TTL resolution, so `ttlMs` is rounded up to whole seconds; counters are unsigned, so
 * `increment` only accepts `by >= 0` and values below 2^32.
 *
 * @example
 * const store = new MemcachedKeyValueStore(memcached, { prefix: 'otp:' })
 * await store.set('42', '123456', 30_000)
 */
export class MemcachedKeyValueStore implements KeyValueStore {
  readonly #connection: MemcachedConnection
  readonly #prefix: string

  constructor(connection: MemcachedConnection, options: MemcachedKeyValueStoreOptions = {}) {
    this.#connection = connection
    this.#prefix = options.prefix ?? ''
  }

  async get(key: string): Promise<string | undefined> {
    const fullKey = this.#key(key)
    const { value } = await this.#connection.run('get', (client) => client.get(fullKey))
    return value === null ? undefined : value.toString('utf8')
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    assertTtl(ttlMs)
    const fullKey = this.#key(key)
    await this.#connection.run('set', (client) => client.set(fullKey, value, { expires: expiresS(ttlMs) }))
  }

  async delete(key: string): Promise<boolean> {
    const fullKey = this.#key(key)
    return this.#connection.run('delete', (client) => client.delete(fullKey))
  }

  async increment(key: string, by: number, ttlMs?: number): Promise<number> {
    assertIncrement(by)
    assertTtl(ttlMs)
    if (by < 0) throw new RangeError('memcached counters are unsigned: increment by a non-negative integer')
    const fullKey = this.#key(key)
    let result: { success: boolean; value?: number | null | undefined }
    try {
      // The binary protocol creates a missing key with `initial` (not initial + amount) and
      // applies `expires` only then, which is exactly the KeyValueStore TTL rule.
      result = await this.#connection.run('increment', (client) => client.increment(fullKey, by, { initial: by, expires: expiresS(ttlMs) }))
    } catch (err) {
      if (err instanceof BackbeatError && /non-numeric/i.test(String(err.params.reason))) throw notAnIntegerError('memcached', this.#connection.name)
      throw err
    }
    const value = result.value
    if (typeof value !== 'number' || value > MAX_COUNTER) throw notAnIntegerError('memcached', this.#connection.name)
    return value
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #key(key: string): string {
    const fullKey = this.#prefix + key
    if (Buffer.byteLength(fullKey) > MAX_KEY_BYTES) {
      throw new BackbeatError('ERR_STORE_COMMAND_FAILED', {
        params: { store: 'memcached', name: this.#connection.name, operation: 'key', reason: `key longer than ${MAX_KEY_BYTES} bytes` },
      })
    }
    return fullKey
  }
}

function expiresS(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return 0
  const seconds = Math.ceil(ttlMs / 1000)
  return seconds > RELATIVE_LIMIT_S ? Math.floor(Date.now() / 1000) + seconds : seconds
}
