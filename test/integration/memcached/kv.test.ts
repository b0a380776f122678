import { before } from 'node:test'
import { MemcachedConnection, MemcachedKeyValueStore, type KeyValueStore } from '../../../src/stores/index.ts'
import { describeKeyValueStore } from '../../../src/testing/index.ts'
import { requireMemcachedServers } from '../services.ts'

let servers = ''

before(async () => {
  servers = await requireMemcachedServers()
})

describeKeyValueStore('MemcachedKeyValueStore', async ({ prefix }) => {
  const connection = new MemcachedConnection({ servers, name: 'kv-contract' })
  await connection.connect()
  // memcached cannot list keys by prefix, so cleanup deletes every key this fixture touched.
  const touched = new Set<string>()
  const inner = new MemcachedKeyValueStore(connection, { prefix: `bbtest:${process.pid}:${prefix}` })
  const store: KeyValueStore = {
    get: (key) => inner.get(key),
    set: (key, value, ttlMs) => (touched.add(key), inner.set(key, value, ttlMs)),
    delete: (key) => inner.delete(key),
    increment: (key, by, ttlMs) => (touched.add(key), inner.increment(key, by, ttlMs)),
    close: () => inner.close(),
  }
  return {
    store,
    // memcached expires on whole seconds of its own clock: a 1 s TTL ends within 1-2 s.
    ttlMs: 1_000,
    expiryGraceMs: 1_100,
    cleanup: async () => {
      await Promise.all([...touched].map((key) => inner.delete(key).catch(() => false)))
      await connection.close()
    },
  }
})
