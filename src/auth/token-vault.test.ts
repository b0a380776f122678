import assert from 'node:assert/strict'
import { hash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { BackbeatError, ConfigError, delay, type SecurityEvent } from '../core/index.ts'
import { MemoryKeyValueStore, PgliteDatabase, type KeyValueStore } from '../stores/index.ts'
import type { OAuthTokens, RefreshedTokens } from './oauth2-client.ts'
import { SecretBox } from './secret-box.ts'
import { MemoryVaultStore, SqlVaultStore, TokenVault, type TokenRefresher, type VaultStore } from './token-vault.ts'

const KEY_1 = randomBytes(32).toString('base64url')
const KEY_2 = randomBytes(32).toString('base64url')
const HOUR = 3_600_000

/**
 * A provider that rotates refresh tokens like a strict authorization server: each refresh
 * token works once, and presenting a spent one revokes the whole grant (OAuth 2.0 Security
 * BCP, RFC 9700 section 4.14). The real-server version of these checks is in oauth2.test.ts.
 */
class RotatingProvider implements TokenRefresher {
  readonly timeoutMs = 1_000
  calls = 0
  delayMs = 0
  failWith: Error | undefined
  readonly #live = new Set<string>()
  readonly #spent = new Set<string>()
  #n = 0
  readonly now: () => number

  constructor(now: () => number) {
    this.now = now
  }

  issue(lifetimeMs = HOUR): OAuthTokens {
    const n = ++this.#n
    this.#live.add(`rt-${n}`)
    return { accessToken: `at-${n}`, tokenType: 'Bearer', refreshToken: `rt-${n}`, expiresAt: this.now() + lifetimeMs, scopes: ['user-read-email'] }
  }

  async refresh(refreshToken: string): Promise<RefreshedTokens> {
    this.calls++
    if (this.delayMs > 0) await delay(this.delayMs)
    if (this.failWith !== undefined) throw this.failWith
    if (!this.#live.has(refreshToken)) {
      if (this.#spent.has(refreshToken)) this.#live.clear()
      throw new BackbeatError('ERR_AUTH_PROVIDER_RELINK_REQUIRED', { params: { provider: 'spotify' } })
    }
    this.#live.delete(refreshToken)
    this.#spent.add(refreshToken)
    const n = ++this.#n
    this.#live.add(`rt-${n}`)
    return { accessToken: `at-${n}`, tokenType: 'Bearer', refreshToken: `rt-${n}`, expiresAt: this.now() + HOUR }
  }

  revokeAll(): void {
    this.#live.clear()
  }
}

function errorCode(err: unknown): string {
  assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
  return err.code
}

/** The contract every VaultStore meets. */
function describeVaultStore(name: string, make: () => Promise<{ store: VaultStore; cleanup: () => Promise<void> }>): void {
  describe(`${name} (VaultStore contract)`, () => {
    let store: VaultStore
    let cleanup: () => Promise<void>
    before(async () => {
      ;({ store, cleanup } = await make())
    })
    after(async () => {
      await store.close()
      await cleanup()
    })

    it('puts, gets and replaces one value per (user, provider)', async () => {
      assert.equal(await store.get('u1', 'spotify'), undefined)
      await store.put('u1', 'spotify', 'a')
      await store.put('u1', 'acme', 'b')
      await store.put('u2', 'spotify', 'c')
      await store.put('u1', 'spotify', 'a2')
      assert.equal(await store.get('u1', 'spotify'), 'a2')
      assert.equal(await store.get('u1', 'acme'), 'b')
      assert.equal(await store.get('u2', 'spotify'), 'c')
    })

    it('swaps only while the value is the one the writer read', async () => {
      await store.put('swap', 'spotify', 'v1')
      assert.equal(await store.swap('swap', 'spotify', 'v0', 'v2'), false)
      assert.equal(await store.get('swap', 'spotify'), 'v1')
      assert.equal(await store.swap('swap', 'spotify', 'v1', 'v2'), true)
      assert.equal(await store.get('swap', 'spotify'), 'v2')
      assert.equal(await store.swap('missing', 'spotify', 'v1', 'v2'), false)
      assert.equal(await store.get('missing', 'spotify'), undefined)
    })

    it('deletes, conditionally on the value when asked, and tells whether it did', async () => {
      await store.put('del', 'spotify', 'x')
      assert.equal(await store.delete('del', 'spotify', 'other'), false)
      assert.equal(await store.get('del', 'spotify'), 'x')
      assert.equal(await store.delete('del', 'spotify', 'x'), true)
      assert.equal(await store.delete('del', 'spotify'), false)
      await store.put('del', 'spotify', 'y')
      assert.equal(await store.delete('del', 'spotify'), true)
      assert.equal(await store.get('del', 'spotify'), undefined)
    })

    it('lists every row once, in pages, in a stable order', async () => {
      const ids = ['p-b', 'p-a', 'p-c', 'p-a/x', 'p-Z', 'p-é']
      for (const id of ids) for (const provider of ['spotify', 'acme']) await store.put(id, provider, `${id}:${provider}`)
      const seen: string[] = []
      let cursor: { userId: string; provider: string } | undefined
      for (let page = 0; page < 100; page++) {
        const rows = await store.list(cursor, 5)
        seen.push(...rows.map((r) => `${r.userId}|${r.provider}|${r.sealed}`))
        const last = rows.at(-1)
        if (last === undefined || rows.length < 5) break
        cursor = { userId: last.userId, provider: last.provider }
      }
      const mine = seen.filter((s) => s.startsWith('p-'))
      assert.equal(mine.length, ids.length * 2)
      assert.equal(new Set(seen).size, seen.length)
      for (const id of ids) assert.ok(mine.includes(`${id}|acme|${id}:acme`))
      assert.deepEqual(await store.list(undefined, 1_000), await store.list(undefined, 1_000))
    })
  })
}

describeVaultStore('MemoryVaultStore', async () => ({ store: new MemoryVaultStore(), cleanup: async () => undefined }))

describeVaultStore('SqlVaultStore on PGlite', async () => {
  const db = new PgliteDatabase()
  await db.connect()
  const store = new SqlVaultStore({ db })
  assert.deepEqual(await store.migrate(), ['auth_vault_0001_backbeat_provider_tokens'])
  assert.deepEqual(await store.migrate(), [])
  return { store, cleanup: () => db.close() }
})

describe('TokenVault', () => {
  let clock = Date.parse('2026-03-01T12:00:00Z')
  const now = (): number => clock
  const box = new SecretBox({ keys: { 1: KEY_1, 2: KEY_2 }, current: 2 })

  function setup(options: { lock?: KeyValueStore; store?: VaultStore; box?: SecretBox } = {}): { vault: TokenVault; store: VaultStore; provider: RotatingProvider; events: SecurityEvent[] } {
    const store = options.store ?? new MemoryVaultStore()
    const provider = new RotatingProvider(now)
    const events: SecurityEvent[] = []
    const vault = new TokenVault({
      store,
      box: options.box ?? box,
      clients: { spotify: provider },
      now,
      lockPollMs: 5,
      ...(options.lock === undefined ? {} : { lock: options.lock }),
      securityEvents: (e) => events.push(e),
    })
    return { vault, store, provider, events }
  }

  it('stores tokens encrypted, bound to the (user, provider) row', async () => {
    const { vault, store, provider } = setup()
    await vault.save('user-1', 'spotify', provider.issue())
    const sealed = await store.get('user-1', 'spotify')
    assert.ok(sealed !== undefined)
    assert.match(sealed, /^v2\./)
    assert.ok(!sealed.includes('at-1') && !sealed.includes('rt-1'))
    const stored = await vault.get('user-1', 'spotify')
    assert.ok(stored !== undefined)
    assert.equal(stored.accessToken, 'at-1')
    assert.equal(stored.refreshToken, 'rt-1')
    assert.deepEqual(stored.scopes, ['user-read-email'])
    assert.equal(stored.updatedAt, clock)

    // A ciphertext copied to another user's row does not open there.
    await store.put('user-2', 'spotify', sealed)
    await assert.rejects(vault.accessToken('user-2', 'spotify'), (err) => errorCode(err) === 'ERR_INTERNAL')
  })

  it('answers the stored access token while it is outside the refresh skew', async () => {
    const { vault, provider } = setup()
    await vault.save('user-1', 'spotify', provider.issue(HOUR))
    clock += HOUR - 61_000
    assert.equal(await vault.accessToken('user-1', 'spotify'), 'at-1')
    assert.equal(provider.calls, 0)
  })

  it('refreshes within the skew of expiry and stores the rotated refresh token first', async () => {
    const { vault, provider } = setup()
    await vault.save('user-1', 'spotify', provider.issue(HOUR))
    clock += HOUR - 59_000
    assert.equal(await vault.accessToken('user-1', 'spotify'), 'at-2')
    assert.equal(provider.calls, 1)
    const stored = await vault.get('user-1', 'spotify')
    assert.ok(stored !== undefined)
    assert.equal(stored.refreshToken, 'rt-2')
    assert.equal(stored.expiresAt, clock + HOUR)
    assert.deepEqual(stored.scopes, ['user-read-email'], 'scopes absent from the refresh response are kept')
    assert.equal(await vault.accessToken('user-1', 'spotify'), 'at-2')
    assert.equal(provider.calls, 1)
  })

  it('keeps the refresh token when the provider does not rotate it', async () => {
    const store = new MemoryVaultStore()
    const refresher: TokenRefresher = { refresh: async () => ({ accessToken: 'fresh', tokenType: 'Bearer', expiresAt: clock + HOUR, scopes: ['a', 'b'] }) }
    const plain = new TokenVault({ store, box, clients: { spotify: refresher }, now })
    await plain.save('user-1', 'spotify', { accessToken: 'old', tokenType: 'Bearer', refreshToken: 'keep-me', expiresAt: clock - 1, scopes: ['a'] })
    assert.equal(await plain.accessToken('user-1', 'spotify'), 'fresh')
    const stored = await plain.get('user-1', 'spotify')
    assert.ok(stored !== undefined)
    assert.equal(stored.refreshToken, 'keep-me')
    assert.deepEqual(stored.scopes, ['a', 'b'])
  })

  it('refreshes early, once, for callers whose token the provider API refused', async () => {
    const { vault, provider } = setup()
    provider.delayMs = 10
    await vault.save('user-1', 'spotify', provider.issue(HOUR))
    assert.equal(await vault.accessToken('user-1', 'spotify', { rejected: 'not-the-stored-token' }), 'at-1')
    assert.equal(provider.calls, 0)
    const tokens = await Promise.all(Array.from({ length: 5 }, () => vault.accessToken('user-1', 'spotify', { rejected: 'at-1' })))
    assert.deepEqual(new Set(tokens), new Set(['at-2']))
    assert.equal(provider.calls, 1)
    // A caller that saw the old token refused after the refresh gets the new one, no second refresh.
    assert.equal(await vault.accessToken('user-1', 'spotify', { rejected: 'at-1' }), 'at-2')
    assert.equal(provider.calls, 1)
  })

  it('runs one refresh for many concurrent callers in one process', async () => {
    const { vault, provider } = setup()
    provider.delayMs = 20
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    const tokens = await Promise.all(Array.from({ length: 10 }, () => vault.accessToken('user-1', 'spotify')))
    assert.deepEqual(new Set(tokens), new Set(['at-2']))
    assert.equal(provider.calls, 1)
  })

  it('runs one refresh across instances sharing the store and the lock, and never spends a refresh token twice', async () => {
    const store = new MemoryVaultStore()
    const lock = new MemoryKeyValueStore({ now })
    const provider = new RotatingProvider(now)
    provider.delayMs = 30
    const vaults = Array.from({ length: 3 }, () => new TokenVault({ store, box, clients: { spotify: provider }, now, lock, lockPollMs: 5 }))
    await vaults[0]!.save('user-1', 'spotify', provider.issue(1_000))
    const tokens = await Promise.all(vaults.flatMap((v) => [v.accessToken('user-1', 'spotify'), v.accessToken('user-1', 'spotify')]))
    assert.deepEqual(new Set(tokens), new Set(['at-2']))
    assert.equal(provider.calls, 1)
    assert.equal(await lock.get(`backbeat:vault-lock:${hash('sha256', 'spotify\0user-1', 'base64url')}`), undefined, 'the lock is released')
    // The grant is intact: the stored refresh token still works.
    clock += HOUR
    assert.equal(await vaults[2]!.accessToken('user-1', 'spotify'), 'at-3')
  })

  it('without a shared lock two instances do spend the token twice (why the lock exists)', async () => {
    const store = new MemoryVaultStore()
    const provider = new RotatingProvider(now)
    provider.delayMs = 20
    const [a, b] = [new TokenVault({ store, box, clients: { spotify: provider }, now }), new TokenVault({ store, box, clients: { spotify: provider }, now })]
    await a.save('user-1', 'spotify', provider.issue(1_000))
    const results = await Promise.allSettled([a.accessToken('user-1', 'spotify'), b.accessToken('user-1', 'spotify')])
    assert.equal(provider.calls, 2)
    assert.equal(results.filter((r) => r.status === 'rejected').length, 1)
  })

  it('takes over a lock left by a crashed instance once its TTL passes', async () => {
    const lock = new MemoryKeyValueStore({ now })
    const { vault, provider } = setup({ lock })
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    // A crashed holder: every lock key is taken, with the default 30 s TTL.
    const real = lock.increment.bind(lock)
    let held = 0
    lock.increment = async (key, by, ttl) => {
      if (held++ === 0) await real(key, 1, ttl)
      return real(key, by, ttl)
    }
    const pending = vault.accessToken('user-1', 'spotify')
    await delay(30)
    assert.equal(provider.calls, 0, 'waits while the lock is held')
    clock += 30_001
    assert.equal(await pending, 'at-2')
    assert.equal(provider.calls, 1)
  })

  it('gives up with ERR_DEPENDENCY_TIMEOUT when the lock stays held past lockWaitMs', async () => {
    const lock = new MemoryKeyValueStore({ now })
    const provider = new RotatingProvider(now)
    const vault = new TokenVault({ store: new MemoryVaultStore(), box, clients: { spotify: { refresh: provider.refresh.bind(provider) } }, now, lock, lockTtlMs: 1_000, lockWaitMs: 1_000, lockPollMs: 50 })
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    lock.increment = async () => 2
    const started = Date.now()
    await assert.rejects(vault.accessToken('user-1', 'spotify'), (err) => errorCode(err) === 'ERR_DEPENDENCY_TIMEOUT')
    assert.ok(Date.now() - started < 5_000)
    assert.equal(provider.calls, 0)
  })

  it('fails the refresh, not the whole vault, when the lock store is down', async () => {
    const lock = new MemoryKeyValueStore({ now })
    const { vault, provider } = setup({ lock })
    await vault.save('fresh', 'spotify', provider.issue(HOUR))
    await vault.save('stale', 'spotify', provider.issue(1_000))
    lock.increment = () => Promise.reject(new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE'))
    await assert.rejects(vault.accessToken('stale', 'spotify'), (err) => errorCode(err) === 'ERR_DEPENDENCY_UNAVAILABLE')
    assert.equal(provider.calls, 0, 'no refresh without the lock')
    assert.equal(await vault.accessToken('fresh', 'spotify'), 'at-1')
  })

  it('deletes the entry and asks for a relink when the provider refuses the refresh token', async () => {
    const { vault, store, provider, events } = setup()
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    provider.revokeAll()
    await assert.rejects(vault.accessToken('user-1', 'spotify'), (err: unknown) => {
      assert.ok(err instanceof BackbeatError)
      assert.equal(err.code, 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
      assert.equal(err.status, 401)
      assert.equal(err.params.provider, 'spotify')
      return true
    })
    assert.equal(await store.get('user-1', 'spotify'), undefined)
    assert.deepEqual(events.map((e) => [e.type, e.details.provider]), [['provider_grant_revoked', 'spotify']])
    await assert.rejects(vault.accessToken('user-1', 'spotify'), (err) => errorCode(err) === 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
  })

  it('asks for a relink when nothing is stored or the token expired without a refresh token', async () => {
    const { vault, store } = setup()
    await assert.rejects(vault.accessToken('nobody', 'spotify'), (err) => errorCode(err) === 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
    await vault.save('user-1', 'spotify', { accessToken: 'a', tokenType: 'Bearer', expiresAt: clock + 1_000, scopes: [] })
    await assert.rejects(vault.accessToken('user-1', 'spotify'), (err) => errorCode(err) === 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
    assert.equal(await store.get('user-1', 'spotify'), undefined)
  })

  it('keeps the entry when the provider is down, so a later call can refresh', async () => {
    const { vault, store, provider } = setup()
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    provider.failWith = new BackbeatError('ERR_AUTH_OAUTH_PROVIDER_FAILED', { params: { reason: 'down' } })
    await assert.rejects(vault.accessToken('user-1', 'spotify'), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_PROVIDER_FAILED')
    assert.ok((await store.get('user-1', 'spotify')) !== undefined)
    provider.failWith = undefined
    assert.equal(await vault.accessToken('user-1', 'spotify'), 'at-2')
  })

  it('lets a sign-in that lands during a refresh win over the refreshed tokens', async () => {
    const { vault, provider } = setup()
    provider.delayMs = 30
    await vault.save('user-1', 'spotify', provider.issue(1_000))
    const refreshing = vault.accessToken('user-1', 'spotify')
    await delay(5)
    await vault.save('user-1', 'spotify', { accessToken: 'relinked', tokenType: 'Bearer', refreshToken: 'relinked-rt', expiresAt: clock + HOUR, scopes: [] })
    assert.equal(await refreshing, 'at-2')
    assert.equal((await vault.get('user-1', 'spotify'))?.refreshToken, 'relinked-rt')
  })

  it('re-seals entries of an old key version when it reads them (lazy rotation)', async () => {
    const store = new MemoryVaultStore()
    const oldBox = new SecretBox({ keys: { 1: KEY_1 }, current: 1 })
    const legacy = setup({ store, box: oldBox })
    await legacy.vault.save('user-1', 'spotify', legacy.provider.issue(HOUR))
    assert.match((await store.get('user-1', 'spotify')) ?? '', /^v1\./)

    const { vault } = setup({ store })
    assert.equal(await vault.accessToken('user-1', 'spotify'), 'at-1')
    assert.match((await store.get('user-1', 'spotify')) ?? '', /^v2\./)
    // The old key alone can no longer read it: version 1 can now be retired.
    await assert.rejects(legacy.vault.get('user-1', 'spotify'), (err) => errorCode(err) === 'ERR_AUTH_VAULT_KEY_UNKNOWN')
  })

  it('rotateAll re-seals every old entry in pages and reports those it cannot open', async () => {
    const store = new MemoryVaultStore()
    const oldBox = new SecretBox({ keys: { 1: KEY_1 }, current: 1 })
    const old = setup({ store, box: oldBox })
    for (let i = 0; i < 25; i++) await old.vault.save(`user-${String(i).padStart(2, '0')}`, 'spotify', old.provider.issue())
    const { vault } = setup({ store })
    await vault.save('already-new', 'spotify', old.provider.issue())
    await store.put('orphan', 'spotify', new SecretBox({ keys: { 9: randomBytes(32) }, current: 9 }).seal('x'))
    const report = await vault.rotateAll({ batchSize: 7 })
    assert.equal(report.scanned, 27)
    assert.equal(report.rotated, 25)
    assert.deepEqual(report.failed, [{ userId: 'orphan', provider: 'spotify', code: 'ERR_AUTH_VAULT_KEY_UNKNOWN' }])
    const rows = await store.list(undefined, 100)
    assert.equal(rows.filter((r) => r.sealed.startsWith('v2.')).length, 26)
    assert.equal((await vault.get('user-07', 'spotify'))?.accessToken, 'at-8')
    assert.deepEqual(await vault.rotateAll(), { scanned: 27, rotated: 0, failed: [{ userId: 'orphan', provider: 'spotify', code: 'ERR_AUTH_VAULT_KEY_UNKNOWN' }] })
  })

  it('refuses bad options at construction, listing each by path', () => {
    const provider = new RotatingProvider(now)
    try {
      new TokenVault({ store: new MemoryVaultStore(), box, clients: { Spotify: provider, acme: { timeoutMs: 20_000, refresh: provider.refresh.bind(provider) } }, lock: new MemoryKeyValueStore(), refreshSkewMs: -1, lockWaitMs: 1_000 })
      assert.fail('expected a ConfigError')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      const paths = err.issues.map((i) => i.path)
      assert.deepEqual(paths, ['vault.refreshSkewMs'])
    }
    try {
      new TokenVault({ store: new MemoryVaultStore(), box, clients: { Spotify: provider, acme: { timeoutMs: 20_000, refresh: provider.refresh.bind(provider) } }, lock: new MemoryKeyValueStore(), lockWaitMs: 1_000 })
      assert.fail('expected a ConfigError')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.issues.map((i) => i.path).sort(), ['vault.clients.Spotify', 'vault.lockTtlMs', 'vault.lockWaitMs'])
    }
    assert.throws(() => new TokenVault({ store: new MemoryVaultStore(), box, clients: {} }), ConfigError)
  })

  it('refuses unknown providers and malformed identities', async () => {
    const { vault } = setup()
    await assert.rejects(vault.accessToken('user-1', 'acme'), ConfigError)
    await assert.rejects(vault.accessToken('', 'spotify'), TypeError)
    await assert.rejects(vault.get('x'.repeat(256), 'spotify'), TypeError)
    await assert.rejects(vault.save('user-1', 'Spotify!', { accessToken: 'a', tokenType: 'Bearer', scopes: [] }), TypeError)
  })
})
