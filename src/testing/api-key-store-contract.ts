/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this file is a test helper outside the *.test.ts override */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import type { ApiKeyRecord, ApiKeyStore, StoredApiKey } from '../auth/index.ts'
import { BackbeatError } from '../core/index.ts'

/** What a {@link describeApiKeyStore} factory returns. */
export interface ApiKeyStoreFixture {
  /** An empty store. */
  store: ApiKeyStore
  /** Removes what the fixture created (its schema, its table), then closes what it opened. */
  cleanup: () => Promise<void>
}

// Milliseconds that are not a multiple of 1000, so a store that rounds to seconds fails.
const T0 = 1_800_000_000_123
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

const randomId = (): string => `ak_${Array.from(randomBytes(12), (b) => ALPHABET.charAt(b % 62)).join('')}`

function stored(over: Partial<StoredApiKey> = {}): StoredApiKey {
  return {
    id: randomId(),
    hash: randomBytes(32).toString('base64url'),
    name: 'CI deploys',
    owner: 'user-1',
    scopes: ['playlist:read'],
    createdAt: T0,
    hint: 'bb_live_AbCd...wXyZ',
    ...over,
  }
}

function withoutHash(key: StoredApiKey): ApiKeyRecord {
  const { hash: _hash, ...record } = key
  return record
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    assert.equal(err.code, code)
    return true
  })
}

/**
 * The contract every {@link ApiKeyStore} must pass: exact round trips (millisecond times,
 * absent optional fields, unicode), uniqueness of id and hash, copies rather than shared
 * objects, ordered keyset pagination, idempotent revocation, a rotation that is atomic and
 * happens at most once even under concurrent calls, and a `lastUsedAt` that never moves
 * backwards. `make` is called once per test and must return an empty store.
 *
 * @example
 * describeApiKeyStore('MemoryApiKeyStore', async () => ({ store: new MemoryApiKeyStore(), cleanup: async () => {} }))
 */
