import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { MusicApp } from '../create-music-app.ts'
import { DEMO_ACCOUNTS, DEMO_PASSWORD } from './accounts.ts'
import { openMusic } from './test-app.ts'

interface Tokens {
  access_token: string
  refresh_token: string
  expires_in: number
  token_type: string
  scope: string
}

describe('music API: sign-in, tokens and who may write', () => {
  let music: MusicApp
  const [listener, , admin] = DEMO_ACCOUNTS as [(typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number]]

  before(async () => {
    music = await openMusic({ auth: { lockout: { account: { freeAttempts: 3 } } } })
  })
  after(async () => {
    await music.app.close()
  })

  const inject = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options: { body?: unknown; form?: string; token?: string; headers?: Record<string, string> } = {}) => {
      const headers: Record<string, string> = { ...options.headers }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      if (options.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
      const res = await music.app.inject({ method, url, headers, ...(options.form !== undefined ? { payload: options.form } : options.body === undefined ? {} : { payload: options.body as Record<string, unknown> }) })
    return { status: res.statusCode, headers: res.headers, body: res.body === '' ? undefined : (JSON.parse(res.body) as Record<string, unknown>) }
  }
  const signIn = async (email: string, password = DEMO_PASSWORD): Promise<Tokens> => {
    const res = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: email, password } })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body as unknown as Tokens
  }

  it('signs a demo account in with the password grant (JSON or form) and never lets the answer be cached', async () => {
    const res = await inject('POST', '/v1/auth/token', { form: new URLSearchParams({ grant_type: 'password', username: listener.email, password: DEMO_PASSWORD }).toString() })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.headers['cache-control'], 'no-store')
    assert.equal(res.body?.token_type, 'Bearer')
    assert.match(String(res.body.scope), /playlist:write/)
  })

  it('answers GET /v1/me with the private profile of the token holder, and 401 with a challenge without one', async () => {
    const tokens = await signIn(listener.email)
    const me = await inject('GET', '/v1/me', { token: tokens.access_token })
    assert.equal(me.status, 200)
    assert.equal(me.body?.email, listener.email)
    const anonymous = await inject('GET', '/v1/me')
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.body?.code, 'ERR_AUTH_TOKEN_MISSING')
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer realm="api"/)
  })

  it('keeps catalogue reads public and refuses garbage credentials with 401, never a 500', async () => {
    assert.equal((await inject('GET', '/v1/tracks?limit=1')).status, 200)
    for (const authorization of ['Bearer', 'Bearer a.b.c', 'Basic dXNlcjpwYXNz', `Bearer ${'x'.repeat(20_000)}`, 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']) {
      const res = await inject('GET', '/v1/me', { headers: { authorization } })
      assert.equal(res.status, 401, authorization.slice(0, 40))
      assert.match(String(res.body?.code), /^ERR_AUTH_/)
    }
  })

  it('refuses a wrong password and an unknown account alike, then locks out with 429 and Retry-After', async () => {
    const wrong = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: 'nobody@example.com', password: 'not-it-at-all' } })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body?.code, 'ERR_AUTH_CREDENTIALS_INVALID')
    for (let i = 0; i < 3; i++) await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: 'nobody@example.com', password: 'not-it-at-all' } })
    const locked = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: 'nobody@example.com', password: 'not-it-at-all' } })
    assert.equal(locked.status, 429)
    assert.equal(locked.body?.code, 'ERR_AUTH_LOCKED_OUT')
    assert.ok(Number(locked.headers['retry-after']) >= 1)
    const missing = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: listener.email } })
    assert.equal(missing.status, 400)
    assert.equal(missing.body?.code, 'ERR_VALIDATION_FAILED')
  })

  it('rotates refresh tokens and signs the whole sign-in out when a spent one is replayed', async () => {
    const first = await signIn(listener.email)
    const second = await inject('POST', '/v1/auth/refresh', { body: { refresh_token: first.refresh_token } })
    assert.equal(second.status, 200)
    const replay = await inject('POST', '/v1/auth/token', { body: { grant_type: 'refresh_token', refresh_token: first.refresh_token } })
    assert.equal(replay.status, 401)
    assert.equal(replay.body?.code, 'ERR_AUTH_REFRESH_TOKEN_REUSED')
    const afterReuse = await inject('POST', '/v1/auth/refresh', { body: { refresh_token: (second.body as unknown as Tokens).refresh_token } })
    assert.equal(afterReuse.status, 401)
    assert.equal(afterReuse.body?.code, 'ERR_AUTH_REFRESH_TOKEN_INVALID')
  })

  it('logs out: the access token is refused at once and the refresh token is dead', async () => {
    const tokens = await signIn(listener.email)
    assert.equal((await inject('GET', '/v1/me', { token: tokens.access_token })).status, 200)
    const out = await inject('POST', '/v1/auth/logout', { token: tokens.access_token, body: { refresh_token: tokens.refresh_token } })
    assert.equal(out.status, 204)
    const me = await inject('GET', '/v1/me', { token: tokens.access_token })
    assert.equal(me.status, 401)
    assert.equal(me.body?.code, 'ERR_AUTH_TOKEN_REVOKED')
    assert.equal((await inject('POST', '/v1/auth/refresh', { body: { refresh_token: tokens.refresh_token } })).status, 401)
  })

  it('lets a listener write only their own playlists; an admin may write any; anonymous writes get 401', async () => {
    const mine = await signIn(listener.email)
    const meId = String((await inject('GET', '/v1/me', { token: mine.access_token })).body?.id)
    const created = await inject('POST', `/v1/users/${meId}/playlists`, { token: mine.access_token, body: { name: 'Mine' } })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const playlistId = String(created.body?.id)
    assert.equal((await inject('PUT', `/v1/playlists/${playlistId}`, { body: { name: 'Anon' } })).status, 401)

    const other = await inject('POST', '/v1/users', { body: { display_name: 'Other', email: `${crypto.randomUUID()}@example.com`, password: 'another-password' } })
    assert.equal(other.status, 201)
    const theirs = await signIn(String(other.body?.email), 'another-password')
    const denied = await inject('PUT', `/v1/playlists/${playlistId}`, { token: theirs.access_token, body: { name: 'Hijacked' } })
    assert.equal(denied.status, 403)
    assert.equal(denied.body?.code, 'ERR_AUTH_NOT_OWNER')
    const forSomeoneElse = await inject('POST', `/v1/users/${meId}/playlists`, { token: theirs.access_token, body: { name: 'Planted' } })
    assert.equal(forSomeoneElse.status, 403)

    const root = await signIn(admin.email)
    assert.equal((await inject('PUT', `/v1/playlists/${playlistId}`, { token: root.access_token, body: { name: 'Moderated' } })).status, 200)
    assert.equal((await inject('PUT', `/v1/playlists/${playlistId}`, { token: mine.access_token, body: { name: 'Mine again' } })).status, 200)
  })

  it('lets an admin sign a user out everywhere, and refuses that to a listener', async () => {
    const victim = await signIn(listener.email)
    const victimId = String((await inject('GET', '/v1/me', { token: victim.access_token })).body?.id)
    const listenerTry = await inject('POST', `/v1/admin/users/${victimId}/sign-out`, { token: victim.access_token })
    assert.equal(listenerTry.status, 403)
    assert.equal(listenerTry.body?.code, 'ERR_AUTH_PERMISSION_DENIED')
    const root = await signIn(admin.email)
    assert.equal((await inject('POST', `/v1/admin/users/${victimId}/sign-out`, { token: root.access_token })).status, 204)
    assert.equal((await inject('GET', '/v1/me', { token: victim.access_token })).body?.code, 'ERR_AUTH_TOKEN_REVOKED')
    assert.equal((await inject('POST', '/v1/auth/refresh', { body: { refresh_token: victim.refresh_token } })).status, 401)
  })

  it('enrols TOTP (password again), ends every sign-in, then asks for the code; step-up is capped and spends a recovery code once; removal needs a recent MFA', async () => {
    const email = `${crypto.randomUUID()}@example.com`
    const created = await inject('POST', '/v1/users', { body: { display_name: 'Mfa User', email, password: 'mfa-user-password' } })
    assert.equal(created.status, 201)
    const userId = String(created.body?.id)
    const first = await signIn(email, 'mfa-user-password')
    const noPassword = await inject('POST', '/v1/me/mfa/totp', { token: first.access_token, body: { password: 'not-the-password' } })
    assert.equal(noPassword.status, 401)
    assert.equal(noPassword.body?.code, 'ERR_AUTH_CREDENTIALS_INVALID')
    const begun = await inject('POST', '/v1/me/mfa/totp', { token: first.access_token, body: { password: 'mfa-user-password' } })
    assert.equal(begun.status, 200, JSON.stringify(begun.body))
    assert.equal(begun.headers['cache-control'], 'no-store')
    const secret = String(begun.body?.secret)
    assert.match(String(begun.body?.otpauth_uri), /^otpauth:\/\/totp\/Backbeat:/)
    assert.match(String(begun.body?.qr_svg), /^<svg/)
    const totp = music.app.identity?.totp
    assert.ok(totp)
    const wrong = await inject('POST', '/v1/me/mfa/totp/confirm', { token: first.access_token, body: { code: totp.generate(secret) === '000000' ? '111111' : '000000' } })
    assert.equal(wrong.body?.code, 'ERR_AUTH_MFA_CODE_INVALID')
    const confirmed = await inject('POST', '/v1/me/mfa/totp/confirm', { token: first.access_token, body: { code: totp.generate(secret) } })
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body))
    const recovery = confirmed.body?.recovery_codes as string[]
    assert.equal(recovery.length, 10)
    assert.equal((await inject('GET', '/v1/me', { token: first.access_token })).body?.code, 'ERR_AUTH_TOKEN_REVOKED', 'enrolling ends every sign-in')
    assert.equal((await inject('POST', '/v1/auth/refresh', { body: { refresh_token: first.refresh_token } })).status, 401)

    const noCode = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: email, password: 'mfa-user-password' } })
    assert.equal(noCode.status, 401)
    assert.equal(noCode.body?.code, 'ERR_AUTH_MFA_CODE_REQUIRED')
    const withCode = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: email, password: 'mfa-user-password', scope: 'playlist:read profile:read', otp: totp.generate(secret, Date.now() + 30_000) } })
    assert.equal(withCode.status, 200, JSON.stringify(withCode.body))
    const second = withCode.body as unknown as Tokens
    assert.equal((await inject('POST', '/v1/me/mfa/totp', { token: second.access_token, body: { password: 'mfa-user-password' } })).body?.code, 'ERR_AUTH_MFA_ALREADY_ENROLLED')

    // A token without a second factor (as a password-only sign-in before enrolment had).
    const identity = music.app.identity
    assert.ok(identity)
    const stale = await identity.issuer.issue({ sub: userId, roles: ['listener'], scope: 'profile:read', amr: ['pwd'] })
    const removeWithoutStepUp = await inject('DELETE', '/v1/me/mfa/totp', { token: stale.token })
    assert.equal(removeWithoutStepUp.status, 401)
    assert.equal(removeWithoutStepUp.body?.code, 'ERR_AUTH_MFA_REQUIRED')
    assert.match(String(removeWithoutStepUp.headers['www-authenticate']), /error="insufficient_user_authentication", .*max_age=300/)

    const stepped = await inject('POST', '/v1/auth/mfa/step-up', { token: stale.token, body: { code: recovery[0] } })
    assert.equal(stepped.status, 200, JSON.stringify(stepped.body))
    assert.ok(Number(stepped.body?.expires_in) <= stale.expiresIn, 'no longer than the token it was asked with')
    const steppedPayload = await identity.verifier.verify(String(stepped.body?.access_token))
    assert.equal(steppedPayload.payload.scope, 'profile:read', 'no wider than the token it was asked with')
    const again = await inject('POST', '/v1/auth/mfa/step-up', { token: stale.token, body: { code: recovery[0] } })
    assert.equal(again.body?.code, 'ERR_AUTH_MFA_CODE_INVALID')
    assert.equal((await inject('DELETE', '/v1/me/mfa/totp', { token: String(stepped.body?.access_token) })).status, 204)
    assert.equal((await inject('GET', '/v1/me', { token: second.access_token })).status, 401, 'removal ends every sign-in too')
    assert.equal((await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: email, password: 'mfa-user-password' } })).status, 200)
  })

  it('grants a token no more than its scope: a catalog:read token cannot write playlists', async () => {
    const narrow = await inject('POST', '/v1/auth/token', { body: { grant_type: 'password', username: listener.email, password: DEMO_PASSWORD, scope: 'catalog:read' } })
    const token = (narrow.body as unknown as Tokens).access_token
    const meId = String((await inject('GET', '/v1/me', { token })).body?.id)
    const write = await inject('POST', `/v1/users/${meId}/playlists`, { token, body: { name: 'Nope' } })
    assert.equal(write.status, 403)
    assert.equal(write.body?.code, 'ERR_AUTH_PERMISSION_DENIED')
  })
})

