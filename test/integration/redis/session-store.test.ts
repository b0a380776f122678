import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { RedisSessionStore, SessionManager } from 'backbeat/auth'
import { RedisConnection } from '../../../src/stores/index.ts'
import { describeSessionStore } from '../../../src/testing/session-store-contract.ts'
import { deleteRedisKeysByPrefix, redisTestScope } from '../services.ts'

// Everything this file writes lives under this prefix (connection keyPrefix + store prefix).
const FILE_PREFIX = `bbtest:sess:${process.pid}:`
const redis = redisTestScope(FILE_PREFIX)

let fixtures = 0
describeSessionStore('RedisSessionStore', async () => {
  const prefix = `c${++fixtures}:`
  const connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX, name: 'session-contract' })
  await connection.connect()
  return {
    store: new RedisSessionStore(connection, { prefix }),
    ttlMs: 200,
    cleanup: async () => {
      await deleteRedisKeysByPrefix(redis.admin, FILE_PREFIX + prefix)
      await connection.close()
    },
  }
})

describe('RedisSessionStore on real Redis', () => {
  let connection: RedisConnection
  const prefix = 'm:'

  before(async () => {
    connection = new RedisConnection({ url: redis.url, keyPrefix: FILE_PREFIX, name: 'session-manager' })
    await connection.connect()
  })
  after(async () => {
    await connection.close()
  })

  it('keys sessions on the SHA-256 of their ID: nothing in Redis can be replayed as a cookie', async () => {
    const sessions = new SessionManager({ store: new RedisSessionStore(connection, { prefix }) })
    const session = await sessions.create('alice', { userAgent: 'UA', ip: '192.0.2.1' })
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.admin.scan(cursor, 'MATCH', `${FILE_PREFIX}${prefix}*`, 'COUNT', 500)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
    assert.deepEqual(keys.sort(), [`${FILE_PREFIX}${prefix}s:${session.handle}`, `${FILE_PREFIX}${prefix}u:alice`])
    const dump = [await redis.admin.get(`${FILE_PREFIX}${prefix}s:${session.handle}`), ...(await redis.admin.zrange(`${FILE_PREFIX}${prefix}u:alice`, '0', '-1'))].join('\n')
    assert.ok(!dump.includes(session.id))
    const pttl = await redis.admin.pttl(`${FILE_PREFIX}${prefix}s:${session.handle}`)
    assert.ok(pttl > 29 * 60_000 && pttl <= 30 * 60_000, `PX is the idle timeout: ${pttl}`)
    assert.ok((await redis.admin.pttl(`${FILE_PREFIX}${prefix}u:alice`)) >= pttl - 1_000, 'the index lives as long as its sessions')
  })

  it('runs the manager\'s rotation, listing and sign-out of other devices end to end', async () => {
    const sessions = new SessionManager({ store: new RedisSessionStore(connection, { prefix }) })
    const current = await sessions.create('bob', { roles: ['admin'] })
    const other = await sessions.create('bob')
    const rotated = await sessions.markMfa(current.id)
    assert.ok(rotated !== undefined)
    assert.equal(await sessions.get(current.id), undefined)
    assert.deepEqual((await sessions.listForUser('bob', { currentId: rotated.id })).map((s) => [s.handle, s.current]).sort(), [[other.handle, false], [rotated.handle, true]].sort())
    assert.equal(await sessions.revokeAllForUser('bob', { except: rotated.id }), 1)
    assert.equal(await sessions.get(other.id), undefined)
    assert.equal((await sessions.get(rotated.id))?.mfaAt, rotated.mfaAt)
  })

  it('treats a corrupted or foreign value under a session key as no session, and still deletes it', async () => {
    const store = new RedisSessionStore(connection, { prefix })
    const sessions = new SessionManager({ store })
    const session = await sessions.create('carol')
    await redis.admin.set(`${FILE_PREFIX}${prefix}s:${session.handle}`, '{not json', 'PX', 60_000)
    assert.equal(await sessions.get(session.id), undefined)
    assert.equal(await store.delete(session.handle), true)
    assert.equal(await redis.admin.exists(`${FILE_PREFIX}${prefix}s:${session.handle}`), 0)
  })
})