export function describeApiKeyStore(name: string, make: () => Promise<ApiKeyStoreFixture>): void {
  const withStore = (fn: (store: ApiKeyStore) => Promise<void>) => async () => {
    const fixture = await make()
    try {
      await fn(fixture.store)
    } finally {
      await fixture.cleanup()
    }
  }

  describe(`${name} (ApiKeyStore contract)`, () => {
    describe('insert and lookups', () => {
      it('finds an inserted key by hash (with its hash) and by id (without it)', withStore(async (store) => {
        const key = stored()
        await store.insert(key)
        assert.deepEqual(await store.findByHash(key.hash), key)
        assert.deepEqual(await store.get(key.id), withoutHash(key))
      }))

      it('answers undefined for an unknown hash or id', withStore(async (store) => {
        await store.insert(stored())
        assert.equal(await store.findByHash(randomBytes(32).toString('base64url')), undefined)
        assert.equal(await store.get(randomId()), undefined)
      }))

      it('round-trips every optional field exactly, to the millisecond, and keeps unset ones absent', withStore(async (store) => {
        const full = stored({
          name: 'Partner «Ünïcødé» 🎵',
          owner: 'user-ß',
          scopes: ['playlist:write', 'library:read', 'a,b', 'q"z'],
          expiresAt: T0 + 86_400_001,
          lastUsedAt: T0 + 7,
          revokedAt: T0 + 9,
          rotatedFrom: randomId(),
          rotatedTo: randomId(),
          rateLimitPolicy: 'partner-gold',
        })
        const bare = stored({ scopes: [] })
        await store.insert(full)
        await store.insert(bare)
        assert.deepEqual(await store.findByHash(full.hash), full)
        const found = await store.findByHash(bare.hash)
        assert.deepEqual(found, bare)
        for (const field of ['expiresAt', 'lastUsedAt', 'revokedAt', 'rotatedFrom', 'rotatedTo', 'rateLimitPolicy']) {
          assert.equal(Object.hasOwn(found, field), false, `${field} must be absent, not undefined`)
        }
      }))

      it('refuses a second key with the same id or the same hash with ERR_RESOURCE_CONFLICT, keeping the first', withStore(async (store) => {
        const first = stored()
        await store.insert(first)
        await rejectsWith(store.insert(stored({ id: first.id })), 'ERR_RESOURCE_CONFLICT')
        await rejectsWith(store.insert(stored({ hash: first.hash, name: 'impostor' })), 'ERR_RESOURCE_CONFLICT')
        assert.deepEqual(await store.findByHash(first.hash), first)
      }))

      it('hands out copies: changing a returned record or the inserted object changes nothing stored', withStore(async (store) => {
        const key = stored({ scopes: ['a'] })
        await store.insert(key)
        ;(key.scopes as string[]).push('inserted-later')
        const found = await store.findByHash(key.hash)
        assert.ok(found !== undefined)
        ;(found.scopes as string[]).push('changed')
        const again = await store.get(key.id)
        assert.deepEqual(again?.scopes, ['a'])
      }))
    })

    describe('list', () => {
      it('orders by createdAt then id, filters by owner and pages with limit and after', withStore(async (store) => {
        const keys = [
          stored({ id: 'ak_000000000003', owner: 'alice', createdAt: T0 + 1 }),
          stored({ id: 'ak_000000000001', owner: 'bob', createdAt: T0 }),
          stored({ id: 'ak_00000000000B', owner: 'alice', createdAt: T0 + 1 }),
          stored({ id: 'ak_00000000000a', owner: 'alice', createdAt: T0 + 1 }),
          stored({ id: 'ak_000000000002', owner: 'alice', createdAt: T0 + 2 }),
        ]
        for (const key of keys) await store.insert(key)
        const ids = (records: ApiKeyRecord[]): string[] => records.map((r) => r.id)
        // Code-point order for ties: '3' < 'B' < 'a', whatever the database's collation.
        assert.deepEqual(ids(await store.list({ limit: 10 })), ['ak_000000000001', 'ak_000000000003', 'ak_00000000000B', 'ak_00000000000a', 'ak_000000000002'])
        assert.deepEqual(ids(await store.list({ owner: 'alice', limit: 2 })), ['ak_000000000003', 'ak_00000000000B'])
        assert.deepEqual(ids(await store.list({ owner: 'alice', limit: 2, after: 'ak_00000000000B' })), ['ak_00000000000a', 'ak_000000000002'])
        assert.deepEqual(ids(await store.list({ owner: 'alice', limit: 2, after: 'ak_000000000002' })), [])
        assert.deepEqual(await store.list({ owner: 'nobody', limit: 10 }), [])
      }))

      it('never returns hashes, and gives an empty page after an unknown id', withStore(async (store) => {
        await store.insert(stored())
        const [record] = await store.list({ limit: 10 })
        assert.ok(record !== undefined)
        assert.equal(Object.hasOwn(record, 'hash'), false)
        assert.deepEqual(await store.list({ limit: 10, after: randomId() }), [])
      }))
    })

    describe('revoke', () => {
      it('sets revokedAt, keeps the first time on a second revocation, and the key is still found by hash', withStore(async (store) => {
        const key = stored()
        await store.insert(key)
        assert.equal((await store.revoke(key.id, T0 + 10))?.revokedAt, T0 + 10)
        const again = await store.revoke(key.id, T0 + 99)
        assert.ok(again !== undefined)
        assert.equal(again.revokedAt, T0 + 10)
        assert.equal(Object.hasOwn(again, 'hash'), false)
        assert.equal((await store.findByHash(key.hash))?.revokedAt, T0 + 10)
      }))

      it('answers undefined for an unknown id', withStore(async (store) => {
        assert.equal(await store.revoke(randomId(), T0), undefined)
      }))
    })

    describe('rotate', () => {
      it('inserts the replacement, links both ways and lowers the old expiry to the overlap end', withStore(async (store) => {
        const old = stored()
        await store.insert(old)
        const next = stored({ rotatedFrom: old.id, createdAt: T0 + 100 })
        const previous = await store.rotate(old.id, next, { oldExpiresAt: T0 + 5_000, now: T0 + 100 })
        assert.deepEqual(previous, { ...withoutHash(old), rotatedTo: next.id, expiresAt: T0 + 5_000 })
        assert.deepEqual(await store.findByHash(next.hash), next)
        assert.deepEqual(await store.findByHash(old.hash), { ...old, rotatedTo: next.id, expiresAt: T0 + 5_000 })
      }))

      it('keeps an earlier expiry than the overlap end', withStore(async (store) => {
        const old = stored({ expiresAt: T0 + 1_000 })
        await store.insert(old)
        const previous = await store.rotate(old.id, stored(), { oldExpiresAt: T0 + 60_000, now: T0 })
        assert.equal(previous?.expiresAt, T0 + 1_000)
      }))

      it('does nothing for an unknown, revoked, expired or already rotated key', withStore(async (store) => {
        const revoked = stored({ revokedAt: T0 })
        const expired = stored({ expiresAt: T0 + 50 })
        const rotated = stored({ rotatedTo: randomId() })
        for (const key of [revoked, expired, rotated]) await store.insert(key)
        const cases: [string, string][] = [[randomId(), 'unknown'], [revoked.id, 'revoked'], [expired.id, 'expired at now'], [rotated.id, 'already rotated']]
        for (const [id, label] of cases) {
          const replacement = stored()
          assert.equal(await store.rotate(id, replacement, { oldExpiresAt: T0 + 1_000, now: T0 + 50 }), undefined, label)
          assert.equal(await store.findByHash(replacement.hash), undefined, `${label}: no replacement inserted`)
        }
        assert.deepEqual(await store.findByHash(expired.hash), expired)
        assert.deepEqual(await store.findByHash(rotated.hash), rotated)
      }))

      it('is atomic: a replacement that cannot be inserted leaves the old key untouched', withStore(async (store) => {
        const old = stored()
        const other = stored()
        await store.insert(old)
        await store.insert(other)
        await rejectsWith(store.rotate(old.id, stored({ hash: other.hash }), { oldExpiresAt: T0 + 1, now: T0 }), 'ERR_RESOURCE_CONFLICT')
        assert.deepEqual(await store.findByHash(old.hash), old)
      }))

      it('lets exactly one of several concurrent rotations of a key succeed', withStore(async (store) => {
        const old = stored()
        await store.insert(old)
        const replacements = Array.from({ length: 5 }, () => stored({ rotatedFrom: old.id }))
        const results = await Promise.all(replacements.map((r) => store.rotate(old.id, r, { oldExpiresAt: T0 + 1_000, now: T0 })))
        const winners = results.filter((r) => r !== undefined)
        assert.equal(winners.length, 1)
        const found = await Promise.all(replacements.map((r) => store.findByHash(r.hash)))
        assert.equal(found.filter((f) => f !== undefined).length, 1)
        assert.equal(winners[0]?.rotatedTo, found.find((f) => f !== undefined)?.id)
      }))
    })

    describe('touch', () => {
      it('records the last use and never moves it backwards', withStore(async (store) => {
        const key = stored()
        await store.insert(key)
        await store.touch(key.id, T0 + 500)
        assert.equal((await store.get(key.id))?.lastUsedAt, T0 + 500)
        await store.touch(key.id, T0 + 100)
        assert.equal((await store.get(key.id))?.lastUsedAt, T0 + 500)
        await store.touch(key.id, T0 + 900)
        assert.equal((await store.findByHash(key.hash))?.lastUsedAt, T0 + 900)
      }))

      it('ignores an unknown id', withStore(async (store) => {
        await store.touch(randomId(), T0)
        assert.deepEqual(await store.list({ limit: 10 }), [])
      }))
    })
  })
}
