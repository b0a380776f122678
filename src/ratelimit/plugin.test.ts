import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { parseList, type Item } from 'structured-headers'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { parseConfig, type BackbeatConfigInput } from '../config/index.ts'
import { ConfigError } from '../core/index.ts'

async function appWith(overrides: BackbeatConfigInput): Promise<FastifyInstance> {
  const app = await quietApp(overrides)
  app.get('/v1/tracks', async () => ({ items: [] }))
  app.post('/v1/agent/ask', { config: { rateLimit: { policies: ['burst', 'ai'], cost: 10 } } }, async () => ({ answer: 42 }))
  app.get('/v1/free', { config: { rateLimit: false } }, async () => ({ ok: true }))
  app.get('/v1/me', { config: { rateLimit: { policies: ['peruser'] } } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

/** Parses a field with an RFC 9651 parser and returns {name: params} per item. */
function items(field: string | string[] | number | undefined): Record<string, Record<string, unknown>> {
  assert.equal(typeof field, 'string', 'one field line')
  const out: Record<string, Record<string, unknown>> = {}
  for (const member of parseList(field as string)) {
    const value: unknown = (member as Item)[0]
    const params: Map<string, unknown> = (member as Item)[1]
    assert.equal(typeof value, 'string', 'each item is an sf-string naming the policy')
    out[value as string] = Object.fromEntries(params)
  }
  return out
}

const policies = {
  burst: { algorithm: 'gcra', limit: 5, windowS: 60, key: 'ip' },
  ai: { algorithm: 'fixed-window', limit: 30, windowS: 3600, key: 'ip' },
  peruser: { algorithm: 'sliding-window', limit: 2, windowS: 60, key: 'user' },
} as const

describe('rate limiting over HTTP', () => {
  it('sends RateLimit-Policy and RateLimit as valid Structured Field lists, one named item per policy', async () => {
    const app = await appWith({ rateLimit: { policies: { ...policies, burst: { algorithm: 'gcra', limit: 50, windowS: 60, key: 'ip' } } } })
    const res = await app.inject({ url: '/v1/tracks' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(items(res.headers['ratelimit-policy']), { burst: { q: 50, w: 60 } })
    // GCRA: 49 left; the bucket is full again one emission interval (1.2 s) later.
    assert.deepEqual(items(res.headers.ratelimit), { burst: { r: 49, t: 2 } })
    const ask = await app.inject({ method: 'POST', url: '/v1/agent/ask' })
    assert.equal(ask.statusCode, 200, ask.body)
    assert.deepEqual(items(ask.headers['ratelimit-policy']), { burst: { q: 50, w: 60 }, ai: { q: 30, w: 3600 } })
    const limits = items(ask.headers.ratelimit)
    assert.equal(limits.ai?.r, 20, 'the AI route costs 10 units of its quota')
    await app.close()
  })

  it('answers 429 problem+json ERR_RATE_LIMITED of type quota-exceeded, with Retry-After no earlier than t', async () => {
    const app = await appWith({ rateLimit: { policies } })
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/v1/tracks' })).statusCode, 200)
    const res = await app.inject({ url: '/v1/tracks' })
    assert.equal(res.statusCode, 429)
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
    const body = res.json<{ type: string; title: string; code: string; status: number; 'violated-policies': string[]; requestId: string }>()
    assert.equal(body.code, 'ERR_RATE_LIMITED')
    assert.equal(body.type, 'https://iana.org/assignments/http-problem-types#quota-exceeded')
    assert.equal(body.status, 429)
    assert.deepEqual(body['violated-policies'], ['burst'])
    assert.equal(body.requestId, res.headers['x-request-id'])
    const retryAfter = Number(res.headers['retry-after'])
    assert.equal(retryAfter, 12, 'one GCRA emission interval: 60 s / 5')
    const limit = items(res.headers.ratelimit).burst
    assert.equal(limit?.r, 0)
    assert.ok(retryAfter >= Number(limit.t))
    // Security headers and CORS-exposable headers are on the refusal too.
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
    await app.close()
  })

  it('lets the strictest policy win and refunds the others: a refused request costs no quota', async () => {
    const app = await appWith({ rateLimit: { policies: { ...policies, burst: { algorithm: 'gcra', limit: 100, windowS: 60, key: 'ip' }, ai: { algorithm: 'fixed-window', limit: 25, windowS: 3600, key: 'ip' } } } })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/v1/agent/ask' })).statusCode)
    assert.deepEqual(statuses, [200, 200, 429])
    const plain = await app.inject({ url: '/v1/tracks' })
    // 2 asks x 10 units spent; the refused third ask's 10 units were given back to burst.
    assert.equal(items(plain.headers.ratelimit).burst?.r, 100 - 20 - 1)
    await app.close()
  })

  it('never limits the orchestrator probes (/health/live, /health/ready, /ready)', async () => {
    const app = await appWith({ rateLimit: { policies: { ...policies, burst: { limit: 1, windowS: 60 } } } })
    for (let i = 0; i < 5; i++) for (const url of ['/health/live', '/health/ready', '/ready']) assert.equal((await app.inject({ url })).statusCode, 200, url)
    assert.equal((await app.inject({ url: '/v1/tracks' })).statusCode, 200, 'probes spent none of the quota')
    assert.equal((await app.inject({ url: '/v1/tracks' })).statusCode, 429)
    await app.close()
  })

  it('exempts routes with rateLimit: false and allowlisted addresses', async () => {
    const app = await appWith({ rateLimit: { policies, allowlist: ['10.0.0.0/8'] } })
    for (let i = 0; i < 10; i++) assert.equal((await app.inject({ url: '/v1/free' })).statusCode, 200)
    assert.equal((await app.inject({ url: '/v1/free' })).headers.ratelimit, undefined)
    for (let i = 0; i < 10; i++) assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '10.1.2.3' })).statusCode, 200)
    await app.close()
  })

  it('groups IPv6 clients by /64 and keeps IPv4 clients apart', async () => {
    const app = await appWith({ rateLimit: { policies } })
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: `2001:db8:1:2::${String(i + 1)}` })).statusCode, 200)
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '2001:db8:1:2:ffff::9' })).statusCode, 429, 'same /64')
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '2001:db8:1:3::1' })).statusCode, 200, 'another /64')
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '192.0.2.7' })).statusCode, 200)
    await app.close()
  })

  it('ignores X-Forwarded-For from an untrusted peer, and honours it from a trusted proxy', async () => {
    const untrusted = await appWith({ rateLimit: { policies } })
    for (let i = 0; i < 5; i++) await untrusted.inject({ url: '/v1/tracks', headers: { 'x-forwarded-for': `198.51.100.${String(i)}` } })
    assert.equal((await untrusted.inject({ url: '/v1/tracks', headers: { 'x-forwarded-for': '198.51.100.200' } })).statusCode, 429, 'spoofed addresses do not buy new quota')
    await untrusted.close()
    const trusted = await appWith({ server: { trustProxy: '127.0.0.1/32' }, rateLimit: { policies } })
    for (let i = 0; i < 5; i++) assert.equal((await trusted.inject({ url: '/v1/tracks', headers: { 'x-forwarded-for': '198.51.100.1' } })).statusCode, 200)
    assert.equal((await trusted.inject({ url: '/v1/tracks', headers: { 'x-forwarded-for': '198.51.100.1' } })).statusCode, 429)
    assert.equal((await trusted.inject({ url: '/v1/tracks', headers: { 'x-forwarded-for': '198.51.100.2' } })).statusCode, 200)
    await trusted.close()
  })

  it('keys identity policies on the user after authentication, falling back to the address', async () => {
    // Stand-in for the identity capability: it sets userId in the request context.
    const app2 = await quietApp({ rateLimit: { policies } })
    app2.addHook('onRequest', async (request) => {
      const user = request.headers['x-test-user']
      if (typeof user === 'string') request.requestContext.userId = user
    })
    app2.get('/v1/me', { config: { rateLimit: { policies: ['peruser'] } } }, async () => ({ ok: true }))
    await app2.ready()
    const me = (user?: string) => app2.inject({ url: '/v1/me', ...(user === undefined ? {} : { headers: { 'x-test-user': user } }) })
    assert.deepEqual([(await me('ana')).statusCode, (await me('ana')).statusCode, (await me('ana')).statusCode], [200, 200, 429])
    assert.equal((await me('bo')).statusCode, 200, 'each user has a quota of their own')
    assert.equal((await me()).statusCode, 200, 'anonymous requests are keyed by address')
    await app2.close()
  })

  it('blocks a client that keeps pushing, and records a security event', async () => {
    const app = await appWith({ rateLimit: { policies, penalty: { rejections: 3, windowS: 60, blockS: 120, maxBlockS: 600 } } })
    for (let i = 0; i < 5; i++) await app.inject({ url: '/v1/tracks' })
    const refusals = []
    for (let i = 0; i < 3; i++) refusals.push(await app.inject({ url: '/v1/tracks' }))
    assert.equal(refusals[2]?.headers['retry-after'], '120')
    const events = app.securityEvents.list('rate_limit_block')
    assert.equal(events.length, 1)
    assert.equal(events[0]?.details.policy, 'burst')
    // Blocked on every policy sharing the key, not only the one that was exceeded.
    assert.equal((await app.inject({ method: 'POST', url: '/v1/agent/ask' })).statusCode, 429)
    await app.close()
  })

  it('refuses absurd limits and unknown policies at start-up, listing each problem', () => {
    assert.throws(
      () =>
        parseConfig({
          rateLimit: { policies: { burst: { limit: -5, windowS: 0 }, BAD: { limit: 1, windowS: 1 }, ok: { limit: 1e12, windowS: 1, burst: 2, algorithm: 'fixed-window' }, fast: { limit: 10_000_000, windowS: 60 } } },
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path)
        for (const path of ['rateLimit.policies.burst.limit', 'rateLimit.policies.burst.windowS', 'rateLimit.policies.BAD', 'rateLimit.policies.ok.limit', 'rateLimit.policies.fast.limit']) {
          assert.ok(paths.some((p) => p.startsWith(path)), `${path} in ${paths.join(', ')}`)
        }
        return true
      },
    )
    assert.throws(() => parseConfig({ rateLimit: { defaultPolicies: ['nope'] } }), (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'rateLimit.defaultPolicies.0'))
    assert.throws(() => parseConfig({ rateLimit: { policies: { b: { limit: 1, windowS: 1, burst: 2, algorithm: 'fixed-window' } }, defaultPolicies: ['b'] } }), (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'rateLimit.policies.b.burst'))
  })

  it('refuses, when the route is declared, a route naming a policy that does not exist', async () => {
    const app = await quietApp()
    assert.throws(() => app.get('/x', { config: { rateLimit: { policies: ['missing'] } } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    assert.throws(() => app.get('/y', { config: { rateLimit: { cost: -1 } } }, async () => ({})), { code: 'ERR_CONFIG_INVALID' })
    await app.close()
  })
})
