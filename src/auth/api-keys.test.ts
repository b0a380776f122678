import assert from 'node:assert/strict'
import { createHash, createHmac, randomUUID } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { crc32 } from 'node:zlib'
import { BackbeatError, ConfigError, SecurityEventLog } from '../core/index.ts'
import { PgliteDatabase } from '../stores/index.ts'
import { describeApiKeyStore } from '../testing/api-key-store-contract.ts'
import { MemoryApiKeyStore, SqlApiKeyStore, type ApiKeyListQuery, type ApiKeyRecord, type ApiKeyStore, type StoredApiKey } from './api-key-store.ts'
import type { ApiKeyAuthenticator } from './plugin.ts'
import { ApiKeyService, hashApiKey, parseApiKey, type ApiKeyCreateInput, type ApiKeyServiceOptions, type CreatedApiKey } from './api-keys.ts'

describeApiKeyStore('MemoryApiKeyStore', async () => ({ store: new MemoryApiKeyStore(), cleanup: async () => undefined }))

// One PGlite for the file (starting one costs seconds), a fresh schema per test.
let pglite: Promise<PgliteDatabase> | undefined
after(async () => {
  if (pglite !== undefined) await (await pglite).close()
})
describeApiKeyStore('SqlApiKeyStore on PGlite', async () => {
  pglite ??= (async () => {
    const db = new PgliteDatabase()
    await db.connect()
    return db
  })()
  const db = await pglite
  const schema = `t_${randomUUID().replaceAll('-', '')}`
  await db.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
  const store = new SqlApiKeyStore(db)
  await store.migrate()
  return { store, cleanup: () => db.exec(`SET search_path TO public; DROP SCHEMA ${schema} CASCADE`) }
})

const T0 = 1_800_000_000_000
const PEPPER = 'a-server-side-pepper-of-32+-characters!'
const DAY = 86_400_000
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

type Method = 'insert' | 'findByHash' | 'get' | 'list' | 'revoke' | 'rotate' | 'touch'

/** A memory store that counts calls, can fail any method, and can hold `findByHash`/`touch` until released. */
class SpyStore implements ApiKeyStore {
  readonly inner = new MemoryApiKeyStore()
  readonly calls: Record<Method, number> = { insert: 0, findByHash: 0, get: 0, list: 0, revoke: 0, rotate: 0, touch: 0 }
  readonly failures: Partial<Record<Method, Error>> = {}
  readonly gates: Partial<Record<Method, Promise<void>>> = {}

  async #enter(method: Method): Promise<void> {
    this.calls[method]++
    const gate = this.gates[method]
    if (gate !== undefined) await gate
    const failure = this.failures[method]
    if (failure !== undefined) throw failure
  }

  async insert(key: StoredApiKey): Promise<void> {
    await this.#enter('insert')
    return this.inner.insert(key)
  }
  async findByHash(hash: string): Promise<StoredApiKey | undefined> {
    await this.#enter('findByHash')
    return this.inner.findByHash(hash)
  }
  async get(id: string): Promise<ApiKeyRecord | undefined> {
    await this.#enter('get')
    return this.inner.get(id)
  }
  async list(query: ApiKeyListQuery): Promise<ApiKeyRecord[]> {
    await this.#enter('list')
    return this.inner.list(query)
  }
  async revoke(id: string, at: number): Promise<ApiKeyRecord | undefined> {
    await this.#enter('revoke')
    return this.inner.revoke(id, at)
  }
  async rotate(id: string, replacement: StoredApiKey, options: { readonly oldExpiresAt: number; readonly now: number }): Promise<ApiKeyRecord | undefined> {
    await this.#enter('rotate')
    return this.inner.rotate(id, replacement, options)
  }
  async touch(id: string, at: number): Promise<void> {
    await this.#enter('touch')
    return this.inner.touch(id, at)
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

function fixture(options: Partial<ApiKeyServiceOptions> = {}): { service: ApiKeyService; store: SpyStore; clock: { now: number } } {
  const store = new SpyStore()
  const clock = { now: T0 }
  const service = new ApiKeyService({ store, now: () => clock.now, ...options })
  return { service, store, clock }
}

async function rejectsWith(promise: Promise<unknown>, code: string, reason?: string): Promise<BackbeatError> {
  let caught: BackbeatError | undefined
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (reason !== undefined) assert.equal(err.params.reason, reason)
    caught = err
    return true
  })
  assert.ok(caught !== undefined)
  return caught
}

