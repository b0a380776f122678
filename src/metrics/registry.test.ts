import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../core/index.ts'
import { cacheCollector, MetricsRegistry, negotiateFormat, OPENMETRICS_CONTENT_TYPE, OTEL_HTTP_DURATION_BUCKETS, PROMETHEUS_CONTENT_TYPE, type CacheStatsSource } from './index.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'

async function scrape(metrics: MetricsRegistry, accept?: string): Promise<string> {
  return (await metrics.expose(accept)).body
}

function lines(body: string, prefix: string): string[] {
  return body.split('\n').filter((l) => l.startsWith(prefix))
}

function withRegistry(options: ConstructorParameters<typeof MetricsRegistry>[0], run: (m: MetricsRegistry) => Promise<void>): () => Promise<void> {
  return async () => {
    const metrics = new MetricsRegistry(options)
    try {
      await run(metrics)
    } finally {
      metrics.close()
    }
  }
}

describe('MetricsRegistry', () => {
  it(
    'exposes the HTTP series with their types and method, route and status_class labels',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      m.requestStarted()
      m.requestFinished('GET', '/v1/tracks/:id', 200, 0.012, undefined, 300)
      m.requestStarted()
      m.requestFinished('BREW', '/v1/tracks/:id', 418, 0.002, 40)
      m.requestStarted()
      const body = await scrape(m)
      assert.match(body, /^# TYPE http_requests_total counter$/m)
      assert.match(body, /^# TYPE http_request_duration_seconds histogram$/m)
      assert.match(body, /^# TYPE http_request_size_bytes histogram$/m)
      assert.match(body, /^# TYPE http_response_size_bytes histogram$/m)
      assert.match(body, /^# TYPE http_requests_in_flight gauge$/m)
      assert.match(body, /^# TYPE http_open_connections gauge$/m)
      assert.match(body, /^http_requests_total\{method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 1$/m)
      assert.match(body, /^http_requests_total\{method="_OTHER",route="\/v1\/tracks\/:id",status_class="4xx"\} 1$/m)
      assert.match(body, /^http_requests_in_flight 1$/m)
      assert.match(body, /^http_response_size_bytes_sum\{method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 300$/m)
      assert.match(body, /^http_request_size_bytes_count\{method="_OTHER",route="\/v1\/tracks\/:id",status_class="4xx"\} 1$/m)
      assert.equal(lines(body, 'http_request_size_bytes_count{method="GET"').length, 0, 'no request size when none was declared')
      assert.match(body, /^http_request_duration_seconds_bucket\{le="0.025",method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 1$/m)
      assert.match(body, /^http_request_duration_seconds_bucket\{le="0.01",method="GET",route="\/v1\/tracks\/:id",status_class="2xx"\} 0$/m)
    }),
  )

  it(
    'uses the OpenTelemetry advisory bucket list for request durations',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      m.requestStarted()
      m.requestFinished('GET', '/', 200, 0.1)
      const bounds = lines(await scrape(m), 'http_request_duration_seconds_bucket').map((l) => /le="([^"]+)"/.exec(l)?.[1])
      assert.deepEqual(bounds, [...OTEL_HTTP_DURATION_BUCKETS.map(String), '+Inf'])
      assert.deepEqual(OTEL_HTTP_DURATION_BUCKETS, [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
    }),
  )

  it(
    'reports route values past routeLabelLimit as _overflow (1000 distinct routes, limit 500)',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      for (let i = 0; i < 1000; i++) {
        m.requestStarted()
        m.requestFinished('GET', `/r/${String(i)}`, 200, 0.001)
      }
      const series = lines(await scrape(m), 'http_requests_total{')
      assert.equal(series.length, 501)
      assert.ok(series.includes('http_requests_total{method="GET",route="_overflow",status_class="2xx"} 500'))
      assert.ok(series.includes('http_requests_total{method="GET",route="/r/499",status_class="2xx"} 1'))
      assert.ok(!series.some((l) => l.includes('/r/500"')))
    }),
  )

  it(
    'labels requests that matched no route as unmatched',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      m.requestStarted()
      m.requestFinished('GET', undefined, 404, 0.001)
      assert.match(await scrape(m), /^http_requests_total\{method="GET",route="unmatched",status_class="4xx"\} 1$/m)
    }),
  )

  it(
    'attaches trace_id exemplars only when the scrape accepts OpenMetrics',
    withRegistry({ runtimeMetrics: false, currentTraceId: () => TRACE }, async (m) => {
      m.requestStarted()
      m.requestFinished('GET', '/v1/tracks', 200, 0.03)
      const plain = await m.expose('text/plain')
      assert.equal(plain.contentType, PROMETHEUS_CONTENT_TYPE)
      assert.doesNotMatch(plain.body, /trace_id/)
      const open = await m.expose('application/openmetrics-text; version=1.0.0, text/plain;q=0.5')
      assert.equal(open.contentType, OPENMETRICS_CONTENT_TYPE)
      assert.match(open.body, new RegExp(`^http_request_duration_seconds_bucket\\{le="0.05",method="GET",route="/v1/tracks",status_class="2xx"\\} 1 # \\{trace_id="${TRACE}"\\} 0.03 \\d+\\.\\d{3}$`, 'm'))
      // OpenMetrics names the counter family without _total and ends with # EOF.
      assert.match(open.body, /^# TYPE http_requests counter$/m)
      assert.match(open.body, /^http_requests_total\{method="GET",route="\/v1\/tracks",status_class="2xx"\} 1$/m)
      assert.ok(open.body.endsWith('# EOF\n'))
      // And a later Prometheus scrape is unaffected.
      assert.match(await scrape(m), /^# TYPE http_requests_total counter$/m)
    }),
  )

  it(
    'ignores a malformed trace id rather than failing the request',
    withRegistry({ runtimeMetrics: false, currentTraceId: () => 'not-a-trace' }, async (m) => {
      m.requestStarted()
      m.requestFinished('GET', '/', 200, 0.03)
      const body = await scrape(m, 'application/openmetrics-text')
      assert.doesNotMatch(body, /trace_id/)
      assert.match(body, /^http_requests_total\{method="GET",route="\/",status_class="2xx"\} 1$/m)
    }),
  )

  it('negotiates the format from Accept', () => {
    assert.equal(negotiateFormat(undefined), 'prometheus')
    assert.equal(negotiateFormat('*/*'), 'prometheus')
    assert.equal(negotiateFormat('application/openmetrics-text;version=1.0.0;q=0.8,text/plain;q=0.2'), 'openmetrics')
    assert.equal(negotiateFormat('application/openmetrics-text;q=0, text/plain'), 'prometheus')
  })

  it(
    'exposes process and runtime metrics',
    withRegistry({}, async (m) => {
      const body = await scrape(m)
      for (const type of ['rss', 'heap_used', 'heap_total', 'external']) assert.match(body, new RegExp(`^memory_usage_bytes\\{type="${type}"\\} [1-9]\\d*$`, 'm'))
      for (const name of ['cpu_usage_percent', 'event_loop_delay_p50_seconds', 'event_loop_delay_p99_seconds', 'event_loop_delay_max_seconds', 'event_loop_utilization_ratio']) {
        assert.match(body, new RegExp(`^# TYPE ${name} gauge$`, 'm'))
        assert.match(body, new RegExp(`^${name} [\\d.e+-]+$`, 'm'), name)
      }
      assert.match(body, /^# TYPE gc_duration_seconds histogram$/m)
    }),
  )

  it(
    'computes cpu_usage_percent over the wall time since the previous scrape',
    async () => {
      let now = 0
      const m = new MetricsRegistry({ now: () => now })
      try {
        now = 1e9 // the process cannot have used more than this much CPU
        const value = Number(/^cpu_usage_percent (\S+)$/m.exec(await scrape(m))?.[1])
        assert.ok(value >= 0 && value < 1, `got ${String(value)}`)
      } finally {
        m.close()
      }
    },
  )

  it(
    'adds the prefix to every name and can include prom-client default metrics',
    withRegistry({ namePrefix: 'backbeat_', collectDefaultMetrics: true }, async (m) => {
      const body = await scrape(m)
      assert.match(body, /^# TYPE backbeat_http_requests_total counter$/m)
      assert.match(body, /^# TYPE backbeat_memory_usage_bytes gauge$/m)
      assert.match(body, /^# TYPE backbeat_process_cpu_user_seconds_total counter$/m)
      assert.match(body, /^# TYPE backbeat_nodejs_heap_size_total_bytes gauge$/m)
      assert.doesNotMatch(body, /^# TYPE http_/m)
      assert.doesNotMatch(body, /^# TYPE \S+_total (gauge|histogram)$/m, '_total only on counters')
    }),
  )

  it('rejects invalid options with every issue listed', () => {
    assert.throws(
      () => new MetricsRegistry({ routeLabelLimit: 0, buckets: { durationSeconds: [1, 0.5] }, namePrefix: 'Bad-' }),
      (err: unknown) => err instanceof ConfigError && ['metrics.routeLabelLimit', 'metrics.buckets.durationSeconds', 'metrics.namePrefix'].every((p) => err.issues.some((i) => i.path === p)),
    )
  })
})

describe('business metrics', () => {
  it(
    'declares typed counters and histograms under business_',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      const created = m.business('playlist_created', { type: 'counter', help: 'Playlists created.', labelNames: ['tier'] })
      created.inc({ tier: 'premium' })
      created.inc({ tier: 'premium' }, 2)
      const size = m.business('playlist_size', { type: 'histogram', help: 'Tracks per playlist.', labelNames: ['tier'], buckets: [10, 100] })
      size.observe({ tier: 'free' }, 42)
      const total = m.business('signups', { type: 'counter', help: 'Sign-ups.' })
      total.inc({})
      assert.equal(created.name, 'business_playlist_created_total')
      const body = await scrape(m)
      assert.match(body, /^# TYPE business_playlist_created_total counter$/m)
      assert.match(body, /^business_playlist_created_total\{tier="premium"\} 3$/m)
      assert.match(body, /^business_playlist_size_bucket\{le="100",tier="free"\} 1$/m)
      assert.match(body, /^business_signups_total 1$/m)
    }),
  )

  it(
    'rejects bad names, bad labels and duplicates with a ConfigError',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      const rejects = (run: () => unknown, pattern: RegExp): void => {
        assert.throws(run, (err: unknown) => err instanceof ConfigError && pattern.test(err.message))
      }
      rejects(() => m.business('PlaylistCreated', { type: 'counter', help: 'x' }), /snake_case/)
      rejects(() => m.business('playlist__created', { type: 'counter', help: 'x' }), /snake_case/)
      rejects(() => m.business('plays', { type: 'counter', help: ' ' }), /help: is required/)
      rejects(() => m.business('plays_total', { type: 'histogram', help: 'x' }), /only counters end in _total/)
      rejects(() => m.business('plays', { type: 'histogram', help: 'x', labelNames: ['le'] }), /not a valid label name/)
      rejects(() => m.business('plays', { type: 'counter', help: 'x', labelNames: ['tier', 'tier'] }), /declared twice/)
      m.business('plays', { type: 'counter', help: 'x' })
      rejects(() => m.business('plays', { type: 'counter', help: 'x' }), /already registered/)
      await Promise.resolve()
    }),
  )

  it(
    'rejects undeclared or missing labels when used',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      const created = m.business('playlist_created', { type: 'counter', help: 'Playlists created.', labelNames: ['tier'] })
      assert.throws(() => {
        created.inc({ tier: 'free', country: 'FR' } as unknown as { tier: string })
      }, /has no label "country"; declared: tier/)
      assert.throws(() => {
        created.inc({} as unknown as { tier: string })
      }, /needs the label\(s\) tier/)
      assert.throws(() => {
        created.inc({ tier: 'free' }, -1)
      }, /non-negative/)
      await Promise.resolve()
    }),
  )

  it(
    'caps distinct label values at labelValueLimit (1000 values, limit 100)',
    withRegistry({ runtimeMetrics: false, labelValueLimit: 100 }, async (m) => {
      const searches = m.business('search', { type: 'counter', help: 'Searches.', labelNames: ['query'] })
      for (let i = 0; i < 1000; i++) searches.inc({ query: `q${String(i)}` })
      const series = lines(await scrape(m), 'business_search_total{')
      assert.equal(series.length, 101)
      assert.ok(series.includes('business_search_total{query="_overflow"} 900'))
    }),
  )
})

describe('collectors', () => {
  const tiers = {
    l1: { hits: 10, misses: 2, stale: 1, errors: 0, sets: 5, evictions: 3, bytesRead: 0, bytesWritten: 2048 },
    l2: { hits: 4, misses: 1, stale: 0, errors: 7, sets: 2, evictions: 0, bytesRead: 900, bytesWritten: 1200 },
  }

  it(
    'exposes a cache engine\'s tier counters at scrape time',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      let current = tiers
      const source: CacheStatsSource = { stats: () => current }
      m.registerCollector('cache:tracks', cacheCollector('tracks', source))
      m.registerCollector('cache:albums', cacheCollector('albums', { stats: () => ({ l1: tiers.l1 }) }))
      let body = await scrape(m)
      assert.match(body, /^# TYPE cache_hits_total counter$/m)
      assert.equal(lines(body, '# TYPE cache_hits_total').length, 1, 'families of several caches are merged')
      assert.match(body, /^cache_hits_total\{cache="tracks",tier="l1"\} 10$/m)
      assert.match(body, /^cache_hits_total\{cache="albums",tier="l1"\} 10$/m)
      assert.match(body, /^cache_errors_total\{cache="tracks",tier="l2"\} 7$/m)
      assert.match(body, /^cache_read_bytes_total\{cache="tracks",tier="l2"\} 900$/m)
      assert.match(body, /^cache_written_bytes_total\{cache="tracks",tier="l1"\} 2048$/m)
      assert.match(body, /^cache_evictions_total\{cache="tracks",tier="l1"\} 3$/m)
      assert.match(body, /^cache_stale_total\{cache="tracks",tier="l1"\} 1$/m)
      assert.match(body, /^cache_sets_total\{cache="tracks",tier="l2"\} 2$/m)
      assert.match(body, /^cache_misses_total\{cache="tracks",tier="l2"\} 1$/m)
      current = { ...tiers, l1: { ...tiers.l1, hits: 11 } }
      body = await scrape(m)
      assert.match(body, /^cache_hits_total\{cache="tracks",tier="l1"\} 11$/m)
    }),
  )

  it(
    'leaves out a collector that throws or reports a bad metric, and counts it',
    withRegistry({ runtimeMetrics: false }, async (m) => {
      m.registerCollector('broken', () => {
        throw new Error('boom')
      })
      m.registerCollector('misnamed', () => [{ name: 'queue_depth', help: 'x', type: 'counter', samples: [{ value: 1 }] }])
      assert.throws(() => {
        m.registerCollector('broken', () => [])
      }, ConfigError)
      const body = await scrape(m)
      assert.match(body, /^metrics_collector_errors_total\{collector="broken"\} 1$/m)
      assert.match(body, /^metrics_collector_errors_total\{collector="misnamed"\} 1$/m)
      assert.doesNotMatch(body, /queue_depth/)
    }),
  )

  it(
    'caps label values reported by collectors',
    withRegistry({ runtimeMetrics: false, labelValueLimit: 3 }, async (m) => {
      m.registerCollector('tenants', () => [{ name: 'tenant_jobs', help: 'Queued jobs per tenant.', type: 'gauge', samples: ['a', 'b', 'c', 'd', 'e'].map((t) => ({ labels: { tenant: t }, value: 1 })) }])
      const series = lines(await scrape(m), 'tenant_jobs{')
      assert.deepEqual(series.filter((l) => l.includes('_overflow')).length, 2)
    }),
  )
})
