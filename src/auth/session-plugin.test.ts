import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import type { SecurityEvent } from '../core/index.ts'
import { CsrfProtection, normalizeOrigin } from './csrf.ts'
import { sessionIdentity, sessionPlugin, type SessionPluginOptions } from './session-plugin.ts'
import { MemorySessionStore, SessionManager, type SessionStore } from './sessions.ts'

const T0 = 1_800_000_000_000
const MINUTE = 60_000
const SECRET = 'csrf-test-secret-of-at-least-32-bytes!!'
const TRUSTED = 'https://console.backbeat.test'
/** inject() sends `Host: localhost:80` over http: this is the server's own origin. */
const SELF = 'http://localhost'
const COOKIE = '__Host-bb_session'

/** A memory store that can be taken down, as Redis would go away. */
function switchable(inner: SessionStore): { store: SessionStore; state: { down: boolean } } {
  const state = { down: false }
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => (state.down ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })) : (value as (...a: unknown[]) => unknown).apply(target, args))
    },
  })
  return { store, state }
}

interface Harness {
  app: FastifyInstance
  clock: { now: number }
  events: SecurityEvent[]
  down: { down: boolean }
}

async function harness(overrides: Partial<SessionPluginOptions> = {}): Promise<Harness> {
  const clock = { now: T0 }
  const { store, state } = switchable(new MemorySessionStore({ now: () => clock.now, sweepIntervalMs: 0 }))
  const manager = new SessionManager({ store, now: () => clock.now, touchIntervalMs: MINUTE })
  const events: SecurityEvent[] = []
  const app = await quietApp({ rateLimit: { enabled: false }, auth: { enabled: false } })
  await app.register(sessionPlugin, {
    manager,
    csrf: { secret: SECRET, trustedOrigins: [TRUSTED], tokenPath: '/v1/auth/csrf' },
    securityEvents: (event) => events.push(event),
    ...overrides,
  })
  const required = { config: { session: { required: true } } }
  app.post<{ Body: { user: string; mfa?: boolean } }>('/v1/auth/login', async (request) => {
    const session = await request.signIn(request.body.user, { roles: ['admin'], ...(request.body.mfa === true ? { mfa: true } : {}) })
    return { userId: session.userId, csrfToken: request.csrfToken() }
  })
  app.post('/v1/auth/logout', async (request, reply) => {
    await request.signOut()
    return reply.code(204).send()
  })
  app.get('/v1/me', required, async (request) => ({ userId: request.session?.userId, contextUser: request.requestContext.userId, mfaAt: request.session?.mfaAt ?? null }))
  app.get('/v1/public', async (request) => ({ signedIn: request.session !== null }))
  app.post('/v1/public', async (request) => ({ signedIn: request.session !== null }))
  app.route({ method: ['POST', 'PUT', 'PATCH', 'DELETE'], url: '/v1/admin/action', ...required, handler: async () => ({ ok: true }) })
  app.post('/v1/admin/unprotected', { config: { session: { required: true }, csrf: false } }, async () => ({ ok: true }))
  app.get('/v1/status', { config: { session: false } }, async (request) => ({ session: request.session }))
  app.get('/v1/me/sessions', required, async (request) => app.sessions.listForUser(request.session!.userId, { currentId: request.session!.id }))
  app.post('/v1/me/sessions/sign-out-others', required, async (request) => ({ revoked: await app.sessions.revokeAllForUser(request.session!.userId, { except: request.session!.id }) }))
  app.post('/v1/me/mfa', required, async (request) => {
    const session = await request.rotateSession({ mfa: true })
    return { mfaAt: session.mfaAt, csrfToken: request.csrfToken() }
  })
  app.get('/v1/me/identity', required, async (request) => {
    const found = sessionIdentity(request)
    const identity = found instanceof Error ? null : found
    return { subject: identity?.subject, method: identity?.method, roles: [...(identity?.roles ?? [])], amr: [...(identity?.amr ?? [])], sessionId: identity?.sessionId, handle: request.session?.handle }
  })
  await app.ready()
  return { app, clock, events, down: state }
}

interface Login {
  id: string
  cookie: string
  csrfToken: string
}

