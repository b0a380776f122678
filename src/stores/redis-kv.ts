import type { Redis } from 'ioredis'
import { assertIncrement, assertTtl, type KeyValueStore } from './key-value-store.ts'
import type { RedisConnection } from './redis.ts'

/** Options of {@link RedisKeyValueStore}. */
export interface RedisKeyValueStoreOptions {
  /** Prepended to every key (after the connection's own `keyPrefix`). */
  prefix?: string
}

const INCREMENT_COMMAND = 'backbeatKvIncrement'

// EXISTS before INCRBY so the TTL is set only when this call created the key (fixed windows
// keep their end); one script so no other client can interleave between the three calls.
const INCREMENT_LUA = `
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if existed == 0 and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return value
`

type WithIncrement = Redis & { [INCREMENT_COMMAND]: (key: string, by: number, ttlMs: number) => Promise<number> }

/**
 * {@link KeyValueStore} on a shared {@link RedisConnection}. `increment` is one Lua script,
 * registered once per client with `defineCommand` (EVALSHA, with EVAL on a script cache miss).
 *
 * @example
 * const store = new RedisKeyValueStore(redis, { prefix: 'sessions:' })
 * await store.set('abc', JSON.stringify(session), 3_600_000)
 */
export class RedisKeyValueStore implements KeyValueStore {
  readonly #connection: RedisConnection
  readonly #prefix: string

  constructor(connection: RedisConnection, options: RedisKeyValueStoreOptions = {}) {
    this.#connection = connection
    this.#prefix = options.prefix ?? ''
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return (await this.#connection.client.get(this.#prefix + key)) ?? undefined
    } catch (err) {
      throw this.#connection.wrap('get', err)
    }
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    assertTtl(ttlMs)
    try {
      const client = this.#connection.client
      if (ttlMs === undefined) await client.set(this.#prefix + key, value)
      else await client.set(this.#prefix + key, value, 'PX', ttlMs)
    } catch (err) {
      throw this.#connection.wrap('set', err)
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.#connection.client.del(this.#prefix + key)) > 0
    } catch (err) {
      throw this.#connection.wrap('delete', err)
    }
  }

  async increment(key: string, by: number, ttlMs?: number): Promise<number> {
    assertIncrement(by)
    assertTtl(ttlMs)
    try {
      return await this.#scripted()[INCREMENT_COMMAND](this.#prefix + key, by, ttlMs ?? 0)
    } catch (err) {
      throw this.#connection.wrap('increment', err)
    }
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  #scripted(): WithIncrement {
    const client = this.#connection.client as WithIncrement
    if (typeof client[INCREMENT_COMMAND] !== 'function') {
      client.defineCommand(INCREMENT_COMMAND, { numberOfKeys: 1, lua: INCREMENT_LUA })
    }
    return client
  }
}
