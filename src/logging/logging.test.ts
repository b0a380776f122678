import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { parseConfig, type BackbeatConfigInput } from '../config/index.ts'
import { currentContext } from '../core/index.ts'
import { createBackbeatApp } from '../stack/index.ts'
import { createLogger, createRedactor, REDACTED } from './index.ts'
import { TEST_AUTH } from '../../test/helpers/quiet-app.ts'

const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLXZhbHVlLWhlcmU'
const SPOTIFY_REFRESH = 'AQD-spotify-refresh-0123456789abcdef'

async function appWithCapture(input: BackbeatConfigInput = {}) {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _e, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      cb()
    },
  })
  const config = parseConfig({ preset: 'production', auth: TEST_AUTH, ...input })
  const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: sink }) })
  return { app, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

describe('logging: redaction', () => {
  it('never writes a token from a header or a body, at any depth, in any spelling', async () => {
    const { app, lines } = await appWithCapture()
    // auth: false: the handlers must see the credentials (an auth check would refuse them first).
    app.post('/login', { config: { auth: false } }, async (request) => {
      request.log.info({ headers: request.headers, body: request.body }, 'login attempt')
      request.log.info(`raw header was ${String(request.headers.authorization)}`)
      return { ok: true }
    })
    app.get('/crash', { config: { auth: false } }, async (request) => {
      throw new Error(`upstream refused ${String(request.headers.authorization)}`)
    })
    await app.ready()
    await app.inject({
      method: 'POST',
      url: '/login?code=abc',
      headers: { authorization: `Bearer ${JWT}`, cookie: 'sid=s3cr3t-session', 'x-api-key': 'bb_live_key_123456' },
      payload: { user: 'ana', password: 'correct horse', nested: { spotify: { refresh_token: SPOTIFY_REFRESH, accessToken: JWT } }, list: [{ client_secret: 'cs-999' }] },
    })
    await app.inject({ url: '/crash', headers: { authorization: `Bearer ${JWT}` } })
    await app.close()
    const all = lines.join('\n')
    for (const secret of [JWT, 'correct horse', SPOTIFY_REFRESH, 's3cr3t-session', 'bb_live_key_123456', 'cs-999']) {
      assert.ok(!all.includes(secret), `leaked ${secret.slice(0, 12)}…`)
    }
    assert.ok(all.includes(REDACTED))
    assert.ok(all.includes('"user":"ana"'), 'non-secret fields stay')
  })

  it('redacts configured extra keys and leaves clean objects untouched (same reference)', () => {
    const redact = createRedactor(['pin'])
    const clean = { a: 1, b: { c: 'd' } }
    assert.equal(redact(clean), clean)
    assert.deepEqual(redact({ card: { PIN: '1234' } }), { card: { PIN: REDACTED } })
    assert.deepEqual(redact({ dbPassword: 'x', stripe_api_key: 'y', token_count: 5 }), { dbPassword: REDACTED, stripe_api_key: REDACTED, token_count: 5 })
  })
})

describe('logging: request completion', () => {
  it('writes one line per request with method, route template, status, duration and bytes', async () => {
    const { app, records } = await appWithCapture()
    app.post('/tracks/:id', async () => ({ saved: true }))
    await app.ready()
    await app.inject({ method: 'POST', url: '/tracks/abc?secret=1', payload: { a: 1 }, headers: { 'x-request-id': 'req-log-1' } })
    await app.close()
    const done = records().filter((r) => r.msg === 'request completed')
    assert.equal(done.length, 1)
    const line = done[0] as Record<string, unknown>
    assert.equal(line.requestId, 'req-log-1')
    assert.equal(line.method, 'POST')
    assert.equal(line.route, '/tracks/:id')
    assert.equal(line.path, '/tracks/abc')
    assert.equal(line.status, 200)
    assert.equal(line.bytesIn, 7)
    assert.equal(line.bytesOut, 14)
    assert.equal(typeof line.durationMs, 'number')
    assert.equal(line.level, 'info')
  })

  it('carries context fields set during the request (trace, tenant, user) on every line', async () => {
    const { app, records } = await appWithCapture()
    app.get('/me', async (request) => {
      const ctx = currentContext()
      if (ctx !== undefined) Object.assign(ctx, { traceId: 'trace-1', tenantId: 'tenant-1', userId: 'user-1' })
      request.log.info('inside handler')
      return {}
    })
    await app.ready()
    await app.inject({ url: '/me' })
    await app.close()
    for (const msg of ['inside handler', 'request completed']) {
      const line = records().find((r) => r.msg === msg)
      assert.ok(line, msg)
      assert.equal(line.traceId, 'trace-1', msg)
      assert.equal(line.tenantId, 'tenant-1', msg)
      assert.equal(line.userId, 'user-1', msg)
      assert.equal(typeof line.requestId, 'string', msg)
    }
  })

  it('warns about requests slower than the threshold', async () => {
    const { app, records } = await appWithCapture({ logging: { slowRequestMs: 20 } })
    app.get('/slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 40))
      return {}
    })
    await app.ready()
    await app.inject({ url: '/slow' })
    await app.close()
    const line = records().find((r) => r.slow === true)
    assert.ok(line)
    assert.equal(line.level, 'warn')
    assert.ok(Number(line.durationMs) >= 20)
  })
})