function sessionCookieOf(res: LightMyRequestResponse, name = COOKIE): { value: string; attributes: string[] } | undefined {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const line = all.find((c) => c.startsWith(`${name}=`))
  if (line === undefined) return undefined
  const [pair = '', ...attributes] = line.split(/; */)
  return { value: pair.slice(name.length + 1), attributes }
}

/** Signs `user` in; `current` is the browser's session so far (its cookie and CSRF token). */
async function login(app: FastifyInstance, user: string, current?: Login): Promise<Login> {
  const headers = { origin: SELF, ...(current === undefined ? {} : { cookie: current.cookie, 'x-csrf-token': current.csrfToken }) }
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', headers, payload: { user } })
  assert.equal(res.statusCode, 200, res.body)
  const set = sessionCookieOf(res)
  assert.ok(set !== undefined, 'the session cookie is set')
  return { id: set.value, cookie: `${COOKIE}=${set.value}`, csrfToken: res.json<{ csrfToken: string }>().csrfToken }
}

const code = (res: LightMyRequestResponse): string => res.json<{ code: string }>().code

describe('session cookies over HTTP', () => {
  let h: Harness
  before(async () => {
    h = await harness()
  })

  it('signs in with an HttpOnly, Secure, SameSite=Strict __Host- cookie that ends with the browser', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { origin: SELF }, payload: { user: 'alice' } })
    assert.equal(res.statusCode, 200)
    const cookie = sessionCookieOf(res)
    assert.ok(cookie !== undefined)
    assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/)
    assert.deepEqual(cookie.attributes.sort(), ['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure'])
    assert.equal(res.headers['cache-control'], 'no-store')
  })

  it('serves the signed-in user on routes that require a session, and puts them in the request context', async () => {
    const { cookie } = await login(h.app, 'alice')
    const res = await h.app.inject({ url: '/v1/me', headers: { cookie } })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { userId: 'alice', contextUser: 'alice', mfaAt: null })
    assert.deepEqual((await h.app.inject({ url: '/v1/public', headers: { cookie } })).json(), { signedIn: true })
  })

  it('answers 401 ERR_AUTH_SESSION_INVALID as problem+json without a session', async () => {
    const res = await h.app.inject({ url: '/v1/me' })
    assert.equal(res.statusCode, 401)
    assert.equal(code(res), 'ERR_AUTH_SESSION_INVALID')
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
    assert.deepEqual((await h.app.inject({ url: '/v1/public' })).json(), { signedIn: false })
  })

  it('treats garbled, tampered, oversized and unknown cookies as no session, clears them, and never answers 500', async () => {
    const { id } = await login(h.app, 'alice')
    const flipped = `${id.slice(0, 10)}${id[10] === 'A' ? 'B' : 'A'}${id.slice(11)}`
    const values = [
      '',
      'garbage',
      flipped,
      `${id}x`,
      id.slice(1),
      randomBytes(32).toString('base64url'),
      'A'.repeat(100_000),
      '%ZZ%E0%A4%A',
      encodeURIComponent('ünïcødé-☃'.repeat(20)),
      '"quoted"',
      'a=b=c',
      `${id.slice(0, 40)}%00`,
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
    ]
    for (const value of values) {
      const cookie = `other=1; ${COOKIE}=${value}`
      const required = await h.app.inject({ url: '/v1/me', headers: { cookie } })
      assert.equal(required.statusCode, 401, `required route, cookie ${value.slice(0, 40)}`)
      assert.equal(code(required), 'ERR_AUTH_SESSION_INVALID')
      const open = await h.app.inject({ url: '/v1/public', headers: { cookie } })
      assert.equal(open.statusCode, 200, `public route, cookie ${value.slice(0, 40)}`)
      assert.deepEqual(open.json(), { signedIn: false })
      const cleared = sessionCookieOf(open)
      if (value !== '') {
        assert.equal(cleared?.value, '', `cleared: ${value.slice(0, 40)}`)
        assert.ok(cleared.attributes.includes('Max-Age=0'))
      }
    }
    // A cookie header the parser can barely make sense of.
    for (const cookie of [';;;', '=', COOKIE, `${COOKIE}==`, 'x'.repeat(8_000), `${COOKIE}=${id}; ${COOKIE}=garbage`]) {
      const res = await h.app.inject({ url: '/v1/public', headers: { cookie } })
      assert.ok(res.statusCode < 500, `cookie header ${cookie.slice(0, 40)}: ${res.statusCode}`)
    }
  })

  it('rotates the ID when the same user signs in again: the old cookie is dead at once', async () => {
    const first = await login(h.app, 'alice')
    const withoutToken = await h.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { origin: SELF, cookie: first.cookie }, payload: { user: 'alice' } })
    assert.equal(withoutToken.statusCode, 403, 'a signed-in browser posts its CSRF token, on the login route too')
    const second = await login(h.app, 'alice', first)
    assert.notEqual(second.id, first.id)
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: first.cookie } })).statusCode, 401)
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: second.cookie } })).statusCode, 200)
  })

  it('ends the previous session when another user signs in on the same browser', async () => {
    const alice = await login(h.app, 'alice')
    const bob = await login(h.app, 'bob', alice)
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: alice.cookie } })).statusCode, 401)
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: bob.cookie } })).json<{ userId: string }>().userId, 'bob')
  })

  it('signs out: the session is revoked and the cookie cleared', async () => {
    const { cookie, csrfToken } = await login(h.app, 'alice')
    const res = await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { cookie, origin: SELF, 'x-csrf-token': csrfToken } })
    assert.equal(res.statusCode, 204)
    assert.equal(sessionCookieOf(res)?.value, '')
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie } })).statusCode, 401)
  })

  it('ends a session after the idle timeout and at the absolute timeout', async () => {
    const idle = await login(h.app, 'alice')
    h.clock.now += 30 * MINUTE
    const res = await h.app.inject({ url: '/v1/me', headers: { cookie: idle.cookie } })
    assert.equal(res.statusCode, 401)
    assert.equal(sessionCookieOf(res)?.value, '', 'the dead cookie is cleared')

    const busy = await login(h.app, 'alice')
    for (let t = 0; t < 12 * 60; t += 20) {
      h.clock.now += 20 * MINUTE
      const status = (await h.app.inject({ url: '/v1/me', headers: { cookie: busy.cookie } })).statusCode
      assert.equal(status, t + 20 < 12 * 60 ? 200 : 401, `after ${t + 20} minutes`)
    }
  })

  it('lists the user\'s sessions and signs out the other devices', async () => {
    const laptop = await login(h.app, 'carol')
    const phone = await login(h.app, 'carol')
    const listed = await h.app.inject({ url: '/v1/me/sessions', headers: { cookie: laptop.cookie } })
    const sessions = listed.json<Array<{ current: boolean; handle: string; id?: string }>>()
    assert.equal(sessions.length, 2)
    assert.equal(sessions.filter((s) => s.current).length, 1)
    assert.ok(!listed.body.includes(laptop.id) && !listed.body.includes(phone.id), 'no session ID in the list')
    const res = await h.app.inject({ method: 'POST', url: '/v1/me/sessions/sign-out-others', headers: { cookie: laptop.cookie, origin: SELF, 'x-csrf-token': laptop.csrfToken } })
    assert.deepEqual(res.json(), { revoked: 1 })
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: phone.cookie } })).statusCode, 401)
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: laptop.cookie } })).statusCode, 200)
  })

  it('rotates on an MFA step-up: new cookie, mfaAt set, the old ID and its CSRF token dead', async () => {
    const before = await login(h.app, 'dave')
    const res = await h.app.inject({ method: 'POST', url: '/v1/me/mfa', headers: { cookie: before.cookie, origin: SELF, 'x-csrf-token': before.csrfToken } })
    assert.equal(res.statusCode, 200, res.body)
    const after = sessionCookieOf(res)
    assert.ok(after !== undefined && after.value !== before.id)
    const body = res.json<{ mfaAt: number; csrfToken: string }>()
    assert.equal(body.mfaAt, h.clock.now)
    assert.notEqual(body.csrfToken, before.csrfToken)
    const cookie = `${COOKIE}=${after.value}`
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: before.cookie } })).statusCode, 401)
    assert.equal((await h.app.inject({ method: 'POST', url: '/v1/admin/action', headers: { cookie, origin: SELF, 'x-csrf-token': before.csrfToken } })).statusCode, 403, 'the old token no longer fits')
    assert.equal((await h.app.inject({ method: 'POST', url: '/v1/admin/action', headers: { cookie, origin: SELF, 'x-csrf-token': body.csrfToken } })).statusCode, 200)
    const identity = (await h.app.inject({ url: '/v1/me/identity', headers: { cookie } })).json<Record<string, unknown>>()
    assert.deepEqual(identity, { subject: 'dave', method: 'session', roles: ['admin'], amr: ['mfa'], sessionId: identity.handle, handle: identity.handle })
  })

  it('hands out the CSRF token of the session at the token path, never cached', async () => {
    const { cookie, csrfToken } = await login(h.app, 'erin')
    const res = await h.app.inject({ url: '/v1/auth/csrf', headers: { cookie } })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { csrfToken })
    assert.equal(res.headers['cache-control'], 'no-store')
    assert.equal((await h.app.inject({ url: '/v1/auth/csrf' })).statusCode, 401)
  })

  it('ignores the cookie on routes with session: false', async () => {
    const { cookie } = await login(h.app, 'alice')
    assert.deepEqual((await h.app.inject({ url: '/v1/status', headers: { cookie } })).json(), { session: null })
  })
})