describe('music API: admin console sessions', () => {
  let music: MusicApp
  before(async () => {
    music = await openMusic()
  })
  after(async () => {
    await music.app.close()
  })
  const sameOrigin = { 'sec-fetch-site': 'same-origin' }
  const cookieOf = (setCookie: string | string[] | undefined): string => String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0] ?? ''

  it('signs admins in with a hardened cookie, lists their sessions, and signs other devices out with a CSRF token', async () => {
    const [listener, , admin] = DEMO_ACCOUNTS as [(typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number]]
    const notAdmin = await music.app.inject({ method: 'POST', url: '/v1/console/session', headers: sameOrigin, payload: { username: listener.email, password: DEMO_PASSWORD } })
    assert.equal(notAdmin.json<{ code: string }>().code, 'ERR_AUTH_ROLE_REQUIRED')
    const signIn = () => music.app.inject({ method: 'POST', url: '/v1/console/session', headers: sameOrigin, payload: { username: admin.email, password: DEMO_PASSWORD } })
    const first = await signIn()
    assert.equal(first.statusCode, 200, first.body)
    const setCookie = String(first.headers['set-cookie'])
    assert.match(setCookie, /^__Host-bb_session=[A-Za-z0-9_-]{43};/)
    assert.match(setCookie, /HttpOnly/)
    assert.match(setCookie, /Secure/)
    assert.match(setCookie, /SameSite=Strict/)
    const csrf = first.json<{ csrf_token: string }>().csrf_token
    const cookie1 = cookieOf(first.headers['set-cookie'])
    const cookie2 = cookieOf((await signIn()).headers['set-cookie'])
    assert.notEqual(cookie1, cookie2)

    const list = await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: cookie1 } })
    assert.equal(list.statusCode, 200, list.body)
    const items = list.json<{ items: Array<{ current: boolean }> }>().items
    assert.equal(items.length, 2)
    assert.equal(items.filter((i) => i.current).length, 1)

    const noToken = await music.app.inject({ method: 'POST', url: '/v1/console/sessions/sign-out-others', headers: { cookie: cookie1, ...sameOrigin } })
    assert.equal(noToken.statusCode, 403)
    assert.equal(noToken.json<{ code: string }>().code, 'ERR_AUTH_CSRF_INVALID')
    const crossSite = await music.app.inject({ method: 'POST', url: '/v1/console/sessions/sign-out-others', headers: { cookie: cookie1, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' } })
    assert.equal(crossSite.statusCode, 403)
    const others = await music.app.inject({ method: 'POST', url: '/v1/console/sessions/sign-out-others', headers: { cookie: cookie1, 'x-csrf-token': csrf, ...sameOrigin } })
    assert.equal(others.statusCode, 200, others.body)
    assert.deepEqual(others.json(), { signed_out: 1 })
    const gone = await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: cookie2 } })
    assert.equal(gone.statusCode, 401)
    assert.equal(gone.json<{ code: string }>().code, 'ERR_AUTH_SESSION_INVALID')

    const bearer = (await music.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: admin.email, password: DEMO_PASSWORD } })).json<Tokens>().access_token
    assert.equal((await music.app.inject({ url: '/v1/console/sessions', headers: { authorization: `Bearer ${bearer}` } })).statusCode, 401, 'the console takes the cookie only')
    assert.equal((await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: 'bb_session=garbage; __Host-bb_session=%%%' } })).statusCode, 401)

    const out = await music.app.inject({ method: 'POST', url: '/v1/console/session/logout', headers: { cookie: cookie1, 'x-csrf-token': csrf, ...sameOrigin } })
    assert.equal(out.statusCode, 204, out.body)
    assert.equal((await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: cookie1 } })).statusCode, 401)

    // The admin kill switch ends console sessions too, not only tokens.
    const third = await signIn()
    const cookie3 = cookieOf(third.headers['set-cookie'])
    const adminId = third.json<{ user_id: string }>().user_id
    assert.equal((await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: cookie3 } })).statusCode, 200)
    const otherAdmin = (await music.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: admin.email, password: DEMO_PASSWORD } })).json<Tokens>().access_token
    assert.equal((await music.app.inject({ method: 'POST', url: `/v1/admin/users/${adminId}/sign-out`, headers: { authorization: `Bearer ${otherAdmin}` } })).statusCode, 204)
    assert.equal((await music.app.inject({ url: '/v1/console/sessions', headers: { cookie: cookie3 } })).statusCode, 401)
  })
})

