import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { ErrorMonitor } from '../monitoring/index.ts'
import { opsPlugin } from './plugin.ts'

describe('opsPlugin', () => {
  it('serves error issues, trends, insights and cache counters', async () => {
    const errorMonitor = new ErrorMonitor()
    for (let i = 0; i < 3; i++) errorMonitor.record(new TypeError(`boom ${i}`), { route: '/v1/x', method: 'GET', status: 500, requestId: `r${i}` })
    const cache = { stats: () => ({ l1: { hits: 4, misses: 1 } }), breakerStates: { l2: 'closed' } }
    const app = Fastify()
    await app.register(opsPlugin, { errorMonitor, caches: { app: cache } })
    const issues = await app.inject('/ops/errors?sort=count&limit=5')
    assert.equal(issues.statusCode, 200)
    assert.equal(issues.headers['cache-control'], 'no-store')
    const body = issues.json<{ issues: { count: number }[] }>()
    assert.equal(body.issues.length, 1)
    assert.equal(body.issues[0]?.count, 3)
    assert.equal((await app.inject('/ops/errors?sort=nonsense')).statusCode, 400)
    assert.equal((await app.inject('/ops/errors?limit=100000')).statusCode, 400)
    assert.equal((await app.inject('/ops/errors/trends')).statusCode, 200)
    const insights = await app.inject('/ops/errors/insights')
    assert.equal(insights.statusCode, 200)
    assert.ok(Array.isArray(insights.json<{ topIssues: unknown[] }>().topIssues))
    const caches = await app.inject('/ops/cache')
    assert.deepEqual(caches.json(), { caches: { app: { tiers: { l1: { hits: 4, misses: 1 } }, breakers: { l2: 'closed' } } } })
  })

  it('registers only the sections whose engines are given, and nothing when disabled', async () => {
    const app = Fastify()
    await app.register(opsPlugin, { caches: {} })
    assert.equal((await app.inject('/ops/errors')).statusCode, 404)
    assert.equal((await app.inject('/ops/cache')).statusCode, 200)
    const off = Fastify()
    await off.register(opsPlugin, { enabled: false, caches: {} })
    assert.equal((await off.inject('/ops/cache')).statusCode, 404)
  })
})
