import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { createBackbeatApp, parseConfig, type BackbeatApp } from 'backbeat'
import { createLogger } from 'backbeat/logging'
import { RedisConnection } from 'backbeat/stores'
import { Redis } from 'ioredis'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'
import { TEST_AUTH } from '../../helpers/quiet-app.ts'

/**
 * Kills the Redis under the rate limiter in the middle of real HTTP load, then brings it
 * back. Three routes, one per failure mode: `memory` (insurance limiter), `open` and
 * `closed`. While Redis is gone: no 5xx except the documented 503 of the closed policy, the
 * breaker trips with an error log line, the stats count degraded decisions and /health warns;
 * once Redis is back the breaker closes and decisions come from Redis again.
 */
describe('rate limiting when Redis dies mid-load (real Redis through a relay)', () => {
  let proxy: TcpProxy
  let redis: RedisConnection
  let backbeat: BackbeatApp
  let base: string
  const logLines: Array<Record<string, unknown>> = []
  const keyPrefix = `bb:rl:outage:${randomBytes(4).toString('hex')}:`

  before(async () => {
    const url = new URL(await requireRedisUrl())
    proxy = await TcpProxy.start(`${url.hostname}:${url.port === '' ? '6379' : url.port}`)
    url.host = proxy.address
    redis = new RedisConnection({ url: url.toString(), name: 'outage-test', commandTimeoutMs: 400, connectTimeoutMs: 400, reconnectMaxMs: 100 })
    await redis.connect()
    const config = parseConfig({
      preset: 'production', auth: TEST_AUTH,
      shutdown: { enabled: false },
      logging: { level: 'info' },
      health: { cacheMs: 0 },
      rateLimit: {
        store: 'redis',
        keyPrefix,
        breaker: { timeoutMs: 150, failureThreshold: 3, halfOpenAfterMs: 300 },
        policies: {
          insured: { limit: 100_000, windowS: 60, onStoreError: 'memory' },
          lenient: { limit: 100_000, windowS: 60, onStoreError: 'open' },
          strict: { limit: 100_000, windowS: 60, onStoreError: 'closed' },
        },
        defaultPolicies: ['insured'],
      },
    })
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logLines.push(JSON.parse(line) as Record<string, unknown>)
        callback()
      },
    })
    backbeat = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: sink }), redis })
    const { app } = backbeat
    for (const name of ['insured', 'lenient', 'strict']) app.get(`/v1/${name}`, { config: { rateLimit: { policies: [name] } } }, async () => ({ ok: true }))
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })

  after(async () => {
    await backbeat.app.close()
    // Straight to Redis, not through the relay: leave nothing behind.
    const admin = new Redis(await requireRedisUrl())
    await deleteRedisKeysByPrefix(admin, keyPrefix)
    await admin.quit()
    await redis.close()
    await proxy.stop()
  })

  /**
   * `recovering`: Redis is back but the breaker has not closed yet (either answer is right).
   * Requests that started in one phase and ended in another are `transition`.
   */
  type Phase = 'before' | 'outage' | 'recovering' | 'after' | 'transition'
  interface Sample {
    route: string
    phase: Phase
    status: number
    type: string
    code: unknown
    retryAfter: string | null
    rateLimit: string | null
  }

  it('keeps serving through the outage with each policy\'s chosen behaviour, and recovers', async () => {
    let phase: Exclude<Phase, 'transition'> = 'before'
    const samples: Sample[] = []
    let stop = false
    // 12 clients in a loop over the three routes: real sockets, real concurrency.
    const worker = async (n: number): Promise<void> => {
      const routes = ['insured', 'lenient', 'strict']
      for (let i = n; !stop; i++) {
        const route = routes[i % 3] as string
        const at = phase
        const res = await fetch(`${base}/v1/${route}`)
        const body = (await res.json()) as { code?: unknown }
        samples.push({ route, phase: at === phase ? at : 'transition', status: res.status, type: res.headers.get('content-type') ?? '', code: body.code, retryAfter: res.headers.get('retry-after'), rateLimit: res.headers.get('ratelimit') })
      }
    }
    const workers = Array.from({ length: 12 }, (_, n) => worker(n))
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

    await sleep(400)
    phase = 'outage'
    proxy.pause()
    proxy.dropConnections()
    await sleep(1_200)
    const statsDuringOutage = { ...backbeat.app.rateLimiter.stats }
    const breakerDuringOutage = backbeat.app.rateLimiter.breakerState
    const healthDuringOutage = (await backbeat.app.inject({ url: '/health' })).json<{ status: string; checks: Record<string, Array<{ status: string; output?: string }>> }>()
    proxy.resume()
    phase = 'recovering'
    // Reconnect backoff (<= 100 ms) plus the breaker's half-open delay (300 ms), with margin.
    const recovered = Date.now() + 5_000
    while (backbeat.app.rateLimiter.breakerState !== 'closed' && Date.now() < recovered) await sleep(50)
    phase = 'after'
    await sleep(500)
    stop = true
    await Promise.all(workers)

    const of = (route: string, p: Phase): Sample[] => samples.filter((s) => s.route === route && s.phase === p)
    for (const p of ['before', 'outage', 'after'] as const) for (const route of ['insured', 'lenient', 'strict']) assert.ok(of(route, p).length >= 5, `${route} got load ${p} the outage (${of(route, p).length} requests)`)

    // Before and after: every request decided by Redis and allowed.
    for (const p of ['before', 'after'] as const) {
      for (const s of samples.filter((x) => x.phase === p)) {
        assert.equal(s.status, 200, `${s.route} ${p}: ${s.status} ${String(s.code)}`)
        assert.match(s.rateLimit ?? '', new RegExp(`^"${s.route}";r=\\d+;t=\\d+$`))
      }
    }
    // During: memory and open never fail a request; closed refuses with the documented 503.
    assert.deepEqual([...new Set(of('insured', 'outage').map((s) => s.status))], [200], 'insurance limiter keeps answering')
    assert.ok(of('insured', 'outage').every((s) => /^"insured";r=\d+;t=\d+$/.test(s.rateLimit ?? '')), 'the insurance limiter still sends RateLimit')
    assert.deepEqual([...new Set(of('lenient', 'outage').map((s) => s.status))], [200], 'open lets requests through')
    const strict = of('strict', 'outage')
    const refused = strict.filter((s) => s.status === 503)
    assert.equal(refused.length, strict.length, 'closed refuses every request while Redis is gone')
    for (const s of refused) {
      assert.equal(s.code, 'ERR_RATE_LIMIT_UNAVAILABLE')
      assert.match(s.type, /^application\/problem\+json/)
      assert.ok(Number(s.retryAfter) >= 1, 'Retry-After on the 503')
    }
    assert.equal(samples.filter((s) => s.status >= 500 && s.status !== 503).length, 0, 'no 5xx other than the closed policy\'s 503')
    assert.equal(samples.filter((s) => s.status === 503 && s.route !== 'strict').length, 0)

    // The breaker tripped, with a log line, counters and a degraded health report.
    assert.equal(breakerDuringOutage, 'open')
    assert.ok(statsDuringOutage.storeErrors >= 3, `store errors counted: ${JSON.stringify(statsDuringOutage)}`)
    assert.ok(statsDuringOutage.degradedDecisions > 10)
    assert.equal(healthDuringOutage.checks['ratelimit:responseTime']?.[0]?.status, 'warn', JSON.stringify(healthDuringOutage.checks))
    const opened = logLines.find((l) => l.event === 'ratelimit.breaker.open')
    assert.ok(opened !== undefined, 'an error line when the circuit opens')
    assert.equal(opened.level, 'error')
    assert.equal(opened.store, 'redis')
    assert.ok(logLines.some((l) => l.event === 'ratelimit.breaker.closed'), 'a line when it closes again')
    assert.equal(backbeat.app.rateLimiter.breakerState, 'closed')
  })
})
