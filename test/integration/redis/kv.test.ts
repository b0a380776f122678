import { RedisConnection, RedisKeyValueStore } from '../../../src/stores/index.ts'
import { describeKeyValueStore } from '../../../src/testing/index.ts'
import { deleteRedisKeysByPrefix, redisTestScope } from '../services.ts'

// Everything this file writes lives under this prefix (connection keyPrefix + store prefix).
const FILE_PREFIX = `bbtest:kv:${process.pid}:`
const redis = redisTestScope(FILE_PREFIX)

describeKeyValueStore('RedisKeyValueStore', async ({ prefix }) => {
  const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX, name: 'kv-contract' })
  await connection.connect()
  return {
    store: new RedisKeyValueStore(connection, { prefix }),
    ttlMs: 200,
    expiryGraceMs: 50,
    cleanup: async () => {
      await deleteRedisKeysByPrefix(redis.admin, FILE_PREFIX + prefix)
      await connection.close()
    },
  }
})
