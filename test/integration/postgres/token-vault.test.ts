import assert from 'node:assert/strict'
import { hash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { SecretBox } from '../../../src/auth/secret-box.ts'
import { SqlVaultStore, TokenVault, type TokenRefresher } from '../../../src/auth/token-vault.ts'
import type { RefreshedTokens } from '../../../src/auth/oauth2-client.ts'
import { BackbeatError, delay } from '../../../src/core/index.ts'
import { PostgresDatabase, RedisConnection, RedisKeyValueStore } from '../../../src/stores/index.ts'
import { deleteRedisKeysByPrefix, requireDatabaseUrl, requireRedisUrl } from '../services.ts'
import { adminQuery, databaseInFreshSchema } from './fixture.ts'

// Redis keys of this file (the refresh locks) live under this prefix.
const REDIS_PREFIX = `bbtest:vault:${process.pid}:`
const HOUR = 3_600_000

/**
 * A provider whose refresh tokens work once; a spent one revokes the grant. Shared by the
 * "instances" below as the real provider would be. (oauth2.test.ts runs the same checks
 * against a real OIDC server; here the backends are the point.)
 */
class RotatingProvider implements TokenRefresher {
  readonly timeoutMs = 1_000
  calls = 0
  readonly #live = new Set<string>(['rt-0'])
  #n = 0

  async refresh(refreshToken: string): Promise<RefreshedTokens> {
    this.calls++
    await delay(50)
    if (!this.#live.delete(refreshToken)) {
      this.#live.clear()
      throw new BackbeatError('ERR_AUTH_PROVIDER_RELINK_REQUIRED', { params: { provider: 'spotify' } })
    }
    const n = ++this.#n
    this.#live.add(`rt-${n}`)
    return { accessToken: `at-${n}`, tokenType: 'Bearer', refreshToken: `rt-${n}`, expiresAt: Date.now() + HOUR }
  }
}

describe('token vault on PostgreSQL (and a Redis refresh lock)', () => {
  let url = ''
  let redisUrl = ''
  let admin: Redis
  let db: PostgresDatabase
  let schema = ''
  let cleanup: () => Promise<void>
  let store: SqlVaultStore
  const box = new SecretBox({ keys: { 1: randomBytes(32), 2: randomBytes(32) }, current: 2 })

  before(async () => {
    url = await requireDatabaseUrl()
    redisUrl = await requireRedisUrl()
    admin = new Redis(redisUrl)
    ;({ db, schema, cleanup } = await databaseInFreshSchema(url))
    store = new SqlVaultStore({ db })
  })

  after(async () => {
    await deleteRedisKeysByPrefix(admin, REDIS_PREFIX)
    await admin.quit()
    await cleanup()
  })

  it('creates its table once, even when instances migrate together', async () => {
    const results = await Promise.all([store.migrate(), new SqlVaultStore({ db }).migrate(), store.migrate()])
    assert.deepEqual(results.flat(), ['auth_vault_0001_backbeat_provider_tokens'])
    const { rows } = await adminQuery(url, 'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [schema, 'backbeat_provider_tokens'])
    assert.equal((rows[0] as { n: number }).n, 1)
  })

  it('stores, swaps conditionally, deletes conditionally and pages through rows in a stable order', async () => {
    await store.put('ü-user', 'spotify', 'a')
    await store.put('ü-user', 'spotify', 'b')
    assert.equal(await store.get('ü-user', 'spotify'), 'b')
    assert.equal(await store.swap('ü-user', 'spotify', 'a', 'c'), false)
    assert.equal(await store.swap('ü-user', 'spotify', 'b', 'c'), true)
    assert.equal(await store.delete('ü-user', 'spotify', 'b'), false)
    assert.equal(await store.delete('ü-user', 'spotify', 'c'), true)
    assert.equal(await store.get('ü-user', 'spotify'), undefined)

    const ids = ['Zed', 'alice', 'Ålice', 'bob', 'bob/2', '日本']
    for (const id of ids) for (const provider of ['spotify', 'acme']) await store.put(`page-${id}`, provider, `${id}/${provider}`)
    const seen: string[] = []
    let cursor: { userId: string; provider: string } | undefined
    for (;;) {
      const rows = await store.list(cursor, 4)
      seen.push(...rows.map((r) => `${r.userId}|${r.provider}`))
      const last = rows.at(-1)
      if (last === undefined || rows.length < 4) break
      cursor = { userId: last.userId, provider: last.provider }
    }
    assert.equal(seen.length, ids.length * 2)
    assert.equal(new Set(seen).size, seen.length)
    await db.query("DELETE FROM backbeat_provider_tokens WHERE user_id LIKE 'page-%'")
  })

  it('keeps only ciphertext in the table, bound to its row', async () => {
    const vault = new TokenVault({ store, box, clients: { spotify: new RotatingProvider() } })
    await vault.save('enc-user', 'spotify', { accessToken: 'secret-access', tokenType: 'Bearer', refreshToken: 'secret-refresh', expiresAt: Date.now() + HOUR, scopes: ['user-read-email'] })
    const { rows } = await adminQuery(url, `SELECT sealed FROM ${schema}.backbeat_provider_tokens WHERE user_id = $1`, ['enc-user'])
    const sealed = (rows[0] as { sealed: string }).sealed
    assert.match(sealed, /^v2\./)
    assert.ok(!sealed.includes('secret-'))
    await store.put('thief', 'spotify', sealed)
    await assert.rejects(vault.accessToken('thief', 'spotify'), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_INTERNAL')
    assert.equal(await vault.accessToken('enc-user', 'spotify'), 'secret-access')
  })

  it('refreshes once for concurrent callers on two instances, each with its own pool and Redis connection', async () => {
    const provider = new RotatingProvider()
    const instances: Array<{ vault: TokenVault; close: () => Promise<void> }> = []
    for (let i = 0; i < 2; i++) {
      const ownDb = new PostgresDatabase({ url, schema, poolSize: 3 })
      await ownDb.connect()
      const redis = new RedisConnection({ url: redisUrl, keyPrefix: REDIS_PREFIX, name: `vault-${i}` })
      await redis.connect()
      const vault = new TokenVault({ store: new SqlVaultStore({ db: ownDb }), box, clients: { spotify: provider }, lock: new RedisKeyValueStore(redis), lockPollMs: 10 })
      instances.push({ vault, close: async () => Promise.all([ownDb.close(), redis.close()]).then(() => undefined) })
    }
    try {
      const [a, b] = instances.map((i) => i.vault) as [TokenVault, TokenVault]
      await a.save('race-user', 'spotify', { accessToken: 'at-0', tokenType: 'Bearer', refreshToken: 'rt-0', expiresAt: Date.now() + 10_000, scopes: [] })
      const tokens = await Promise.all([a, b, a, b, a, b].map((v) => v.accessToken('race-user', 'spotify')))
      assert.deepEqual(new Set(tokens), new Set(['at-1']))
      assert.equal(provider.calls, 1)
      assert.equal((await b.get('race-user', 'spotify'))?.refreshToken, 'rt-1')
      assert.equal(await admin.exists(`${REDIS_PREFIX}backbeat:vault-lock:${hash('sha256', 'spotify\0race-user', 'base64url')}`), 0, 'the lock is released')
    } finally {
      for (const instance of instances) await instance.close()
    }
  })

  it('re-seals a table of entries under the new key, in pages, after which the old key can go', async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)]
    const provider = new RotatingProvider()
    const old = new TokenVault({ store, box: new SecretBox({ keys: { 1: k1 }, current: 1 }), clients: { spotify: provider } })
    for (let i = 0; i < 120; i++) await old.save(`rot-${String(i).padStart(3, '0')}`, 'spotify', { accessToken: `at-${i}`, tokenType: 'Bearer', scopes: [] })
    const count = async (prefix: string): Promise<number> =>
      (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM backbeat_provider_tokens WHERE user_id LIKE 'rot-%' AND sealed LIKE $1", [`${prefix}%`])).rows[0]?.n ?? -1
    assert.equal(await count('v1.'), 120)

    const rotating = new TokenVault({ store, box: new SecretBox({ keys: { 1: k1, 2: k2 }, current: 2 }), clients: { spotify: provider } })
    const report = await rotating.rotateAll({ batchSize: 50 })
    assert.equal(report.rotated, 120)
    assert.equal(report.failed.length, 0)
    assert.equal(await count('v1.'), 0)
    assert.equal(await count('v2.'), 120)

    const retired = new TokenVault({ store, box: new SecretBox({ keys: { 2: k2 }, current: 2 }), clients: { spotify: provider } })
    assert.equal(await retired.accessToken('rot-077', 'spotify'), 'at-77')
  })
})
