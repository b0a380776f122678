/* eslint-disable @typescript-eslint/no-floating-promises -- node:test awaits describe/it itself; this suite runs from *.test.ts files */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { MusicApp } from '../create-music-app.ts'
import { toUri } from './ids.ts'
import type { AlbumJson, ArtistJson, PagingJson, PlaylistJson, PlaylistTrackJson, PrivateUserJson, SimplifiedPlaylistJson, TrackJson, UserJson } from './schemas.ts'
import { demoCatalogue } from './seed.ts'

/**
 * The behaviour of the music API, run against every SQL engine: `music-api.test.ts` runs it
 * on embedded PGlite, `test/integration/postgres/music-api.test.ts` on a real PostgreSQL.
 * `open` must return an app on a fresh database (seeded on start); `close` tears it down.
 */
export interface MusicApiHarness {
  open(): Promise<MusicApp>
  /** Called even when `open` failed (`app` is then undefined), so partial set-up is undone. */
  close(app: MusicApp | undefined): Promise<void>
  /** The engine the harness is expected to run on, checked through `/health`. */
  sqlKind: 'pglite' | 'postgres'
}

interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: string
  requestId: string
  errors?: { in: string; pointer: string; detail: string }[]
}

interface Response<T> {
  status: number
  headers: Record<string, string | string[] | number | undefined>
  body: T
}

const WELL_FORMED_UNKNOWN = '0000000000000000000000'
const demo = demoCatalogue()