describe('music API: API keys', () => {
  let music: MusicApp
  before(async () => {
    music = await openMusic({ rateLimit: { policies: { burst: { limit: 1_000_000, windowS: 60 }, partner: { algorithm: 'fixed-window', limit: 3, windowS: 60, key: 'apiKey' } } } })
  })
  after(async () => {
    await music.app.close()
  })

  it('lets an admin issue a scoped key with a rate-limit tier; the key acts for its owner, typos fail without a lookup, rotation overlaps, revocation ends it', async () => {
    const token = async (email: string): Promise<string> =>
      (await music.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: email, password: DEMO_PASSWORD } })).json<Tokens>().access_token
    const [listener, , admin] = DEMO_ACCOUNTS as [(typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number]]
    const listenerToken = await token(listener.email)
    const ownerId = (await music.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${listenerToken}` } })).json<{ id: string }>().id
    assert.equal((await music.app.inject({ method: 'POST', url: '/v1/admin/api-keys', headers: { authorization: `Bearer ${listenerToken}` }, payload: { owner: ownerId, name: 'x' } })).statusCode, 403)

    const root = `Bearer ${await token(admin.email)}`
    const created = await music.app.inject({ method: 'POST', url: '/v1/admin/api-keys', headers: { authorization: root }, payload: { owner: ownerId, name: 'partner sync', scopes: ['playlist:write'], rate_limit_policy: 'partner' } })
    assert.equal(created.statusCode, 201, created.body)
    const { key, record } = created.json<{ key: string; record: { id: string; hint: string } }>()
    assert.match(key, /^bb_live_[0-9A-Za-z]{38}$/)
    assert.equal(JSON.stringify((await music.app.inject({ url: '/v1/admin/api-keys', headers: { authorization: root } })).json()).includes(key), false, 'lists never show a key')

    const write = await music.app.inject({ method: 'POST', url: `/v1/users/${ownerId}/playlists`, headers: { 'x-api-key': key }, payload: { name: 'Synced' } })
    assert.equal(write.statusCode, 201, write.body)
    assert.match(String(write.headers['ratelimit-policy']), /"partner"/)
    const asBearer = await music.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${key}` } })
    assert.equal(asBearer.statusCode, 200)
    const third = await music.app.inject({ url: '/v1/me', headers: { 'x-api-key': key } })
    assert.equal(third.statusCode, 200)
    const limited = await music.app.inject({ url: '/v1/me', headers: { 'x-api-key': key } })
    assert.equal(limited.statusCode, 429, 'the key\'s tier allows 3 requests a minute')

    for (const url of ['/v1/me/mfa/totp', '/v1/auth/mfa/step-up', '/v1/auth/logout']) {
      const personal = await music.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload: { password: 'x', code: '123456' } })
      assert.equal(personal.statusCode, 401, `${url} takes no API key`)
    }
    const typo = key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a')
    const malformed = await music.app.inject({ url: '/v1/tracks?limit=1', headers: { 'x-api-key': typo } })
    assert.equal(malformed.statusCode, 401)
    assert.equal(malformed.json<{ code: string }>().code, 'ERR_AUTH_API_KEY_MALFORMED')

    const rotated = await music.app.inject({ method: 'POST', url: `/v1/admin/api-keys/${record.id}/rotate`, headers: { authorization: root }, payload: { overlap_hours: 1 } })
    assert.equal(rotated.statusCode, 200, rotated.body)
    const next = rotated.json<{ key: string; record: { id: string } }>()
    assert.notEqual(next.key, key)
    // Still accepted during the overlap: past authentication, stopped only by its spent tier.
    assert.equal((await music.app.inject({ url: '/v1/tracks?limit=1', headers: { 'x-api-key': key } })).statusCode, 429, 'the old key works during the overlap')
    assert.equal((await music.app.inject({ url: '/v1/tracks?limit=1', headers: { 'x-api-key': next.key } })).statusCode, 200, 'the new key has a bucket of its own')
    assert.equal((await music.app.inject({ method: 'DELETE', url: `/v1/admin/api-keys/${next.record.id}`, headers: { authorization: root } })).statusCode, 204)
    const revoked = await music.app.inject({ url: '/v1/tracks?limit=1', headers: { 'x-api-key': next.key } })
    assert.equal(revoked.statusCode, 401)
    assert.equal(revoked.json<{ code: string }>().code, 'ERR_AUTH_API_KEY_INVALID')
  })
})