describe('logging: file destination', () => {
  it('writes JSON lines to the configured file and flushes them on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-log-'))
    const file = join(dir, 'nested', 'app.log')
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH, logging: { file } })
    const { app } = await createBackbeatApp(config)
    app.get('/x', async () => ({}))
    await app.ready()
    for (let i = 0; i < 5; i++) await app.inject({ url: '/x' })
    await app.close()
    const logged = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string })
    assert.equal(logged.filter((l) => l.msg === 'request completed').length, 5)
    rmSync(dir, { recursive: true })
  })
})

describe('logging: redaction edge cases', () => {
  const redact = createRedactor()
  it('redacts at any depth, and fails closed past the depth limit', () => {
    let deep: Record<string, unknown> = { password: 'DEEP-SECRET' }
    for (let i = 0; i < 30; i++) deep = { level: deep }
    assert.ok(!JSON.stringify(redact(deep)).includes('DEEP-SECRET'))
  })

  it('redacts fields of class instances and what toJSON exposes', () => {
    class Credentials {
      user = 'ana'
      password = 'CLASS-SECRET'
    }
    const out = JSON.stringify(redact({ creds: new Credentials(), link: new URL('https://ana:URL-SECRET@example.com/x?access_token=QS-SECRET&page=2') }))
    for (const secret of ['CLASS-SECRET', 'URL-SECRET', 'QS-SECRET']) assert.ok(!out.includes(secret), secret)
    assert.ok(out.includes('"user":"ana"') && out.includes('page=2'))
  })

  it('masks URL passwords and secret parameters inside free text', () => {
    const text = redact('connect postgres://app:PW-SECRET@db:5432/music failed; retry /cb?code=CODE-SECRET&state=ok') as string
    assert.ok(!text.includes('PW-SECRET') && !text.includes('CODE-SECRET'))
    assert.ok(text.includes('postgres://app:') && text.includes('state=ok'))
  })

  it('keeps the error class of a redacted error', () => {
    class UpstreamError extends Error {}
    const out = redact(new UpstreamError('token was Bearer abcdefghijkl1234')) as Error
    assert.ok(out instanceof UpstreamError)
    assert.ok(!out.message.includes('abcdefghijkl1234'))
  })

  it('bounds the work on huge objects and never walks streams or sockets', () => {
    const huge = { items: Array.from({ length: 5000 }, (_, i) => ({ i })) }
    const out = JSON.stringify(redact(huge))
    assert.ok(out.includes('[REDACTED: too large to check]'))
    const stream = new Writable()
    assert.equal((redact({ stream }) as { stream: unknown }).stream, stream)
  })

  it('redacts x-auth, pwd and credentials keys', () => {
    assert.deepEqual(redact({ 'x-auth': 'a', pwd: 'b', credentials: { k: 1 } }), { 'x-auth': REDACTED, pwd: REDACTED, credentials: REDACTED })
  })
})