describe('CSRF protection of cookie-authenticated requests', () => {
  let h: Harness
  let alice: Login
  let bob: Login
  before(async () => {
    h = await harness()
    alice = await login(h.app, 'alice')
    bob = await login(h.app, 'bob')
  })

  const act = (headers: Record<string, string>, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' = 'POST', url = '/v1/admin/action'): Promise<LightMyRequestResponse> =>
    h.app.inject({ method, url, headers: { cookie: alice.cookie, ...headers } })

  it('accepts a same-origin request with the session\'s token, for every state-changing method', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      assert.equal((await act({ origin: SELF, 'x-csrf-token': alice.csrfToken }, method)).statusCode, 200, method)
      assert.equal((await act({ 'sec-fetch-site': 'same-origin', 'x-csrf-token': alice.csrfToken }, method)).statusCode, 200, method)
    }
    assert.equal((await act({ referer: `${SELF}/admin/users?x=1`, 'x-csrf-token': alice.csrfToken })).statusCode, 200, 'Referer when Origin is absent')
    assert.equal((await act({ 'sec-fetch-site': 'cross-site', origin: TRUSTED, 'x-csrf-token': alice.csrfToken })).statusCode, 200, 'a trusted origin')
  })

  it('refuses a missing, wrong or foreign token with 403 ERR_AUTH_CSRF_INVALID, with a security event', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ origin: SELF }, 'token-missing'],
      [{ origin: SELF, 'x-csrf-token': '' }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': 'garbage' }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': randomBytes(32).toString('base64url') }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': bob.csrfToken }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': `${alice.csrfToken}A` }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': alice.csrfToken.toUpperCase() }, 'token-invalid'],
      [{ origin: SELF, 'x-csrf-token': alice.id }, 'token-invalid'],
    ]
    for (const [headers, reason] of cases) {
      h.events.length = 0
      const res = await act(headers)
      assert.equal(res.statusCode, 403, JSON.stringify(headers))
      assert.equal(code(res), 'ERR_AUTH_CSRF_INVALID')
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
      assert.deepEqual(h.events.map((e) => [e.type, e.details.reason]), [['csrf_rejected', reason]])
    }
  })

  it('refuses cross-site and untrusted origins even with the right token', async () => {
    const token = { 'x-csrf-token': alice.csrfToken }
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, 'cross-site'],
      [{ 'sec-fetch-site': 'cross-site' }, 'cross-site'],
      [{ 'sec-fetch-site': 'same-site', origin: 'https://other.localhost' }, 'cross-site'],
      [{ origin: 'https://evil.example' }, 'origin-untrusted'],
      [{ origin: 'null' }, 'origin-untrusted'],
      [{ origin: 'https://localhost' }, 'origin-untrusted'],
      [{ origin: 'http://localhost.evil.example' }, 'origin-untrusted'],
      [{ origin: `${SELF}, https://evil.example` }, 'origin-untrusted'],
      [{ referer: 'https://evil.example/localhost' }, 'origin-untrusted'],
      [{}, 'origin-missing'],
    ]
    for (const [headers, reason] of cases) {
      h.events.length = 0
      const res = await act({ ...headers, ...token })
      assert.equal(res.statusCode, 403, JSON.stringify(headers))
      assert.equal(code(res), 'ERR_AUTH_CSRF_INVALID')
      assert.equal(h.events[0]?.details.reason, reason, JSON.stringify(headers))
    }
  })

  it('never checks safe methods', async () => {
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie: alice.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 200)
  })

  it('does not apply to requests authenticated by a header credential (no session is loaded)', async () => {
    const bearer = await h.app.inject({ method: 'POST', url: '/v1/public', headers: { authorization: 'Bearer x', 'x-api-key': 'k', 'sec-fetch-site': 'cross-site' } })
    assert.notEqual(bearer.statusCode, 403)
    // Even with the browser's cookie attached, a header credential decides: the session is not used.
    const apiKey = await h.app.inject({ method: 'POST', url: '/v1/public', headers: { 'x-api-key': 'k', cookie: alice.cookie, 'sec-fetch-site': 'cross-site' } })
    assert.equal(apiKey.statusCode, 200, apiKey.body)
    assert.deepEqual(apiKey.json(), { signedIn: false })
    assert.equal((await h.app.inject({ method: 'POST', url: '/v1/admin/action', headers: { 'x-api-key': 'k', cookie: alice.cookie } })).statusCode, 401, 'a route that needs a session still needs one')
  })

  it('applies to public routes only when a session cookie came along', async () => {
    assert.deepEqual((await h.app.inject({ method: 'POST', url: '/v1/public', headers: { 'sec-fetch-site': 'cross-site' } })).json(), { signedIn: false })
    assert.equal((await h.app.inject({ method: 'POST', url: '/v1/public', headers: { cookie: alice.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 403)
  })

  it('lets routes opt out with config.csrf: false', async () => {
    assert.equal((await act({ 'sec-fetch-site': 'cross-site' }, 'POST', '/v1/admin/unprotected')).statusCode, 200)
  })

  it('refuses a cross-site sign-in (login CSRF) and sets no cookie', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, {}]) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/auth/login', headers, payload: { user: 'mallory' } })
      assert.equal(res.statusCode, 403, JSON.stringify(headers))
      assert.equal(code(res), 'ERR_AUTH_CSRF_INVALID')
      assert.equal(sessionCookieOf(res), undefined)
    }
  })
})

