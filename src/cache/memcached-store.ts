import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { MemcachedConnection } from '../stores/index.ts'
import { decodeCacheEntry, encodeCacheEntry } from './entry-codec.ts'
import type { CacheEntry, CacheStore } from './store.ts'

const PRINTABLE_KEY = /^[\x21-\x7e]*$/

const memcachedStoreOptionsSchema = z.object({
  /** Prepended to every memcached key; printable ASCII without spaces, at most 64 bytes. */
  prefix: z.string().max(64).regex(PRINTABLE_KEY, 'printable ASCII without spaces').default('cache:'),
  /** Ends a namespace inside a key: `tenant:albums:42` lives in `tenant:` and `tenant:albums:`. */
  namespaceSeparator: z.string().length(1).default(':'),
  /** How many leading namespaces of a key `deletePrefix` can target (each costs a lookup per read). */
  namespaceDepth: z.number().int().min(0).max(4).default(2),
  /** Largest encoded entry sent; memcached's default item limit is 1 MiB (`-I` raises it). */
  maxValueBytes: z.number().int().min(1_024).max(128 * 1024 * 1024).default(1_000_000),
  now: z.custom<Clock>((value) => typeof value === 'function', 'must be a function returning epoch ms').default(() => systemClock),
  /** Called with the key of a value that does not decode (it is answered as a miss): log or count it. */
  onCorrupt: z.custom<(key: string) => void>((value) => typeof value === 'function', 'must be a function').optional(),
})

/** Options of {@link MemcachedCacheStore}. */
export type MemcachedCacheStoreOptions = z.input<typeof memcachedStoreOptionsSchema>

const MAX_KEY_BYTES = 250
/** Beyond 30 days memcached reads the expiry as a Unix timestamp instead of seconds. */
const RELATIVE_LIMIT_S = 60 * 60 * 24 * 30

/**
 * The memcached tier on a shared {@link MemcachedConnection} (memjs, binary protocol).
 *
 * - Keys: memcached allows 250 bytes without spaces or control characters, so a longer or
 *   unusual key is replaced by its SHA-256 (deterministic: every instance finds it).
 * - TTL: whole seconds, rounded up; reads still drop an entry past its `staleUntil`.
 * - `deletePrefix`: memcached cannot enumerate keys, so namespaces are versioned. Every key
 *   folds in the generation token of the store (root) and of its first `namespaceDepth`
 *   separator-terminated prefixes; `deletePrefix(ns)` replaces that token, which orphans every
 *   entry under it at once (memcached evicts them as they expire). Hence `deletePrefix` only
 *   accepts `''` or a whole namespace (`'tenant:'`, `'tenant:albums:'`), resolves 0 (memcached
 *   cannot count what it orphaned), and a read costs one extra round trip for the tokens.
 *   Tokens are random, not counters: a token evicted by memcached is replaced by a new random
 *   one, which invalidates its namespace instead of resurrecting older entries.
 *
 * @example
 * const store = new MemcachedCacheStore(memcached, { prefix: 'cache:' })
 * await store.deletePrefix('tenant-42:') // every key starting with 'tenant-42:' is now a miss
 */
export class MemcachedCacheStore implements CacheStore {
  readonly kind = 'memcached'
  readonly options: Readonly<z.output<typeof memcachedStoreOptionsSchema>>
  readonly #connection: MemcachedConnection
  readonly #now: Clock

  constructor(connection: MemcachedConnection, options: MemcachedCacheStoreOptions = {}) {
    this.options = parseOptions('cache.memcached', memcachedStoreOptionsSchema, options)
    this.#connection = connection
    this.#now = this.options.now
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const [entry] = await this.getMany([key])
    return entry
  }

