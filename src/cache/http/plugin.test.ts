import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import { MemoryCacheStore } from '../memory-store.ts'
import { TieredCache } from '../tiered-cache.ts'
import { responseCachePlugin } from './plugin.ts'
import { HttpResponseCache } from './response-cache.ts'
import type { ResponseCachePluginOptions } from './plugin.ts'

interface Harness {
  app: FastifyInstance
  calls: () => number
  clock: { now: number }
}

/** An app with one counting route whose response headers and status each test sets. */
async function harness(
  route: { headers?: Record<string, string>; status?: number | (() => number); body?: () => string } = {},
  options: Partial<ResponseCachePluginOptions> & { tiers?: MemoryCacheStore[] } = {},
): Promise<Harness> {
  // A settable clock that starts at the wall clock: remote tiers given in `tiers` keep their own (real) time.
  const clock = { now: Date.now() }
  const now = () => clock.now
  const { tiers = [], ...rest } = options
  const cache = new TieredCache({ namespace: 'http', jitter: 0, now, tiers })
  const app = Fastify()
  await app.register(responseCachePlugin, { cache, now, ...rest } as ResponseCachePluginOptions)
  let count = 0
  const handler = async (request: { headers: Record<string, unknown> }, reply: { code: (n: number) => unknown; header: (k: string, v: string) => unknown }) => {
    count++
    const status = typeof route.status === 'function' ? route.status() : (route.status ?? 200)
    void reply.code(status)
    for (const [k, v] of Object.entries(route.headers ?? {})) void reply.header(k, v)
    if (status === 200 && route.headers?.['etag'] !== undefined && request.headers['if-none-match'] === route.headers['etag']) {
      void reply.code(304)
      return ''
    }
    return route.body?.() ?? `body ${count}`
  }
  app.get('/r', handler as never)
  app.post('/r', async () => {
    count++
    return 'written'
  })
  app.delete('/r', { config: { cache: false } }, async () => 'deleted')
  app.get('/private', { config: { cache: false } }, async () => {
    count++
    return 'x'
  })
  app.get('/default', { config: { cache: { cacheControl: 'public, max-age=60', tags: ['catalog', 'bad tag!'] } } }, async () => {
    count++
    return { n: count }
  })
  await app.ready()
  return { app, calls: () => count, clock }
}

