import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { encodeCacheEntry, MemcachedCacheStore } from 'backbeat/cache'
import { BackbeatError } from 'backbeat'
import { MemcachedConnection } from 'backbeat/stores'
import { describeCacheStore } from 'backbeat/testing'
import { requireMemcachedServers } from '../services.ts'

// memcached cannot delete by prefix: every store in this file uses a fresh prefix and the
// fixture orphans it with deletePrefix(''); what it wrote expires within the test TTLs.
const FILE_PREFIX = `bbt:c:${String(process.pid)}:`
let servers = ''
let connection: MemcachedConnection

before(async () => {
  servers = await requireMemcachedServers()
  connection = new MemcachedConnection({ servers, name: 'cache-contract' })
  await connection.connect()
})

after(async () => {
  await connection.close()
})

const MAX_VALUE_BYTES = 1_000_000

describeCacheStore('MemcachedCacheStore', async ({ prefix }) => {
  const store = new MemcachedCacheStore(connection, { prefix: FILE_PREFIX + prefix, maxValueBytes: MAX_VALUE_BYTES })
  return {
    store,
    now: () => Date.now(),
    ttlMs: 1_100,
    maxValueBytes: MAX_VALUE_BYTES,
    countsPrefixDeletes: false,
    cleanup: async () => {
      await store.deletePrefix('')
    },
  }
})

describe('MemcachedCacheStore', () => {
  const entry = (value: string | Buffer, lifeMs = 20_000) => ({ value: Buffer.from(value), createdAt: Date.now(), freshUntil: Date.now() + lifeMs / 2, staleUntil: Date.now() + lifeMs, tags: [] })
  const fresh = (): string => `${FILE_PREFIX}${randomUUID().slice(0, 8)}:`

  it('treats a corrupt value as a miss, never an error', async () => {
    const prefix = fresh()
    const corrupt: string[] = []
    const store = new MemcachedCacheStore(connection, { prefix, onCorrupt: (key) => corrupt.push(key) })
    await store.set('raw', entry('fine'))
    const root = (await connection.client.get(`${prefix}g:`)).value?.toString('latin1')
    assert.ok(root !== undefined, 'the root namespace token exists')
    const good = encodeCacheEntry(entry('fine'))
    await connection.client.set(`${prefix}v:${root}:raw`, good.subarray(0, good.byteLength - 1), { expires: 10 })
    assert.equal(await store.get('raw'), undefined)
    assert.deepEqual(corrupt, ['raw'])
    await connection.client.set(`${prefix}v:${root}:raw`, good, { expires: 10 })
    assert.equal(Buffer.from((await store.get('raw'))?.value ?? []).toString(), 'fine', 'the physical key layout is as documented')
    await store.deletePrefix('')
  })

  it('deletePrefix accepts only whole namespaces within the configured depth', async () => {
    const store = new MemcachedCacheStore(connection, { prefix: fresh(), namespaceDepth: 1 })
    for (const bad of ['ns', 'ns:sub:', 'n']) {
      await assert.rejects(store.deletePrefix(bad), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_STORE_COMMAND_FAILED' && /whole namespace/.test(String(err.params.reason)), bad)
    }
    await store.set('ns:sub:k', entry('v'))
    assert.equal(await store.deletePrefix('ns:'), 0)
    assert.equal(await store.get('ns:sub:k'), undefined)
    await store.deletePrefix('')
  })

  it('a namespace dropped on one instance is a miss on another sharing memcached', async () => {
    const prefix = fresh()
    const other = new MemcachedConnection({ servers })
    await other.connect()
    try {
      const a = new MemcachedCacheStore(connection, { prefix })
      const b = new MemcachedCacheStore(other, { prefix })
      await a.set('tenant:x', entry('v'))
      assert.notEqual(await b.get('tenant:x'), undefined)
      await b.deletePrefix('tenant:')
      assert.equal(await a.get('tenant:x'), undefined)
      await a.deletePrefix('')
    } finally {
      await other.close()
    }
  })

  it('an evicted namespace token invalidates the namespace instead of resurrecting old entries', async () => {
    const prefix = fresh()
    const store = new MemcachedCacheStore(connection, { prefix })
    await store.set('ns:k', entry('v'))
    await connection.client.delete(`${prefix}g:ns:`)
    assert.equal(await store.get('ns:k'), undefined)
    await store.deletePrefix('')
  })

  it('sends a TTL over 30 days as an absolute timestamp', async () => {
    const prefix = fresh()
    const store = new MemcachedCacheStore(connection, { prefix })
    const now = Date.now()
    // Read as relative seconds, 31 days would be a timestamp in 1970: already expired.
    await store.set('long', { ...entry('v'), staleUntil: now + 31 * 24 * 3_600_000 })
    assert.notEqual(await store.get('long'), undefined)
    await store.deletePrefix('')
  })

  it('rejects a value over maxValueBytes with ERR_STORE_VALUE_REJECTED', async () => {
    const store = new MemcachedCacheStore(connection, { prefix: fresh(), maxValueBytes: 2_048 })
    await assert.rejects(store.set('big', entry(Buffer.alloc(4_096))), { code: 'ERR_STORE_VALUE_REJECTED' })
    await store.deletePrefix('')
  })

  it('fails with a dependency error when memcached is unreachable', async () => {
    const dead = new MemcachedConnection({ servers: '127.0.0.1:1', connectTimeoutMs: 200, retries: 1, retryDelayMs: 10 })
    const store = new MemcachedCacheStore(dead, { prefix: fresh() })
    await assert.rejects(store.get('k'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
  })

  it('rejects a prefix memcached cannot hold with a ConfigError', () => {
    assert.throws(() => new MemcachedCacheStore(connection, { prefix: 'has space:' }), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => new MemcachedCacheStore(connection, { namespaceSeparator: '::' }), { code: 'ERR_CONFIG_INVALID' })
  })
})