/** Runs the shared music API suite under `label`. */
export function describeMusicApi(label: string, harness: MusicApiHarness): void {
  describe(label, () => {
    let music: MusicApp
    let opened: MusicApp | undefined

    /** An admin's bearer token: playlist writes need a signed-in owner or admin (auth has its own tests). */
    let adminAuthorization = ''
    before(async () => {
      opened = await harness.open()
      music = opened
      const identity = music.app.identity
      if (identity === null) throw new Error('the music API contract runs with auth enabled')
      adminAuthorization = `Bearer ${(await identity.issuer.issue({ sub: 'contract-admin', roles: ['admin'], scope: '*' })).token}`
    })
    after(async () => {
      await harness.close(opened)
    })

    async function call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Response<T>> {
      const withAuth = method === 'GET' || 'authorization' in headers ? headers : { authorization: adminAuthorization, ...headers }
      const res = await music.app.inject({ method, url, headers: withAuth, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
      return { status: res.statusCode, headers: res.headers, body: (res.body === '' ? undefined : JSON.parse(res.body)) as T }
    }
    const get = <T>(url: string, headers?: Record<string, string>): Promise<Response<T>> => call<T>('GET', url, undefined, headers)

    async function assertProblem(res: Promise<Response<unknown>>, status: number, code: string): Promise<Problem> {
      const { status: actual, body, headers } = await res
      const problem = body as Problem
      assert.equal(actual, status, `expected ${status} ${code}, got ${actual}: ${JSON.stringify(body)}`)
      assert.equal(problem.code, code)
      assert.match(String(headers['content-type']), /^application\/problem\+json/)
      return problem
    }

    async function newUser(name = 'Test Listener'): Promise<PrivateUserJson> {
      const res = await call<PrivateUserJson>('POST', '/v1/users', { display_name: name, email: `${crypto.randomUUID()}@example.com` })
      assert.equal(res.status, 201)
      return res.body
    }

    async function newPlaylist(trackIds: readonly string[] = []): Promise<PlaylistJson> {
      const user = await newUser()
      const res = await call<PlaylistJson>('POST', `/v1/users/${user.id}/playlists`, { name: 'Scratch', public: false })
      assert.equal(res.status, 201)
      if (trackIds.length > 0) {
        const added = await call('POST', `/v1/playlists/${res.body.id}/tracks`, { uris: trackIds.map((id) => toUri('track', id)) })
        assert.equal(added.status, 201)
      }
      return res.body
    }

    async function itemIds(playlistId: string): Promise<string[]> {
      const res = await get<PagingJson<PlaylistTrackJson>>(`/v1/playlists/${playlistId}/tracks?limit=100`)
      assert.equal(res.status, 200)
      return res.body.items.map((item) => item.track.id)
    }

    const trackIds = demo.tracks.slice(0, 8).map((t) => t.id)

    describe('stack', () => {
      it(`runs on ${harness.sqlKind} and reports it healthy`, async () => {
        const live = await get('/health/live')
        assert.equal(live.status, 200)
        const health = await get<{ status: string; checks: Record<string, { status: string; componentType: string }[]> }>('/health')
        assert.equal(health.status, 200)
        const sql = health.body.checks[`${harness.sqlKind}:responseTime`]?.[0]
        assert.equal(sql?.status, 'pass')
        assert.equal(sql.componentType, 'datastore')
      })

      it('answers 405 with Allow for a known path and the wrong method', async () => {
        const res = call('PATCH', '/v1/tracks')
        const problem = await assertProblem(res, 405, 'ERR_HTTP_METHOD_NOT_ALLOWED')
        assert.match(problem.detail, /allowed: GET/)
        assert.equal((await res).headers.allow, 'GET, HEAD')
        const playlist = await call('POST', `/v1/playlists/${WELL_FORMED_UNKNOWN}`)
        assert.equal(playlist.status, 405)
        assert.equal(playlist.headers.allow, 'DELETE, GET, HEAD, PUT')
      })

      it('answers 404 ERR_HTTP_ROUTE_NOT_FOUND for a path outside the API', async () => {
        await assertProblem(get('/v1/podcasts'), 404, 'ERR_HTTP_ROUTE_NOT_FOUND')
      })

      it('rejects unknown query parameters with 400 ERR_VALIDATION_FAILED pointing at them', async () => {
        for (const url of ['/v1/tracks?limt=5', `/v1/albums/${demo.albums[0]?.id ?? ''}/tracks?sort=name`, '/v1/search?q=love&type=track&market=SE', '/v1/users?page=2']) {
          const problem = await assertProblem(get(url), 400, 'ERR_VALIDATION_FAILED')
          assert.equal(problem.errors?.[0]?.in, 'querystring', url)
          assert.match(problem.errors[0].pointer, /^\/(limt|sort|market|page)$/, url)
        }
      })

      it('rejects out-of-range paging with 400 ERR_VALIDATION_FAILED', async () => {
        await assertProblem(get('/v1/tracks?limit=0'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/tracks?limit=51'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/artists?offset=-1'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/albums?limit=ten'), 400, 'ERR_VALIDATION_FAILED')
      })
    })

    describe('input bounds', () => {
      const SNAPSHOT_LIKE = '0000000000000000000000'

      it('answers 400, not 500, for an integer beyond its range anywhere in a request', async () => {
        const playlist = await newPlaylist(trackIds.slice(0, 3))
        const uri = toUri('track', trackIds[0] ?? '')
        const tracks = `/v1/playlists/${playlist.id}/tracks`
        for (const position of [3_000_000_000, 1e300, 10_000]) {
          const problem = await assertProblem(call('DELETE', tracks, { tracks: [{ uri, positions: [position] }] }), 400, 'ERR_VALIDATION_FAILED')
          assert.equal(problem.errors?.[0]?.in, 'body')
          assert.equal(problem.errors[0].pointer, '/tracks/0/positions/0')
        }
        await assertProblem(call('POST', tracks, { uris: [uri], position: 3_000_000_000 }), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('POST', tracks, { uris: [uri], position: 1e300 }), 400, 'ERR_VALIDATION_FAILED')
        for (const body of [{ range_start: 1e300, insert_before: 0 }, { range_start: 0, insert_before: 3_000_000_000 }, { range_start: 0, insert_before: 2, range_length: 3_000_000_000 }]) {
          await assertProblem(call('PUT', tracks, body), 400, 'ERR_VALIDATION_FAILED')
        }
        for (const url of ['/v1/tracks?offset=3000000000', '/v1/albums?offset=1e300', '/v1/users?offset=100001', `${tracks}?offset=10001`, '/v1/search?q=a&type=track&offset=1e300', '/v1/artists?limit=3000000000']) {
          const problem = await assertProblem(get(url), 400, 'ERR_VALIDATION_FAILED')
          assert.equal(problem.errors?.[0]?.in, 'querystring', url)
        }
        assert.deepEqual(await itemIds(playlist.id), trackIds.slice(0, 3), 'nothing changed')
      })

      it('answers 400, not 500, for a NUL character in any free text', async () => {
        const nul = async (res: Promise<Response<unknown>>, part: string, pointer: string): Promise<void> => {
          const problem = await assertProblem(res, 400, 'ERR_VALIDATION_FAILED')
          assert.ok(problem.errors?.some((e) => e.in === part && e.pointer === pointer), JSON.stringify(problem.errors))
        }
        await nul(get('/v1/search?q=%00&type=track'), 'querystring', '/q')
        await nul(get('/v1/search?q=love%00&type=track,artist'), 'querystring', '/q')
        await nul(call('POST', '/v1/users', { display_name: 'a\u0000b', email: 'nul@example.com' }), 'body', '/display_name')
        await nul(call('POST', '/v1/users', { display_name: 'ab', email: 'n\u0000ul@example.com' }), 'body', '/email')
        const user = await newUser()
        await nul(call('POST', `/v1/users/${user.id}/playlists`, { name: 'x\u0000' }), 'body', '/name')
        await nul(call('POST', `/v1/users/${user.id}/playlists`, { name: 'x', description: '\u0000' }), 'body', '/description')
        const playlist = await newPlaylist()
        await nul(call('PUT', `/v1/playlists/${playlist.id}`, { name: '\u0000' }), 'body', '/name')
        await nul(call('PUT', `/v1/playlists/${playlist.id}`, { description: 'a\u0000' }), 'body', '/description')
        await nul(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', trackIds[0] ?? '')], snapshot_id: `${SNAPSHOT_LIKE}\u0000` }), 'body', '/snapshot_id')
        // Still allowed: other control characters and any Unicode the column can hold.
        const ok = await call<PlaylistJson>('PUT', `/v1/playlists/${playlist.id}`, { name: 'Tab\there ✓ 🎵', description: 'line\nbreak' })
        assert.equal(ok.status, 200)
        assert.equal(ok.body.name, 'Tab\there ✓ 🎵')
      })

      it('bounds the length of every string in a request', async () => {
        await assertProblem(get(`/v1/search?q=love&type=${'track,'.repeat(30)}track`), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get(`/v1/search?q=${'a'.repeat(201)}&type=track`), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('POST', '/v1/users', { display_name: 'x'.repeat(101), email: 'long@example.com' }), 400, 'ERR_VALIDATION_FAILED')
        const playlist = await newPlaylist()
        await assertProblem(call('PUT', `/v1/playlists/${playlist.id}`, { name: 'x' }, { 'if-match': `"${'x'.repeat(2000)}"` }), 400, 'ERR_VALIDATION_FAILED')
      })
    })

    describe('tracks', () => {
      it('lists every track in pages that follow on without overlap', async () => {
        const first = await get<PagingJson<TrackJson>>('/v1/tracks?limit=50')
        assert.equal(first.status, 200)
        assert.equal(first.body.total, demo.tracks.length)
        assert.equal(first.body.items.length, 50)
        assert.equal(first.body.previous, null)
        assert.equal(first.body.next, '/v1/tracks?offset=50&limit=50')
        const second = await get<PagingJson<TrackJson>>(first.body.next)
        assert.equal(second.body.offset, 50)
        assert.equal(second.body.previous, '/v1/tracks?offset=0&limit=50')
        const seen = new Set([...first.body.items, ...second.body.items].map((t) => t.id))
        assert.equal(seen.size, 100)
        const names = first.body.items.map((t) => t.name.toLowerCase())
        assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
      })

      it('answers an empty last page past the end, with no next link', async () => {
        const res = await get<PagingJson<TrackJson>>(`/v1/tracks?offset=${demo.tracks.length}`)
        assert.equal(res.status, 200)
        assert.deepEqual(res.body.items, [])
        assert.equal(res.body.next, null)
        assert.equal(res.body.total, demo.tracks.length)
      })

      it('links previous to the last page, never past the end, from an offset beyond it', async () => {
        const total = demo.tracks.length
        const res = await get<PagingJson<TrackJson>>(`/v1/tracks?offset=${total + 45}&limit=20`)
        assert.equal(res.status, 200)
        assert.deepEqual(res.body.items, [])
        assert.equal(res.body.next, null)
        assert.ok(res.body.previous !== null)
        const last = await get<PagingJson<TrackJson>>(res.body.previous)
        assert.ok(last.body.offset < total && last.body.offset + 20 >= total, `previous offset ${last.body.offset} must be the last page of ${total}`)
        assert.ok(last.body.items.length > 0)
        assert.equal(last.body.next, null)
        assert.equal(last.body.items.at(-1)?.id, (await get<PagingJson<TrackJson>>(`/v1/tracks?offset=${total - 1}&limit=1`)).body.items[0]?.id)
      })

      it('has no previous link when there is nothing to page through', async () => {
        const user = await newUser()
        const res = await get<PagingJson<SimplifiedPlaylistJson>>(`/v1/users/${user.id}/playlists?offset=40`)
        assert.equal(res.status, 200)
        assert.equal(res.body.total, 0)
        assert.equal(res.body.previous, null)
        assert.equal(res.body.next, null)
      })

      it('gets a track with its album and artist', async () => {
        const seed = demo.tracks[5]
        assert.ok(seed)
        const album = demo.albums.find((a) => a.id === seed.albumId)
        const artist = demo.artists.find((a) => a.id === album?.artistId)
        const res = await get<TrackJson>(`/v1/tracks/${seed.id}`)
        assert.equal(res.status, 200)
        assert.equal(res.body.id, seed.id)
        assert.equal(res.body.type, 'track')
        assert.equal(res.body.uri, `spotify:track:${seed.id}`)
        assert.equal(res.body.name, seed.name)
        assert.equal(res.body.duration_ms, seed.durationMs)
        assert.equal(res.body.external_ids.isrc, seed.isrc)
        assert.equal(res.body.album.id, album?.id)
        assert.equal(res.body.album.release_date, album?.releaseDate)
        assert.deepEqual(res.body.artists.map((a) => a.name), [artist?.name])
      })

      it('gets several tracks by ids in the order asked, null for unknown ones', async () => {
        const [a, b] = [demo.tracks[3]?.id ?? '', demo.tracks[1]?.id ?? '']
        const res = await get<{ tracks: (TrackJson | null)[] }>(`/v1/tracks?ids=${a},${WELL_FORMED_UNKNOWN},${b}`)
        assert.equal(res.status, 200)
        assert.deepEqual(res.body.tracks.map((t) => t?.id ?? null), [a, null, b])
      })

      it('answers 400 ERR_VALIDATION_ID_INVALID naming a malformed ID', async () => {
        const problem = await assertProblem(get('/v1/tracks/not-an-id'), 400, 'ERR_VALIDATION_ID_INVALID')
        assert.match(problem.detail, /"not-an-id" is not a valid track ID/)
        await assertProblem(get(`/v1/tracks/${WELL_FORMED_UNKNOWN}0`), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get(`/v1/tracks?ids=${demo.tracks[0]?.id ?? ''},bad!`), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get(`/v1/tracks?ids=${demo.tracks[0]?.id ?? ''},`), 400, 'ERR_VALIDATION_ID_INVALID')
      })

      it('answers 400 when ids lists more than 50 IDs', async () => {
        const ids = demo.tracks.slice(0, 51).map((t) => t.id).join(',')
        const problem = await assertProblem(get(`/v1/tracks?ids=${ids}`), 400, 'ERR_VALIDATION_FAILED')
        assert.equal(problem.errors?.[0]?.pointer, '/ids')
      })

      it('answers 404 ERR_RESOURCE_NOT_FOUND for an unknown track', async () => {
        const problem = await assertProblem(get(`/v1/tracks/${WELL_FORMED_UNKNOWN}`), 404, 'ERR_RESOURCE_NOT_FOUND')
        assert.equal(problem.detail, `Track ${WELL_FORMED_UNKNOWN} was not found.`)
      })
    })

    describe('albums', () => {
      const seedAlbum = demo.albums.find((a) => a.albumType === 'album')
      assert.ok(seedAlbum)
      const albumTracks = demo.tracks.filter((t) => t.albumId === seedAlbum.id)

      it('lists albums with paging', async () => {
        const res = await get<PagingJson<AlbumJson>>('/v1/albums?limit=7&offset=7')
        assert.equal(res.status, 200)
        assert.equal(res.body.total, demo.albums.length)
        assert.equal(res.body.items.length, 7)
        assert.equal(res.body.previous, '/v1/albums?offset=0&limit=7')
      })

      it('gets an album with its artist and track count', async () => {
        const res = await get<AlbumJson>(`/v1/albums/${seedAlbum.id}`)
        assert.equal(res.status, 200)
        assert.equal(res.body.name, seedAlbum.name)
        assert.equal(res.body.total_tracks, albumTracks.length)
        assert.equal(res.body.artists[0]?.id, seedAlbum.artistId)
        assert.equal(res.body.uri, `spotify:album:${seedAlbum.id}`)
      })

      it('gets several albums by ids', async () => {
        const res = await get<{ albums: (AlbumJson | null)[] }>(`/v1/albums?ids=${seedAlbum.id},${WELL_FORMED_UNKNOWN}`)
        assert.deepEqual(res.body.albums.map((a) => a?.id ?? null), [seedAlbum.id, null])
      })

      it("lists an album's tracks in track order, paged", async () => {
        const res = await get<PagingJson<TrackJson>>(`/v1/albums/${seedAlbum.id}/tracks?limit=2&offset=1`)
        assert.equal(res.status, 200)
        assert.equal(res.body.total, albumTracks.length)
        assert.deepEqual(res.body.items.map((t) => t.track_number), [2, 3])
      })

      it('answers 400 for a malformed album ID and 404 for an unknown one', async () => {
        await assertProblem(get('/v1/albums/abc'), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get('/v1/albums/abc/tracks'), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get(`/v1/albums/${WELL_FORMED_UNKNOWN}`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get(`/v1/albums/${WELL_FORMED_UNKNOWN}/tracks`), 404, 'ERR_RESOURCE_NOT_FOUND')
      })
    })

    describe('artists', () => {
      const seedArtist = demo.artists[0]
      assert.ok(seedArtist)
      const albums = demo.albums.filter((a) => a.artistId === seedArtist.id)
      const tracks = demo.tracks.filter((t) => albums.some((a) => a.id === t.albumId))

      it('lists artists by name', async () => {
        const res = await get<PagingJson<ArtistJson>>('/v1/artists?limit=50')
        assert.equal(res.status, 200)
        assert.equal(res.body.total, demo.artists.length)
        assert.equal(res.body.next, null)
        const names = res.body.items.map((a) => a.name.toLowerCase())
        assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
      })

      it('gets an artist and several artists by ids', async () => {
        const one = await get<ArtistJson>(`/v1/artists/${seedArtist.id}`)
        assert.equal(one.status, 200)
        assert.equal(one.body.name, seedArtist.name)
        assert.deepEqual(one.body.genres, seedArtist.genres)
        assert.equal(one.body.followers.total, seedArtist.followers)
        const several = await get<{ artists: (ArtistJson | null)[] }>(`/v1/artists?ids=${WELL_FORMED_UNKNOWN},${seedArtist.id}`)
        assert.deepEqual(several.body.artists.map((a) => a?.id ?? null), [null, seedArtist.id])
      })

      it("lists an artist's albums, newest first", async () => {
        const res = await get<PagingJson<AlbumJson>>(`/v1/artists/${seedArtist.id}/albums`)
        assert.equal(res.status, 200)
        assert.equal(res.body.total, albums.length)
        const dates = res.body.items.map((a) => a.release_date)
        assert.deepEqual(dates, [...albums.map((a) => a.releaseDate)].sort().reverse())
      })

      it("answers an artist's most popular tracks, at most ten", async () => {
        const res = await get<{ tracks: TrackJson[] }>(`/v1/artists/${seedArtist.id}/top-tracks`)
        assert.equal(res.status, 200)
        const expected = [...tracks].sort((a, b) => b.popularity - a.popularity || (a.id < b.id ? -1 : 1)).slice(0, 10)
        assert.deepEqual(res.body.tracks.map((t) => t.id), expected.map((t) => t.id))
      })

      it('answers 400 for a malformed artist ID and 404 for an unknown one', async () => {
        await assertProblem(get('/v1/artists/%20'), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get(`/v1/artists/${WELL_FORMED_UNKNOWN}/top-tracks`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get(`/v1/artists/${WELL_FORMED_UNKNOWN}/albums`), 404, 'ERR_RESOURCE_NOT_FOUND')
      })
    })

    describe('search', () => {
      type SearchResult = { tracks?: PagingJson<TrackJson>; albums?: PagingJson<AlbumJson>; artists?: PagingJson<ArtistJson> }

      it('finds an artist by exact name first, case-insensitively', async () => {
        const artist = demo.artists[7]
        assert.ok(artist)
        const res = await get<SearchResult>(`/v1/search?q=${encodeURIComponent(artist.name.toUpperCase())}&type=artist`)
        assert.equal(res.status, 200)
        assert.equal(res.body.artists?.items[0]?.id, artist.id)
        assert.equal(res.body.tracks, undefined)
      })

      it('ranks an exact track name above names that only contain the word', async () => {
        const exact = demo.tracks.find((t) => !t.name.includes(' '))
        assert.ok(exact)
        const res = await get<SearchResult>(`/v1/search?q=${exact.name.toLowerCase()}&type=track&limit=50`)
        const items = res.body.tracks?.items ?? []
        const exactCount = demo.tracks.filter((t) => t.name.toLowerCase() === exact.name.toLowerCase()).length
        assert.ok(items.length > exactCount, 'the word also occurs in longer names')
        assert.ok(items.slice(0, exactCount).every((t) => t.name.toLowerCase() === exact.name.toLowerCase()))
        const popularity = items.slice(0, exactCount).map((t) => t.popularity)
        assert.deepEqual(popularity, [...popularity].sort((a, b) => b - a), 'ties go to the more popular')
      })

      it('requires every word to match the name, the artist or the album', async () => {
        const track = demo.tracks[42]
        assert.ok(track)
        const album = demo.albums.find((a) => a.id === track.albumId)
        const artist = demo.artists.find((a) => a.id === album?.artistId)
        assert.ok(artist)
        const q = `${track.name.split(' ')[0] ?? ''} ${artist.name.split(' ')[1] ?? ''}`
        const res = await get<SearchResult>(`/v1/search?q=${encodeURIComponent(q)}&type=track&limit=50`)
        const items = res.body.tracks?.items ?? []
        assert.ok(items.some((t) => t.id === track.id))
        for (const item of items) {
          const text = [item.name, item.album.name, ...item.artists.map((a) => a.name)].join(' ').toLowerCase()
          for (const word of q.toLowerCase().split(' ')) assert.ok(text.includes(word), `${word} in ${text}`)
        }
      })

      it('answers one page per requested type, with links that keep the query', async () => {
        const res = await get<SearchResult>('/v1/search?q=the&type=track,album,artist&limit=2&offset=1')
        assert.equal(res.status, 200)
        assert.ok(res.body.tracks && res.body.albums && res.body.artists)
        assert.equal(res.body.tracks.offset, 1)
        assert.equal(res.body.tracks.items.length, 2)
        assert.ok(res.body.tracks.total > 3)
        assert.equal(res.body.tracks.next, '/v1/search?q=the&type=track%2Calbum%2Cartist&offset=3&limit=2')
      })

      it('treats LIKE wildcards in q as plain characters', async () => {
        const res = await get<SearchResult>('/v1/search?q=%25&type=track,artist')
        assert.equal(res.body.tracks?.total, 0)
        assert.equal(res.body.artists?.total, 0)
        const underscore = await get<SearchResult>('/v1/search?q=_&type=album')
        assert.equal(underscore.body.albums?.total, 0)
      })

      it('answers 400 for a missing q, a blank q or an unknown type', async () => {
        await assertProblem(get('/v1/search?type=track'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/search?q=%20%20&type=track'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/search?q=love&type=podcast'), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(get('/v1/search?q=love'), 400, 'ERR_VALIDATION_FAILED')
      })
    })

    describe('users', () => {
      it('lists users oldest first, without email addresses', async () => {
        const res = await get<PagingJson<UserJson>>('/v1/users?limit=5')
        assert.equal(res.status, 200)
        assert.ok(res.body.total >= demo.users.length)
        assert.deepEqual(res.body.items.map((u) => u.id), demo.users.slice(0, 5).map((u) => u.id))
        assert.ok(res.body.items.every((u) => !('email' in u)))
      })

      it('creates a user: 201, Location, and the email only in this answer', async () => {
        const email = `Ada.${crypto.randomUUID()}@Example.com`
        const res = await call<PrivateUserJson>('POST', '/v1/users', { display_name: 'Ada', email, country: 'SE' })
        assert.equal(res.status, 201)
        assert.match(res.body.id, /^[0-9A-Za-z]{22}$/)
        assert.equal(res.headers.location, `/v1/users/${res.body.id}`)
        assert.equal(res.body.email, email)
        assert.equal(res.body.country, 'SE')
        const fetched = await get<UserJson>(`/v1/users/${res.body.id}`)
        assert.equal(fetched.status, 200)
        assert.equal(fetched.body.display_name, 'Ada')
        assert.equal('email' in fetched.body, false)
      })

      it('answers 409 when the email address is taken, whatever its case', async () => {
        const email = `taken.${crypto.randomUUID()}@example.com`
        assert.equal((await call('POST', '/v1/users', { display_name: 'First', email })).status, 201)
        await assertProblem(call('POST', '/v1/users', { display_name: 'Second', email: email.toUpperCase() }), 409, 'ERR_RESOURCE_CONFLICT')
      })

      it('answers 400 for an invalid body', async () => {
        const missing = await assertProblem(call('POST', '/v1/users', { email: 'x@example.com' }), 400, 'ERR_VALIDATION_FAILED')
        assert.equal(missing.errors?.[0]?.pointer, '/display_name')
        await assertProblem(call('POST', '/v1/users', { display_name: 'X', email: 'not-an-email' }), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('POST', '/v1/users', { display_name: 'X', email: 'x@example.com', admin: true }), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('POST', '/v1/users', { display_name: 'X', email: 'x@example.com', country: 'sweden' }), 400, 'ERR_VALIDATION_FAILED')
      })

      it('answers 400 for a malformed user ID and 404 for an unknown one', async () => {
        await assertProblem(get('/v1/users/alice'), 400, 'ERR_VALIDATION_ID_INVALID')
        await assertProblem(get(`/v1/users/${WELL_FORMED_UNKNOWN}`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get(`/v1/users/${WELL_FORMED_UNKNOWN}/playlists`), 404, 'ERR_RESOURCE_NOT_FOUND')
      })
    })

    describe('playlists', () => {
      it('serves a seeded playlist with its items in order and its snapshot as the ETag', async () => {
        const seed = demo.playlists[0]
        assert.ok(seed)
        const res = await get<PlaylistJson>(`/v1/playlists/${seed.id}`)
        assert.equal(res.status, 200)
        assert.equal(res.body.name, seed.name)
        assert.equal(res.body.owner.id, seed.ownerId)
        assert.equal(res.body.snapshot_id, seed.snapshotId)
        assert.equal(res.headers.etag, `"${seed.snapshotId}"`)
        assert.equal(res.body.tracks.total, seed.trackIds.length)
        assert.deepEqual(res.body.tracks.items.map((item) => item.track.id), seed.trackIds)
      })

      it('answers 304 without a body when If-None-Match holds the current ETag (weak comparison, lists, *)', async () => {
        const playlist = await newPlaylist(trackIds.slice(0, 2))
        const first = await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)
        const tag = String(first.headers.etag)
        for (const held of [tag, `W/${tag}`, `"other", ${tag}`, `W/"x,y", W/${tag}`, '*']) {
          const res = await music.app.inject({ method: 'GET', url: `/v1/playlists/${playlist.id}`, headers: { 'if-none-match': held } })
          assert.equal(res.statusCode, 304, held)
          assert.equal(res.body, '', held)
          assert.equal(res.headers.etag, tag, held)
        }
        const head = await music.app.inject({ method: 'HEAD', url: `/v1/playlists/${playlist.id}`, headers: { 'if-none-match': tag } })
        assert.equal(head.statusCode, 304)
      })

      it('answers 200 with the playlist when If-None-Match holds another version, and 404 for an unknown one even with *', async () => {
        const playlist = await newPlaylist()
        const before = String((await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).headers.etag)
        const renamed = await call<PlaylistJson>('PUT', `/v1/playlists/${playlist.id}`, { name: 'Changed' })
        for (const held of [before, `W/${before}`, '"unrelated"', 'not-a-tag', renamed.body.snapshot_id]) {
          const res = await get<PlaylistJson>(`/v1/playlists/${playlist.id}`, { 'if-none-match': held })
          assert.equal(res.status, 200, held)
          assert.equal(res.body.name, 'Changed')
          assert.equal(res.headers.etag, `"${renamed.body.snapshot_id}"`)
        }
        await assertProblem(get(`/v1/playlists/${WELL_FORMED_UNKNOWN}`, { 'if-none-match': '*' }), 404, 'ERR_RESOURCE_NOT_FOUND')
      })

      it('sends every ETag as a quoted strong entity-tag (RFC 9110 §8.8.3)', async () => {
        const entityTag = /^"[\x21\x23-\x7e]*"$/
        const user = await newUser()
        const created = await call<PlaylistJson>('POST', `/v1/users/${user.id}/playlists`, { name: 'Tags', public: false })
        const updated = await call<PlaylistJson>('PUT', `/v1/playlists/${created.body.id}`, { name: 'Tags 2' })
        const added = await call('POST', `/v1/playlists/${created.body.id}/tracks`, { uris: [toUri('track', trackIds[0] ?? '')] })
        const read = await get(`/v1/playlists/${created.body.id}`)
        const seeded = await get(`/v1/playlists/${demo.playlists[0]?.id ?? ''}`)
        for (const res of [created, updated, added, read, seeded]) assert.match(String(res.headers.etag), entityTag)
      })

      it("lists a user's playlists, newest first", async () => {
        const user = await newUser()
        for (const name of ['One', 'Two', 'Three']) {
          assert.equal((await call('POST', `/v1/users/${user.id}/playlists`, { name })).status, 201)
        }
        const res = await get<PagingJson<SimplifiedPlaylistJson>>(`/v1/users/${user.id}/playlists?limit=2`)
        assert.equal(res.status, 200)
        assert.equal(res.body.total, 3)
        assert.equal(res.body.items.length, 2)
        assert.ok(res.body.items.every((p) => p.owner.id === user.id && p.tracks.total === 0))
        const seededOwner = demo.playlists[0]?.ownerId ?? ''
        const seeded = await get<PagingJson<SimplifiedPlaylistJson>>(`/v1/users/${seededOwner}/playlists?limit=50`)
        assert.equal(seeded.body.total, demo.playlists.filter((p) => p.ownerId === seededOwner).length)
      })

      it('creates a playlist: 201, Location, ETag, defaults', async () => {
        const user = await newUser()
        const res = await call<PlaylistJson>('POST', `/v1/users/${user.id}/playlists`, { name: 'Road Trip' })
        assert.equal(res.status, 201)
        assert.equal(res.headers.location, `/v1/playlists/${res.body.id}`)
        assert.equal(res.headers.etag, `"${res.body.snapshot_id}"`)
        assert.equal(res.body.uri, `spotify:playlist:${res.body.id}`)
        assert.equal(res.body.public, true)
        assert.equal(res.body.collaborative, false)
        assert.equal(res.body.description, '')
        assert.equal(res.body.tracks.total, 0)
        assert.equal(res.body.owner.display_name, user.display_name)
      })

      it('refuses to create a playlist for an unknown or malformed user, or a public collaborative one', async () => {
        await assertProblem(call('POST', `/v1/users/${WELL_FORMED_UNKNOWN}/playlists`, { name: 'x' }), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(call('POST', '/v1/users/nobody/playlists', { name: 'x' }), 400, 'ERR_VALIDATION_ID_INVALID')
        const user = await newUser()
        const problem = await assertProblem(call('POST', `/v1/users/${user.id}/playlists`, { name: 'x', collaborative: true }), 400, 'ERR_VALIDATION_FAILED')
        assert.equal(problem.errors?.[0]?.pointer, '/collaborative')
        assert.equal((await call('POST', `/v1/users/${user.id}/playlists`, { name: 'x', collaborative: true, public: false })).status, 201)
        await assertProblem(call('POST', `/v1/users/${user.id}/playlists`, { name: '' }), 400, 'ERR_VALIDATION_FAILED')
      })

      it('changes details with a new snapshot, and honours If-Match', async () => {
        const playlist = await newPlaylist()
        const res = await call<PlaylistJson>('PUT', `/v1/playlists/${playlist.id}`, { name: 'Renamed', description: 'Now with words', public: true })
        assert.equal(res.status, 200)
        assert.equal(res.body.name, 'Renamed')
        assert.equal(res.body.description, 'Now with words')
        assert.equal(res.body.public, true)
        assert.notEqual(res.body.snapshot_id, playlist.snapshot_id)
        assert.equal(res.headers.etag, `"${res.body.snapshot_id}"`)

        await assertProblem(call('PUT', `/v1/playlists/${playlist.id}`, { name: 'Stale' }, { 'if-match': `"${playlist.snapshot_id}"` }), 412, 'ERR_RESOURCE_PRECONDITION_FAILED')
        const fresh = await call<PlaylistJson>('PUT', `/v1/playlists/${playlist.id}`, { public: false }, { 'if-match': `"${res.body.snapshot_id}"` })
        assert.equal(fresh.status, 200)
        assert.equal(fresh.body.name, 'Renamed', 'fields not sent stay as they were')
        assert.equal(fresh.body.public, false)
      })

      it('answers 400 for an empty or unknown-field update and 404 for an unknown playlist', async () => {
        const playlist = await newPlaylist()
        await assertProblem(call('PUT', `/v1/playlists/${playlist.id}`, {}), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('PUT', `/v1/playlists/${playlist.id}`, { owner: 'me' }), 400, 'ERR_VALIDATION_FAILED')
        await assertProblem(call('PUT', `/v1/playlists/${WELL_FORMED_UNKNOWN}`, { name: 'x' }), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get(`/v1/playlists/${WELL_FORMED_UNKNOWN}`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get(`/v1/playlists/${WELL_FORMED_UNKNOWN}/tracks`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(get('/v1/playlists/x/tracks'), 400, 'ERR_VALIDATION_ID_INVALID')
      })

      it('deletes a playlist (204), after which it is gone', async () => {
        const playlist = await newPlaylist([trackIds[0] ?? ''])
        await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}`, undefined, { 'if-match': '"stale"' }), 412, 'ERR_RESOURCE_PRECONDITION_FAILED')
        const res = await call('DELETE', `/v1/playlists/${playlist.id}`)
        assert.equal(res.status, 204)
        await assertProblem(get(`/v1/playlists/${playlist.id}`), 404, 'ERR_RESOURCE_NOT_FOUND')
        await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}`), 404, 'ERR_RESOURCE_NOT_FOUND')
      })

      describe('items', () => {
        const [a = '', b = '', c = '', d = '', e = ''] = trackIds

        it('appends tracks in the order given, duplicates allowed, with a new snapshot', async () => {
          const playlist = await newPlaylist()
          const res = await call<{ snapshot_id: string }>('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [a, b, a].map((id) => toUri('track', id)) })
          assert.equal(res.status, 201)
          assert.notEqual(res.body.snapshot_id, playlist.snapshot_id)
          assert.equal(res.headers.etag, `"${res.body.snapshot_id}"`)
          assert.deepEqual(await itemIds(playlist.id), [a, b, a])
          const items = await get<PagingJson<PlaylistTrackJson>>(`/v1/playlists/${playlist.id}/tracks`)
          assert.ok(items.body.items.every((item) => !Number.isNaN(Date.parse(item.added_at))))
        })

        it('inserts at a position, moving later items down', async () => {
          const playlist = await newPlaylist([a, b, c])
          assert.equal((await call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', d), toUri('track', e)], position: 1 })).status, 201)
          assert.deepEqual(await itemIds(playlist.id), [a, d, e, b, c])
          assert.equal((await call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', c)], position: 0 })).status, 201)
          assert.deepEqual(await itemIds(playlist.id), [c, a, d, e, b, c])
          assert.equal((await call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', a)], position: 6 })).status, 201)
          assert.deepEqual(await itemIds(playlist.id), [c, a, d, e, b, c, a])
        })

        it('answers 400 for a position past the end, and changes nothing', async () => {
          const playlist = await newPlaylist([a, b])
          const problem = await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', c)], position: 3 }), 400, 'ERR_VALIDATION_FAILED')
          assert.equal(problem.errors?.[0]?.pointer, '/position')
          assert.deepEqual(await itemIds(playlist.id), [a, b])
        })

        it('answers 400 ERR_VALIDATION_URI_INVALID for malformed URIs or URIs of another kind', async () => {
          const playlist = await newPlaylist()
          for (const uri of ['spotify:track:short', `spotify:album:${a}`, a, `spotify:track:${a}x`, `https://open.spotify.com/track/${a}`]) {
            const problem = await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', b), uri] }), 400, 'ERR_VALIDATION_URI_INVALID')
            assert.match(problem.detail, /is not a valid track URI/)
          }
          await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: 'spotify:track:nope' }] }), 400, 'ERR_VALIDATION_URI_INVALID')
          assert.deepEqual(await itemIds(playlist.id), [])
        })

        it('answers 404 for an unknown track and adds none of the batch', async () => {
          const playlist = await newPlaylist([a])
          const problem = await assertProblem(
            call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', b), toUri('track', WELL_FORMED_UNKNOWN)] }),
            404,
            'ERR_RESOURCE_NOT_FOUND',
          )
          assert.equal(problem.detail, `Track ${WELL_FORMED_UNKNOWN} was not found.`)
          assert.deepEqual(await itemIds(playlist.id), [a])
          await assertProblem(call('POST', `/v1/playlists/${WELL_FORMED_UNKNOWN}/tracks`, { uris: [toUri('track', a)] }), 404, 'ERR_RESOURCE_NOT_FOUND')
        })

        it('answers 400 for an empty or oversized batch', async () => {
          const playlist = await newPlaylist()
          await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [] }), 400, 'ERR_VALIDATION_FAILED')
          const many = Array.from({ length: 101 }, () => toUri('track', a))
          await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: many }), 400, 'ERR_VALIDATION_FAILED')
        })

        it('answers 409 for a stale snapshot_id and 412 for a stale If-Match, changing nothing', async () => {
          const playlist = await newPlaylist([a])
          const current = (await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).body.snapshot_id
          const uris = [toUri('track', b)]
          const conflict = await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris, snapshot_id: playlist.snapshot_id }), 409, 'ERR_RESOURCE_CONFLICT')
          assert.match(conflict.detail, /has changed since snapshot/)
          await assertProblem(call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris }, { 'if-match': `"${playlist.snapshot_id}"` }), 412, 'ERR_RESOURCE_PRECONDITION_FAILED')
          await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', a) }], snapshot_id: playlist.snapshot_id }), 409, 'ERR_RESOURCE_CONFLICT')
          await assertProblem(call('PUT', `/v1/playlists/${playlist.id}/tracks`, { range_start: 0, insert_before: 1, snapshot_id: playlist.snapshot_id }), 409, 'ERR_RESOURCE_CONFLICT')
          assert.deepEqual(await itemIds(playlist.id), [a])
          assert.equal((await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).body.snapshot_id, current)

          const ok = await call<{ snapshot_id: string }>('POST', `/v1/playlists/${playlist.id}/tracks`, { uris, snapshot_id: current }, { 'if-match': `"${current}"` })
          assert.equal(ok.status, 201)
          assert.deepEqual(await itemIds(playlist.id), [a, b])
        })

        it('removes every occurrence of a URI and closes the gaps', async () => {
          const playlist = await newPlaylist([a, b, a, c, a, d])
          const before = (await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).body.snapshot_id
          const res = await call<{ snapshot_id: string }>('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', a) }, { uri: toUri('track', d) }] })
          assert.equal(res.status, 200)
          assert.notEqual(res.body.snapshot_id, before)
          assert.deepEqual(await itemIds(playlist.id), [b, c])
          assert.equal((await call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', e)], position: 2 })).status, 201, 'positions are dense again')
          assert.deepEqual(await itemIds(playlist.id), [b, c, e])
        })

        it('removes only the listed positions of a URI', async () => {
          const playlist = await newPlaylist([a, b, a, c, a])
          const res = await call('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', a), positions: [0, 4] }] })
          assert.equal(res.status, 200)
          assert.deepEqual(await itemIds(playlist.id), [b, a, c])
        })

        it('answers 409 when a listed position holds another track, removing nothing', async () => {
          const playlist = await newPlaylist([a, b, c])
          await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', a), positions: [0] }, { uri: toUri('track', c), positions: [1] }] }), 409, 'ERR_RESOURCE_CONFLICT')
          await assertProblem(call('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', a), positions: [9] }] }), 409, 'ERR_RESOURCE_CONFLICT')
          assert.deepEqual(await itemIds(playlist.id), [a, b, c])
        })

        it('keeps the snapshot when a removal matches nothing', async () => {
          const playlist = await newPlaylist([a])
          const before = (await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).body.snapshot_id
          const res = await call<{ snapshot_id: string }>('DELETE', `/v1/playlists/${playlist.id}/tracks`, { tracks: [{ uri: toUri('track', b) }] })
          assert.equal(res.status, 200)
          assert.equal(res.body.snapshot_id, before)
        })

        it('reorders a single item forwards and backwards', async () => {
          const playlist = await newPlaylist([a, b, c, d, e])
          const moved = await call<{ snapshot_id: string }>('PUT', `/v1/playlists/${playlist.id}/tracks`, { range_start: 0, insert_before: 3 })
          assert.equal(moved.status, 200)
          assert.deepEqual(await itemIds(playlist.id), [b, c, a, d, e])
          await call('PUT', `/v1/playlists/${playlist.id}/tracks`, { range_start: 4, insert_before: 0 })
          assert.deepEqual(await itemIds(playlist.id), [e, b, c, a, d])
          await call('PUT', `/v1/playlists/${playlist.id}/tracks`, { range_start: 1, insert_before: 5 })
          assert.deepEqual(await itemIds(playlist.id), [e, c, a, d, b])
        })

        it('reorders a range, matching the reference semantics for every valid move', async () => {
          const start = [a, b, c, d, e]
          const playlist = await newPlaylist(start)
          let model = [...start]
          let snapshot = (await get<PlaylistJson>(`/v1/playlists/${playlist.id}`)).body.snapshot_id
          for (let rangeStart = 0; rangeStart < start.length; rangeStart++) {
            for (let rangeLength = 1; rangeStart + rangeLength <= start.length; rangeLength++) {
              for (let insertBefore = 0; insertBefore <= start.length; insertBefore++) {
                const move = { range_start: rangeStart, range_length: rangeLength, insert_before: insertBefore }
                const res = await call<{ snapshot_id: string }>('PUT', `/v1/playlists/${playlist.id}/tracks`, { ...move, snapshot_id: snapshot })
                assert.equal(res.status, 200, JSON.stringify(move))
                const next = reorder(model, rangeStart, rangeLength, insertBefore)
                const noOp = insertBefore >= rangeStart && insertBefore <= rangeStart + rangeLength
                assert.equal(res.body.snapshot_id === snapshot, noOp, `snapshot changes exactly when the order does: ${JSON.stringify(move)}`)
                model = next
                snapshot = res.body.snapshot_id
                assert.deepEqual(await itemIds(playlist.id), model, JSON.stringify(move))
              }
            }
          }
        })

        it('answers 400 for a range outside the playlist, changing nothing', async () => {
          const playlist = await newPlaylist([a, b, c])
          for (const [body, pointer] of [
            [{ range_start: 3, insert_before: 0 }, '/range_start'],
            [{ range_start: 1, range_length: 3, insert_before: 0 }, '/range_length'],
            [{ range_start: 0, insert_before: 4 }, '/insert_before'],
          ] as const) {
            const problem = await assertProblem(call('PUT', `/v1/playlists/${playlist.id}/tracks`, body), 400, 'ERR_VALIDATION_FAILED')
            assert.equal(problem.errors?.[0]?.pointer, pointer)
          }
          await assertProblem(call('PUT', `/v1/playlists/${playlist.id}/tracks`, { range_start: 0 }), 400, 'ERR_VALIDATION_FAILED')
          assert.deepEqual(await itemIds(playlist.id), [a, b, c])
        })

        it('pages through items', async () => {
          const playlist = await newPlaylist([a, b, c, d, e])
          const res = await get<PagingJson<PlaylistTrackJson>>(`/v1/playlists/${playlist.id}/tracks?limit=2&offset=2`)
          assert.equal(res.status, 200)
          assert.equal(res.body.total, 5)
          assert.deepEqual(res.body.items.map((item) => item.track.id), [c, d])
          assert.equal(res.body.next, `/v1/playlists/${playlist.id}/tracks?offset=4&limit=2`)
          await assertProblem(get(`/v1/playlists/${playlist.id}/tracks?limit=101`), 400, 'ERR_VALIDATION_FAILED')
        })

        it('applies concurrent additions one after the other', async () => {
          const playlist = await newPlaylist()
          const results = await Promise.all([a, b, c, d, e].map((id) => call('POST', `/v1/playlists/${playlist.id}/tracks`, { uris: [toUri('track', id)], position: 0 })))
          assert.ok(results.every((res) => res.status === 201))
          const ids = await itemIds(playlist.id)
          assert.equal(ids.length, 5)
          assert.deepEqual([...ids].sort(), [a, b, c, d, e].sort())
        })
      })
    })

    describe('OpenAPI', () => {
      it('documents every route with its parameters, tags and problem responses', async () => {
        const res = await get<{ paths: Record<string, Record<string, { tags?: string[]; responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>>; components: { schemas: Record<string, unknown> } }>('/openapi.json')
        assert.equal(res.status, 200)
        const expected: [string, string][] = [
          ['get', '/v1/tracks'],
          ['get', '/v1/tracks/{id}'],
          ['get', '/v1/albums'],
          ['get', '/v1/albums/{id}'],
          ['get', '/v1/albums/{id}/tracks'],
          ['get', '/v1/artists'],
          ['get', '/v1/artists/{id}'],
          ['get', '/v1/artists/{id}/albums'],
          ['get', '/v1/artists/{id}/top-tracks'],
          ['get', '/v1/search'],
          ['get', '/v1/users'],
          ['post', '/v1/users'],
          ['get', '/v1/users/{user_id}'],
          ['get', '/v1/users/{user_id}/playlists'],
          ['post', '/v1/users/{user_id}/playlists'],
          ['get', '/v1/playlists/{playlist_id}'],
          ['put', '/v1/playlists/{playlist_id}'],
          ['delete', '/v1/playlists/{playlist_id}'],
          ['get', '/v1/playlists/{playlist_id}/tracks'],
          ['post', '/v1/playlists/{playlist_id}/tracks'],
          ['delete', '/v1/playlists/{playlist_id}/tracks'],
          ['put', '/v1/playlists/{playlist_id}/tracks'],
          ['post', '/v1/auth/token'],
          ['post', '/v1/auth/refresh'],
          ['post', '/v1/auth/logout'],
          ['get', '/v1/me'],
          ['post', '/v1/admin/users/{user_id}/sign-out'],
          ['post', '/v1/me/mfa/totp'],
          ['delete', '/v1/me/mfa/totp'],
          ['post', '/v1/me/mfa/totp/confirm'],
          ['post', '/v1/auth/mfa/step-up'],
          ['post', '/v1/console/session'],
          ['post', '/v1/console/session/logout'],
          ['get', '/v1/console/sessions'],
          ['delete', '/v1/console/sessions/{handle}'],
          ['post', '/v1/console/sessions/sign-out-others'],
          ['post', '/v1/admin/api-keys'],
          ['get', '/v1/admin/api-keys'],
          ['post', '/v1/admin/api-keys/{id}/rotate'],
          ['delete', '/v1/admin/api-keys/{id}'],
        ]
        const documented = Object.entries(res.body.paths)
          .filter(([path]) => path.startsWith('/v1/'))
          .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`))
        assert.deepEqual(documented.sort(), expected.map(([method, path]) => `${method} ${path}`).sort())
        for (const [method, path] of expected) {
          const operation = res.body.paths[path]?.[method]
          assert.ok(operation, `${method} ${path}`)
          assert.ok(operation.tags !== undefined && operation.tags.length > 0, `${method} ${path} has a tag`)
          assert.ok('4XX' in operation.responses || '4xx' in operation.responses, `${method} ${path} documents 4xx`)
          assert.ok('5XX' in operation.responses || '5xx' in operation.responses, `${method} ${path} documents 5xx`)
        }
        assert.ok(res.body.paths['/v1/search']?.get?.parameters?.some((p) => p.name === 'q' && p.in === 'query'))
        for (const name of ['Track', 'Album', 'Artist', 'User', 'Playlist', 'SimplifiedPlaylist', 'PlaylistTrack', 'Snapshot', 'ProblemDetails']) {
          assert.ok(name in res.body.components.schemas, `components.schemas.${name}`)
        }
      })
    })
  })
}

/** Spotify's reorder, on a plain array: the reference the API is checked against. */
function reorder<T>(items: readonly T[], rangeStart: number, rangeLength: number, insertBefore: number): T[] {
  const block = items.slice(rangeStart, rangeStart + rangeLength)
  const before = items.slice(0, insertBefore).filter((_item, i) => i < rangeStart || i >= rangeStart + rangeLength)
  const afterPart = items.slice(insertBefore).filter((_item, i) => i + insertBefore < rangeStart || i + insertBefore >= rangeStart + rangeLength)
  return [...before, ...block, ...afterPart]
}
