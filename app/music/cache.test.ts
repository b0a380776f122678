import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { MusicApp } from '../create-music-app.ts'
import { DEMO_ACCOUNTS, DEMO_PASSWORD } from './accounts.ts'
import { openMusic } from './test-app.ts'

describe('music API: catalogue reads come from the response cache', () => {
  let music: MusicApp
  let trackId = ''
  const [listener, , admin] = DEMO_ACCOUNTS as [(typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number], (typeof DEMO_ACCOUNTS)[number]]

  before(async () => {
    music = await openMusic()
    const list = await music.app.inject('/v1/tracks?limit=1')
    trackId = (JSON.parse(list.body) as { items: { id: string }[] }).items[0]?.id ?? ''
    assert.notEqual(trackId, '')
  })
  after(async () => {
    await music.app.close()
  })

  const token = async (email: string): Promise<string> => {
    const res = await music.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: email, password: DEMO_PASSWORD } })
    return (JSON.parse(res.body) as { access_token: string }).access_token
  }

  it('answers the second identical GET with X-Cache: HIT (the users\' acceptance test)', async () => {
    for (const url of [`/v1/tracks/${trackId}`, '/v1/albums?limit=2', '/v1/artists?limit=2', '/v1/search?q=blue&type=track']) {
      const first = await music.app.inject(url)
      assert.equal(first.statusCode, 200, url)
      assert.equal(first.headers['cache-control'], 'public, max-age=60, stale-while-revalidate=300, stale-if-error=600', url)
      const second = await music.app.inject(url)
      assert.equal(second.statusCode, 200, url)
      assert.equal(second.headers['x-cache'], 'HIT', url)
      assert.match(String(second.headers['cache-status']), /^backbeat; hit; ttl=\d+$/, url)
      assert.equal(second.body, first.body, url)
      // Per-request fields are the hit's own, not the stored response's.
      assert.notEqual(second.headers['x-request-id'], first.headers['x-request-id'], url)
    }
  })

  it('answers a conditional GET with 304 from the cache', async () => {
    const first = await music.app.inject(`/v1/tracks/${trackId}`)
    const etag = first.headers['etag']
    assert.equal(typeof etag, 'string')
    const conditional = await music.app.inject({ url: `/v1/tracks/${trackId}`, headers: { 'if-none-match': String(etag) } })
    assert.equal(conditional.statusCode, 304)
    assert.equal(conditional.body, '')
  })

  it('serves public catalogue responses to signed-in listeners too, and never caches their own data', async () => {
    const bearer = `Bearer ${await token(listener.email)}`
    await music.app.inject(`/v1/albums?limit=3`)
    const hit = await music.app.inject({ url: '/v1/albums?limit=3', headers: { authorization: bearer } })
    assert.equal(hit.headers['x-cache'], 'HIT')
    const me = await music.app.inject({ url: '/v1/me', headers: { authorization: bearer } })
    assert.equal(me.statusCode, 200)
    const meAgain = await music.app.inject({ url: '/v1/me', headers: { authorization: bearer } })
    assert.equal(meAgain.headers['x-cache'], 'MISS')
    assert.match(String(meAgain.headers['cache-status']), /detail=authorization/)
  })

  it('lets an admin purge by tag, and refuses a listener', async () => {
    const url = `/v1/tracks/${trackId}`
    await music.app.inject(url)
    assert.equal((await music.app.inject(url)).headers['x-cache'], 'HIT')
    const denied = await music.app.inject({ method: 'POST', url: '/ops/cache/purge', headers: { authorization: `Bearer ${await token(listener.email)}` }, payload: { tags: [`track:${trackId}`] } })
    assert.equal(denied.statusCode, 403)
    const anonymous = await music.app.inject({ method: 'POST', url: '/ops/cache/purge', payload: { tags: [`track:${trackId}`] } })
    assert.equal(anonymous.statusCode, 401)
    const purged = await music.app.inject({ method: 'POST', url: '/ops/cache/purge', headers: { authorization: `Bearer ${await token(admin.email)}` }, payload: { tags: [`track:${trackId}`] } })
    assert.equal(purged.statusCode, 200)
    assert.deepEqual(JSON.parse(purged.body), { purged: [`track:${trackId}`] })
    const after = await music.app.inject(url)
    assert.equal(after.headers['x-cache'], 'MISS')
    const bad = await music.app.inject({ method: 'POST', url: '/ops/cache/purge', headers: { authorization: `Bearer ${await token(admin.email)}` }, payload: { tags: ['not a tag'] } })
    assert.equal(bad.statusCode, 400)
    assert.equal((JSON.parse(bad.body) as { code: string }).code, 'ERR_CACHE_PURGE_INVALID')
  })

  it('shows the caches\' counters to admins at /ops/cache, and nobody else', async () => {
    const res = await music.app.inject({ url: '/ops/cache', headers: { authorization: `Bearer ${await token(admin.email)}` } })
    assert.equal(res.statusCode, 200)
    const body = res.json<{ caches: Record<string, { tiers: Record<string, { hits: number }> }> }>()
    assert.ok((body.caches['http']?.tiers['l1']?.hits ?? 0) > 0, JSON.stringify(body))
    assert.equal((await music.app.inject({ url: '/ops/cache', headers: { authorization: `Bearer ${await token(listener.email)}` } })).statusCode, 403)
    assert.equal((await music.app.inject('/ops/cache')).statusCode, 401)
  })

  it('answers only-if-cached with 504 problem+json when nothing is stored', async () => {
    const res = await music.app.inject({ url: '/v1/artists?limit=7&offset=3', headers: { 'cache-control': 'only-if-cached' } })
    assert.equal(res.statusCode, 504)
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'ERR_CACHE_NOT_CACHED')
  })
})
