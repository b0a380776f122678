import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { SignJWT, type JWTPayload } from 'jose'
import type { FastifyInstance } from 'fastify'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { authPlugin, JwtKeySet, JwtVerifier } from './index.ts'

const ISSUER = 'https://api.backbeat.test'
const AUDIENCE = 'music-api'
const SECRET = new TextEncoder().encode('a-test-secret-of-at-least-32-bytes-long!')

/** A token for listener-7 with read and write scopes; `claims` replace or (undefined) remove those. */
function token(claims: Record<string, unknown> = {}, secret = SECRET): Promise<string> {
  const merged: Record<string, unknown> = { sub: 'listener-7', scope: 'playlist:read playlist:write', exp: Math.floor(Date.now() / 1000) + 600, ...claims }
  const payload = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as JWTPayload
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().sign(secret)
}

describe('bearer-token authentication over HTTP', () => {
  let app: FastifyInstance
  const seen: Array<{ subject: string | undefined; userId: string | undefined }> = []

  before(async () => {
    const keys = new JwtKeySet()
    await keys.addSecret('k1', 'HS256', SECRET)
    app = await quietApp({
      auth: { enabled: false },
      rateLimit: { policies: { burst: { limit: 1_000, windowS: 60 }, peruser: { algorithm: 'fixed-window', limit: 2, windowS: 60, key: 'user' } } },
    })
    await app.register(authPlugin, { verifier: new JwtVerifier({ keys, issuer: ISSUER, audience: AUDIENCE }), realm: 'music' })
    app.get('/v1/tracks', async (request) => ({ signedIn: request.auth !== null }))
    app.get('/v1/me', { config: { auth: { required: true } } }, async (request) => {
      seen.push({ subject: request.auth?.subject, userId: request.requestContext.userId })
      return { id: request.auth?.subject }
    })
    app.put('/v1/playlists/x', { config: { auth: { scopes: ['playlist:write'] } } }, async () => ({ ok: true }))
    app.delete('/v1/admin/users/x', { config: { auth: { scopes: ['admin'] } } }, async () => ({ ok: true }))
    app.get('/v1/quota', { config: { auth: { required: true }, rateLimit: { policies: ['peruser'] } } }, async () => ({ ok: true }))
    app.get('/v1/status', { config: { auth: false } }, async () => ({ ok: true }))
    await app.ready()
  })

  const problem = (body: string): { code: string; status: number } => JSON.parse(body) as { code: string; status: number }

  it('serves public routes without a token, and tells them who is signed in when there is one', async () => {
    assert.deepEqual((await app.inject({ url: '/v1/tracks' })).json(), { signedIn: false })
    assert.deepEqual((await app.inject({ url: '/v1/tracks', headers: { authorization: `Bearer ${await token()}` } })).json(), { signedIn: true })
  })

  it('answers 401 with a Bearer challenge when a required token is missing', async () => {
    const res = await app.inject({ url: '/v1/me' })
    assert.equal(res.statusCode, 401)
    assert.equal(problem(res.body).code, 'ERR_AUTH_TOKEN_MISSING')
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="music"')
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  })

  it('puts the subject on request.auth and in the request context', async () => {
    const res = await app.inject({ url: '/v1/me', headers: { authorization: `bearer  ${await token()}` } })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), { id: 'listener-7' })
    assert.deepEqual(seen.at(-1), { subject: 'listener-7', userId: 'listener-7' })
  })

  it('refuses bad tokens with 401 error="invalid_token", on public routes too', async () => {
    const expired = await token({ exp: Math.floor(Date.now() / 1000) - 3600 })
    const forged = await token({}, new TextEncoder().encode('another-secret-of-at-least-32-bytes-long'))
    for (const [authorization, code] of [
      [`Bearer ${expired}`, 'ERR_AUTH_TOKEN_EXPIRED'],
      [`Bearer ${forged}`, 'ERR_AUTH_TOKEN_INVALID'],
      ['Bearer not-a-jwt', 'ERR_AUTH_TOKEN_MALFORMED'],
      ['Basic dXNlcjpwYXNz', 'ERR_AUTH_TOKEN_MALFORMED'],
      ['Bearer', 'ERR_AUTH_TOKEN_MALFORMED'],
      ['Bearer a b', 'ERR_AUTH_TOKEN_MALFORMED'],
      [`Bearer ${'x'.repeat(20_000)}`, 'ERR_AUTH_TOKEN_MALFORMED'],
    ] as const) {
      for (const url of ['/v1/me', '/v1/tracks']) {
        const res = await app.inject({ url, headers: { authorization } })
        assert.equal(res.statusCode, 401, `${url} ${authorization.slice(0, 30)}`)
        assert.equal(problem(res.body).code, code)
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="music", error="invalid_token"')
      }
    }
    const noSubject = await token({ sub: undefined })
    assert.equal(problem((await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${noSubject}` } })).body).code, 'ERR_AUTH_TOKEN_CLAIM_INVALID')
  })

  it('checks scopes: 403 insufficient_scope naming what the route needs', async () => {
    const writer = `Bearer ${await token()}`
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/playlists/x', headers: { authorization: writer } })).statusCode, 200)
    const reader = `Bearer ${await token({ scope: 'playlist:read' })}`
    const res = await app.inject({ method: 'PUT', url: '/v1/playlists/x', headers: { authorization: reader } })
    assert.equal(res.statusCode, 403)
    assert.equal(problem(res.body).code, 'ERR_AUTH_INSUFFICIENT_SCOPE')
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="music", error="insufficient_scope", scope="playlist:write"')
    const listed = `Bearer ${await token({ scope: undefined, scp: ['admin'] })}`
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/admin/users/x', headers: { authorization: listed } })).statusCode, 200)
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/playlists/x' })).statusCode, 401, 'scopes imply a token')
  })

  it('feeds the user into rate-limit policies keyed on user', async () => {
    const alice = `Bearer ${await token({ sub: 'alice' })}`
    const bob = `Bearer ${await token({ sub: 'bob' })}`
    const statuses = []
    for (const authorization of [alice, alice, alice, bob]) statuses.push((await app.inject({ url: '/v1/quota', headers: { authorization } })).statusCode)
    assert.deepEqual(statuses, [200, 200, 429, 200])
  })

  it('ignores credentials on routes with auth: false, and refuses a malformed route config when declared', async () => {
    assert.equal((await app.inject({ url: '/v1/status', headers: { authorization: 'Bearer garbage' } })).statusCode, 200)
    const other = await quietApp({ auth: { enabled: false } })
    const keys = new JwtKeySet()
    await keys.addSecret(undefined, 'HS256', SECRET)
    await other.register(authPlugin, { verifier: new JwtVerifier({ keys, issuer: ISSUER, audience: AUDIENCE }) })
    assert.throws(() => other.get('/x', { config: { auth: { scopes: ['has space'] } } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => other.get('/y', { config: { auth: null as unknown as false } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    await other.close()
  })
})