function fieldErrors(err: BackbeatError): { in: string; pointer: string; detail: string }[] {
  return err.extensions?.errors as { in: string; pointer: string; detail: string }[]
}

/** Decodes 6 base62 digits: written independently of the service's encoder on purpose. */
function decodeBase62(text: string): number {
  let value = 0
  for (let i = 0; i < text.length; i++) value = value * 62 + BASE62.indexOf(text.charAt(i))
  return value
}

/** `key` with the character at `index` replaced by another base62 character. */
function typo(key: string, index: number): string {
  const current = key.charAt(index)
  const replacement = BASE62.charAt((BASE62.indexOf(current) + 1) % 62)
  return key.slice(0, index) + replacement + key.slice(index + 1)
}

describe('API key format', () => {
  it('issues bb_live_ + 32 random base62 + a 6-character CRC32 of prefix and random part', async () => {
    const { service } = fixture()
    const { key, record } = await service.create({ owner: 'user-1', name: 'CI' })
    assert.match(key, /^bb_live_[0-9A-Za-z]{38}$/)
    const random = key.slice(8, 40)
    assert.equal(decodeBase62(key.slice(40)), crc32(`bb_live_${random}`))
    assert.deepEqual(parseApiKey(key), { key, prefix: 'bb_live_', random, hint: `bb_live_${random.slice(0, 4)}...${key.slice(-4)}` })
    assert.equal(record.hint, `bb_live_${key.slice(8, 12)}...${key.slice(-4)}`)
    assert.match(record.id, /^ak_[0-9A-Za-z]{12}$/)
  })

  it('keeps accepting a key issued by an earlier version (fixed vector)', () => {
    const random = 'x'.repeat(32)
    const key = `bb_test_${random}2iqt6E`
    assert.equal(decodeBase62('2iqt6E'), crc32(`bb_test_${random}`), 'the vector itself is right')
    assert.equal(parseApiKey(key, { prefix: 'bb_test_' }).random, random)
  })

  it('draws every base62 character, and never the same key twice', async () => {
    const { service } = fixture()
    const keys = await Promise.all(Array.from({ length: 300 }, async (_, i) => (await service.create({ owner: 'u', name: `k${String(i)}` })).key))
    assert.equal(new Set(keys).size, 300)
    const seen = new Set<string>()
    for (const k of keys) for (let i = 8; i < 40; i++) seen.add(k.charAt(i))
    assert.equal(seen.size, 62)
  })

  it('refuses every one-character typo and every adjacent swap by checksum, without a store lookup', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'user-1', name: 'CI' })
    for (let i = 8; i < key.length; i++) {
      await rejectsWith(service.verify(typo(key, i)), 'ERR_AUTH_API_KEY_MALFORMED', 'checksum')
      if (i + 1 < key.length && key[i] !== key[i + 1]) {
        const swapped = key.slice(0, i) + key.charAt(i + 1) + key.charAt(i) + key.slice(i + 2)
        await rejectsWith(service.verify(swapped), 'ERR_AUTH_API_KEY_MALFORMED', 'checksum')
      }
    }
    assert.equal(store.calls.findByHash, 0)
  })

  it('refuses a wrong prefix, length or alphabet without a store lookup', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'user-1', name: 'CI' })
    const cases: [unknown, string][] = [
      [key.replace('bb_live_', 'bb_test_'), 'prefix'],
      [key.replace('bb_live_', 'BB_LIVE_'), 'prefix'],
      ['', 'prefix'],
      [` ${key}`, 'prefix'],
      [key.slice(0, -1), 'length'],
      [`${key}A`, 'length'],
      [`${key}\n`, 'length'],
      [`${key.slice(0, 20)}-${key.slice(21)}`, 'alphabet'],
      [`${key.slice(0, 20)}é${key.slice(21)}`, 'alphabet'],
      [`${key.slice(0, 20)}\u0000${key.slice(21)}`, 'alphabet'],
      [`bb_live_${'A'.repeat(100_000)}`, 'length'],
      [undefined, 'prefix'],
      [42, 'prefix'],
    ]
    for (const [text, reason] of cases) await rejectsWith(service.verify(text as string), 'ERR_AUTH_API_KEY_MALFORMED', reason)
    assert.equal(store.calls.findByHash, 0)
    assert.throws(() => parseApiKey(key, { prefix: 'bb_test_' }), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_AUTH_API_KEY_MALFORMED' && err.status === 401)
    assert.throws(() => parseApiKey(key, { prefix: 'no-underscore' }), TypeError)
  })

  it('issues and accepts only its own environment\'s prefix', async () => {
    const store = new MemoryApiKeyStore()
    const test = new ApiKeyService({ store, prefix: 'bb_test_' })
    const live = new ApiKeyService({ store })
    const { key } = await test.create({ owner: 'u', name: 'staging' })
    assert.ok(key.startsWith('bb_test_'))
    assert.equal((await test.verify(key)).name, 'staging')
    await rejectsWith(live.verify(key), 'ERR_AUTH_API_KEY_MALFORMED', 'prefix')
  })
})