describe('session store outage', () => {
  it('fails closed: 503 ERR_DEPENDENCY_UNAVAILABLE where a session is required, signed out elsewhere, never 500', async () => {
    const h = await harness()
    const { cookie, csrfToken } = await login(h.app, 'alice')
    h.down.down = true
    const required = await h.app.inject({ url: '/v1/me', headers: { cookie } })
    assert.equal(required.statusCode, 503)
    assert.equal(code(required), 'ERR_DEPENDENCY_UNAVAILABLE')
    assert.equal(required.headers['retry-after'], '1')
    assert.ok(!required.body.includes('ECONNREFUSED'), '5xx details stay on the server')
    assert.deepEqual((await h.app.inject({ url: '/v1/public', headers: { cookie } })).json(), { signedIn: false })
    const action = await h.app.inject({ method: 'POST', url: '/v1/admin/action', headers: { cookie, origin: SELF, 'x-csrf-token': csrfToken } })
    assert.equal(action.statusCode, 503)
    const signIn = await h.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { origin: SELF }, payload: { user: 'bob' } })
    assert.equal(signIn.statusCode, 503)
    assert.equal(sessionCookieOf(signIn), undefined)
    const signOut = await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { cookie, origin: SELF, 'x-csrf-token': csrfToken } })
    assert.equal(signOut.statusCode, 503, 'a sign-out that could not end the session says so')
    assert.equal(sessionCookieOf(signOut)?.value, '', 'but this browser forgets the cookie anyway')
    h.down.down = false
    assert.equal((await h.app.inject({ url: '/v1/me', headers: { cookie } })).statusCode, 200, 'back once the store is')
  })
})

