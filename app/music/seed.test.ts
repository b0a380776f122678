import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { migrate, PgliteDatabase } from 'backbeat/stores'
import { musicMigrations } from './migrations.ts'
import { demoCatalogue, seedDemoCatalogue } from './seed.ts'

describe('demo catalogue', () => {
  it('is the same on every call', () => {
    assert.deepEqual(demoCatalogue(), demoCatalogue())
  })

  it('has a few hundred rows with valid, unique IDs and consistent references', () => {
    const data = demoCatalogue()
    assert.equal(data.artists.length, 40)
    assert.equal(data.albums.length, 100)
    assert.ok(data.tracks.length >= 300 && data.tracks.length <= 500, `${data.tracks.length} tracks`)
    assert.equal(data.users.length, 20)
    assert.equal(data.playlists.length, 30)
    const ids = [...data.artists, ...data.albums, ...data.tracks, ...data.users, ...data.playlists].map((row) => row.id)
    assert.equal(new Set(ids).size, ids.length)
    for (const id of ids) assert.match(id, /^[0-9A-Za-z]{22}$/)
    const artistIds = new Set(data.artists.map((a) => a.id))
    const albumIds = new Set(data.albums.map((a) => a.id))
    const trackIds = new Set(data.tracks.map((t) => t.id))
    assert.ok(data.albums.every((a) => artistIds.has(a.artistId)))
    assert.ok(data.tracks.every((t) => albumIds.has(t.albumId)))
    assert.ok(data.playlists.every((p) => p.trackIds.every((id) => trackIds.has(id)) && p.trackIds.length >= 5))
    assert.equal(new Set(data.tracks.map((t) => t.isrc)).size, data.tracks.length)
    assert.equal(new Set(data.users.map((u) => u.email.toLowerCase())).size, data.users.length)
  })
})

describe('music schema and seed on PGlite', () => {
  it('migrates, seeds once, and does nothing on the next start', async () => {
    const db = new PgliteDatabase()
    await db.connect()
    try {
      assert.deepEqual(await migrate(db, musicMigrations), musicMigrations.map((m) => m.id))
      assert.equal(await seedDemoCatalogue(db), true)
      assert.deepEqual(await migrate(db, musicMigrations), [])
      assert.equal(await seedDemoCatalogue(db), false)
      const { rows } = await db.query<{ tracks: number; items: number }>('SELECT (SELECT count(*) FROM tracks)::int AS tracks, (SELECT count(*) FROM playlist_tracks)::int AS items')
      const data = demoCatalogue()
      assert.deepEqual(rows[0], { tracks: data.tracks.length, items: data.playlists.reduce((n, p) => n + p.trackIds.length, 0) })
    } finally {
      await db.close()
    }
  })

  it('enforces the constraints the API relies on', async () => {
    const db = new PgliteDatabase()
    await db.connect()
    try {
      await migrate(db, musicMigrations)
      await seedDemoCatalogue(db)
      const data = demoCatalogue()
      const playlist = data.playlists[0]
      assert.ok(playlist)
      const sqlState = async (sql: string, params: unknown[]): Promise<unknown> => {
        try {
          await db.query(sql, params)
        } catch (err) {
          return (err as { params?: { sqlState?: string } }).params?.sqlState
        }
        return 'accepted'
      }
      assert.equal(await sqlState("INSERT INTO artists (id, name) VALUES ('bad-id', 'x')", []), '23514', 'IDs are checked')
      assert.equal(await sqlState('UPDATE playlists SET public = true, collaborative = true WHERE id = $1', [playlist.id]), '23514', 'collaborative playlists are private')
      assert.equal(await sqlState('DELETE FROM tracks WHERE id = $1', [playlist.trackIds[0]]), '23001', 'a track in a playlist cannot be deleted')
      assert.equal(await sqlState('INSERT INTO users (id, display_name, email) VALUES ($1, $2, $3)', ['A'.repeat(22), 'Dup', (data.users[0]?.email ?? '').toUpperCase()]), '23505', 'emails are unique whatever their case')
      assert.equal(await sqlState('DELETE FROM users WHERE id = $1', [playlist.ownerId]), 'accepted')
      const { rowCount } = await db.query('SELECT 1 FROM playlist_tracks WHERE playlist_id = $1', [playlist.id])
      assert.equal(rowCount, 0, 'deleting a user deletes their playlists and items')
    } finally {
      await db.close()
    }
  })
})
