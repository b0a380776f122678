import { Redis } from 'ioredis'
import { after, before } from 'node:test'
import { RedisConnection, RedisKeyValueStore } from '../../../src/stores/index.ts'
import { describeKeyValueStore } from '../../../src/testing/index.ts'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'

// Everything this file writes lives under this prefix (connection keyPrefix + store prefix).
const FILE_PREFIX = `bbtest:kv:${process.pid}:`
let url = ''
let admin: Redis

before(async () => {
  url = await requireRedisUrl()
  admin = new Redis(url)
})

after(async () => {
  await deleteRedisKeysByPrefix(admin, FILE_PREFIX)
  await admin.quit()
})

describeKeyValueStore('RedisKeyValueStore', async ({ prefix }) => {
  const connection = new RedisConnection({ url, keyPrefix: FILE_PREFIX, name: 'kv-contract' })
  await connection.connect()
  return {
    store: new RedisKeyValueStore(connection, { prefix }),
    ttlMs: 200,
    expiryGraceMs: 50,
    cleanup: async () => {
      await deleteRedisKeysByPrefix(admin, FILE_PREFIX + prefix)
      await connection.close()
    },
  }
})
