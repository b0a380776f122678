import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { Writable } from 'node:stream'
import { parseConfig } from '../config/index.ts'
import { createBackbeatApp } from '../stack/index.ts'
import { createLogger } from '../logging/index.ts'
import { HealthRegistry } from './index.ts'
import { TEST_AUTH } from '../../test/helpers/quiet-app.ts'

const quiet = (config: ReturnType<typeof parseConfig>) => createLogger(config.logging, { destination: new Writable({ write: (_c, _e, cb) => cb() }) })

describe('health: registry', () => {
  it('fails a check that exceeds its timeout, even one that ignores its abort signal', async () => {
    const registry = new HealthRegistry({ checkTimeoutMs: 50, cacheMs: 0 })
    registry.register('hung', () => new Promise(() => undefined))
    const started = performance.now()
    const report = await registry.check()
    assert.ok(performance.now() - started < 1000)
    assert.equal(report.status, 'fail')
    const hung = report.checks.hung
    assert.ok(hung)
    assert.equal(hung.status, 'fail')
    assert.match(hung.message ?? '', /timed out after 50ms/)
  })

  it('aborts the signal it hands a check when the timeout fires', async () => {
    const registry = new HealthRegistry({ checkTimeoutMs: 30, cacheMs: 0 })
    let aborted = false
    registry.register('polite', (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(signal.reason as Error)))))
    await registry.check()
    assert.equal(aborted, true)
  })

  it('only warns when a non-critical dependency fails', async () => {
    const registry = new HealthRegistry({ checkTimeoutMs: 100, cacheMs: 0 })
    registry.register('db', async () => ({ status: 'pass' }))
    registry.register('cache', async () => {
      throw new Error('connection refused')
    }, { critical: false })
    const report = await registry.check()
    assert.equal(report.status, 'warn')
    assert.equal(report.checks.cache?.message, 'connection refused')
    assert.equal(report.checks.db?.status, 'pass')
  })

  it('caches results and shares one run among concurrent callers', async () => {
    let now = 1000
    const registry = new HealthRegistry({ checkTimeoutMs: 100, cacheMs: 500, now: () => now })
    let runs = 0
    registry.register('db', async () => {
      runs++
      await new Promise((resolve) => setTimeout(resolve, 5))
      return { status: 'pass' }
    })
    await Promise.all(Array.from({ length: 20 }, () => registry.check()))
    assert.equal(runs, 1)
    now += 499
    await registry.check()
    assert.equal(runs, 1)
    now += 2
    await registry.check()
    assert.equal(runs, 2)
  })

  it('refuses to register the same name twice', () => {
    const registry = new HealthRegistry({ checkTimeoutMs: 100, cacheMs: 0 })
    registry.register('db', async () => undefined)
    assert.throws(() => registry.register('db', async () => undefined), /already registered/)
  })
})