describe('responseCachePlugin', () => {
  it('serves a fresh response from storage with Age, X-Cache and Cache-Status', async () => {
    const { app, calls, clock } = await harness({ headers: { 'cache-control': 'max-age=60', 'content-type': 'text/plain' } })
    const first = await app.inject('/r')
    assert.equal(first.headers['x-cache'], 'MISS')
    assert.equal(first.headers['cache-status'], 'backbeat; fwd=uri-miss; fwd-status=200; stored')
    clock.now += 10_000
    const second = await app.inject('/r')
    assert.equal(second.body, 'body 1')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.headers['age'], '10')
    assert.equal(second.headers['cache-status'], 'backbeat; hit; ttl=50')
    assert.equal(second.headers['content-type'], 'text/plain')
    assert.equal(calls(), 1)
    clock.now += 51_000
    const third = await app.inject('/r')
    assert.equal(third.body, 'body 2')
    assert.equal(third.headers['x-cache'], 'MISS')
    assert.match(String(third.headers['cache-status']), /fwd=stale/)
  })

  it('does not store no-store, private, or Authorization requests without public', async () => {
    for (const cc of ['no-store', 'private, max-age=60']) {
      const { app, calls } = await harness({ headers: { 'cache-control': cc } })
      await app.inject('/r')
      const again = await app.inject('/r')
      assert.equal(again.headers['x-cache'], 'MISS', cc)
      assert.equal(calls(), 2, cc)
    }
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60' } })
    await app.inject({ url: '/r', headers: { authorization: 'Bearer x' } })
    const again = await app.inject('/r')
    assert.equal(again.headers['x-cache'], 'MISS')
    assert.equal(calls(), 2)
    // Stored from an anonymous request without `public`: not for a request with credentials (§3.5).
    const anonymous = await harness({ headers: { 'cache-control': 'max-age=60' } })
    await anonymous.app.inject('/r')
    const withCredentials = await anonymous.app.inject({ url: '/r', headers: { authorization: 'Bearer x' } })
    assert.equal(withCredentials.headers['x-cache'], 'MISS')
    assert.match(String(withCredentials.headers['cache-status']), /fwd=request; detail=credentials/)
    assert.equal((await anonymous.app.inject('/r')).headers['x-cache'], 'HIT')
    const shared = await harness({ headers: { 'cache-control': 'public, max-age=60' } })
    await shared.app.inject({ url: '/r', headers: { authorization: 'Bearer x' } })
    assert.equal((await shared.app.inject({ url: '/r', headers: { authorization: 'Bearer y' } })).headers['x-cache'], 'HIT')
  })

  it('keys variants by the Vary fields', async () => {
    let n = 0
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, body: () => `v${++n}` })
    assert.equal((await app.inject({ url: '/r', headers: { 'accept-language': 'fr' } })).body, 'v1')
    assert.equal((await app.inject({ url: '/r', headers: { 'accept-language': 'de' } })).body, 'v2')
    const fr = await app.inject({ url: '/r', headers: { 'accept-language': 'fr' } })
    assert.equal(fr.body, 'v1')
    assert.equal(fr.headers['x-cache'], 'HIT')
    assert.equal((await app.inject({ url: '/r', headers: { 'accept-language': 'de' } })).body, 'v2')
    // Accept-Language members are case-insensitive and unordered: one variant.
    assert.equal((await app.inject({ url: '/r', headers: { 'accept-language': 'DE' } })).headers['x-cache'], 'HIT')
    const none = await app.inject('/r')
    assert.equal(none.headers['x-cache'], 'MISS')
    assert.match(String(none.headers['cache-status']), /fwd=vary-miss/)
    assert.equal(calls(), 3)
  })

  it('answers If-None-Match from storage with 304', async () => {
    const { app } = await harness({ headers: { 'cache-control': 'max-age=60', etag: '"abc"' } })
    await app.inject('/r')
    const hit = await app.inject({ url: '/r', headers: { 'if-none-match': 'W/"abc"' } })
    assert.equal(hit.statusCode, 304)
    assert.equal(hit.body, '')
    assert.equal(hit.headers['etag'], '"abc"')
    const other = await app.inject({ url: '/r', headers: { 'if-none-match': '"zzz"' } })
    assert.equal(other.statusCode, 200)
  })

  it('revalidates a stale response with its validator, freshening it on 304', async () => {
    const { app, calls, clock } = await harness({ headers: { 'cache-control': 'max-age=10', etag: '"v1"' } })
    await app.inject('/r')
    clock.now += 20_000
    const revalidated = await app.inject('/r')
    assert.equal(revalidated.statusCode, 200)
    assert.equal(revalidated.body, 'body 1')
    assert.equal(revalidated.headers['x-cache'], 'HIT')
    assert.match(String(revalidated.headers['cache-status']), /fwd=stale; fwd-status=304/)
    assert.equal(calls(), 2)
    clock.now += 5_000
    const fresh = await app.inject('/r')
    assert.equal(fresh.headers['x-cache'], 'HIT')
    assert.equal(fresh.headers['age'], '5')
    assert.equal(calls(), 2)
  })

  it('serves stale while revalidating in the background', async () => {
    const { app, calls, clock } = await harness({ headers: { 'cache-control': 'max-age=10, stale-while-revalidate=60' } })
    await app.inject('/r')
    clock.now += 20_000
    const stale = await app.inject('/r')
    assert.equal(stale.body, 'body 1')
    assert.equal(stale.headers['x-cache'], 'STALE')
    // The background refresh stores body 2.
    for (let i = 0; i < 50 && calls() < 2; i++) await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, 20))
    const next = await app.inject('/r')
    assert.equal(next.body, 'body 2')
    assert.equal(next.headers['x-cache'], 'HIT')
    await app.close()
  })

  it('serves stale on a 5xx within stale-if-error, not past it', async () => {
    let status = 200
    const { app, clock } = await harness({ headers: { 'cache-control': 'max-age=10, stale-if-error=60' }, status: () => status })
    await app.inject('/r')
    status = 503
    clock.now += 30_000
    const stale = await app.inject('/r')
    assert.equal(stale.statusCode, 200)
    assert.equal(stale.body, 'body 1')
    assert.equal(stale.headers['x-cache'], 'STALE')
    assert.match(String(stale.headers['cache-status']), /fwd-status=503; ttl=-20; detail=stale-if-error/)
    clock.now += 60_000
    assert.equal((await app.inject('/r')).statusCode, 503)
  })

  it('invalidates the URI after a successful unsafe request', async () => {
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60' } })
    await app.inject('/r')
    assert.equal((await app.inject('/r')).headers['x-cache'], 'HIT')
    const post = await app.inject({ method: 'POST', url: '/r' })
    assert.equal(post.headers['x-cache'], 'BYPASS')
    const after = await app.inject('/r')
    assert.equal(after.headers['x-cache'], 'MISS')
    assert.equal(calls(), 3)
  })

  it('honours request directives: no-cache, max-age, min-fresh, max-stale, only-if-cached', async () => {
    const { app, calls, clock } = await harness({ headers: { 'cache-control': 'max-age=60' } })
    const onlyMiss = await app.inject({ url: '/r', headers: { 'cache-control': 'only-if-cached' } })
    assert.equal(onlyMiss.statusCode, 504)
    await app.inject('/r')
    clock.now += 30_000
    assert.equal((await app.inject({ url: '/r', headers: { 'cache-control': 'only-if-cached' } })).headers['x-cache'], 'HIT')
    assert.equal((await app.inject({ url: '/r', headers: { 'cache-control': 'max-age=10' } })).headers['x-cache'], 'MISS')
    clock.now += 30_000
    assert.equal((await app.inject({ url: '/r', headers: { 'cache-control': 'min-fresh=40' } })).headers['x-cache'], 'MISS')
    const before = calls()
    clock.now += 70_000
    assert.equal((await app.inject({ url: '/r', headers: { 'cache-control': 'max-stale=120' } })).headers['x-cache'], 'STALE')
    assert.equal((await app.inject({ url: '/r', headers: { pragma: 'no-cache' } })).headers['x-cache'], 'MISS')
    assert.equal(calls(), before + 1)
  })

  it('applies route defaults and tags, hides surrogate keys, and purges by tag', async () => {
    const { app, calls } = await harness({}, { purge: { path: '/purge' } })
    const first = await app.inject('/default')
    assert.equal(first.headers['cache-control'], 'public, max-age=60')
    assert.equal((await app.inject('/default')).headers['x-cache'], 'HIT')
    const purged = await app.inject({ method: 'POST', url: '/purge', payload: { tags: ['catalog'] } })
    assert.equal(purged.statusCode, 200)
    assert.equal((await app.inject('/default')).headers['x-cache'], 'MISS')
    assert.equal(calls(), 2)
    const bad = await app.inject({ method: 'POST', url: '/purge', payload: { tags: ['no spaces'] } })
    assert.equal(bad.statusCode, 400)
  })

  it('never touches a route with cache: false', async () => {
    const { app, calls } = await harness()
    await app.inject('/private')
    const again = await app.inject('/private')
    assert.equal(again.headers['x-cache'], undefined)
    assert.equal(calls(), 2)
  })

  it('shares stored responses between instances through a remote tier', async () => {
    // The store's clock is the wall clock, so the instances' clocks start from it too.
    const shared = new MemoryCacheStore()
    const a = await harness({ headers: { 'cache-control': 'max-age=60' } }, { tiers: [shared] })
    const b = await harness({ headers: { 'cache-control': 'max-age=60' } }, { tiers: [shared] })
    await a.app.inject('/r')
    const hit = await b.app.inject('/r')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.equal(hit.body, 'body 1')
    assert.equal(b.calls(), 0)
  })

  it('serves one byte range of a stored response as 206, and HEAD from a stored GET', async () => {
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60', etag: '"r1"' }, body: () => '0123456789' })
    await app.inject('/r')
    const partial = await app.inject({ url: '/r', headers: { range: 'bytes=2-4' } })
    assert.equal(partial.statusCode, 206)
    assert.equal(partial.body, '234')
    assert.equal(partial.headers['content-range'], 'bytes 2-4/10')
    assert.equal((await app.inject({ url: '/r', headers: { range: 'bytes=-3' } })).body, '789')
    assert.equal((await app.inject({ url: '/r', headers: { range: 'bytes=20-' } })).statusCode, 416)
    // Several ranges, another unit, garbage, or an If-Range that does not match: the whole body.
    for (const range of ['bytes=0-1,3-4', 'items=1-2', 'bytes=x-y', 'bytes=5-2']) assert.equal((await app.inject({ url: '/r', headers: { range } })).statusCode, 200, range)
    assert.equal((await app.inject({ url: '/r', headers: { range: 'bytes=0-1', 'if-range': '"other"' } })).statusCode, 200)
    assert.equal((await app.inject({ url: '/r', headers: { range: 'bytes=0-1', 'if-range': '"r1"' } })).statusCode, 206)
    const head = await app.inject({ method: 'HEAD', url: '/r' })
    assert.equal(head.statusCode, 200)
    assert.equal(head.headers['x-cache'], 'HIT')
    assert.equal(head.headers['content-length'], '10')
    assert.equal(calls(), 1)
  })

  it('bad input: oversized bodies, malformed headers and corrupted entries never fail a request', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024)
    const large = await harness({ headers: { 'cache-control': 'max-age=60' }, body: () => big }, { maxBodyBytes: 1024 * 1024 })
    const first = await large.app.inject('/r')
    assert.equal(first.body.length, big.length)
    assert.match(String(first.headers['cache-status']), /detail=too-large/)
    assert.equal((await large.app.inject('/r')).headers['x-cache'], 'MISS')

    const { app } = await harness({ headers: { 'cache-control': 'max-age=60', etag: '"e"' } })
    await app.inject('/r')
    for (const headers of [
      { 'cache-control': 'max-age=abc, max-stale=-1, min-fresh=x, "unterminated' },
      { 'if-none-match': 'W/"unterminated' },
      { 'if-modified-since': 'Tue, 99 Foo 2026 99:99:99 GMT' },
      { range: 'bytes=99999999999999999999-' },
      { pragma: 'no-cache, garbage' },
    ]) {
      const res = await app.inject({ url: '/r', headers })
      assert.ok(res.statusCode === 200 || res.statusCode === 206 || res.statusCode === 416, JSON.stringify(headers))
    }
    const longUrl = `/r?${'q'.repeat(16_000)}`
    assert.equal((await app.inject(longUrl)).statusCode, 200)
    assert.equal((await app.inject(longUrl)).headers['x-cache'], 'HIT')

    // An entry that is not a stored response (another version, a corrupted tier) is a miss.
    const corrupted = await harness({ headers: { 'cache-control': 'max-age=60' } })
    const key = corrupted.app.responseCache.primaryKey({ host: 'localhost:80', url: '/r' })
    await corrupted.app.responseCache.options.cache.set(key, { kind: 'response', status: 'two hundred', body: 42 })
    const res = await corrupted.app.inject('/r')
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['x-cache'], 'MISS')
    assert.equal(corrupted.calls(), 1)
  })

  it('keeps answering when a remote tier fails or hangs', async () => {
    const failing = new MemoryCacheStore()
    failing.get = () => Promise.reject(new Error('connection reset'))
    failing.set = () => Promise.reject(new Error('connection reset'))
    const broken = await harness({ headers: { 'cache-control': 'max-age=60' } }, { tiers: [failing] })
    for (let i = 0; i < 3; i++) assert.equal((await broken.app.inject('/r')).statusCode, 200)
    // L1 still serves.
    assert.equal((await broken.app.inject('/r')).headers['x-cache'], 'HIT')

    const hanging = new MemoryCacheStore()
    hanging.get = () => new Promise(() => undefined)
    hanging.set = () => new Promise(() => undefined)
    const clock = { now: Date.UTC(2026, 10, 22) }
    const cache = new TieredCache({ namespace: 'http', jitter: 0, l1: false, tiers: [hanging], tierTimeoutMs: 50, now: () => clock.now })
    const app = Fastify()
    await app.register(responseCachePlugin, { cache, now: () => clock.now })
    app.get('/r', async (_request, reply) => reply.header('cache-control', 'max-age=60').send('ok'))
    const started = performance.now()
    const res = await app.inject('/r')
    assert.equal(res.statusCode, 200)
    assert.ok(performance.now() - started < 1_000, 'bounded by the tier timeout')
  })

  it('never keys a response by a Host that could alias another target (cache poisoning)', async () => {
    let n = 0
    const { app } = await harness({ headers: { 'cache-control': 'max-age=60' }, body: () => `body ${++n}` })
    for (const host of ['api.example/r', 'api.example r', 'user@api.example', 'api.example:99999999']) {
      const res = await app.inject({ url: '/', headers: { host } }).catch(() => undefined)
      if (res !== undefined) assert.notEqual(res.headers['x-cache'], 'HIT', host)
      const poisoned = await app.inject({ url: '/r', headers: { host } })
      assert.equal(poisoned.headers['x-cache'], 'BYPASS', host)
    }
    // The legitimate request is unaffected.
    const clean = await app.inject({ url: '/r', headers: { host: 'api.example' } })
    assert.equal(clean.headers['x-cache'], 'MISS')
    assert.equal((await app.inject({ url: '/r', headers: { host: 'API.example' } })).headers['x-cache'], 'HIT')
  })

  it('keeps a revalidating client\'s cookie, and a CSP nonce, out of the shared entry', async () => {
    let cookie = false
    const clock = { now: Date.UTC(2026, 10, 22) }
    const cache = new TieredCache({ namespace: 'http', jitter: 0, now: () => clock.now })
    const app = Fastify()
    await app.register(responseCachePlugin, { cache, now: () => clock.now })
    app.get('/r', async (request, reply) => {
      void reply.header('cache-control', 'max-age=10').header('etag', '"v1"')
      if (cookie) void reply.header('set-cookie', 'sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT')
      if (request.headers['if-none-match'] === '"v1"') return reply.code(304).send()
      return 'body'
    })
    app.get('/page', async (_request, reply) => reply.header('cache-control', 'public, max-age=60').header('content-security-policy', "script-src 'nonce-abc123'").send('<script nonce="abc123"></script>'))
    await app.inject('/r')
    clock.now += 20_000
    cookie = true
    const revalidated = await app.inject('/r')
    assert.equal(revalidated.headers['x-cache'], 'HIT')
    cookie = false
    const next = await app.inject('/r')
    assert.equal(next.headers['x-cache'], 'HIT')
    assert.equal(next.headers['set-cookie'], undefined, 'the cookie was that client\'s alone')
    await app.inject('/page')
    const page = await app.inject('/page')
    assert.equal(page.headers['x-cache'], 'MISS')
    assert.match(String(page.headers['cache-status']), /detail=csp-nonce/)
  })

  it('treats a session cookie like Authorization', async () => {
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60' } }, { credentialCookies: ['sid'] })
    await app.inject({ url: '/r', headers: { cookie: 'theme=dark; sid=alice' } })
    const bob = await app.inject({ url: '/r', headers: { cookie: 'sid=bob' } })
    assert.equal(bob.headers['x-cache'], 'MISS')
    assert.equal(calls(), 2)
    // Other cookies are no credential: shared as usual.
    await app.inject({ url: '/r', headers: { cookie: 'theme=dark; xsid=1' } })
    assert.equal((await app.inject('/r')).headers['x-cache'], 'HIT')
  })

  it('never serves a no-cache response stale on an error, whatever stale-if-error says', async () => {
    let status = 200
    const { app, clock } = await harness({ headers: { 'cache-control': 'no-cache, stale-if-error=600', etag: '"n"' }, status: () => status })
    await app.inject('/r')
    status = 500
    clock.now += 5_000
    assert.equal((await app.inject('/r')).statusCode, 500)
    assert.equal((await app.inject({ url: '/r', headers: { 'cache-control': 'stale-if-error=9999' } })).statusCode, 500)
  })

  it('answers 304 from storage without a body or Content-Type, and 416 for a range of an empty body', async () => {
    const { app } = await harness({ headers: { 'cache-control': 'max-age=60', etag: '"e"', 'content-type': 'text/plain' }, body: () => '' })
    await app.inject('/r')
    const notModified = await app.inject({ url: '/r', headers: { 'if-none-match': '"e"' } })
    assert.equal(notModified.statusCode, 304)
    assert.equal(notModified.headers['content-type'], undefined)
    assert.equal(notModified.body, '')
    const empty = await app.inject({ url: '/r', headers: { range: 'bytes=-5' } })
    assert.equal(empty.statusCode, 416)
    assert.equal(empty.headers['content-range'], 'bytes */0')
  })

  it('invalidates on writes to a route that opted out of caching', async () => {
    const { app, calls } = await harness({ headers: { 'cache-control': 'max-age=60' } })
    await app.inject('/r')
    assert.equal((await app.inject('/r')).headers['x-cache'], 'HIT')
    const deleted = await app.inject({ method: 'DELETE', url: '/r' })
    assert.equal(deleted.statusCode, 200)
    assert.equal((await app.inject('/r')).headers['x-cache'], 'MISS')
    assert.equal(calls(), 2)
  })

  it('collapses concurrent misses for one URI into one handler run', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let runs = 0
    const app = Fastify()
    await app.register(responseCachePlugin, { cache: new TieredCache({ namespace: 'http', jitter: 0 }) })
    app.get('/slow', async (_request, reply) => {
      runs++
      await gate
      return reply.header('cache-control', 'max-age=60').send(`run ${runs}`)
    })
    app.get('/private', async (_request, reply) => {
      runs++
      await gate
      return reply.header('cache-control', 'no-store').send(`private ${runs}`)
    })
    const all = Promise.all(Array.from({ length: 5 }, () => app.inject('/slow')))
    await new Promise((resolve) => setTimeout(resolve, 20))
    release()
    const responses = await all
    assert.equal(runs, 1, 'one handler run for five requests')
    assert.deepEqual(new Set(responses.map((r) => r.body)), new Set(['run 1']))
    assert.equal(responses.filter((r) => /collapsed/.test(String(r.headers['cache-status']))).length, 4)
    assert.equal(responses.filter((r) => r.headers['x-cache'] === 'HIT').length, 4)

    // A response that cannot be stored: the waiters look again, find nothing, and run the handler themselves.
    runs = 0
    const uncached = await Promise.all(Array.from({ length: 3 }, () => app.inject('/private')))
    assert.equal(runs, 3)
    assert.ok(uncached.every((r) => r.statusCode === 200))
    // Requests with credentials never wait for someone else's response.
    runs = 0
    const withCredentials = await Promise.all(Array.from({ length: 2 }, (_, i) => app.inject({ url: '/slow?u', headers: { authorization: `Bearer ${i}` } })))
    assert.equal(runs, 2)
    assert.ok(withCredentials.every((r) => r.statusCode === 200))
  })

  it('stops looking up a URI whose responses cannot be stored (hit-for-pass), until one can', async () => {
    let cacheControl = 'no-store'
    const app = Fastify()
    await app.register(responseCachePlugin, { cache: new TieredCache({ namespace: 'http', jitter: 0 }) })
    app.get('/p', async (_request, reply) => reply.header('cache-control', cacheControl).send('x'))
    assert.match(String((await app.inject('/p')).headers['cache-status']), /fwd=uri-miss; fwd-status=200; detail=no-store/)
    assert.match(String((await app.inject('/p')).headers['cache-status']), /fwd=miss; detail=pass-no-store; fwd-status=200; detail=no-store/)
    cacheControl = 'max-age=60'
    assert.match(String((await app.inject('/p')).headers['cache-status']), /detail=pass-no-store; fwd-status=200; stored/)
    assert.equal((await app.inject('/p')).headers['x-cache'], 'HIT')
    // A client's own no-store is about that request, not the URI.
    const fresh = Fastify()
    await fresh.register(responseCachePlugin, { cache: new TieredCache({ namespace: 'http', jitter: 0 }) })
    fresh.get('/q', async (_request, reply) => reply.header('cache-control', 'max-age=60').send('y'))
    await fresh.inject({ url: '/q', headers: { 'cache-control': 'no-store' } })
    await fresh.inject('/q')
    assert.equal((await fresh.inject('/q')).headers['x-cache'], 'HIT')
  })

  it('accepts a ready HttpResponseCache', async () => {
    const http = new HttpResponseCache({ cache: new TieredCache({ namespace: 'http' }) })
    const app = Fastify()
    await app.register(responseCachePlugin, { http })
    assert.equal(app.responseCache, http)
  })
})
