import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { parseConfig, type BackbeatConfigInput } from '../config/index.ts'

async function appWith(overrides: BackbeatConfigInput = {}): Promise<FastifyInstance> {
  const app = await quietApp(overrides)
  app.get('/v1/tracks', async () => ({ items: [] }))
  app.get('/ops', { config: { securityHeaders: { preset: 'html' } } }, async (_request, reply) => reply.type('text/html').send(`<script nonce="${reply.cspNonce}"></script>`))
  app.get('/embed', { config: { securityHeaders: { frameOptions: 'SAMEORIGIN', contentSecurityPolicy: { 'default-src': ["'none'"], 'frame-ancestors': ["'self'"] } } } }, async () => ({}))
  app.get('/leaky', async (_request, reply) => reply.header('x-powered-by', 'PHP/5.2').header('server', 'Apache/2.2').send({}))
  await app.ready()
  return app
}

describe('security headers', () => {
  it('puts the JSON API defaults on every response, errors included', async () => {
    const app = await appWith()
    for (const res of [await app.inject({ url: '/v1/tracks' }), await app.inject({ url: '/nowhere' })]) {
      assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
      assert.equal(res.headers['reporting-endpoints'], undefined, 'JSON is never rendered: no report endpoint advertised')
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
      assert.equal(res.headers['x-content-type-options'], 'nosniff')
      assert.equal(res.headers['x-frame-options'], 'DENY')
      assert.equal(res.headers['referrer-policy'], 'no-referrer')
      assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin')
      assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
      assert.equal(res.headers['x-xss-protection'], '0')
      assert.match(String(res.headers['permissions-policy']), /(^|, )camera=\(\)/)
      assert.match(String(res.headers['permissions-policy']), /geolocation=\(\), /)
      assert.equal(res.headers['x-powered-by'], undefined)
      assert.equal(res.headers.server, undefined)
    }
    await app.close()
  })

  it('makes HSTS preload opt-in and lets a proxy own HSTS', async () => {
    const preload = await appWith({ securityHeaders: { hsts: { preload: true } } })
    assert.equal((await preload.inject({ url: '/v1/tracks' })).headers['strict-transport-security'], 'max-age=31536000; includeSubDomains; preload')
    await preload.close()
    const off = await appWith({ securityHeaders: { hsts: false } })
    assert.equal((await off.inject({ url: '/v1/tracks' })).headers['strict-transport-security'], undefined)
    await off.close()
  })

  it('gives HTML pages a strict CSP with a fresh nonce on every response, usable in the page', async () => {
    const app = await appWith()
    const nonces = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ url: '/ops' })
      const csp = String(res.headers['content-security-policy'])
      const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]
      assert.ok(nonce !== undefined && nonce.length >= 22, csp)
      assert.match(csp, /script-src 'nonce-[^']+' 'strict-dynamic'/)
      assert.match(csp, /object-src 'none'/)
      assert.match(csp, /base-uri 'none'/)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
      assert.match(csp, /; report-uri \/security\/csp-reports; report-to csp-endpoint$/)
      assert.equal(res.headers['reporting-endpoints'], 'csp-endpoint="/security/csp-reports"')
      assert.equal(res.body, `<script nonce="${nonce}"></script>`)
      nonces.add(nonce)
    }
    assert.equal(nonces.size, 3)
    await app.close()
  })

  it('advertises the report endpoint on JSON responses too when cspReports.advertiseOn is all', async () => {
    const app = await appWith({ securityHeaders: { cspReports: { advertiseOn: 'all' } } })
    const res = await app.inject({ url: '/v1/tracks' })
    assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'; report-uri /security/csp-reports; report-to csp-endpoint")
    assert.equal(res.headers['reporting-endpoints'], 'csp-endpoint="/security/csp-reports"')
    await app.close()
  })

  it('applies per-route overrides', async () => {
    const app = await appWith()
    const res = await app.inject({ url: '/embed' })
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
    assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'self'/)
    await app.close()
  })

  it('strips Server and X-Powered-By set by a route', async () => {
    const app = await appWith()
    const res = await app.inject({ url: '/leaky' })
    assert.equal(res.headers['x-powered-by'], undefined)
    assert.equal(res.headers.server, undefined)
    await app.close()
  })

  it('refuses a CSP directive that would smuggle another directive', () => {
    assert.throws(() => parseConfig({ securityHeaders: { contentSecurityPolicy: { 'script-src': ["'self'; script-src *"] } } }), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('CSP violation reports', () => {
  const legacy = { 'csp-report': { 'document-uri': 'https://ops.example.com/', 'blocked-uri': 'https://evil.example/x.js', 'effective-directive': 'script-src-elem', disposition: 'enforce', 'line-number': 3 } }

  it('records report-uri and Reporting API reports as security events, and answers 204', async () => {
    const app = await appWith()
    const a = await app.inject({ method: 'POST', url: '/security/csp-reports', headers: { 'content-type': 'application/csp-report' }, payload: JSON.stringify(legacy) })
    assert.equal(a.statusCode, 204)
    const reportsJson = [{ type: 'csp-violation', url: 'https://ops.example.com/', body: { documentURL: 'https://ops.example.com/', blockedURL: 'inline', effectiveDirective: 'script-src-elem', disposition: 'enforce', sample: 'alert(1)' } }, { type: 'deprecation', body: {} }]
    const b = await app.inject({ method: 'POST', url: '/security/csp-reports', headers: { 'content-type': 'application/reports+json' }, payload: JSON.stringify(reportsJson) })
    assert.equal(b.statusCode, 204)
    const events = app.securityEvents.list('csp_violation')
    assert.equal(events.length, 2)
    assert.equal(events[0]?.details.blockedUrl, 'https://evil.example/x.js')
    assert.equal(events[1]?.details.sample, 'alert(1)')
    await app.close()
  })

  it('refuses malformed, oversized, mistyped and excessive reports without recording them', async () => {
    const app = await appWith({ securityHeaders: { cspReports: { perClientPerMinute: 3 } } })
    const post = (payload: string, type = 'application/csp-report') => app.inject({ method: 'POST', url: '/security/csp-reports', headers: { 'content-type': type }, payload })
    assert.equal((await post('{not json')).json<{ code: string }>().code, 'ERR_CSP_REPORT_INVALID')
    assert.equal((await post('{"hello":1}')).statusCode, 400)
    assert.equal((await post(JSON.stringify({ 'csp-report': { 'document-uri': 'x'.repeat(20_000), 'effective-directive': 'a' } }))).statusCode, 413)
    assert.equal((await post(JSON.stringify(legacy), 'text/plain')).statusCode, 415)
    // One valid report fits in the per-client budget of 3 (the {"hello":1} one was counted).
    assert.equal((await post(JSON.stringify(legacy), 'application/json')).statusCode, 204)
    assert.equal((await post(JSON.stringify(legacy))).statusCode, 204)
    const limited = await post(JSON.stringify(legacy))
    assert.equal(limited.statusCode, 429)
    assert.ok(Number(limited.headers['retry-after']) >= 1)
    assert.equal(app.securityEvents.list('csp_violation').length, 2)
    await app.close()
  })
})
