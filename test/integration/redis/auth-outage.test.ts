import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createBackbeatApp, parseConfig } from 'backbeat'
import { createLogger } from 'backbeat/logging'
import { RedisConnection, RedisKeyValueStore } from 'backbeat/stores'
import { Redis } from 'ioredis'
import { Writable } from 'node:stream'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'
import { TEST_AUTH } from '../../helpers/quiet-app.ts'

/**
 * The deny list and refresh tokens on a real Redis that goes away: revocation checks fail
 * CLOSED (503 ERR_AUTH_REVOCATION_UNAVAILABLE, counted in stats.failClosed), refreshing
 * answers 503 instead of guessing, nothing answers 500, and once Redis is back a logout made
 * on one instance is refused by another at once.
 */
describe('identity when Redis dies (real Redis through a relay)', () => {
  let proxy: TcpProxy
  let redis: RedisConnection
  let apps: FastifyInstance[] = []
  const prefix = `bb:auth-outage:${randomBytes(4).toString('hex')}:`

  before(async () => {
    const url = new URL(await requireRedisUrl())
    proxy = await TcpProxy.start(`${url.hostname}:${url.port === '' ? '6379' : url.port}`)
    url.host = proxy.address
    redis = new RedisConnection({ url: url.toString(), name: 'auth-outage-test', commandTimeoutMs: 300, connectTimeoutMs: 300, reconnectMaxMs: 100 })
    await redis.connect()
    // Two instances sharing one Redis; no local trust in deny-list answers (cacheMs 0).
    const config = parseConfig({ preset: 'production', shutdown: { enabled: false }, logging: { enabled: false }, rateLimit: { enabled: false }, auth: { ...TEST_AUTH, revocation: { cacheMs: 0, timeoutMs: 200 } } })
    for (let i = 0; i < 2; i++) {
      const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: new Writable({ write: (_c, _e, cb) => cb() }) }), kv: new RedisKeyValueStore(redis, { prefix }) })
      app.get('/v1/me', { config: { auth: { required: true } } }, async (request) => ({ sub: request.auth?.subject }))
      app.post('/v1/refresh', { config: { auth: false } }, async (request) => {
        const identity = app.identity
        if (identity === null) throw new Error('auth is on')
        const next = await identity.refreshTokens.rotate((request.body as { token: string }).token)
        return { token: next.token }
      })
      await app.ready()
      apps.push(app)
    }
  })
  after(async () => {
    for (const app of apps) await app.close()
    apps = []
    const cleaner = new Redis(await requireRedisUrl())
    await deleteRedisKeysByPrefix(cleaner, prefix)
    cleaner.disconnect()
    await redis.close()
    await proxy.stop()
  })

  it('refuses with 503 while Redis is gone, never a 500 and never a guess, and recovers', async () => {
    const [a, b] = apps as [FastifyInstance, FastifyInstance]
    const identity = a.identity
    assert.ok(identity)
    const access = await identity.issuer.issue({ sub: 'outage-user' })
    const refresh = await identity.refreshTokens.issue({ userId: 'outage-user', scope: '', amr: ['pwd'] })
    const me = () => a.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access.token}` } })
    assert.equal((await me()).statusCode, 200)

    proxy.pause()
    proxy.dropConnections()
    try {
      const started = Date.now()
      const down = await me()
      assert.equal(down.statusCode, 503, down.body)
      assert.equal(down.json<{ code: string }>().code, 'ERR_AUTH_REVOCATION_UNAVAILABLE')
      assert.ok(Date.now() - started < 2_000, 'bounded by the revocation timeout')
      assert.ok(identity.revocations.stats.failClosed >= 1)
      const refreshing = await a.inject({ method: 'POST', url: '/v1/refresh', payload: { token: refresh.token } })
      assert.equal(refreshing.statusCode, 503, refreshing.body)
    } finally {
      proxy.resume()
    }

    // Back: a logout through instance a is refused by instance b at once.
    let back = await me()
    for (let i = 0; i < 20 && back.statusCode !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      back = await me()
    }
    assert.equal(back.statusCode, 200, back.body)
    await identity.revocations.revokeToken(access.jti, access.expiresAt)
    const elsewhere = await b.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access.token}` } })
    assert.equal(elsewhere.statusCode, 401)
    assert.equal(elsewhere.json<{ code: string }>().code, 'ERR_AUTH_TOKEN_REVOKED')
  })
})