describe('API key hashing', () => {
  it('stores SHA-256 of the key, base64url, and nothing from which the key could be read', async () => {
    const { service, store } = fixture()
    const { key, record } = await service.create({ owner: 'user-1', name: 'CI' })
    const stored = await store.inner.findByHash(hashApiKey(key))
    assert.equal(stored?.hash, createHash('sha256').update(key).digest('base64url'))
    assert.equal(stored.id, record.id)
    const everything = JSON.stringify(await store.inner.list({ limit: 10 })) + JSON.stringify(stored)
    assert.equal(everything.includes(key.slice(8, 40)), false)
    assert.equal(everything.includes(key.slice(12, 36)), false, 'not even the middle of the secret')
  })

  it('keys the hash with the pepper (HMAC-SHA-256): without the right pepper a stored key is unknown', async () => {
    const store = new MemoryApiKeyStore()
    const peppered = new ApiKeyService({ store, pepper: PEPPER })
    const { key } = await peppered.create({ owner: 'u', name: 'CI' })
    assert.equal(await store.findByHash(hashApiKey(key)), undefined)
    assert.equal((await store.findByHash(createHmac('sha256', PEPPER).update(key).digest('base64url')))?.name, 'CI')
    assert.equal((await store.findByHash(hashApiKey(key, PEPPER)))?.name, 'CI')
    assert.equal((await peppered.verify(key)).name, 'CI')
    await rejectsWith(new ApiKeyService({ store }).verify(key), 'ERR_AUTH_API_KEY_INVALID', 'unknown')
    await rejectsWith(new ApiKeyService({ store, pepper: `${PEPPER}2` }).verify(key), 'ERR_AUTH_API_KEY_INVALID', 'unknown')
  })

  it('caches and revokes a peppered key like any other', async () => {
    const { service, store } = fixture({ pepper: PEPPER, cacheTtlMs: 60_000 })
    const { key, record } = await service.create({ owner: 'u', name: 'n' })
    await service.verify(key)
    await service.verify(key)
    assert.equal(store.calls.findByHash, 1)
    assert.equal(service.cached(key)?.id, record.id)
    await service.revoke(record.id)
    assert.equal(service.cached(key), undefined)
    await rejectsWith(service.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'revoked')
  })

  it('refuses a stored record whose hash differs from the key\'s (a store that matched loosely)', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'u', name: 'CI' })
    const real = await store.inner.findByHash(hashApiKey(key))
    store.findByHash = async () => (real === undefined ? undefined : { ...real, hash: `${real.hash.slice(0, -1)}${real.hash.endsWith('A') ? 'B' : 'A'}` })
    await rejectsWith(service.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'unknown')
  })
})