describe('music API: MFA enforcement and Spotify sign-in', () => {
  let music: MusicApp
  before(async () => {
    music = await openMusic({
      auth: { mfa: { enforcedRoles: ['curator'] }, spotify: { clientId: 'test-client-id', redirectUri: 'http://127.0.0.1:8080/v1/auth/spotify/callback' }, sessions: { cookieSecure: false } },
    })
  })
  after(async () => {
    await music.app.close()
  })

  it('refuses a curator (or an admin above one) without MFA everywhere but enrolment, and lets listeners through', async () => {
    const tokenOf = async (email: string): Promise<string> => {
      const res = await music.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: email, password: DEMO_PASSWORD } })
      assert.equal(res.statusCode, 200, res.body)
      return res.json<Tokens>().access_token
    }
    for (const account of DEMO_ACCOUNTS) {
      const token = await tokenOf(account.email)
      const me = await music.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } })
      assert.equal(me.statusCode, 200, 'enrolment and /v1/me stay open')
      const write = await music.app.inject({ method: 'POST', url: '/v1/users/0000000000000000000000/playlists', headers: { authorization: `Bearer ${token}` }, payload: { name: 'x' } })
      if (account.roles.includes('listener')) assert.equal(write.json<{ code: string }>().code, 'ERR_AUTH_NOT_OWNER', 'past the MFA check, stopped by ownership')
      else assert.equal(write.json<{ code: string }>().code, 'ERR_AUTH_MFA_ENROLLMENT_REQUIRED', account.email)
    }
  })

  it('starts the Spotify sign-in: a redirect to the authorize endpoint with S256 PKCE, state and a browser-binding cookie', async () => {
    const res = await music.app.inject({ url: '/v1/auth/spotify/login' })
    assert.equal(res.statusCode, 302, res.body)
    const location = new URL(String(res.headers.location))
    assert.equal(location.origin + location.pathname, 'https://accounts.spotify.com/authorize')
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256')
    assert.equal(location.searchParams.get('client_id'), 'test-client-id')
    assert.equal(location.searchParams.get('redirect_uri'), 'http://127.0.0.1:8080/v1/auth/spotify/callback')
    assert.match(String(location.searchParams.get('state')), /^[A-Za-z0-9_-]{16,}$/)
    assert.match(String(res.headers['set-cookie']), /HttpOnly/i)
    const forged = await music.app.inject({ url: '/v1/auth/spotify/callback?code=abc&state=forged-state-value-1234' })
    assert.equal(forged.statusCode, 400)
    assert.equal(forged.json<{ code: string }>().code, 'ERR_AUTH_OAUTH_STATE_INVALID')
  })
})
