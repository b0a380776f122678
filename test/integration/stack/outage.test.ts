import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseConfig } from 'backbeat'
import { PostgresDatabase } from 'backbeat/stores'
import { createMusicApp, type MusicApp } from '../../../app/create-music-app.ts'
import { requireDatabaseUrl, requireRedisUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'
import { TEST_AUTH } from '../../helpers/quiet-app.ts'

/**
 * The whole stack on real PostgreSQL and Redis, each reached through a local relay so the
 * test can take one away (connections reset, new ones refused) without touching the shared
 * servers. A lost dependency must give 503 problem+json and a failing readiness probe with
 * the reason, promptly: never a 500, a hang or a crash; and everything recovers after.
 */
describe('stack: dependency outages on real PostgreSQL and Redis', () => {
  let admin: PostgresDatabase
  let database: string
  let pgProxy: TcpProxy
  let redisProxy: TcpProxy
  let music: MusicApp

  before(async () => {
    const databaseUrl = await requireDatabaseUrl()
    const redisUrl = new URL(await requireRedisUrl())
    admin = new PostgresDatabase({ url: databaseUrl, name: 'outage-admin', poolSize: 1 })
    await admin.connect()
    database = `bb_outage_${randomBytes(6).toString('hex')}`
    await admin.exec(`CREATE DATABASE ${database}`)
    const pgUrl = new URL(databaseUrl)
    pgProxy = await TcpProxy.start(`${pgUrl.hostname}:${pgUrl.port === '' ? '5432' : pgUrl.port}`)
    redisProxy = await TcpProxy.start(`${redisUrl.hostname}:${redisUrl.port === '' ? '6379' : redisUrl.port}`)
    pgUrl.host = pgProxy.address
    pgUrl.pathname = `/${database}`
    redisUrl.host = redisProxy.address
    music = await createMusicApp(
      parseConfig({
        preset: 'production', auth: TEST_AUTH,
        logging: { enabled: false },
        shutdown: { enabled: false },
        health: { cacheMs: 0, checkTimeoutMs: 1000 },
        stores: { databaseUrl: pgUrl.toString(), redisUrl: redisUrl.toString() },
      }),
    )
  })

  after(async () => {
    await music.app.close()
    await pgProxy.stop()
    await redisProxy.stop()
    await admin.exec(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.close()
  })

  /** Polls `url` for up to 5 s until it answers 200; returns the last status. */
  const statusOnceRecovered = async (url: string): Promise<number> => {
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await music.app.inject({ url })).statusCode
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return status
  }

  const timed = async (url: string) => {
    const started = performance.now()
    const res = await music.app.inject({ url })
    return { res, ms: performance.now() - started }
  }

  it('is ready with both dependencies up', async () => {
    const { res } = await timed('/health/ready')
    assert.equal(res.statusCode, 200, res.body)
    const checks = res.json<{ checks: Record<string, { status: string }[]> }>().checks
    assert.equal(checks['postgres:responseTime']?.[0]?.status, 'pass')
    assert.equal(checks['redis:responseTime']?.[0]?.status, 'pass')
  })

  it('answers 503 problem+json and fails readiness with the reason when PostgreSQL goes away, then recovers', async () => {
    pgProxy.pause()
    pgProxy.dropConnections()
    try {
      const { res, ms } = await timed('/v1/tracks?limit=1')
      assert.ok(ms < 15_000, `took ${ms} ms`)
      assert.equal(res.statusCode, 503, res.body)
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      assert.equal(res.json<{ code: string }>().code, 'ERR_DEPENDENCY_UNAVAILABLE')

      const ready = await timed('/health/ready')
      assert.ok(ready.ms < 3000, `readiness took ${ready.ms} ms`)
      assert.equal(ready.res.statusCode, 503)
      const checks = ready.res.json<{ checks: Record<string, { status: string; output?: string }[]> }>().checks
      const postgres = checks['postgres:responseTime']?.[0]
      assert.ok(postgres)
      assert.equal(postgres.status, 'fail')
      assert.ok((postgres.output ?? '').length > 0, 'the reason is given')
      assert.equal(checks['redis:responseTime']?.[0]?.status, 'pass')
    } finally {
      pgProxy.resume()
    }
    assert.equal(await statusOnceRecovered('/v1/tracks?limit=1'), 200)
    assert.equal((await music.app.inject({ url: '/health/ready' })).statusCode, 200)
  })

  it('fails readiness with the reason when Redis goes away, then recovers', async () => {
    redisProxy.pause()
    redisProxy.dropConnections()
    try {
      const ready = await timed('/health/ready')
      assert.ok(ready.ms < 3000, `readiness took ${ready.ms} ms`)
      assert.equal(ready.res.statusCode, 503)
      const checks = ready.res.json<{ checks: Record<string, { status: string; output?: string }[]> }>().checks
      const redis = checks['redis:responseTime']?.[0]
      assert.ok(redis)
      assert.equal(redis.status, 'fail')
      assert.ok((redis.output ?? '').length > 0)
    } finally {
      redisProxy.resume()
    }
    assert.equal(await statusOnceRecovered('/health/ready'), 200)
  })
})