describe('ApiKeyService options', () => {
  it('lists every invalid option by path', () => {
    assert.throws(
      () => new ApiKeyService({ store: {} as ApiKeyStore, prefix: 'Live-', pepper: 'short', cacheTtlMs: -1, lastUsedWriteIntervalMs: 1.5, typo: true } as ApiKeyServiceOptions),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path)
        for (const path of ['apiKeys.store', 'apiKeys.prefix', 'apiKeys.pepper', 'apiKeys.cacheTtlMs', 'apiKeys.lastUsedWriteIntervalMs']) assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`)
        assert.ok(err.issues.some((i) => i.message.includes('typo')), 'unknown options are refused, not ignored')
        return true
      },
    )
  })
})

describe('ApiKeyService.create', () => {
  it('returns the key once and a record with owner, name, deduplicated scopes, expiry and rate-limit policy', async () => {
    const { service } = fixture()
    const { key, record } = await service.create({ owner: 'user-1', name: 'Partner X', scopes: ['playlist:read', 'playlist:write', 'playlist:read'], expiresAt: T0 + DAY, rateLimitPolicy: 'partner-gold' })
    assert.deepEqual({ ...record, scopes: [...record.scopes] }, {
      id: record.id,
      name: 'Partner X',
      owner: 'user-1',
      scopes: ['playlist:read', 'playlist:write'],
      createdAt: T0,
      expiresAt: T0 + DAY,
      rateLimitPolicy: 'partner-gold',
      hint: record.hint,
    })
    const verified = await service.verify(key)
    assert.equal(verified.rateLimitPolicy, 'partner-gold', 'the rate limiter can key on the policy')
    assert.throws(() => (verified.scopes as string[]).push('admin'), TypeError, 'records are frozen: a request cannot widen a cached key')
  })

  it('refuses invalid input with ERR_VALIDATION_FAILED naming each field', async () => {
    const { service, store } = fixture()
    const cases: [Record<string, unknown>, string][] = [
      [{ owner: 'u', name: '   ' }, '/name'],
      [{ owner: 'u', name: 'evil\u202Eexe.txt' }, '/name'],
      [{ owner: 'u', name: 'line\nbreak' }, '/name'],
      [{ owner: 'u', name: 'x'.repeat(201) }, '/name'],
      [{ owner: 'has space', name: 'n' }, '/owner'],
      [{ owner: '', name: 'n' }, '/owner'],
      [{ owner: 'u', name: 'n', scopes: ['read write'] }, '/scopes/0'],
      [{ owner: 'u', name: 'n', scopes: ['ok', 'quote"d'] }, '/scopes/1'],
      [{ owner: 'u', name: 'n', scopes: Array.from({ length: 101 }, (_, i) => `s${String(i)}`) }, '/scopes'],
      [{ owner: 'u', name: 'n', expiresAt: T0 }, '/expiresAt'],
      [{ owner: 'u', name: 'n', expiresAt: T0 - 1 }, '/expiresAt'],
      [{ owner: 'u', name: 'n', expiresAt: 1.5 }, '/expiresAt'],
      [{ owner: 'u', name: 'n', rateLimitPolicy: 'has space' }, '/rateLimitPolicy'],
      [{ owner: 'u', name: 'n', admin: true }, ''],
    ]
    for (const [input, pointer] of cases) {
      const err = await rejectsWith(service.create(input as unknown as ApiKeyCreateInput), 'ERR_VALIDATION_FAILED')
      assert.equal(err.status, 400)
      assert.ok(fieldErrors(err).some((e) => e.pointer === pointer && e.in === 'body'), `${JSON.stringify(input).slice(0, 60)}: ${JSON.stringify(fieldErrors(err))}`)
    }
    assert.equal(store.calls.insert, 0)
  })

  it('passes a store failure on, and issues no key', async () => {
    const { service, store } = fixture()
    store.failures.insert = new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE')
    await rejectsWith(service.create({ owner: 'u', name: 'n' }), 'ERR_DEPENDENCY_UNAVAILABLE')
  })
})

describe('ApiKeyService.verify', () => {
  it('answers a valid key with its record, and unknown keys with ERR_AUTH_API_KEY_INVALID (401)', async () => {
    const { service } = fixture()
    const { key, record } = await service.create({ owner: 'user-1', name: 'CI', scopes: ['playlist:write'] })
    assert.deepEqual(await service.verify(key), record)
    const other = await fixture().service.create({ owner: 'u', name: 'elsewhere' })
    const err = await rejectsWith(service.verify(other.key), 'ERR_AUTH_API_KEY_INVALID', 'unknown')
    assert.equal(err.status, 401)
  })

  it('accepts a key until the millisecond before expiresAt and refuses it from then on, cached or not', async () => {
    const { service, clock } = fixture({ cacheTtlMs: 60_000 })
    const { key } = await service.create({ owner: 'u', name: 'n', expiresAt: T0 + 10_000 })
    await service.verify(key)
    clock.now = T0 + 9_999
    assert.ok(service.cached(key) !== undefined)
    await service.verify(key)
    clock.now = T0 + 10_000
    assert.equal(service.cached(key), undefined, 'the cache never outlives the key')
    await rejectsWith(service.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'expired')
  })

  it('answers from the cache for cacheTtlMs, then asks the store again', async () => {
    const { service, store, clock } = fixture({ cacheTtlMs: 5_000 })
    const { key } = await service.create({ owner: 'u', name: 'n' })
    assert.equal(service.cached(key), undefined)
    await service.verify(key)
    await service.verify(key)
    clock.now = T0 + 4_999
    assert.ok(service.cached(key) !== undefined)
    await service.verify(key)
    assert.equal(store.calls.findByHash, 1)
    clock.now = T0 + 5_000
    assert.equal(service.cached(key), undefined)
    await service.verify(key)
    assert.equal(store.calls.findByHash, 2)
  })

  it('asks the store every time with cacheTtlMs 0', async () => {
    const { service, store } = fixture({ cacheTtlMs: 0 })
    const { key } = await service.create({ owner: 'u', name: 'n' })
    await service.verify(key)
    await service.verify(key)
    assert.equal(store.calls.findByHash, 2)
    assert.equal(service.cached(key), undefined)
  })

  it('shares one store lookup among concurrent first verifications of a key', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'u', name: 'n' })
    const results = await Promise.all(Array.from({ length: 20 }, () => service.verify(key)))
    assert.equal(store.calls.findByHash, 1)
    assert.ok(results.every((r) => r.name === 'n'))
  })

  it('fails with the store\'s error (not as an accepted or unknown key) while the store is down, and recovers', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'u', name: 'n' })
    store.failures.findByHash = new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { reason: 'connection refused' } })
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => service.verify(key)))
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected')
      assert.equal((outcome.reason as BackbeatError).code, 'ERR_DEPENDENCY_UNAVAILABLE')
      assert.equal((outcome.reason as BackbeatError).status, 503)
    }
    assert.equal(service.cached(key), undefined)
    delete store.failures.findByHash
    assert.equal((await service.verify(key)).name, 'n', 'a failed lookup is not remembered')
  })

  it('passes on a store that throws a plain error as a rejection', async () => {
    const { service, store } = fixture()
    const { key } = await service.create({ owner: 'u', name: 'n' })
    store.findByHash = () => {
      throw new Error('driver bug')
    }
    await assert.rejects(service.verify(key), /driver bug/)
  })
})

describe('ApiKeyService as the auth plugin\'s ApiKeyAuthenticator', () => {
  it('tells its keys from JWTs by prefix and authenticates them like verify', async () => {
    const { service } = fixture()
    const authenticator: ApiKeyAuthenticator = service
    const { key, record } = await service.create({ owner: 'user-1', name: 'n', scopes: ['playlist:write'], rateLimitPolicy: 'gold' })
    assert.equal(authenticator.looksLikeKey(key), true)
    // A typo: the last character changed (to one it is not, or the key would be unchanged).
    const typo = `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`
    assert.equal(authenticator.looksLikeKey(typo), true, 'a typo still goes to the API-key path, to fail there as malformed')
    assert.equal(authenticator.looksLikeKey('eyJhbGciOiJIUzI1NiJ9.e30.sig'), false)
    assert.equal(authenticator.looksLikeKey(key.replace('bb_live_', 'bb_test_')), false)
    const authenticated = await authenticator.authenticate(key)
    assert.deepEqual([authenticated.id, authenticated.owner, [...authenticated.scopes], authenticated.rateLimitPolicy], [record.id, 'user-1', ['playlist:write'], 'gold'])
    await rejectsWith(authenticator.authenticate(typo), 'ERR_AUTH_API_KEY_MALFORMED')
  })
})

describe('ApiKeyService.revoke', () => {
  it('takes effect at once on this instance although the key was cached', async () => {
    const events = new SecurityEventLog()
    const { service, store } = fixture({ cacheTtlMs: 60_000, onSecurityEvent: events.record })
    const { key, record } = await service.create({ owner: 'u', name: 'n' })
    await service.verify(key)
    assert.ok(service.cached(key) !== undefined)
    const revoked = await service.revoke(record.id)
    assert.equal(revoked.revokedAt, T0)
    assert.equal(service.cached(key), undefined)
    await rejectsWith(service.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'revoked')
    assert.equal(store.calls.findByHash, 2)
    assert.deepEqual(events.list().map((e) => [e.type, e.details.keyId]), [['api_key_created', record.id], ['api_key_revoked', record.id], ['api_key_revoked_used', record.id]])
    assert.equal(events.list('api_key_revoked_used')[0]?.severity, 'medium')
    assert.equal(JSON.stringify(events.list()).includes(key.slice(8)), false, 'no event carries the secret')
  })

  it('takes effect on another instance within its cacheTtlMs (the documented bound)', async () => {
    const store = new MemoryApiKeyStore()
    const clock = { now: T0 }
    const a = new ApiKeyService({ store, now: () => clock.now, cacheTtlMs: 5_000 })
    const b = new ApiKeyService({ store, now: () => clock.now, cacheTtlMs: 5_000 })
    const { key, record } = await a.create({ owner: 'u', name: 'n' })
    await b.verify(key)
    await a.revoke(record.id)
    clock.now = T0 + 4_999
    assert.equal((await b.verify(key)).id, record.id, 'b still trusts its cache')
    clock.now = T0 + 5_000
    await rejectsWith(b.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'revoked')
  })

  it('does not let a lookup that started before the revocation put the key back into the cache', async () => {
    const { service, store } = fixture({ cacheTtlMs: 60_000 })
    const { key, record } = await service.create({ owner: 'u', name: 'n' })
    // The lookup reads the key before the revocation and answers after it.
    const held = gate()
    const read = gate()
    store.findByHash = async (hash) => {
      const found = await store.inner.findByHash(hash)
      read.open()
      await held.promise
      return found
    }
    const early = service.verify(key)
    await read.promise
    await service.revoke(record.id)
    held.open()
    assert.equal((await early).id, record.id, 'concurrent with the revocation, it read the key as valid')
    store.findByHash = (hash) => store.inner.findByHash(hash)
    assert.equal(service.cached(key), undefined)
    await rejectsWith(service.verify(key), 'ERR_AUTH_API_KEY_INVALID', 'revoked')
  })

  it('keeps the first revocation time, and answers ERR_RESOURCE_NOT_FOUND for an unknown or malformed id', async () => {
    const { service, store, clock } = fixture()
    const { record } = await service.create({ owner: 'u', name: 'n' })
    await service.revoke(record.id)
    clock.now = T0 + 1_000
    assert.equal((await service.revoke(record.id)).revokedAt, T0)
    await rejectsWith(service.revoke('ak_000000000000'), 'ERR_RESOURCE_NOT_FOUND')
    const calls = store.calls.revoke
    await rejectsWith(service.revoke("ak_' OR 1=1 --"), 'ERR_RESOURCE_NOT_FOUND')
    assert.equal(store.calls.revoke, calls, 'a malformed id is not looked up')
  })
})

describe('ApiKeyService.rotate', () => {
  it('issues a successor with the same owner, name, scopes and policy, linked both ways', async () => {
    const events = new SecurityEventLog()
    const { service } = fixture({ onSecurityEvent: events.record })
    const old = await service.create({ owner: 'user-1', name: 'CI', scopes: ['playlist:write'], rateLimitPolicy: 'gold' })
    const { key, record, previous } = await service.rotate(old.record.id, { overlapMs: 60_000 })
    assert.notEqual(key, old.key)
    assert.deepEqual([record.owner, record.name, [...record.scopes], record.rateLimitPolicy, record.rotatedFrom], ['user-1', 'CI', ['playlist:write'], 'gold', old.record.id])
    assert.equal(previous.rotatedTo, record.id)
    assert.equal(previous.expiresAt, T0 + 60_000)
    assert.equal(record.expiresAt, undefined, 'a key that never expired gets a successor that never does')
    assert.equal((await service.verify(key)).id, record.id)
    assert.deepEqual(events.list('api_key_rotated').map((e) => e.details), [{ keyId: record.id, owner: 'user-1', rotatedFrom: old.record.id, overlapMs: 60_000 }])
  })

  it('keeps the old key working until now + overlapMs, and refuses it from that millisecond on', async () => {
    const { service, clock } = fixture({ cacheTtlMs: 300_000 })
    const old = await service.create({ owner: 'u', name: 'n' })
    await service.verify(old.key) // cached before the rotation
    clock.now = T0 + 1_000
    const { key } = await service.rotate(old.record.id, { overlapMs: 60_000 })
    clock.now = T0 + 60_999
    assert.equal((await service.verify(old.key)).id, old.record.id)
    clock.now = T0 + 61_000
    await rejectsWith(service.verify(old.key), 'ERR_AUTH_API_KEY_INVALID', 'expired')
    assert.ok((await service.verify(key)).rotatedFrom === old.record.id)
  })

  it('with overlapMs 0 the old key fails at once, even from the cache', async () => {
    const { service } = fixture({ cacheTtlMs: 300_000 })
    const old = await service.create({ owner: 'u', name: 'n' })
    await service.verify(old.key)
    await service.rotate(old.record.id, { overlapMs: 0 })
    await rejectsWith(service.verify(old.key), 'ERR_AUTH_API_KEY_INVALID', 'expired')
  })

  it('never extends the old key: an expiry earlier than the overlap end stays', async () => {
    const { service } = fixture()
    const old = await service.create({ owner: 'u', name: 'n', expiresAt: T0 + 1_000 })
    const { previous } = await service.rotate(old.record.id, { overlapMs: DAY })
    assert.equal(previous.expiresAt, T0 + 1_000)
  })

  it('gives the successor the old key\'s lifetime from now, unless told an expiry or null for none', async () => {
    const { service, clock } = fixture()
    const a = await service.create({ owner: 'u', name: 'a', expiresAt: T0 + 30 * DAY })
    clock.now = T0 + 10 * DAY
    assert.equal((await service.rotate(a.record.id, { overlapMs: 0 })).record.expiresAt, T0 + 40 * DAY)
    const b = await service.create({ owner: 'u', name: 'b', expiresAt: T0 + 30 * DAY })
    assert.equal((await service.rotate(b.record.id, { overlapMs: 0, expiresAt: null })).record.expiresAt, undefined)
    const c = await service.create({ owner: 'u', name: 'c' })
    assert.equal((await service.rotate(c.record.id, { overlapMs: 0, expiresAt: T0 + 11 * DAY })).record.expiresAt, T0 + 11 * DAY)
    const d = await service.create({ owner: 'u', name: 'd' })
    const err = await rejectsWith(service.rotate(d.record.id, { overlapMs: 0, expiresAt: T0 }), 'ERR_VALIDATION_FAILED')
    assert.equal(fieldErrors(err)[0]?.pointer, '/expiresAt')
  })

  it('refuses to rotate a key twice, a revoked or an expired key (409), an unknown one (404) and a bad overlap (400)', async () => {
    const { service, clock } = fixture()
    const once = await service.create({ owner: 'u', name: 'n' })
    const { record } = await service.rotate(once.record.id, { overlapMs: DAY })
    const err = await rejectsWith(service.rotate(once.record.id, { overlapMs: DAY }), 'ERR_RESOURCE_CONFLICT')
    assert.match(String(err.params.reason), new RegExp(`already rotated to ${record.id}`))
    const revoked = await service.create({ owner: 'u', name: 'n' })
    await service.revoke(revoked.record.id)
    await rejectsWith(service.rotate(revoked.record.id, { overlapMs: 0 }), 'ERR_RESOURCE_CONFLICT')
    const expiring = await service.create({ owner: 'u', name: 'n', expiresAt: T0 + 10 })
    clock.now = T0 + 10
    await rejectsWith(service.rotate(expiring.record.id, { overlapMs: 0 }), 'ERR_RESOURCE_CONFLICT')
    await rejectsWith(service.rotate('ak_000000000000', { overlapMs: 0 }), 'ERR_RESOURCE_NOT_FOUND')
    for (const overlapMs of [-1, 1.5, Number.NaN, 400 * DAY]) await rejectsWith(service.rotate(record.id, { overlapMs }), 'ERR_VALIDATION_FAILED')
  })

  it('lets one of two concurrent rotations win and tells the other why it lost', async () => {
    const { service } = fixture()
    const old = await service.create({ owner: 'u', name: 'n' })
    const outcomes = await Promise.allSettled([service.rotate(old.record.id, { overlapMs: 0 }), service.rotate(old.record.id, { overlapMs: 0 })])
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1)
    const lost = outcomes.find((o) => o.status === 'rejected')
    assert.equal((lost?.reason as BackbeatError).code, 'ERR_RESOURCE_CONFLICT')
    assert.match(String((lost?.reason as BackbeatError).params.reason), /already rotated/)
  })
})

describe('ApiKeyService: lastUsedAt', () => {
  it('writes lastUsedAt at most once per interval per key, in the background', async () => {
    const { service, store, clock } = fixture({ cacheTtlMs: 1_000, lastUsedWriteIntervalMs: 60_000 })
    const a = await service.create({ owner: 'u', name: 'a' })
    const b = await service.create({ owner: 'u', name: 'b' })
    for (let t = 0; t < 60_000; t += 500) {
      clock.now = T0 + t
      await service.verify(a.key)
      await service.verify(b.key)
    }
    await service.flush()
    assert.equal(store.calls.touch, 2, 'one write per key')
    assert.equal((await service.get(a.record.id))?.lastUsedAt, T0)
    clock.now = T0 + 60_000
    await service.verify(a.key)
    await service.flush()
    assert.equal(store.calls.touch, 3)
    assert.equal((await service.get(a.record.id))?.lastUsedAt, T0 + 60_000)
  })

  it('does not make the request wait for the write', async () => {
    const { service, store } = fixture()
    const { key, record } = await service.create({ owner: 'u', name: 'n' })
    const held = gate()
    store.gates.touch = held.promise
    assert.equal((await service.verify(key)).id, record.id)
    assert.equal((await service.get(record.id))?.lastUsedAt, undefined, 'still being written')
    held.open()
    await service.flush()
    assert.equal((await service.get(record.id))?.lastUsedAt, T0)
  })

  it('logs a failed write, never fails the request, and retries on the next use', async () => {
    const warnings: Record<string, unknown>[] = []
    const { service, store, clock } = fixture({ cacheTtlMs: 0, logger: { warn: (fields) => warnings.push(fields) } })
    const { key, record } = await service.create({ owner: 'u', name: 'n' })
    store.failures.touch = new BackbeatError('ERR_DEPENDENCY_TIMEOUT')
    assert.equal((await service.verify(key)).id, record.id)
    await service.flush()
    assert.equal(warnings.length, 1)
    assert.equal(warnings[0]?.keyId, record.id)
    delete store.failures.touch
    clock.now = T0 + 1
    await service.verify(key)
    await service.flush()
    assert.equal(store.calls.touch, 2)
    assert.equal((await service.get(record.id))?.lastUsedAt, T0 + 1)
  })

  it('skips the write when the stored lastUsedAt (written by another instance) is recent', async () => {
    const store = new SpyStore()
    const clock = { now: T0 }
    const a = new ApiKeyService({ store, now: () => clock.now, cacheTtlMs: 0 })
    const b = new ApiKeyService({ store, now: () => clock.now, cacheTtlMs: 0 })
    const { key } = await a.create({ owner: 'u', name: 'n' })
    await a.verify(key)
    await a.flush()
    clock.now = T0 + 30_000
    await b.verify(key)
    await b.flush()
    assert.equal(store.calls.touch, 1)
  })

  it('stops writing after close(), which waits for the writes in flight', async () => {
    const { service, store, clock } = fixture({ cacheTtlMs: 0 })
    const { key } = await service.create({ owner: 'u', name: 'n' })
    const held = gate()
    store.gates.touch = held.promise
    await service.verify(key)
    let closed = false
    const closing = service.close().then(() => (closed = true))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(closed, false)
    held.open()
    await closing
    clock.now = T0 + DAY
    await service.verify(key)
    await service.flush()
    assert.equal(store.calls.touch, 1)
  })
})

describe('ApiKeyService: list and get', () => {
  it('lists records without hashes or secrets, per owner and page by page', async () => {
    const { service, clock } = fixture()
    const created: CreatedApiKey[] = []
    for (let i = 0; i < 5; i++) {
      clock.now = T0 + i
      created.push(await service.create({ owner: i % 2 === 0 ? 'alice' : 'bob', name: `k${String(i)}` }))
    }
    const all = await service.list()
    assert.deepEqual(all.map((r) => r.name), ['k0', 'k1', 'k2', 'k3', 'k4'])
    const text = JSON.stringify(all)
    assert.equal(text.includes('hash'), false)
    for (const { key } of created) assert.equal(text.includes(key.slice(8)), false)
    const page1 = await service.list({ owner: 'alice', limit: 2 })
    assert.deepEqual(page1.map((r) => r.name), ['k0', 'k2'])
    const page2 = await service.list({ owner: 'alice', limit: 2, after: page1[1]?.id })
    assert.deepEqual(page2.map((r) => r.name), ['k4'])
    for (const limit of [0, 1_001, 2.5]) await rejectsWith(service.list({ limit }), 'ERR_VALIDATION_FAILED')
  })

  it('gets one record by id, and undefined for an unknown or malformed id without a lookup', async () => {
    const { service, store } = fixture()
    const { record } = await service.create({ owner: 'u', name: 'n' })
    assert.deepEqual(await service.get(record.id), record)
    assert.equal(Object.hasOwn((await service.get(record.id)) ?? {}, 'hash'), false)
    assert.equal(await service.get('ak_000000000000'), undefined)
    const calls = store.calls.get
    assert.equal(await service.get('../../etc/passwd'), undefined)
    assert.equal(store.calls.get, calls)
  })
})