  async getMany(keys: readonly string[]): Promise<Array<CacheEntry | undefined>> {
    if (keys.length === 0) return []
    const physical = await this.#physicalKeys(keys)
    // memjs pipelines requests on one socket per server: parallel gets cost about one round trip.
    const raws = await Promise.all(physical.map((name) => this.#connection.run('get', async (client) => (await client.get(name)).value)))
    const now = this.#now()
    return raws.map((raw, i) => {
      const entry = decodeCacheEntry(raw)
      if (entry === undefined && raw !== null) reportCorrupt(this.options.onCorrupt, keys[i] ?? '')
      return entry !== undefined && entry.staleUntil > now ? entry : undefined
    })
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    const [name] = await this.#physicalKeys([key])
    if (name === undefined) return
    const ttlMs = entry.staleUntil - this.#now()
    if (!(ttlMs > 0)) {
      await this.#connection.run('delete', (client) => client.delete(name))
      return
    }
    const payload = encodeCacheEntry(entry)
    if (payload.byteLength > this.options.maxValueBytes) {
      // The old value must not outlive a write that replaced it.
      await this.#connection.run('delete', (client) => client.delete(name))
      throw new BackbeatError('ERR_STORE_VALUE_REJECTED', {
        params: { reason: `cache entry of ${payload.byteLength} bytes exceeds the memcached limit of ${this.options.maxValueBytes}` },
      })
    }
    await this.#connection.run('set', (client) => client.set(name, payload, { expires: this.#expiresS(ttlMs) }))
  }

  async delete(key: string): Promise<boolean> {
    const [name] = await this.#physicalKeys([key])
    if (name === undefined) return false
    // Within the second after staleUntil memcached may still hold a value reads already miss.
    return this.#connection.run('delete', (client) => client.delete(name))
  }

  async deletePrefix(prefix: string): Promise<number> {
    const { namespaceSeparator, namespaceDepth } = this.options
    const depth = prefix === '' ? 0 : prefix.split(namespaceSeparator).length - 1
    if (prefix !== '' && (!prefix.endsWith(namespaceSeparator) || depth > namespaceDepth)) {
      throw new BackbeatError('ERR_STORE_COMMAND_FAILED', {
        params: {
          store: 'memcached',
          name: this.#connection.name,
          operation: 'deletePrefix',
          reason: `memcached can only drop a whole namespace ('' or up to ${namespaceDepth} segments ending in '${namespaceSeparator}'), not '${prefix}'`,
        },
      })
    }
    const tokenKey = this.#tokenKey(prefix)
    await this.#connection.run('deletePrefix', (client) => client.set(tokenKey, newToken(), { expires: 0 }))
    return 0
  }

  /** No-op: the connection is shared and closed by whoever opened it. */
  close(): Promise<void> {
    return Promise.resolve()
  }

  /** The namespaces of `key`: the root, then each separator-terminated prefix up to the depth. */
  #namespaces(key: string): string[] {
    const { namespaceSeparator, namespaceDepth } = this.options
    const out = ['']
    let from = 0
    while (out.length <= namespaceDepth) {
      const at = key.indexOf(namespaceSeparator, from)
      if (at === -1) break
      out.push(key.slice(0, at + 1))
      from = at + 1
    }
    return out
  }

  async #physicalKeys(keys: readonly string[]): Promise<string[]> {
    const perKey = keys.map((key) => this.#namespaces(key))
    const unique = [...new Set(perKey.flat())]
    const tokens = new Map(await Promise.all(unique.map(async (ns) => [ns, await this.#token(ns)] as const)))
    return keys.map((key, i) => {
      const generation = (perKey[i] ?? []).map((ns) => tokens.get(ns)).join('.')
      return this.#name('v', `${generation}:${key}`)
    })
  }

  /** The current token of a namespace, creating one (with ADD, so racing instances agree) when absent. */
  async #token(namespace: string): Promise<string> {
    const tokenKey = this.#tokenKey(namespace)
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.#connection.run('get', async (client) => (await client.get(tokenKey)).value)
      if (current !== null) return current.toString('latin1')
      const token = newToken()
      const added = await this.#connection.run('add', (client) => client.add(tokenKey, token, { expires: 0 }))
      if (added) return token
    }
    throw new BackbeatError('ERR_STORE_COMMAND_FAILED', {
      params: { store: 'memcached', name: this.#connection.name, operation: 'namespace', reason: `the token of namespace '${namespace}' keeps vanishing` },
    })
  }

  #tokenKey(namespace: string): string {
    return this.#name('g', namespace)
  }

  /** `prefix + kind + ':' + rest`, or the SHA-256 of it when memcached would refuse that key. */
  #name(kind: 'v' | 'g', rest: string): string {
    const name = `${this.options.prefix}${kind}:${rest}`
    if (name.length <= MAX_KEY_BYTES && PRINTABLE_KEY.test(name)) return name
    // Distinct marker so a hashed key can never equal a readable one.
    return `${this.options.prefix}${kind}#${createHash('sha256').update(rest, 'utf8').digest('base64url')}`
  }

  #expiresS(ttlMs: number): number {
    const seconds = Math.ceil(ttlMs / 1000)
    return seconds > RELATIVE_LIMIT_S ? Math.floor(this.#now() / 1000) + seconds : seconds
  }
}

function newToken(): string {
  // base64url has neither '.' nor ':', so a list of tokens before the key is unambiguous.
  return randomBytes(6).toString('base64url')
}

function reportCorrupt(onCorrupt: ((key: string) => void) | undefined, key: string): void {
  try {
    onCorrupt?.(key)
  } catch {
    // A failing logger must not turn a miss into an error for the request.
  }
}
