import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { sessionPlugin } from '../../../src/auth/session-plugin.ts'
import { RedisSessionStore, SessionManager } from 'backbeat/auth'
import { RedisConnection } from '../../../src/stores/index.ts'
import { quietApp } from '../../helpers/quiet-app.ts'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

/**
 * Kills the Redis under the session store while real HTTP clients are signed in and busy,
 * then brings it back. While Redis is gone, every request that needs the session gets 503
 * ERR_DEPENDENCY_UNAVAILABLE (fail closed: nobody is treated as signed in, nothing answers
 * 500), public routes keep serving as signed out, and no request hangs; afterwards the same
 * cookies work again.
 */
describe('sessions when Redis dies mid-flight (real Redis through a relay)', () => {
  let proxy: TcpProxy
  let redis: RedisConnection
  let app: FastifyInstance
  let base: string
  const keyPrefix = `bbtest:sess:outage:${randomBytes(4).toString('hex')}:`
  const origin = (): string => base

  before(async () => {
    const url = new URL(await requireRedisUrl())
    proxy = await TcpProxy.start(`${url.hostname}:${url.port === '' ? '6379' : url.port}`)
    url.host = proxy.address
    redis = new RedisConnection({ url: url.toString(), name: 'session-outage', keyPrefix, commandTimeoutMs: 400, connectTimeoutMs: 400, reconnectMaxMs: 100 })
    await redis.connect()
    const manager = new SessionManager({ store: new RedisSessionStore(redis), operationTimeoutMs: 300, touchIntervalMs: 0 })
    app = await quietApp({ rateLimit: { enabled: false }, auth: { enabled: false } })
    await app.register(sessionPlugin, { manager, secure: false, csrf: { secret: randomBytes(32) } })
    app.post<{ Body: { user: string } }>('/login', async (request) => {
      await request.signIn(request.body.user)
      return { csrfToken: request.csrfToken() }
    })
    app.get('/me', { config: { session: { required: true } } }, async (request) => ({ user: request.session?.userId }))
    app.post('/me/settings', { config: { session: { required: true } } }, async (request) => ({ user: request.session?.userId }))
    app.get('/public', async (request) => ({ signedIn: request.session !== null }))
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })

  after(async () => {
    await app.close()
    // Straight to Redis, not through the relay: leave nothing behind.
    const admin = new Redis(await requireRedisUrl())
    await deleteRedisKeysByPrefix(admin, keyPrefix)
    await admin.quit()
    await redis.close()
    await proxy.stop()
  })

  /** `recovering`: Redis is back but the client may not have reconnected yet (either answer is right). */
  type Phase = 'before' | 'outage' | 'recovering' | 'after' | 'transition'
  interface Sample {
    route: string
    phase: Phase
    status: number
    code: unknown
    body: Record<string, unknown>
    ms: number
  }

  it('refuses with 503 while Redis is gone, never signs anyone in on a guess, and recovers', async () => {
    const users = Array.from({ length: 6 }, (_, i) => `user-${i}`)
    const signedIn = await Promise.all(
      users.map(async (user) => {
        const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: origin() }, body: JSON.stringify({ user }) })
        assert.equal(res.status, 200)
        const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
        assert.match(cookie, /^bb_session=[A-Za-z0-9_-]{43}$/)
        return { user, cookie, csrfToken: (await res.json() as { csrfToken: string }).csrfToken }
      }),
    )

    let phase: Exclude<Phase, 'transition'> = 'before'
    let stop = false
    const samples: Sample[] = []
    const worker = async (n: number): Promise<void> => {
      const client = signedIn[n % signedIn.length]!
      for (let i = n; !stop; i++) {
        const route = ['/me', '/me/settings', '/public'][i % 3]!
        const at = phase
        const started = performance.now()
        const res = await fetch(`${base}${route}`, {
          method: route === '/me/settings' ? 'POST' : 'GET',
          headers: { cookie: client.cookie, origin: origin(), 'x-csrf-token': client.csrfToken },
        })
        const body = (await res.json()) as Record<string, unknown>
        if (route !== '/public' && res.status === 200) assert.equal(body.user, client.user, 'never somebody else')
        samples.push({ route, phase: at === phase ? at : 'transition', status: res.status, code: body.code, body, ms: performance.now() - started })
      }
    }
    const workers = Array.from({ length: 12 }, (_, n) => worker(n))
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

    await sleep(300)
    phase = 'outage'
    proxy.pause()
    proxy.dropConnections()
    await sleep(1_000)
    proxy.resume()
    phase = 'recovering'
    // Reconnect backoff is at most 100 ms; wait for the client to be back.
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      try {
        await redis.client.ping()
        break
      } catch {
        await sleep(50)
      }
    }
    phase = 'after'
    await sleep(300)
    stop = true
    await Promise.all(workers)

    const of = (route: string, p: Phase): Sample[] => samples.filter((s) => s.route === route && s.phase === p)
    for (const p of ['before', 'outage', 'after'] as const) for (const route of ['/me', '/me/settings', '/public']) assert.ok(of(route, p).length >= 5, `${route} got load ${p} the outage (${of(route, p).length} requests)`)

    for (const p of ['before', 'after'] as const) {
      for (const s of samples.filter((x) => x.phase === p)) {
        assert.equal(s.status, 200, `${s.route} ${p}: ${s.status} ${String(s.code)}`)
        if (s.route === '/public') assert.deepEqual(s.body, { signedIn: true })
      }
    }
    for (const route of ['/me', '/me/settings']) {
      const outage = of(route, 'outage')
      assert.deepEqual([...new Set(outage.map((s) => `${s.status} ${String(s.code)}`))], ['503 ERR_DEPENDENCY_UNAVAILABLE'], `${route}: fail closed`)
    }
    assert.deepEqual([...new Set(of('/public', 'outage').map((s) => JSON.stringify([s.status, s.body])))], [JSON.stringify([200, { signedIn: false }])], 'public routes serve as signed out')
    assert.equal(samples.filter((s) => s.status >= 500 && s.status !== 503).length, 0, 'no 5xx but the documented 503')
    assert.equal(samples.filter((s) => s.status === 401).length, 0, 'nobody was signed out by the outage')
    assert.ok(samples.filter((s) => s.phase === 'recovering' || s.phase === 'transition').every((s) => s.status === 200 || s.status === 503), 'around the edges: served or refused, nothing else')
    const slowest = Math.max(...samples.filter((s) => s.phase === 'outage').map((s) => s.ms))
    assert.ok(slowest < 1_500, `no request hangs during the outage (slowest ${slowest.toFixed(0)} ms)`)
  })
})
