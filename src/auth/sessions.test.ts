import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { BackbeatError } from '../core/index.ts'
import { describeSessionStore } from '../testing/session-store-contract.ts'
import {
  decodeSessionRecord,
  encodeSessionRecord,
  isSessionId,
  MemorySessionStore,
  sessionHandle,
  SessionManager,
  type SessionRecord,
  type SessionStore,
  type StoredSession,
} from './sessions.ts'

const T0 = 1_800_000_000_000
const MINUTE = 60_000

describeSessionStore('MemorySessionStore', async () => {
  let now = T0
  const store = new MemorySessionStore({ now: () => now, sweepIntervalMs: 0 })
  return {
    store,
    cleanup: () => store.close(),
    advanceTime: (ms) => {
      now += ms
    },
  }
})

/** A store that counts calls and can be switched to fail or hang, around a memory store. */
class ProbeStore implements SessionStore {
  readonly kind = 'probe'
  readonly calls: Record<string, number> = {}
  mode: 'ok' | 'fail' | 'hang' = 'ok'
  readonly inner: MemorySessionStore
  constructor(now: () => number) {
    this.inner = new MemorySessionStore({ now, sweepIntervalMs: 0 })
  }
  #call<T>(name: string, run: () => Promise<T>): Promise<T> {
    this.calls[name] = (this.calls[name] ?? 0) + 1
    if (this.mode === 'fail') return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }))
    if (this.mode === 'hang') return new Promise<T>(() => undefined)
    return run()
  }
  create(h: string, r: SessionRecord, ttl: number, max: number): Promise<number> {
    return this.#call('create', () => this.inner.create(h, r, ttl, max))
  }
  get(h: string): Promise<SessionRecord | undefined> {
    return this.#call('get', () => this.inner.get(h))
  }
  update(h: string, r: SessionRecord, ttl: number): Promise<boolean> {
    return this.#call('update', () => this.inner.update(h, r, ttl))
  }
  rename(f: string, t: string, r: SessionRecord, ttl: number): Promise<boolean> {
    return this.#call('rename', () => this.inner.rename(f, t, r, ttl))
  }
  delete(h: string): Promise<boolean> {
    return this.#call('delete', () => this.inner.delete(h))
  }
  listByUser(u: string): Promise<StoredSession[]> {
    return this.#call('listByUser', () => this.inner.listByUser(u))
  }
  deleteByUser(u: string, e?: string): Promise<number> {
    return this.#call('deleteByUser', () => this.inner.deleteByUser(u, e))
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

function setup(options: { idleTimeoutMs?: number; absoluteTimeoutMs?: number; touchIntervalMs?: number; maxSessionsPerUser?: number; operationTimeoutMs?: number } = {}) {
  const clock = { now: T0 }
  const now = (): number => clock.now
  const store = new ProbeStore(now)
  const manager = new SessionManager({ store, now, idleTimeoutMs: 30 * MINUTE, absoluteTimeoutMs: 12 * 60 * MINUTE, ...options })
  return { clock, store, manager, advance: (ms: number) => (clock.now += ms) }
}

describe('SessionManager', () => {
  describe('session IDs', () => {
    it('are 256 random bits in canonical base64url, never repeated', async () => {
      const { manager } = setup()
      const ids = new Set<string>()
      const bitCounts = new Array<number>(256).fill(0)
      for (let i = 0; i < 2_000; i++) {
        const { id } = await manager.create(`user-${i % 7}`)
        assert.match(id, /^[A-Za-z0-9_-]{43}$/)
        assert.ok(isSessionId(id))
        const bytes = Buffer.from(id, 'base64url')
        assert.equal(bytes.length, 32)
        assert.equal(bytes.toString('base64url'), id, 'canonical encoding')
        for (let bit = 0; bit < 256; bit++) bitCounts[bit]! += (bytes[bit >> 3]! >> (bit & 7)) & 1
        ids.add(id)
      }
      assert.equal(ids.size, 2_000)
      // Each bit is set in about half of the IDs; 2000 samples put 6 sigma at about ±134.
      for (const count of bitCounts) assert.ok(count > 1_000 - 134 && count < 1_000 + 134, `bit set ${count} times of 2000`)
    })

    it('are stored only as their SHA-256: a dump of the store holds no usable ID', async () => {
      const { manager, store } = setup()
      const session = await manager.create('alice', { data: { note: 'x' } })
      const expected = createHash('sha256').update(session.id).digest('base64url')
      assert.equal(session.handle, expected)
      assert.equal(sessionHandle(session.id), expected)
      const listed = await store.inner.listByUser('alice')
      assert.deepEqual(listed.map((s) => s.handle), [expected])
      assert.equal(await store.inner.get(session.id), undefined, 'the raw ID is not a key')
      assert.ok(!JSON.stringify(listed).includes(session.id))
    })

    it('refuses malformed IDs without asking the store', async () => {
      const { manager, store } = setup()
      const real = (await manager.create('alice')).id
      const nonCanonical = `${real.slice(0, 42)}${real.endsWith('B') ? 'C' : 'B'}`
      for (const bad of ['', 'garbage', real.slice(1), `${real}A`, `${real.slice(0, 42)}+`, nonCanonical, 'A'.repeat(100_000), '../../etc/passwd', `${real.slice(0, 40)}%00%`]) {
        assert.equal(await manager.get(bad), undefined, bad.slice(0, 50))
        assert.equal(await manager.rotate(bad), undefined)
        assert.equal(await manager.revoke(bad), false)
      }
      assert.equal(store.calls.get, undefined, 'no lookup was made')
    })
  })

  it('creates a session with its metadata and finds it again', async () => {
    const { manager } = setup()
    const created = await manager.create('alice', { roles: ['admin'], userAgent: 'UA/1', ip: '192.0.2.7', data: { theme: 'dark' }, mfa: true })
    assert.deepEqual(
      { ...created },
      { id: created.id, handle: created.handle, userId: 'alice', roles: ['admin'], createdAt: T0, lastSeenAt: T0, idleExpiresAt: T0 + 30 * MINUTE, absoluteExpiresAt: T0 + 720 * MINUTE, mfaAt: T0, userAgent: 'UA/1', ip: '192.0.2.7', data: { theme: 'dark' } },
    )
    const found = await manager.get(created.id)
    assert.deepEqual(found, created)
    assert.ok(Object.isFrozen(found))
  })

  describe('timeouts', () => {
    it('ends a session left idle for the idle timeout', async () => {
      const { manager, advance } = setup()
      const { id } = await manager.create('alice')
      advance(30 * MINUTE - 1)
      assert.notEqual(await manager.get(id), undefined, 'one millisecond before')
      const again = await manager.create('bob')
      advance(30 * MINUTE)
      assert.equal(await manager.get(again.id), undefined, 'exactly at the idle timeout')
    })

    it('slides the idle timeout on use, writing at most once per touch interval', async () => {
      const { manager, store, advance } = setup({ touchIntervalMs: MINUTE })
      const { id } = await manager.create('alice')
      for (let i = 0; i < 10; i++) {
        advance(5_000)
        await manager.get(id)
      }
      assert.equal(store.calls.update, undefined, '50 s of use: no write yet')
      advance(10_000)
      const touched = await manager.get(id)
      assert.equal(store.calls.update, 1)
      assert.equal(touched?.lastSeenAt, T0 + 60_000)
      assert.equal(touched.idleExpiresAt, T0 + 60_000 + 30 * MINUTE)
      // Used every 20 minutes for 3 hours: never idle long enough to expire.
      for (let i = 0; i < 9; i++) {
        advance(20 * MINUTE)
        assert.notEqual(await manager.get(id), undefined, `use ${i}`)
      }
      assert.equal(store.calls.update, 10)
    })

    it('ends even an active session at the absolute timeout', async () => {
      const { manager, advance } = setup({ absoluteTimeoutMs: 60 * MINUTE, touchIntervalMs: 0 })
      const { id } = await manager.create('alice')
      for (let t = 0; t < 59; t += 10) {
        advance(10 * MINUTE)
        if (t < 50) assert.notEqual(await manager.get(id), undefined)
      }
      advance(MINUTE * 9)
      const last = await manager.get(id)
      assert.equal(last, undefined, 'past the absolute timeout')
    })

    it('never slides the idle expiry past the absolute expiry', async () => {
      const { manager, advance } = setup({ idleTimeoutMs: 30 * MINUTE, absoluteTimeoutMs: 40 * MINUTE, touchIntervalMs: 0 })
      const { id } = await manager.create('alice')
      advance(25 * MINUTE)
      const session = await manager.get(id)
      assert.equal(session?.idleExpiresAt, T0 + 40 * MINUTE)
    })

    it('treats an expired session as revoked: it leaves the user list too', async () => {
      const { manager, advance } = setup()
      const { id } = await manager.create('alice')
      await manager.create('alice')
      advance(31 * MINUTE)
      assert.equal(await manager.get(id), undefined)
      assert.deepEqual(await manager.listForUser('alice'), [])
    })
  })

  describe('rotation', () => {
    it('gives a new ID and kills the old one at once, keeping the session', async () => {
      const { manager, advance } = setup()
      const before = await manager.create('alice', { data: { cart: 3 }, roles: ['listener'] })
      advance(MINUTE)
      const after = await manager.rotate(before.id, { roles: ['listener', 'admin'] })
      assert.ok(after !== undefined)
      assert.notEqual(after.id, before.id)
      assert.notEqual(after.handle, before.handle)
      assert.equal(await manager.get(before.id), undefined, 'the old ID is dead')
      assert.equal(await manager.rotate(before.id), undefined, 'and cannot be rotated again')
      assert.deepEqual(after.roles, ['listener', 'admin'])
      assert.deepEqual(after.data, { cart: 3 })
      assert.equal(after.createdAt, T0, 'same session: creation time kept')
      assert.equal(after.absoluteExpiresAt, before.absoluteExpiresAt, 'a privilege change does not extend the absolute timeout')
      assert.deepEqual((await manager.get(after.id))?.roles, ['listener', 'admin'])
      assert.deepEqual((await manager.listForUser('alice')).map((s) => s.handle), [after.handle])
    })

    it('restarts the absolute timeout when the user signed in again', async () => {
      const { manager, advance } = setup()
      const before = await manager.create('alice')
      advance(10 * MINUTE)
      const after = await manager.rotate(before.id, { reauthenticated: true })
      assert.equal(after?.createdAt, T0 + 10 * MINUTE)
      assert.equal(after.absoluteExpiresAt, T0 + 10 * MINUTE + 720 * MINUTE)
    })

    it('markMfa records the step-up and rotates', async () => {
      const { manager, advance } = setup()
      const before = await manager.create('alice')
      assert.equal(before.mfaAt, undefined)
      advance(5_000)
      const after = await manager.markMfa(before.id)
      assert.equal(after?.mfaAt, T0 + 5_000)
      assert.notEqual(after.id, before.id)
      assert.equal(await manager.get(before.id), undefined)
    })

    it('lets only one of two concurrent rotations of the same ID win', async () => {
      const { manager } = setup()
      const { id } = await manager.create('alice')
      const results = await Promise.all([manager.rotate(id), manager.rotate(id), manager.rotate(id)])
      assert.equal(results.filter((r) => r !== undefined).length, 1)
      assert.equal((await manager.listForUser('alice')).length, 1)
    })
  })

  describe('per-user lists', () => {
    it('lists a user\'s sessions, most recent first, marking the current one, without IDs', async () => {
      const { manager, advance } = setup({ touchIntervalMs: 0 })
      const a = await manager.create('alice', { userAgent: 'Firefox', ip: '192.0.2.1' })
      advance(1_000)
      const b = await manager.create('alice', { userAgent: 'Safari', ip: '192.0.2.2' })
      await manager.create('bob')
      advance(1_000)
      await manager.get(a.id)
      const list = await manager.listForUser('alice', { currentId: b.id })
      assert.deepEqual(list.map((s) => [s.userAgent, s.current, s.handle]), [['Firefox', false, a.handle], ['Safari', true, b.handle]])
      assert.ok(list.every((s) => !('id' in s)))
      assert.ok(!JSON.stringify(list).includes(a.id) && !JSON.stringify(list).includes(b.id))
    })

    it('signs out other devices, keeping the current session and other users\' sessions', async () => {
      const { manager } = setup()
      const current = await manager.create('alice')
      const others = [await manager.create('alice'), await manager.create('alice')]
      const bob = await manager.create('bob')
      assert.equal(await manager.revokeAllForUser('alice', { except: current.id }), 2)
      for (const s of others) assert.equal(await manager.get(s.id), undefined)
      assert.notEqual(await manager.get(current.id), undefined)
      assert.notEqual(await manager.get(bob.id), undefined)
      assert.equal(await manager.revokeAllForUser('alice'), 1)
      assert.equal(await manager.get(current.id), undefined)
    })

    it('revokes one device by its handle, only for its owner', async () => {
      const { manager } = setup()
      const alice = await manager.create('alice')
      const bob = await manager.create('bob')
      assert.equal(await manager.revokeByHandle('alice', bob.handle), false, 'not alice\'s session')
      assert.notEqual(await manager.get(bob.id), undefined)
      assert.equal(await manager.revokeByHandle('alice', 'not-a-handle'), false)
      assert.equal(await manager.revokeByHandle('alice', alice.handle), true)
      assert.equal(await manager.get(alice.id), undefined)
    })

    it('revoke ends one session; a second revoke answers false', async () => {
      const { manager } = setup()
      const { id } = await manager.create('alice')
      assert.equal(await manager.revoke(id), true)
      assert.equal(await manager.get(id), undefined)
      assert.equal(await manager.revoke(id), false)
    })

    it('caps the sessions of one user, dropping the one closest to expiry', async () => {
      const { manager, advance } = setup({ maxSessionsPerUser: 3, touchIntervalMs: 0 })
      const first = await manager.create('alice')
      advance(1_000)
      const rest = [await manager.create('alice'), await manager.create('alice')]
      await manager.get(first.id) // now the most recently used
      advance(1_000)
      const fourth = await manager.create('alice')
      const live = (await manager.listForUser('alice')).map((s) => s.handle).sort()
      assert.deepEqual(live, [first.handle, rest[1]!.handle, fourth.handle].sort())
      assert.equal(await manager.get(rest[0]!.id), undefined)
    })
  })

  describe('data', () => {
    it('replaces application data without changing the ID', async () => {
      const { manager } = setup()
      const { id } = await manager.create('alice', { data: { step: 1 } })
      const updated = await manager.setData(id, { step: 2 })
      assert.equal(updated?.id, id)
      assert.deepEqual((await manager.get(id))?.data, { step: 2 })
    })

    it('refuses oversized or non-object data and bad user IDs as programming errors', async () => {
      const { manager } = setup()
      await assert.rejects(manager.create('alice', { data: { blob: 'x'.repeat(9_000) } }), /maxDataBytes/)
      await assert.rejects(manager.create('alice', { data: [] as unknown as Record<string, unknown> }), TypeError)
      await assert.rejects(manager.create(''), TypeError)
      await assert.rejects(manager.create('a\nb'), TypeError)
      await assert.rejects(manager.create('x'.repeat(257)), TypeError)
      await assert.rejects(manager.create('alice', { roles: [''] }), TypeError)
    })

    it('bounds client hints so a huge User-Agent cannot bloat the store', async () => {
      const { manager } = setup()
      const session = await manager.create('alice', { userAgent: 'A'.repeat(10_000), ip: '1'.repeat(500) })
      assert.equal(session.userAgent?.length, 512)
      assert.equal(session.ip?.length, 64)
    })

    it('treats a corrupted stored record as no session', () => {
      const good = { userId: 'a', createdAt: 1, lastSeenAt: 1, idleExpiresAt: 2, absoluteExpiresAt: 3, data: {} }
      assert.deepEqual(decodeSessionRecord(encodeSessionRecord(good)), good)
      for (const bad of ['', 'null', '[]', '{"userId":1}', JSON.stringify({ ...good, data: null }), JSON.stringify({ ...good, createdAt: 'x' }), JSON.stringify({ ...good, roles: [1] }), JSON.stringify({ ...good, userId: '' }), '{"__proto__":{"x":1}}']) {
        assert.equal(decodeSessionRecord(bad), undefined, bad)
      }
    })
  })

  describe('store outages', () => {
    it('fail closed: every operation rejects with 503 ERR_DEPENDENCY_UNAVAILABLE, never a session', async () => {
      const { manager, store } = setup()
      const { id } = await manager.create('alice')
      store.mode = 'fail'
      for (const call of [() => manager.get(id), () => manager.create('alice'), () => manager.rotate(id), () => manager.revoke(id), () => manager.listForUser('alice'), () => manager.revokeAllForUser('alice')]) {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof BackbeatError)
          assert.equal(err.code, 'ERR_DEPENDENCY_UNAVAILABLE')
          assert.equal(err.status, 503)
          assert.match(String(err.params.reason), /ECONNREFUSED/)
          return true
        })
      }
      assert.equal(manager.stats.storeErrors, 6)
      store.mode = 'ok'
      assert.notEqual(await manager.get(id), undefined, 'the session survives the outage')
    })

    it('fail closed within the operation timeout when the store hangs', async () => {
      const { manager, store } = setup({ operationTimeoutMs: 50 })
      const { id } = await manager.create('alice')
      store.mode = 'hang'
      const started = performance.now()
      await assert.rejects(manager.get(id), { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
      const took = performance.now() - started
      assert.ok(took >= 45 && took < 1_000, `gave up after ${took.toFixed(0)} ms`)
    })

    it('keeps a session valid when only the idle-expiry write fails', async () => {
      const { manager, store, advance } = setup({ touchIntervalMs: MINUTE })
      const { id } = await manager.create('alice')
      advance(2 * MINUTE)
      const realUpdate = store.update.bind(store)
      store.update = () => Promise.reject(new Error('READONLY You can\'t write against a read only replica.'))
      assert.notEqual(await manager.get(id), undefined)
      assert.equal(manager.stats.touchErrors, 1)
      store.update = realUpdate
    })
  })

  it('validates its options at construction, listing every issue', () => {
    const store = new MemorySessionStore({ sweepIntervalMs: 0 })
    assert.throws(
      () => new SessionManager({ store, idleTimeoutMs: 0, absoluteTimeoutMs: -1, maxSessionsPerUser: 0 }),
      (err: unknown) => {
        assert.ok(err instanceof BackbeatError && err.code === 'ERR_CONFIG_INVALID')
        const paths = (err as unknown as { issues: Array<{ path: string }> }).issues.map((i) => i.path)
        assert.deepEqual([...new Set(paths)].sort(), ['sessions.absoluteTimeoutMs', 'sessions.idleTimeoutMs', 'sessions.maxSessionsPerUser'])
        return true
      },
    )
    assert.throws(() => new SessionManager({ store, idleTimeoutMs: 2 * 3_600_000, absoluteTimeoutMs: 3_600_000 }), /idleTimeoutMs: must not exceed absoluteTimeoutMs/)
    assert.throws(() => new SessionManager({ store, idleTimeoutMs: MINUTE, touchIntervalMs: MINUTE }), /touchIntervalMs: must be shorter/)
    assert.throws(() => new SessionManager({ store: {} as SessionStore }), /sessions.store/)
    assert.throws(() => new SessionManager({ store, unknown: 1 } as never), /unknown/i)
    assert.equal(new SessionManager({ store, idleTimeoutMs: 2 * MINUTE }).touchIntervalMs, 30_000, 'default touch interval: a quarter of the idle timeout')
    assert.equal(new SessionManager({ store }).touchIntervalMs, MINUTE, 'at most a minute')
  })
})