describe('session plugin options', () => {
  const store = new MemorySessionStore({ sweepIntervalMs: 0 })
  const manager = new SessionManager({ store })
  const register = async (options: Partial<SessionPluginOptions>): Promise<FastifyInstance> => {
    const app = Fastify()
    await app.register(sessionPlugin, { manager, csrf: { secret: SECRET }, ...options })
    return app
  }

  it('refuses unsafe cookie settings and weak CSRF secrets at registration, listing every issue', async () => {
    await assert.rejects(register({ secure: false, cookieName: '__Host-s' }), /__Host- cookie needs secure/)
    await assert.rejects(register({ path: '/admin', cookieName: '__Host-s' }), /__Host- cookie needs secure: true and path/)
    await assert.rejects(register({ secure: false, cookieName: '__Secure-s' }), /__Secure- cookie needs secure/)
    await assert.rejects(register({ sameSite: 'none' as 'lax' }), /sessions.sameSite/)
    await assert.rejects(register({ cookieName: 'bad name;' }), /sessions.cookieName/)
    await assert.rejects(register({ csrf: { secret: 'short' } }), /sessions.csrf.secret/)
    await assert.rejects(register({ csrf: undefined as unknown as false }), /sessions.csrf/)
    await assert.rejects(register({ csrf: { secret: SECRET, trustedOrigins: ['https://*.example.com', 'https://ok.example.com/path', 'null'] } }), (err: Error & { issues?: Array<{ path: string }> }) => {
      assert.deepEqual(err.issues?.map((i) => i.path), ['sessions.csrf.trustedOrigins.0', 'sessions.csrf.trustedOrigins.1', 'sessions.csrf.trustedOrigins.2'])
      return true
    })
    await assert.rejects(register({ manager: {} as unknown as SessionManager, secure: 'yes' as unknown as boolean }), (err: Error & { issues?: Array<{ path: string }> }) => {
      assert.deepEqual(err.issues?.map((i) => i.path), ['sessions.manager', 'sessions.secure'])
      return true
    })
  })

  it('refuses a malformed route config when the route is declared', async () => {
    const app = await register({})
    assert.throws(() => app.get('/x', { config: { session: { required: 'yes' } as unknown as { required: boolean } } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => app.get('/y', { config: { session: null as unknown as false } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => app.get('/z', { config: { csrf: 'no' as unknown as boolean } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    await app.close()
  })

  it('works on a bare Fastify app: registers the cookie parser itself; local http uses a plain, non-Secure cookie', async () => {
    const app = await register({ secure: false, sameSite: 'lax', persistent: true })
    app.post('/login', async (request) => {
      await request.signIn('alice')
      return { token: request.csrfToken() }
    })
    app.get('/me', { config: { session: { required: true } } }, async (request) => ({ user: request.session?.userId }))
    const res = await app.inject({ method: 'POST', url: '/login', headers: { 'sec-fetch-site': 'same-origin' } })
    assert.equal(res.statusCode, 200)
    const cookie = sessionCookieOf(res, 'bb_session')
    assert.ok(cookie !== undefined)
    assert.deepEqual(cookie.attributes.sort(), ['HttpOnly', `Max-Age=${12 * 3600}`, 'Path=/', 'SameSite=Lax'])
    assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: `bb_session=${cookie.value}` } })).json(), { user: 'alice' })
    await app.close()
  })

  it('can run without CSRF when told so explicitly', async () => {
    const app = await register({ csrf: false })
    app.post('/login', async (request) => {
      await request.signIn('alice')
      return { token: request.csrfToken() ?? null }
    })
    app.post('/act', { config: { session: { required: true } } }, async () => ({ ok: true }))
    const res = await app.inject({ method: 'POST', url: '/login', headers: { 'sec-fetch-site': 'cross-site' } })
    assert.deepEqual(res.json(), { token: null })
    const value = sessionCookieOf(res)?.value ?? ''
    assert.equal((await app.inject({ method: 'POST', url: '/act', headers: { cookie: `${COOKIE}=${value}` } })).statusCode, 200)
    await app.close()
  })
})

describe('CsrfProtection', () => {
  const sessionA = randomBytes(32).toString('base64url')
  const sessionB = randomBytes(32).toString('base64url')

  it('derives one 256-bit token per session ID, different for every session and secret', () => {
    const csrf = new CsrfProtection({ secret: SECRET })
    const token = csrf.tokenFor(sessionA)
    assert.match(token, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(csrf.tokenFor(sessionA), token, 'stable for the life of the session ID')
    assert.notEqual(csrf.tokenFor(sessionB), token)
    assert.notEqual(new CsrfProtection({ secret: `${SECRET}?` }).tokenFor(sessionA), token)
    assert.ok(csrf.verifyToken(sessionA, token))
    assert.ok(!csrf.verifyToken(sessionB, token))
    for (const bad of [undefined, null, 42, '', token.slice(1), `${token}=`, token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), ['x']]) assert.ok(!csrf.verifyToken(sessionA, bad), String(bad))
  })

  it('accepts tokens of a previous secret during a rotation, but issues only under the current one', () => {
    const old = new CsrfProtection({ secret: SECRET })
    const rotated = new CsrfProtection({ secret: randomBytes(32), previousSecrets: [SECRET] })
    const oldToken = old.tokenFor(sessionA)
    assert.ok(rotated.verifyToken(sessionA, oldToken))
    assert.notEqual(rotated.tokenFor(sessionA), oldToken)
    assert.ok(!new CsrfProtection({ secret: randomBytes(32) }).verifyToken(sessionA, oldToken), 'once the old secret is dropped, its tokens are dead')
  })

  it('checks Sec-Fetch-Site first, then Origin, then Referer', () => {
    const csrf = new CsrfProtection({ secret: SECRET, trustedOrigins: ['https://console.example.com:8443/'] })
    const target = 'https://api.example.com'
    assert.equal(csrf.checkOrigin({ secFetchSite: 'none', targetOrigin: target }), undefined, 'user-initiated (typed URL, bookmark)')
    assert.equal(csrf.checkOrigin({ secFetchSite: 'SAME-ORIGIN', origin: 'https://evil.example', targetOrigin: target }), undefined, 'fetch metadata wins when present')
    assert.equal(csrf.checkOrigin({ secFetchSite: 'same-site', origin: 'https://www.example.com', targetOrigin: target }), 'cross-site', 'a sibling subdomain is not trusted')
    assert.equal(csrf.checkOrigin({ secFetchSite: 'same-site', origin: 'https://console.example.com:8443', targetOrigin: target }), undefined)
    assert.equal(csrf.checkOrigin({ secFetchSite: 'bogus', origin: 'https://API.example.com:443', targetOrigin: target }), undefined, 'unknown metadata falls back to Origin, normalised')
    assert.equal(csrf.checkOrigin({ origin: 'http://api.example.com', targetOrigin: target }), 'origin-untrusted', 'the scheme counts')
    assert.equal(csrf.checkOrigin({ referer: 'https://api.example.com/admin', targetOrigin: target }), undefined)
    assert.equal(csrf.checkOrigin({ referer: 'not a url', targetOrigin: target }), 'origin-untrusted')
    assert.equal(csrf.checkOrigin({ targetOrigin: target }), 'origin-missing')
    assert.equal(new CsrfProtection({ secret: SECRET, requireOrigin: false }).checkOrigin({ targetOrigin: target }), undefined, 'lenient mode: the token alone decides')
    assert.equal(csrf.check({ sessionId: sessionA, token: undefined, secFetchSite: 'same-origin' }), 'token-missing')
    assert.equal(csrf.check({ sessionId: sessionA, token: csrf.tokenFor(sessionA), secFetchSite: 'cross-site' }), 'cross-site', 'origin first, whatever the token')
    assert.equal(csrf.check({ sessionId: sessionA, token: csrf.tokenFor(sessionA), secFetchSite: 'same-origin' }), undefined)
  })

  it('normalises origins and refuses everything that is not http(s)', () => {
    assert.equal(normalizeOrigin('HTTPS://Console.Example.com:443/path?q'), 'https://console.example.com')
    assert.equal(normalizeOrigin('http://localhost:80'), 'http://localhost')
    assert.equal(normalizeOrigin('http://[::1]:8080'), 'http://[::1]:8080')
    for (const bad of ['null', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,x', '', 'https://', `https://${'a'.repeat(3_000)}.com`]) assert.equal(normalizeOrigin(bad), undefined, bad)
  })

  it('validates its options, listing every issue', () => {
    assert.throws(
      () => new CsrfProtection({ secret: 'short', previousSecrets: [new Uint8Array(8)], headerName: 'X CSRF', trustedOrigins: ['*'] }),
      (err: Error & { issues?: Array<{ path: string }> }) => {
        assert.deepEqual(err.issues?.map((i) => i.path), ['csrf.secret', 'csrf.previousSecrets.0', 'csrf.trustedOrigins.0', 'csrf.headerName'])
        return true
      },
    )
  })
})
