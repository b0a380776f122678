import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import type { FastifyInstance } from 'fastify'
import { quietApp } from '../helpers/quiet-app.ts'

/**
 * The whole stack as a resource server for an outside identity provider: tokens signed with
 * keys the provider publishes at `auth.jwt.jwksUrl` verify like our own; when the provider
 * goes down, the keys already fetched keep working and an unknown `kid` fails fast with 401.
 */
describe('auth.jwt.jwksUrl: tokens from an identity provider, through the stack', () => {
  let idp: Server
  let app: FastifyInstance
  let key: CryptoKey
  let hits = 0

  const sign = (kid: string, signer = key): Promise<string> =>
    new SignJWT({ scope: 'playlist:read' }).setProtectedHeader({ alg: 'ES256', kid }).setSubject('idp-user').setIssuer('backbeat').setAudience('backbeat-api').setIssuedAt().setExpirationTime('5m').sign(signer)

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true })
    key = pair.privateKey
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }
    idp = createServer((_req, res) => {
      hits++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve))
    const address = idp.address()
    if (address === null || typeof address === 'string') throw new Error('no address')
    app = await quietApp({ auth: { jwt: { jwksUrl: `http://127.0.0.1:${address.port}/jwks.json`, jwksCooldownMs: 60_000, jwksTimeoutMs: 500 } } })
    app.get('/v1/me', { config: { auth: { required: true } } }, async (request) => ({ sub: request.auth?.subject }))
    await app.ready()
  })
  after(async () => {
    await app.close()
    idp.close()
  })

  it('verifies a token signed by a published key, and reports the JWKS in /health', async () => {
    const res = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${await sign('idp-1')}` } })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), { sub: 'idp-user' })
    const health = await app.inject({ url: '/health' })
    assert.match(health.body, /"jwks"/)
  })

  it('keeps verifying with the fetched keys while the provider is down, and refuses unknown kids fast', async () => {
    await new Promise<void>((resolve) => idp.close(() => resolve()))
    idp.closeAllConnections()
    const known = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${await sign('idp-1')}` } })
    assert.equal(known.statusCode, 200, known.body)
    const before = hits
    const started = Date.now()
    const unknown = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${await sign('idp-2')}` } })
    assert.equal(unknown.statusCode, 401)
    assert.equal(unknown.json<{ code: string }>().code, 'ERR_AUTH_KEY_UNKNOWN')
    assert.ok(Date.now() - started < 2_000, 'bounded by the fetch timeout')
    assert.equal(hits, before)
  })
})

describe('/.well-known/jwks.json', () => {
  it('publishes the public half of an asymmetric signing key, which verifies our own tokens', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const app = await quietApp({ auth: { jwt: { algorithm: 'ES256', privateKey, secretKey: undefined, keyId: 'es-1' } } })
    try {
      const res = await app.inject({ url: '/.well-known/jwks.json' })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^application\/jwk-set\+json/)
      const { keys } = res.json<{ keys: Array<Record<string, unknown>> }>()
      assert.equal(keys.length, 1)
      assert.equal(keys[0]?.kid, 'es-1')
      assert.equal(keys[0].alg, 'ES256')
      assert.equal(keys[0].d, undefined, 'never the private part')
      const identity = app.identity
      assert.ok(identity)
      const { token } = await identity.issuer.issue({ sub: 'u1' })
      const { jwtVerify, createLocalJWKSet } = await import('jose')
      const { payload } = await jwtVerify(token, createLocalJWKSet({ keys }), { issuer: 'backbeat', audience: 'backbeat-api' })
      assert.equal(payload.sub, 'u1')
      const hmac = await quietApp()
      assert.equal(hmac.hasRoute({ method: 'GET', url: '/.well-known/jwks.json' }), false, 'HS* keys are secrets: nothing published')
      await hmac.close()
    } finally {
      await app.close()
    }
  })
})