describe('health: endpoints', () => {
  it('serves live, ready, /ready and the detailed report, 503 with the reason when a dependency is down', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH, health: { cacheMs: 0, checkTimeoutMs: 100 } })
    const { app, health } = await createBackbeatApp(config, { logger: quiet(config), service: { name: 'svc', version: '1.2.3' } })
    let up = true
    health.register('postgres', async () => {
      if (!up) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
      return { status: 'pass' }
    })
    await app.ready()

    const live = await app.inject({ url: '/health/live' })
    assert.equal(live.statusCode, 200)
    assert.equal(live.headers['content-type'], 'application/health+json; charset=utf-8')
    assert.equal(live.headers['cache-control'], 'no-store')

    for (const url of ['/health/ready', '/ready']) {
      const res = await app.inject({ url })
      assert.equal(res.statusCode, 200, url)
      assert.equal(res.json<{ status: string }>().status, 'pass')
    }
    type Check = { componentId?: string; componentType: string; observedValue: number; observedUnit: string; status: string; time: string; output?: string }
    const detailed = (await app.inject({ url: '/health' })).json<{ status: string; serviceId: string; releaseId: string; checks: Record<string, Check[]> }>()
    assert.equal(detailed.serviceId, 'svc')
    assert.equal(detailed.releaseId, '1.2.3')
    const postgres = detailed.checks['postgres:responseTime']?.[0]
    assert.ok(postgres)
    assert.equal(postgres.status, 'pass')
    assert.equal(postgres.componentId, 'postgres')
    assert.equal(postgres.observedUnit, 'ms')
    assert.equal(typeof postgres.observedValue, 'number')
    assert.ok(!Number.isNaN(Date.parse(postgres.time)))
    assert.equal(detailed.checks.uptime?.[0]?.observedUnit, 's')

    up = false
    const ready = await app.inject({ url: '/health/ready' })
    assert.equal(ready.statusCode, 503)
    const body = ready.json<{ status: string; output: string; checks: Record<string, Check[]> }>()
    assert.equal(body.status, 'fail')
    assert.match(body.checks['postgres:responseTime']?.[0]?.output ?? '', /ECONNREFUSED/)
    assert.match(body.output, /postgres: connect ECONNREFUSED/)
    assert.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'liveness does not depend on dependencies')
    await app.close()
  })

  it('answers /health/ready 503 promptly when a check hangs', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH, health: { cacheMs: 0, checkTimeoutMs: 100 } })
    const { app, health } = await createBackbeatApp(config, { logger: quiet(config) })
    health.register('redis', () => new Promise(() => undefined))
    await app.ready()
    const started = performance.now()
    const res = await app.inject({ url: '/health/ready' })
    assert.equal(res.statusCode, 503)
    assert.ok(performance.now() - started < 1000)
    await app.close()
  })
})

describe('health: graceful shutdown', () => {
  it('turns readiness 503 at once and lets an in-flight request complete', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH, server: { port: 0 }, shutdown: { drainTimeoutMs: 5000 } })
    let exitCode: number | undefined
    const backbeatApp = await createBackbeatApp(config, { logger: quiet(config), exit: (code) => (exitCode = code) })
    let release: () => void = () => undefined
    let entered: () => void = () => undefined
    const inHandler = new Promise<void>((resolve) => (entered = resolve))
    const { app } = backbeatApp
    app.get('/slow', async () => {
      entered()
      await new Promise<void>((resolve) => (release = resolve))
      return { finished: true }
    })
    await backbeatApp.listen()
    const port = (app.server.address() as { port: number }).port

    const inflight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/slow' }, (res) => {
        let body = ''
        res.on('data', (c) => (body += String(c)))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
        .on('error', reject)
        .end()
    })
    await inHandler
    process.emit('SIGTERM', 'SIGTERM')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(app.health.shuttingDown, true)

    setTimeout(() => release(), 100)
    const result = await inflight
    assert.equal(result.status, 200)
    assert.deepEqual(JSON.parse(result.body), { finished: true })
    const deadline = performance.now() + 3000
    while (exitCode === undefined && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(exitCode, 0)
  })

  it('cuts connections still open after the drain timeout and still exits', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH, server: { port: 0 }, shutdown: { drainTimeoutMs: 100 } })
    let exitCode: number | undefined
    const backbeatApp = await createBackbeatApp(config, { logger: quiet(config), exit: (code) => (exitCode = code) })
    let entered: () => void = () => undefined
    const inHandler = new Promise<void>((resolve) => (entered = resolve))
    const { app } = backbeatApp
    app.get('/forever', async () => {
      entered()
      await new Promise(() => undefined)
    })
    await backbeatApp.listen()
    const port = (app.server.address() as { port: number }).port
    const outcome = new Promise<string>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/forever' }, () => resolve('response'))
        .on('error', (error) => resolve(error.message))
        .end()
    })
    await inHandler
    const started = performance.now()
    process.emit('SIGTERM', 'SIGTERM')
    assert.match(await outcome, /socket hang up|ECONNRESET/)
    while (exitCode === undefined && performance.now() - started < 3000) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(exitCode, 0)
    assert.ok(performance.now() - started < 3000)
  })
})
