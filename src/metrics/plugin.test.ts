import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { connect, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { ConfigError } from '../core/index.ts'
import { metricsPlugin, type MetricsPluginOptions } from './index.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'

async function appWith(options: MetricsPluginOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(metricsPlugin, { runtimeMetrics: false, ...options })
  app.get('/v1/tracks/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.post('/v1/playlists', async () => ({ created: true }))
  app.get('/v1/boom', async () => {
    throw new Error('boom')
  })
  await app.ready()
  return app
}

function findPromtool(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'promtool')
    if (dir !== '' && existsSync(candidate)) return candidate
  }
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : undefined
}

describe('metricsPlugin', () => {
  it('measures requests by method, route template and status class', async () => {
    const app = await appWith()
    try {
      await app.inject({ method: 'GET', url: '/v1/tracks/abc' })
      await app.inject({ method: 'GET', url: '/v1/tracks/def' })
      await app.inject({ method: 'POST', url: '/v1/playlists', payload: { name: 'x' } })
      await app.inject({ method: 'GET', url: '/v1/boom' })
      await app.inject({ method: 'GET', url: '/no/such/path/12345' })
      const res = await app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
      const body = res.body
      assert.match(body, /^http_requests_total\{method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 2$/m)
      assert.match(body, /^http_requests_total\{method="POST",route="\/v1\/playlists",status_class="2xx"\} 1$/m)
      assert.match(body, /^http_requests_total\{method="GET",route="\/v1\/boom",status_class="5xx"\} 1$/m)
      assert.match(body, /^http_requests_total\{method="GET",route="unmatched",status_class="4xx"\} 1$/m)
      assert.doesNotMatch(body, /abc|def|12345/, 'no raw path in any label')
      assert.match(body, /^http_request_size_bytes_sum\{method="POST",route="\/v1\/playlists",status_class="2xx"\} 12$/m)
      assert.match(body, /^http_response_size_bytes_count\{method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 2$/m)
      assert.match(body, /^http_requests_in_flight 1$/m, 'the scrape itself is in flight')
    } finally {
      await app.close()
    }
  })

  it('counts requests in flight while a handler runs', async () => {
    const app = Fastify({ logger: false })
    await app.register(metricsPlugin, { runtimeMetrics: false })
    let seen = ''
    app.get('/slow', async () => {
      seen = (await app.metrics.expose()).body
      return { ok: true }
    })
    await app.ready()
    try {
      await app.inject({ method: 'GET', url: '/slow' })
      assert.match(seen, /^http_requests_in_flight 1$/m)
      assert.match((await app.metrics.expose()).body, /^http_requests_in_flight 0$/m)
    } finally {
      await app.close()
    }
  })

  it('tracks open connections from the server', async () => {
    const app = await appWith()
    try {
      await app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = app.server.address() as AddressInfo
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      // The server sees the connection on its next turn of the loop.
      for (let i = 0; i < 50 && !/^http_open_connections 1$/m.test((await app.metrics.expose()).body); i++) await new Promise((r) => setTimeout(r, 5))
      assert.match((await app.metrics.expose()).body, /^http_open_connections 1$/m)
      socket.destroy()
      for (let i = 0; i < 50 && !/^http_open_connections 0$/m.test((await app.metrics.expose()).body); i++) await new Promise((r) => setTimeout(r, 5))
      assert.match((await app.metrics.expose()).body, /^http_open_connections 0$/m)
    } finally {
      await app.close()
    }
  })

  it('serves OpenMetrics with trace exemplars only when the scraper asks for it', async () => {
    const app = await appWith({ currentTraceId: () => TRACE })
    try {
      await app.inject({ method: 'GET', url: '/v1/tracks/abc' })
      const plain = await app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' } })
      assert.doesNotMatch(plain.body, /trace_id/)
      const open = await app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } })
      assert.equal(open.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8')
      assert.match(open.body, new RegExp(`^http_request_duration_seconds_bucket\\{le="[^"]+",method="GET",route="/v1/tracks/:id",status_class="2xx"\\} 1 # \\{trace_id="${TRACE}"\\} `, 'm'))
      assert.ok(open.body.endsWith('# EOF\n'))
    } finally {
      await app.close()
    }
  })

  it('serves the scrape at the configured path', async () => {
    const app = await appWith({ path: '/internal/metrics' })
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/internal/metrics' })).statusCode, 200)
      assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
    } finally {
      await app.close()
    }
  })

  it('adds nothing when disabled', async () => {
    const app = await appWith({ enabled: false })
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
      assert.equal(app.hasDecorator('metrics'), false)
    } finally {
      await app.close()
    }
  })

  it('rejects invalid options when registered', async () => {
    const app = Fastify({ logger: false })
    await assert.rejects(async () => {
      await app.register(metricsPlugin, { path: 'metrics', routeLabelLimit: -1 })
    }, (err: unknown) => err instanceof ConfigError && err.issues.length === 2)
    await app.close()
  })

  it('passes promtool check metrics with no warnings', async () => {
    const promtool = findPromtool()
    assert.ok(promtool !== undefined, 'promtool is not installed: install the Debian package `prometheus` (apt-get install prometheus) to run this check')
    const app = await appWith({ runtimeMetrics: true, collectDefaultMetrics: true, namePrefix: 'backbeat_', currentTraceId: () => TRACE })
    try {
      app.metrics.business('playlist_created', { type: 'counter', help: 'Playlists created.', labelNames: ['tier'] }).inc({ tier: 'free' })
      app.metrics.business('playlist_tracks', { type: 'histogram', help: 'Tracks per playlist.', buckets: [10, 100] }).observe({}, 12)
      app.metrics.registerCollector('cache:tracks', () => [{ name: 'cache_hits_total', help: 'Cache hits.', type: 'counter', samples: [{ labels: { cache: 'tracks', tier: 'l1' }, value: 3 }] }])
      await app.inject({ method: 'GET', url: '/v1/tracks/abc' })
      await app.inject({ method: 'GET', url: '/nowhere' })
      const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
      const result = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 10_000 })
      const output = `${result.stdout}${result.stderr}`.trim()
      assert.equal(result.status, 0, `promtool exited ${String(result.status)}: ${output}`)
      assert.equal(output, '', `promtool printed warnings: ${output}`)
    } finally {
      await app.close()
    }
  })
})
