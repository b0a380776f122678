/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this file is a test helper outside the *.test.ts override */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
// Through the module, not auth/index.ts, until the session exports land there.
import { sessionHandle, type SessionRecord, type SessionStore } from '../auth/index.ts'

/** What a {@link describeSessionStore} factory returns. */
export interface SessionStoreFixture {
  store: SessionStore
  /** Removes what the fixture wrote (by prefix), then closes what it opened. */
  cleanup: () => Promise<void>
  /** TTL used by the expiry tests (default 200 ms). */
  ttlMs?: number
  /** Moves the store's time forward; defaults to really waiting. Memory stores pass their fake clock here. */
  advanceTime?: (ms: number) => Promise<void> | void
}

const T0 = 1_800_000_000_000

/**
 * The contract every {@link SessionStore} must pass: round trips of every record member,
 * TTL expiry, updates that never resurrect a deleted session, atomic renames (exactly one of
 * several concurrent renames wins), per-user lists that stay exact through deletes, renames
 * and expiry, "sign out other devices", and the per-user cap. `make` is called once per test.
 *
 * @example
 * describeSessionStore('MemorySessionStore', async () => {
 *   let now = 0
 *   return { store: new MemorySessionStore({ now: () => now, sweepIntervalMs: 0 }), cleanup: async () => {}, advanceTime: (ms) => { now += ms } }
 * })
 */
