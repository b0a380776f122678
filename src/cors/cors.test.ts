import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { parseConfig, type BackbeatConfigInput } from '../config/index.ts'
import { OriginMatcher } from './index.ts'

async function appWith(cors: NonNullable<BackbeatConfigInput['cors']>): Promise<FastifyInstance> {
  const app = await quietApp({ cors })
  app.get('/v1/tracks', async () => ({ items: [] }))
  app.put('/v1/playlists/:id', async () => ({ ok: true }))
  await app.ready()
  return app
}

const preflight = (app: FastifyInstance, origin: string, method = 'PUT', headers = 'content-type, authorization') =>
  app.inject({ method: 'OPTIONS', url: '/v1/playlists/1', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } })

describe('OriginMatcher', () => {
  const m = new OriginMatcher(['https://app.example.com', 'https://*.example.org', '/^https:\\/\\/preview-\\d+\\.example\\.net$/'])
  it('matches exact origins, subdomain wildcards at any depth and regexes', () => {
    for (const o of ['https://app.example.com', 'https://a.example.org', 'https://a.b.example.org', 'https://preview-42.example.net']) assert.ok(m.matches(o), o)
  })
  it('rejects look-alikes, other schemes and ports, the bare domain and malformed origins', () => {
    for (const o of ['https://app.example.com.evil.io', 'http://app.example.com', 'https://app.example.com:8443', 'https://example.org', 'https://evilexample.org', 'https://a.example.org.evil', 'null', 'https://app.example.com/', 'https://x\r\n.example.org', '', 'https://preview-x.example.net', 'https://user@app.example.com']) {
      assert.equal(m.matches(o), false, JSON.stringify(o))
    }
  })
  it('refuses entries that are URLs rather than origins', () => {
    assert.throws(() => new OriginMatcher(['https://app.example.com/path']), TypeError)
    assert.throws(() => new OriginMatcher(['app.example.com']), TypeError)
  })
})

describe('CORS over HTTP', () => {
  it('answers an allowed preflight with 204, the approved methods and headers, Max-Age and Vary', async () => {
    const app = await appWith({ origins: ['https://app.example.com'], credentials: true })
    const res = await preflight(app, 'https://app.example.com')
    assert.equal(res.statusCode, 204)
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.equal(res.headers['access-control-allow-credentials'], 'true')
    assert.match(String(res.headers['access-control-allow-methods']), /\bPUT\b/)
    assert.equal(res.headers['access-control-allow-headers'], 'content-type, authorization')
    assert.equal(res.headers['access-control-max-age'], '600')
    assert.match(String(res.headers.vary), /Origin/)
    await app.close()
  })

  it('refuses a disallowed preflight with 403 problem+json and no CORS header', async () => {
    const app = await appWith({ origins: ['https://app.example.com'], credentials: true })
    for (const res of [await preflight(app, 'https://evil.example'), await preflight(app, 'https://app.example.com', 'PUT', 'x-evil'), await preflight(app, 'https://app.example.com', 'TRACE'), await preflight(app, 'not an origin')]) {
      assert.equal(res.statusCode, 403)
      assert.equal(res.json<{ code: string }>().code, 'ERR_CORS_ORIGIN_DENIED')
      assert.equal(res.headers['access-control-allow-origin'], undefined)
      assert.equal(res.headers['access-control-allow-credentials'], undefined)
    }
    await app.close()
  })

  it('reflects only an allowed origin on actual requests, exposes our headers, and always varies on Origin', async () => {
    const app = await appWith({ origins: ['https://*.example.com'], credentials: true })
    const ok = await app.inject({ url: '/v1/tracks', headers: { origin: 'https://web.example.com' } })
    assert.equal(ok.headers['access-control-allow-origin'], 'https://web.example.com')
    assert.equal(ok.headers['access-control-expose-headers'], 'x-request-id, ratelimit, ratelimit-policy, retry-after, etag, location')
    assert.match(String(ok.headers.vary), /Origin/)
    const evil = await app.inject({ url: '/v1/tracks', headers: { origin: 'https://evil.example' } })
    assert.equal(evil.statusCode, 200, 'served, but the browser will not let the page read it')
    assert.equal(evil.headers['access-control-allow-origin'], undefined)
    assert.match(String(evil.headers.vary), /Origin/)
    const none = await app.inject({ url: '/v1/tracks' })
    assert.match(String(none.headers.vary), /Origin/, 'a shared cache must not reuse this for a cross-origin request')
    // Errors carry CORS headers too, so the page can read a 404 or 429.
    assert.equal((await app.inject({ url: '/nowhere', headers: { origin: 'https://web.example.com' } })).headers['access-control-allow-origin'], 'https://web.example.com')
    await app.close()
  })

  it('answers * without Vary when any origin is allowed without credentials', async () => {
    const app = await appWith({ origins: ['*'] })
    const res = await app.inject({ url: '/v1/tracks', headers: { origin: 'https://anyone.example' } })
    assert.equal(res.headers['access-control-allow-origin'], '*')
    assert.equal(res.headers['access-control-allow-credentials'], undefined)
    assert.equal(res.headers.vary, undefined)
    await app.close()
  })

  it('refuses * or null with credentials, and malformed origins, at start-up', () => {
    assert.throws(() => parseConfig({ cors: { origins: ['*'], credentials: true } }), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => parseConfig({ cors: { origins: ['null'], credentials: true } }), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => parseConfig({ cors: { origins: ['https://a.example.com/path'] } }), { code: 'ERR_CONFIG_INVALID' })
  })

  it('can refuse non-preflight requests from disallowed origins', async () => {
    const app = await appWith({ origins: ['https://app.example.com'], rejectDisallowedOrigins: true })
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/playlists/1', headers: { origin: 'https://evil.example' } })).statusCode, 403)
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/playlists/1', headers: { origin: 'https://app.example.com' } })).statusCode, 200)
    await app.close()
  })
})
