import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError, SecurityEventLog } from '../core/index.ts'
import { MemoryKeyValueStore, type KeyValueStore } from '../stores/index.ts'
import { LoginThrottle, PasswordHasher, Rbac, RefreshTokenStore, RevocationList, TokenService, createIdentity, authOptionsSchema, type Account, type AccountDirectory } from './index.ts'

const code = (err: unknown): string => (err instanceof BackbeatError ? err.code : String(err))
const rejectsWith = async (promise: Promise<unknown>, expected: string): Promise<void> => {
  await assert.rejects(promise, (err) => {
    assert.equal(code(err), expected)
    return true
  })
}

/** A clock the test moves by hand. */
function clock(start = Date.UTC(2026, 10, 22, 12)): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

/** A store that fails every call, as an unreachable Redis does. */
const deadStore: KeyValueStore = {
  get: () => Promise.reject(new Error('connection refused')),
  set: () => Promise.reject(new Error('connection refused')),
  delete: () => Promise.reject(new Error('connection refused')),
  increment: () => Promise.reject(new Error('connection refused')),
  close: () => Promise.resolve(),
}
/** A store that never answers. */
const hangingStore: KeyValueStore = { ...deadStore, get: () => new Promise(() => undefined) }

describe('passwords (scrypt, PHC strings)', () => {
  const hasher = new PasswordHasher({ scrypt: { logN: 10 } })

  it('verifies the right password, refuses a wrong one, and salts every hash', async () => {
    const a = await hasher.hash('correct horse battery staple')
    const b = await hasher.hash('correct horse battery staple')
    assert.match(a, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
    assert.notEqual(a, b)
    assert.deepEqual(await hasher.verify('correct horse battery staple', a), { ok: true, needsRehash: false })
    assert.deepEqual(await hasher.verify('correct horse battery stapl', a), { ok: false, needsRehash: false })
  })

  it('asks for a rehash when the stored parameters are not the configured ones', async () => {
    const old = await new PasswordHasher({ scrypt: { logN: 11 } }).hash('hunter2hunter2')
    assert.deepEqual(await hasher.verify('hunter2hunter2', old), { ok: true, needsRehash: true })
    assert.deepEqual(await hasher.verify('wrong-password', old), { ok: false, needsRehash: false })
  })

  it('treats malformed stored hashes, hostile parameters and over-long passwords as a mismatch, never an exception', async () => {
    for (const stored of ['', 'plaintext', '$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA']) {
      assert.deepEqual(await hasher.verify('whatever-password', stored), { ok: false, needsRehash: false }, stored)
    }
    const stored = await hasher.hash('a-fine-password')
    assert.deepEqual(await hasher.verify('x'.repeat(2_000), stored), { ok: false, needsRehash: false })
  })

  it('enforces length rules when a password is set, and validates its options once', async () => {
    assert.equal(hasher.policyViolation('short'), 'must be at least 8 characters')
    await assert.rejects(hasher.hash('short'), RangeError)
    assert.throws(() => new PasswordHasher({ scrypt: { logN: 40 } }), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('brute-force lockout', () => {
  it('locks an account after the free attempts, doubling each time, and raises a security event', async () => {
    const t = clock()
    const events = new SecurityEventLog()
    const throttle = new LoginThrottle({ store: new MemoryKeyValueStore({ now: t.now }), account: { freeAttempts: 3, baseLockMs: 1_000 }, now: t.now, securityEvents: events.record })
    for (let i = 0; i < 3; i++) {
      await throttle.check('Ada@Example.com', '198.51.100.7')
      await throttle.recordFailure('ada@example.com', '198.51.100.7')
    }
    await assert.rejects(throttle.check('ADA@example.com', '203.0.113.9'), (err: BackbeatError) => {
      assert.equal(err.code, 'ERR_AUTH_LOCKED_OUT')
      assert.equal(err.status, 429)
      assert.equal(err.headers?.['retry-after'], '1')
      return true
    })
    t.advance(1_001)
    await assert.rejects(throttle.check('ada@example.com', '203.0.113.9'), (err: BackbeatError) => err.headers?.['retry-after'] === '2')
    const lockouts = events.list('auth_lockout')
    assert.equal(lockouts.length, 2)
    assert.equal(JSON.stringify(lockouts).includes('ada@example.com'), false, 'the account name never reaches the event')
  })

  it('counts an attempt before the password is checked: parallel guesses cannot outrun the lock', async () => {
    const throttle = new LoginThrottle({ store: new MemoryKeyValueStore(), account: { freeAttempts: 3 } })
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => throttle.check('ada@example.com', undefined)))
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3)
  })

  it('locks an address that tries many accounts, and a success clears only the account', async () => {
    const t = clock()
    const throttle = new LoginThrottle({ store: new MemoryKeyValueStore({ now: t.now }), account: { freeAttempts: 2 }, ip: { freeAttempts: 4 }, now: t.now })
    for (let i = 0; i < 5; i++) await throttle.recordFailure(`user${i}@example.com`, '198.51.100.7')
    await rejectsWith(throttle.check('fresh@example.com', '198.51.100.7'), 'ERR_AUTH_LOCKED_OUT')
    await throttle.check('fresh@example.com', '203.0.113.1')
    await throttle.check('ada@example.com', '203.0.113.1')
    await throttle.recordSuccess('ada@example.com')
    await throttle.check('ada@example.com', '203.0.113.2')
    await throttle.check('ada@example.com', '203.0.113.2')
    await rejectsWith(throttle.check('ada@example.com', '203.0.113.2'), 'ERR_AUTH_LOCKED_OUT')
  })

  it('fails closed when its store is down', async () => {
    const throttle = new LoginThrottle({ store: deadStore })
    await assert.rejects(throttle.check('ada@example.com', '198.51.100.7'), /connection refused/)
  })
})

describe('revocation deny list', () => {
  it('revokes one token by jti until it expires, and every token of a subject issued before a moment', async () => {
    const t = clock()
    const store = new MemoryKeyValueStore({ now: t.now })
    const list = new RevocationList({ store, cacheMs: 0, now: t.now })
    const iat = Math.floor(t.now() / 1000)
    await list.assertNotRevoked({ jti: 'a', sub: 'u1', iat })
    await list.revokeToken('a', iat + 60)
    await rejectsWith(list.assertNotRevoked({ jti: 'a', sub: 'u1', iat }), 'ERR_AUTH_TOKEN_REVOKED')
    await list.assertNotRevoked({ jti: 'b', sub: 'u1', iat })
    await list.revokeSubject('u1')
    await rejectsWith(list.assertNotRevoked({ jti: 'b', sub: 'u1', iat }), 'ERR_AUTH_TOKEN_REVOKED')
    t.advance(2_000)
    await list.assertNotRevoked({ jti: 'c', sub: 'u1', iat: Math.floor(t.now() / 1000) })
  })

  it('answers from its local cache only for cacheMs, and at once for revocations it made itself', async () => {
    const t = clock()
    const store = new MemoryKeyValueStore({ now: t.now })
    const here = new RevocationList({ store, cacheMs: 1_000, now: t.now })
    const there = new RevocationList({ store, cacheMs: 1_000, now: t.now })
    const token = { jti: 'j1', sub: 'u1', iat: Math.floor(t.now() / 1000) - 10 }
    assert.equal(here.cachedRevoked(token), undefined)
    await here.assertNotRevoked(token)
    assert.equal(here.cachedRevoked(token), false)
    await there.revokeToken('j1', token.iat + 600)
    assert.equal(there.cachedRevoked(token), true)
    assert.equal(here.cachedRevoked(token), false, 'another instance may pass it for at most cacheMs')
    t.advance(1_001)
    assert.equal(here.cachedRevoked(token), undefined)
    await rejectsWith(here.assertNotRevoked(token), 'ERR_AUTH_TOKEN_REVOKED')
  })

  it('remembers a revoked token until the verifier stops accepting it (exp plus the clock skew), and revokes odd or long ids', async () => {
    const t = clock()
    const list = new RevocationList({ store: new MemoryKeyValueStore({ now: t.now }), cacheMs: 0, clockSkewS: 30, now: t.now })
    const exp = Math.floor(t.now() / 1000) + 60
    await list.revokeToken('j1', exp)
    t.advance(60_000 + 25_000)
    await rejectsWith(list.assertNotRevoked({ jti: 'j1' }), 'ERR_AUTH_TOKEN_REVOKED')
    const long = 'x'.repeat(5_000)
    await list.revokeToken(long, exp + 600)
    await rejectsWith(list.assertNotRevoked({ jti: long }), 'ERR_AUTH_TOKEN_REVOKED')
    await list.revokeSubject('user:with spaces')
    await rejectsWith(list.assertNotRevoked({ sub: 'user:with spaces', iat: t.now() / 1000 - 1 }), 'ERR_AUTH_TOKEN_REVOKED')
  })

  it('tells a token issued just after "sign out everywhere" from one issued just before (millisecond iat)', async () => {
    const t = clock(Date.UTC(2026, 10, 22, 12, 0, 0, 500))
    const list = new RevocationList({ store: new MemoryKeyValueStore({ now: t.now }), cacheMs: 0, now: t.now })
    await list.revokeSubject('u1')
    await rejectsWith(list.assertNotRevoked({ sub: 'u1', iat: (t.now() - 1) / 1000 }), 'ERR_AUTH_TOKEN_REVOKED')
    await list.assertNotRevoked({ sub: 'u1', iat: (t.now() + 1) / 1000 })
  })

  it('fails closed with 503 and counts it when the store is down or slow', async () => {
    const down = new RevocationList({ store: deadStore, cacheMs: 0 })
    await rejectsWith(down.assertNotRevoked({ jti: 'a', sub: 'u' }), 'ERR_AUTH_REVOCATION_UNAVAILABLE')
    assert.equal(down.stats.failClosed, 1)
    const slow = new RevocationList({ store: hangingStore, cacheMs: 0, timeoutMs: 20 })
    const started = Date.now()
    await rejectsWith(slow.assertNotRevoked({ jti: 'a' }), 'ERR_AUTH_REVOCATION_UNAVAILABLE')
    assert.ok(Date.now() - started < 1_000)
  })
})

describe('refresh tokens: rotation and reuse detection', () => {
  const make = (t = clock(), events = new SecurityEventLog()) => {
    const store = new MemoryKeyValueStore({ now: t.now })
    const revocations = new RevocationList({ store, cacheMs: 0, now: t.now })
    return { t, events, revocations, tokens: new RefreshTokenStore({ store, revocations, ttlMs: 60 * 60_000, familyTtlMs: 3 * 60 * 60_000, now: t.now, securityEvents: events.record }) }
  }

  it('hands out a new token on every use and refuses the spent one', async () => {
    const { tokens } = make()
    const first = await tokens.issue({ userId: 'u1', scope: 'playlist:write', amr: ['pwd'] })
    assert.match(first.token, /^rt_[A-Za-z0-9_-]{43}$/)
    const second = await tokens.rotate(first.token)
    assert.notEqual(second.token, first.token)
    assert.equal(second.grant.familyId, first.grant.familyId)
    assert.equal(second.grant.userId, 'u1')
    const third = await tokens.rotate(second.token)
    assert.equal(third.grant.scope, 'playlist:write')
  })

  it('revokes the whole family when a spent token comes back, with a high-severity event', async () => {
    const { tokens, events } = make()
    const first = await tokens.issue({ userId: 'u1', scope: '', amr: ['pwd'] })
    const second = await tokens.rotate(first.token)
    await rejectsWith(tokens.rotate(first.token, { clientIp: '203.0.113.66' }), 'ERR_AUTH_REFRESH_TOKEN_REUSED')
    await rejectsWith(tokens.rotate(second.token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
    const [event] = events.list('refresh_token_reuse')
    assert.equal(event?.severity, 'high')
    assert.equal(event.clientIp, '203.0.113.66')
  })

  it('lets exactly one of two concurrent uses of a token win', async () => {
    const { tokens } = make()
    const first = await tokens.issue({ userId: 'u1', scope: '', amr: ['pwd'] })
    const results = await Promise.allSettled([tokens.rotate(first.token), tokens.rotate(first.token)])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  })

  it('expires tokens and whole families, and honours "sign out everywhere"', async () => {
    const { tokens, t, revocations } = make()
    const a = await tokens.issue({ userId: 'u1', scope: '', amr: ['pwd'] })
    t.advance(60 * 60_000 + 1)
    await rejectsWith(tokens.rotate(a.token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
    let b = await tokens.issue({ userId: 'u1', scope: '', amr: ['pwd'] })
    for (let i = 0; i < 3; i++) {
      t.advance(59 * 60_000)
      b = await tokens.rotate(b.token)
    }
    t.advance(10 * 60_000)
    await rejectsWith(tokens.rotate(b.token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
    const c = await tokens.issue({ userId: 'u2', scope: '', amr: ['pwd'] })
    t.advance(1_000)
    await revocations.revokeSubject('u2')
    await rejectsWith(tokens.rotate(c.token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
  })

  it('refuses garbage without touching the store, and answers 503 when the store is down', async () => {
    const { tokens } = make()
    for (const bad of ['', 'rt_short', 'x'.repeat(10_000), 'rt_' + '!'.repeat(43)]) await rejectsWith(tokens.rotate(bad), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
    const down = new RefreshTokenStore({ store: deadStore })
    await rejectsWith(down.rotate(`rt_${'A'.repeat(43)}`), 'ERR_DEPENDENCY_UNAVAILABLE')
  })
})

describe('RBAC', () => {
  const rbac = new Rbac({
    listener: { permissions: ['playlist:read', 'playlist:write'] },
    curator: { inherits: ['listener'], permissions: ['catalog:*'] },
    admin: { inherits: ['curator'], permissions: ['*'] },
    auditor: { permissions: ['audit:read'] },
  })

  it('grants permissions through the hierarchy and wildcards', () => {
    assert.equal(rbac.can(['listener'], 'playlist:write'), true)
    assert.equal(rbac.can(['listener'], 'catalog:write'), false)
    assert.equal(rbac.can(['curator'], 'catalog:write'), true)
    assert.equal(rbac.can(['curator'], 'playlist:read'), true)
    assert.equal(rbac.can(['admin'], 'users:admin'), true)
    assert.equal(rbac.can(['ghost'], 'playlist:read'), false)
    assert.equal(rbac.can([], 'playlist:read'), false)
    assert.equal(rbac.hasRole(['admin'], 'listener'), true)
    assert.equal(rbac.hasRole(['listener'], 'admin'), false)
    assert.equal(rbac.hasRole(['auditor'], 'listener'), false)
  })

  it('refuses cycles, unknown parents and malformed permissions at construction', () => {
    assert.throws(() => new Rbac({ a: { inherits: ['b'] }, b: { inherits: ['a'] } }), /cycle/)
    assert.throws(() => new Rbac({ a: { inherits: ['nobody'] } }), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => new Rbac({ a: { permissions: ['playlist write'] } }), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('token service', () => {
  async function setup() {
    const t = clock()
    const kv = new MemoryKeyValueStore({ now: t.now })
    const events = new SecurityEventLog()
    const options = authOptionsSchema.parse({ jwt: { secretKey: 'x'.repeat(40) }, passwords: { scryptLogN: 10 }, lockout: { account: { freeAttempts: 3 } } })
    const identity = await createIdentity(options, { kv, now: t.now, securityEvents: events.record })
    const accounts = new Map<string, Account & { login: string }>()
    const add = async (id: string, login: string, password: string, roles: string[], mfaEnrolled = false) => {
      accounts.set(id, { id, login, passwordHash: await new PasswordHasher({ scrypt: { logN: 11 } }).hash(password), roles, mfaEnrolled })
    }
    const rehashed: string[] = []
    const directory: AccountDirectory = {
      findByLogin: async (login) => [...accounts.values()].find((a) => a.login === login.toLowerCase()),
      findById: async (id) => accounts.get(id),
      updatePasswordHash: async (id, hash) => {
        rehashed.push(id)
        const account = accounts.get(id)
        if (account !== undefined) accounts.set(id, { ...account, passwordHash: hash })
      },
    }
    const secondFactor = async (_account: Account, otp: string): Promise<void> => {
      if (otp !== '123456') throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
    }
    const service = new TokenService({ ...identity, accounts: directory, secondFactor, securityEvents: events.record, now: t.now })
    await add('u1', 'ada@example.com', 'ada-password', ['listener'])
    await add('u2', 'root@example.com', 'root-password', ['admin'], true)
    return { t, identity, service, accounts, rehashed, events }
  }

  it('signs in with the password grant, rehashes outdated hashes, and issues tokens the verifier accepts', async () => {
    const { service, identity, rehashed } = await setup()
    const tokens = await service.passwordGrant({ username: 'ADA@example.com', password: 'ada-password' }, { clientIp: '198.51.100.7' })
    assert.equal(tokens.token_type, 'Bearer')
    assert.equal(tokens.expires_in, 900)
    assert.match(tokens.refresh_token, /^rt_/)
    assert.deepEqual(rehashed, ['u1'])
    const { payload } = await identity.verifier.verify(tokens.access_token)
    assert.equal(payload.sub, 'u1')
    assert.deepEqual(payload.roles, ['listener'])
    assert.deepEqual(payload.amr, ['pwd'])
    assert.equal(typeof payload.jti, 'string')
    assert.match(String(payload.scope), /playlist:write/)
  })

  it('answers the same error for a wrong password and an unknown account, and locks both out alike', async () => {
    const { service, events } = await setup()
    await rejectsWith(service.passwordGrant({ username: 'ada@example.com', password: 'nope' }), 'ERR_AUTH_CREDENTIALS_INVALID')
    await rejectsWith(service.passwordGrant({ username: 'ghost@example.com', password: 'nope' }), 'ERR_AUTH_CREDENTIALS_INVALID')
    for (let i = 0; i < 3; i++) await service.passwordGrant({ username: 'ghost@example.com', password: 'nope' }).catch(() => undefined)
    await rejectsWith(service.passwordGrant({ username: 'ghost@example.com', password: 'nope' }), 'ERR_AUTH_LOCKED_OUT')
    assert.ok(events.list('auth_failure').length >= 4)
  })

  it('asks accounts with MFA for the code, refuses a wrong one, and marks tokens with otp', async () => {
    const { service, identity } = await setup()
    await rejectsWith(service.passwordGrant({ username: 'root@example.com', password: 'root-password' }), 'ERR_AUTH_MFA_CODE_REQUIRED')
    await rejectsWith(service.passwordGrant({ username: 'root@example.com', password: 'root-password', otp: '000000' }), 'ERR_AUTH_MFA_CODE_INVALID')
    const tokens = await service.passwordGrant({ username: 'root@example.com', password: 'root-password', otp: '123456' })
    const { payload } = await identity.verifier.verify(tokens.access_token)
    assert.deepEqual(payload.amr, ['pwd', 'otp'])
    assert.equal(payload.mfa_time, payload.auth_time)
  })

  it('rotates on refresh with roles re-read, and logout kills the access token and the refresh family', async () => {
    const { service, identity, accounts } = await setup()
    const first = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    accounts.set('u1', { ...(accounts.get('u1') as Account & { login: string }), roles: ['curator'] })
    const second = await service.refreshGrant(first.refresh_token)
    const { payload } = await identity.verifier.verify(second.access_token)
    assert.deepEqual(payload.roles, ['curator'])
    assert.equal(identity.verifier.cached(second.access_token)?.payload.sub, 'u1')
    await service.logout({ sub: 'u1', jti: payload.jti, exp: payload.exp }, second.refresh_token)
    assert.equal(identity.verifier.cached(second.access_token), undefined, 'the verified-token cache forgets it')
    await rejectsWith(identity.revocations.assertNotRevoked({ jti: payload.jti, sub: payload.sub, iat: payload.iat }), 'ERR_AUTH_TOKEN_REVOKED')
    await rejectsWith(service.refreshGrant(second.refresh_token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
  })

  it('narrows scopes on request, ignores a logout naming someone else\'s refresh token, and caps a step-up token', async () => {
    const { service, identity, t } = await setup()
    const narrow = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password', scope: 'playlist:read catalog:write' })
    assert.equal(narrow.scope, 'playlist:read', 'a scope the roles do not allow is dropped')
    const theirs = await service.passwordGrant({ username: 'root@example.com', password: 'root-password', otp: '123456' })
    const mine = await identity.verifier.verify(narrow.access_token)
    await service.logout({ sub: 'u1', jti: mine.payload.jti, exp: mine.payload.exp }, theirs.refresh_token)
    assert.equal((await service.refreshGrant(theirs.refresh_token)).token_type, 'Bearer', 'the other user\'s sign-in is untouched')
    const stepped = await service.stepUp('u2', '123456', {}, { exp: Math.floor(t.now() / 1000) + 60, scope: 'playlist:read' })
    const { payload } = await identity.verifier.verify(stepped.access_token)
    assert.equal(payload.scope, 'playlist:read')
    assert.ok(stepped.expires_in <= 60)
  })

  it('revokes the access tokens of a sign-in with its refresh family: on reuse of a spent refresh token, and on logout', async () => {
    const { service, identity } = await setup()
    const claimsOf = async (token: string) => (await identity.verifier.verify(token)).payload
    const check = async (token: string) => {
      const p = await claimsOf(token)
      await identity.revocations.assertNotRevoked({ jti: p.jti, sub: p.sub, iat: p.iat, sid: p.sid as string })
    }
    const a = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    const b = await service.refreshGrant(a.refresh_token)
    assert.equal((await claimsOf(a.access_token)).sid, (await claimsOf(b.access_token)).sid)
    const other = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    await rejectsWith(service.refreshGrant(a.refresh_token), 'ERR_AUTH_REFRESH_TOKEN_REUSED')
    await rejectsWith(check(a.access_token), 'ERR_AUTH_TOKEN_REVOKED')
    await rejectsWith(check(b.access_token), 'ERR_AUTH_TOKEN_REVOKED')
    await check(other.access_token)
    const otherPayload = await claimsOf(other.access_token)
    const next = await service.refreshGrant(other.refresh_token)
    await service.logout({ sub: 'u1', jti: otherPayload.jti, exp: otherPayload.exp }, next.refresh_token)
    await rejectsWith(check(next.access_token), 'ERR_AUTH_TOKEN_REVOKED')
  })

  it('signs an account out everywhere: every token issued until now dies, later sign-ins work', async () => {
    const { service, identity, t } = await setup()
    const a = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    const b = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    const payloadA = (await identity.verifier.verify(a.access_token)).payload
    await service.revokeAll('u1')
    await rejectsWith(identity.revocations.assertNotRevoked({ jti: payloadA.jti, sub: 'u1', iat: payloadA.iat }), 'ERR_AUTH_TOKEN_REVOKED')
    await rejectsWith(service.refreshGrant(b.refresh_token), 'ERR_AUTH_REFRESH_TOKEN_INVALID')
    t.advance(1)
    const c = await service.passwordGrant({ username: 'ada@example.com', password: 'ada-password' })
    const payloadC = (await identity.verifier.verify(c.access_token)).payload
    await identity.revocations.assertNotRevoked({ jti: payloadC.jti, sub: 'u1', iat: payloadC.iat })
  })
})