export function describeSessionStore(name: string, make: () => Promise<SessionStoreFixture>): void {
  const withStore = (fn: (fixture: Required<SessionStoreFixture>) => Promise<void>) => async () => {
    const fixture = await make()
    const full: Required<SessionStoreFixture> = {
      ttlMs: 200,
      advanceTime: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
      ...fixture,
    }
    try {
      await fn(full)
    } finally {
      await fixture.cleanup()
    }
  }
  const handle = (): string => sessionHandle(randomBytes(32).toString('base64url'))
  const user = (): string => `user-${randomUUID()}`
  const record = (userId: string, over: Partial<SessionRecord> = {}): SessionRecord => ({
    userId,
    createdAt: T0,
    lastSeenAt: T0,
    idleExpiresAt: T0 + 1_800_000,
    absoluteExpiresAt: T0 + 43_200_000,
    data: {},
    ...over,
  })
  const LONG = 60_000
  const handlesOf = async (store: SessionStore, userId: string): Promise<string[]> => (await store.listByUser(userId)).map((s) => s.handle).sort()

  describe(`${name} (SessionStore contract)`, () => {
    it('stores a session under its handle and returns every member; unknown handles are undefined', withStore(async ({ store }) => {
      const full = record(user(), { roles: ['admin', 'editor'], mfaAt: T0 + 5, userAgent: 'Mozilla/5.0 (X11; Linux) ünïcødé', ip: '2001:db8::1', data: { theme: 'dark', nested: { n: 1, list: [1, 'two', null] } } })
      const minimal = record(user())
      const [h1, h2] = [handle(), handle()]
      assert.equal(await store.create(h1, full, LONG, 10), 0)
      await store.create(h2, minimal, LONG, 10)
      assert.deepEqual(await store.get(h1), full)
      const got = await store.get(h2)
      assert.deepEqual(got, minimal)
      for (const member of ['roles', 'mfaAt', 'userAgent', 'ip'] as const) assert.ok(!Object.hasOwn(got, member), `${member} stays absent`)
      assert.equal(await store.get(handle()), undefined)
    }))

    it('forgets a session once its TTL has passed, in get and in the user list', withStore(async ({ store, ttlMs, advanceTime }) => {
      const u = user()
      const [short, long] = [handle(), handle()]
      await store.create(short, record(u), ttlMs, 10)
      await store.create(long, record(u), LONG, 10)
      await advanceTime(ttlMs + 50)
      assert.equal(await store.get(short), undefined)
      assert.notEqual(await store.get(long), undefined)
      assert.deepEqual(await handlesOf(store, u), [long])
    }))

    it('update replaces a live session and extends its TTL', withStore(async ({ store, ttlMs, advanceTime }) => {
      const u = user()
      const h = handle()
      await store.create(h, record(u), ttlMs, 10)
      const changed = record(u, { lastSeenAt: T0 + 1_000, data: { step: 2 } })
      assert.equal(await store.update(h, changed, ttlMs * 4), true)
      await advanceTime(ttlMs + 50)
      assert.deepEqual(await store.get(h), changed, 'still there after the first TTL')
      assert.deepEqual(await handlesOf(store, u), [h])
    }))

    it('update never brings back a deleted or expired session', withStore(async ({ store, ttlMs, advanceTime }) => {
      const u = user()
      const [deleted, expired] = [handle(), handle()]
      await store.create(deleted, record(u), LONG, 10)
      await store.create(expired, record(u), ttlMs, 10)
      assert.equal(await store.delete(deleted), true)
      await advanceTime(ttlMs + 50)
      assert.equal(await store.update(deleted, record(u), LONG), false)
      assert.equal(await store.update(expired, record(u), LONG), false)
      assert.equal(await store.get(deleted), undefined)
      assert.equal(await store.get(expired), undefined)
      assert.deepEqual(await handlesOf(store, u), [])
    }))

    it('rename moves a session: the old handle is dead, the new one holds the new record', withStore(async ({ store }) => {
      const u = user()
      const [from, to, other] = [handle(), handle(), handle()]
      await store.create(from, record(u, { data: { before: true } }), LONG, 10)
      await store.create(other, record(u), LONG, 10)
      const next = record(u, { mfaAt: T0 + 9, data: { after: true } })
      assert.equal(await store.rename(from, to, next, LONG), true)
      assert.equal(await store.get(from), undefined)
      assert.deepEqual(await store.get(to), next)
      assert.deepEqual(await handlesOf(store, u), [to, other].sort())
      assert.equal(await store.update(from, record(u), LONG), false, 'the old handle cannot be revived')
    }))

    it('rename of a missing session fails and creates nothing', withStore(async ({ store }) => {
      const u = user()
      const to = handle()
      assert.equal(await store.rename(handle(), to, record(u), LONG), false)
      assert.equal(await store.get(to), undefined)
      assert.deepEqual(await handlesOf(store, u), [])
    }))

    it('of concurrent renames of one session exactly one wins', withStore(async ({ store }) => {
      const u = user()
      const from = handle()
      await store.create(from, record(u), LONG, 10)
      const targets = Array.from({ length: 8 }, handle)
      const results = await Promise.all(targets.map(async (to) => store.rename(from, to, record(u), LONG)))
      assert.equal(results.filter(Boolean).length, 1)
      const winner = targets[results.indexOf(true)]
      assert.deepEqual(await handlesOf(store, u), [winner])
      for (const [i, to] of targets.entries()) assert.equal((await store.get(to)) !== undefined, results[i])
    }))

    it('delete ends a session and drops it from its user list; a second delete answers false', withStore(async ({ store }) => {
      const u = user()
      const [a, b] = [handle(), handle()]
      await store.create(a, record(u), LONG, 10)
      await store.create(b, record(u), LONG, 10)
      assert.equal(await store.delete(a), true)
      assert.equal(await store.delete(a), false)
      assert.equal(await store.delete(handle()), false)
      assert.equal(await store.get(a), undefined)
      assert.deepEqual(await handlesOf(store, u), [b])
    }))

    it('keeps the lists of users with look-alike, braced, unicode and long IDs apart', withStore(async ({ store }) => {
      const base = user()
      const users = [base, `${base}:x`, `{${base}}`, `${base}*`, `ü${base}`, `${base}${'x'.repeat(200)}`]
      const owned = new Map<string, string>()
      for (const u of users) {
        const h = handle()
        owned.set(u, h)
        await store.create(h, record(u), LONG, 10)
      }
      for (const u of users) {
        const list = await store.listByUser(u)
        assert.deepEqual(list.map((s) => [s.handle, s.record.userId]), [[owned.get(u), u]], u)
      }
    }))

    it('deleteByUser signs out every other session of the user, and only that user', withStore(async ({ store }) => {
      const [u, other] = [user(), user()]
      const keep = handle()
      await store.create(keep, record(u), LONG, 10)
      for (let i = 0; i < 3; i++) await store.create(handle(), record(u), LONG, 10)
      const theirs = handle()
      await store.create(theirs, record(other), LONG, 10)
      assert.equal(await store.deleteByUser(u, keep), 3)
      assert.deepEqual(await handlesOf(store, u), [keep])
      assert.notEqual(await store.get(keep), undefined)
      assert.deepEqual(await handlesOf(store, other), [theirs])
      assert.equal(await store.deleteByUser(u), 1, 'without `except`, every session goes')
      assert.deepEqual(await handlesOf(store, u), [])
      assert.equal(await store.deleteByUser(user()), 0)
    }))

    it('makes room beyond the per-user cap by deleting the sessions closest to expiry', withStore(async ({ store }) => {
      const u = user()
      const [soonest, middle, latest, added] = [handle(), handle(), handle(), handle()]
      await store.create(middle, record(u), LONG + 2_000, 3)
      await store.create(soonest, record(u), LONG, 3)
      await store.create(latest, record(u), LONG + 4_000, 3)
      assert.equal(await store.create(added, record(u), LONG + 6_000, 3), 1)
      assert.equal(await store.get(soonest), undefined)
      assert.deepEqual(await handlesOf(store, u), [middle, latest, added].sort())
      const other = user()
      await store.create(handle(), record(other), LONG, 3)
      assert.equal((await store.listByUser(other)).length, 1, 'the cap is per user')
    }))
  })
}
