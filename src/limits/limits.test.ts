import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { parseConfig, type BackbeatConfigInput } from '../config/index.ts'
import { checkJsonShape, type CountryResolver } from './index.ts'

async function appWith(limits: NonNullable<BackbeatConfigInput['limits']>, extra: { countryResolver?: CountryResolver } = {}): Promise<{ app: FastifyInstance; release: () => void }> {
  const app = await quietApp({ limits }, extra)
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  app.get('/v1/tracks', async () => ({ items: [] }))
  app.get('/v1/slow', async () => {
    await gate
    return { ok: true }
  })
  app.post('/v1/playlists', async (request) => ({ got: typeof request.body }))
  await app.ready()
  return { app, release }
}

const code = (res: { body: string }): string => (JSON.parse(res.body) as { code: string }).code

describe('request limits', () => {
  it('answers 414 for an over-long URL and 431 for too many header fields', async () => {
    const { app } = await appWith({ maxUrlLength: 100, maxHeaderCount: 10 })
    const long = await app.inject({ url: `/v1/tracks?q=${'a'.repeat(200)}` })
    assert.deepEqual([long.statusCode, code(long)], [414, 'ERR_EDGE_URI_TOO_LONG'])
    const headers = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-h${String(i)}`, 'v']))
    const many = await app.inject({ url: '/v1/tracks', headers })
    assert.deepEqual([many.statusCode, code(many)], [431, 'ERR_EDGE_TOO_MANY_HEADERS'])
    assert.equal((await app.inject({ url: '/v1/tracks' })).statusCode, 200)
    await app.close()
  })

  it('refuses JSON nested too deeply or with too many members, before the handler runs', async () => {
    const { app } = await appWith({ json: { maxDepth: 5, maxKeys: 50 } })
    const deep = await app.inject({ method: 'POST', url: '/v1/playlists', payload: '['.repeat(6) + ']'.repeat(6), headers: { 'content-type': 'application/json' } })
    assert.deepEqual([deep.statusCode, code(deep)], [400, 'ERR_EDGE_JSON_TOO_DEEP'])
    const wide = await app.inject({ method: 'POST', url: '/v1/playlists', payload: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${String(i)}`, i])) })
    assert.deepEqual([wide.statusCode, code(wide)], [400, 'ERR_EDGE_JSON_TOO_MANY_KEYS'])
    assert.equal((await app.inject({ method: 'POST', url: '/v1/playlists', payload: { name: 'ok', tracks: [[1]] } })).statusCode, 200)
    await app.close()
  })

  it('walks hostile nesting without recursion', () => {
    const depth = 200_000
    const value = JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown
    assert.equal(checkJsonShape(value, 1_000, 10), 'depth')
  })

  it('caps requests in progress per client with 429 and Retry-After, and frees the slot when they finish', async () => {
    const { app, release } = await appWith({ concurrency: { perClient: 2 } })
    const slow = [app.inject({ url: '/v1/slow' }), app.inject({ url: '/v1/slow' })]
    await new Promise((resolve) => setTimeout(resolve, 50))
    const third = await app.inject({ url: '/v1/tracks' })
    assert.deepEqual([third.statusCode, code(third), third.headers['retry-after']], [429, 'ERR_EDGE_TOO_MANY_CONCURRENT', '1'])
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '192.0.2.9' })).statusCode, 200, 'other clients are not affected')
    release()
    await Promise.all(slow)
    assert.equal((await app.inject({ url: '/v1/tracks' })).statusCode, 200)
    await app.close()
  })

  it('denies addresses by CIDR (IPv4, IPv6 and IPv4-mapped) and records security events', async () => {
    const { app } = await appWith({ ip: { deny: ['203.0.113.0/24', '2001:db8:bad::/48'] } })
    for (const remoteAddress of ['203.0.113.7', '::ffff:203.0.113.8', '2001:db8:bad:1::1']) {
      const res = await app.inject({ url: '/v1/tracks', remoteAddress })
      assert.deepEqual([res.statusCode, code(res)], [403, 'ERR_EDGE_IP_DENIED'], remoteAddress)
    }
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '198.51.100.1' })).statusCode, 200)
    assert.equal(app.securityEvents.list('ip_denied').length, 3)
    await app.close()
    const only = await appWith({ ip: { allow: ['10.0.0.0/8'] } })
    assert.equal((await only.app.inject({ url: '/v1/tracks', remoteAddress: '10.9.8.7' })).statusCode, 200)
    assert.equal((await only.app.inject({ url: '/v1/tracks', remoteAddress: '11.0.0.1' })).statusCode, 403)
    await only.app.close()
  })

  it('blocks countries through the resolver given in code', async () => {
    const resolver = (ip: string): string | undefined => (ip.startsWith('198.51.100.') ? 'KP' : ip.startsWith('192.0.2.') ? 'DE' : undefined)
    const { app } = await appWith({ countries: { deny: ['KP'] } }, { countryResolver: resolver })
    assert.deepEqual([(await app.inject({ url: '/v1/tracks', remoteAddress: '198.51.100.3' })).statusCode, (await app.inject({ url: '/v1/tracks', remoteAddress: '192.0.2.3' })).statusCode], [403, 200])
    assert.equal((await app.inject({ url: '/v1/tracks', remoteAddress: '172.16.0.1' })).statusCode, 200, 'unknown is allowed by default')
    await app.close()
  })

  it('loads the offline DB-IP table when countries are listed without a resolver', async () => {
    const { app } = await appWith({ countries: { allow: ['DE', 'FR'], unknown: 'deny' } })
    const status = async (remoteAddress: string): Promise<number> => (await app.inject({ url: '/v1/tracks', remoteAddress })).statusCode
    // 2a00:1450:4001::/48 (Frankfurt) and 81.2.69.142 (GB) per DB-IP Lite 2026-06.
    assert.equal(await status('2a00:1450:4001:80b::200e'), 200)
    const refused = await app.inject({ url: '/v1/tracks', remoteAddress: '81.2.69.142' })
    assert.deepEqual([refused.statusCode, code(refused)], [403, 'ERR_EDGE_COUNTRY_DENIED'])
    assert.equal(await status('10.1.2.3'), 403, 'unknown: deny refuses private ranges')
    assert.equal(app.securityEvents.list('country_denied').length, 2)
    await app.close()
  })

  it('refuses bad CIDRs and country codes at start-up', () => {
    assert.throws(() => parseConfig({ limits: { ip: { deny: ['10.0.0.0/33', 'not-an-ip'] }, countries: { deny: ['kp'] } } }), (err: unknown) => {
      const issues = (err as { issues: { path: string }[] }).issues.map((i) => i.path)
      return issues.includes('limits.ip.deny.0') && issues.includes('limits.ip.deny.1') && issues.includes('limits.countries.deny.0')
    })
  })
})
