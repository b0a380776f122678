import { BackbeatError } from 'backbeat'
import type { SqlDatabase, SqlExecutor } from 'backbeat/stores'
import { ifMatchHolds } from './entity-tags.ts'
import { hasSqlState, invalidField, notFound } from './errors.ts'
import { newId, toUri } from './ids.ts'
import { MAX_PLAYLIST_LENGTH } from './schemas.ts'
import type {
  AlbumJson,
  ArtistJson,
  ArtistRefJson,
  PlaylistTrackJson,
  PrivateUserJson,
  SimplifiedPlaylistJson,
  TrackJson,
  UserJson,
  UserRefJson,
} from './schemas.ts'

/** One page of rows and the total they were taken from. */
export interface Slice<T> {
  items: T[]
  total: number
}

/** Which search result types to return. */
export type SearchType = 'track' | 'album' | 'artist'

/** Conditions a playlist change is applied under. */
export interface Precondition {
  /** `snapshot_id` from the body: a mismatch is a 409 (the client's view is stale). */
  snapshotId?: string | undefined
  /** The `If-Match` header: a mismatch is a 412, as RFC 9110 requires. */
  ifMatch?: string | undefined
}

// ── Row shapes ────────────────────────────────────────────────────────────────

interface ArtistRow { id: string; name: string; genres: string[]; popularity: number; followers: number }
interface AlbumRow { id: string; name: string; album_type: AlbumJson['album_type']; release_date: string; label: string; popularity: number; total_tracks: number; artist_id: string; artist_name: string }
interface TrackRow {
  id: string; name: string; duration_ms: number; explicit: boolean; disc_number: number; track_number: number; popularity: number; isrc: string | null
  album_id: string; album_name: string; album_type: AlbumJson['album_type']; release_date: string; total_tracks: number; artist_id: string; artist_name: string
}
interface UserRow { id: string; display_name: string; email: string; country: string | null; created_at: Date | string }
interface PlaylistRow {
  id: string; name: string; description: string; public: boolean; collaborative: boolean; snapshot_id: string
  owner_id: string; owner_name: string; total: number
}

const ARTIST_COLUMNS = 'ar.id, ar.name, ar.genres, ar.popularity, ar.followers'
const ALBUM_COLUMNS = `al.id, al.name, al.album_type, to_char(al.release_date, 'YYYY-MM-DD') AS release_date, al.label, al.popularity,
  (SELECT count(*) FROM tracks x WHERE x.album_id = al.id)::int AS total_tracks, ar.id AS artist_id, ar.name AS artist_name`
const ALBUM_FROM = 'albums al JOIN artists ar ON ar.id = al.artist_id'
const TRACK_COLUMNS = `t.id, t.name, t.duration_ms, t.explicit, t.disc_number, t.track_number, t.popularity, t.isrc,
  al.id AS album_id, al.name AS album_name, al.album_type, to_char(al.release_date, 'YYYY-MM-DD') AS release_date,
  (SELECT count(*) FROM tracks x WHERE x.album_id = al.id)::int AS total_tracks, ar.id AS artist_id, ar.name AS artist_name`
const TRACK_FROM = 'tracks t JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = al.artist_id'
const PLAYLIST_COLUMNS = `p.id, p.name, p.description, p.public, p.collaborative, p.snapshot_id, u.id AS owner_id, u.display_name AS owner_name,
  (SELECT count(*) FROM playlist_tracks x WHERE x.playlist_id = p.id)::int AS total`
const PLAYLIST_FROM = 'playlists p JOIN users u ON u.id = p.owner_id'

// ── Row → JSON ────────────────────────────────────────────────────────────────

function artistRef(id: string, name: string): ArtistRefJson {
  return { id, type: 'artist', uri: toUri('artist', id), href: `/v1/artists/${id}`, name }
}

function toArtist(row: ArtistRow): ArtistJson {
  return { ...artistRef(row.id, row.name), genres: row.genres, popularity: row.popularity, followers: { total: row.followers } }
}

function toAlbum(row: AlbumRow): AlbumJson {
  return {
    id: row.id,
    type: 'album',
    uri: toUri('album', row.id),
    href: `/v1/albums/${row.id}`,
    name: row.name,
    album_type: row.album_type,
    release_date: row.release_date,
    release_date_precision: 'day',
    total_tracks: row.total_tracks,
    artists: [artistRef(row.artist_id, row.artist_name)],
    label: row.label,
    popularity: row.popularity,
  }
}

function toTrack(row: TrackRow): TrackJson {
  const artists = [artistRef(row.artist_id, row.artist_name)]
  return {
    id: row.id,
    type: 'track',
    uri: toUri('track', row.id),
    href: `/v1/tracks/${row.id}`,
    name: row.name,
    duration_ms: row.duration_ms,
    explicit: row.explicit,
    disc_number: row.disc_number,
    track_number: row.track_number,
    popularity: row.popularity,
    external_ids: { isrc: row.isrc },
    album: {
      id: row.album_id,
      type: 'album',
      uri: toUri('album', row.album_id),
      href: `/v1/albums/${row.album_id}`,
      name: row.album_name,
      album_type: row.album_type,
      release_date: row.release_date,
      release_date_precision: 'day',
      total_tracks: row.total_tracks,
      artists,
    },
    artists,
  }
}

function userRef(id: string, displayName: string): UserRefJson {
  return { id, type: 'user', uri: toUri('user', id), href: `/v1/users/${id}`, display_name: displayName }
}

function toUser(row: UserRow): UserJson {
  return { ...userRef(row.id, row.display_name), country: row.country, created_at: isoTime(row.created_at) }
}

function toPlaylist(row: PlaylistRow): SimplifiedPlaylistJson {
  return {
    id: row.id,
    type: 'playlist',
    uri: toUri('playlist', row.id),
    href: `/v1/playlists/${row.id}`,
    name: row.name,
    description: row.description,
    public: row.public,
    collaborative: row.collaborative,
    snapshot_id: row.snapshot_id,
    owner: userRef(row.owner_id, row.owner_name),
    tracks: { href: `/v1/playlists/${row.id}/tracks`, total: row.total },
  }
}

/** Both engines return `timestamptz` as a Date; a string is accepted in case a driver changes that. */
function isoTime(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString()
}

/** Escapes LIKE wildcards so a search for `100%` finds "100%" and not everything. */
function likeEscape(term: string): string {
  return term.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/** Answers `ids` in the order asked, with null for unknown ones (Spotify's "get several"). */
function inOrder<T extends { id: string }>(ids: readonly string[], found: T[]): (T | null)[] {
  const byId = new Map(found.map((item) => [item.id, item]))
  return ids.map((id) => byId.get(id) ?? null)
}

/**
 * All SQL of the music API. Returns API-shaped objects (the shapes are the product; a
 * separate mapping layer would only repeat them) and throws Backbeat errors for unknown
 * resources and stale playlists. Runs unchanged on Postgres and PGlite.
 *
 * @example
 * const repo = new MusicRepository(stores.sql)
 * const track = await repo.track('4uLU6hMCjMI75M1A2tKUQC')
 */
export class MusicRepository {
  readonly #db: SqlDatabase

  constructor(db: SqlDatabase) {
    this.#db = db
  }

  // ── Tracks ──────────────────────────────────────────────────────────────────

  async tracks(limit: number, offset: number): Promise<Slice<TrackJson>> {
    const [rows, total] = await Promise.all([
      this.#db.query<TrackRow>(`SELECT ${TRACK_COLUMNS} FROM ${TRACK_FROM} ORDER BY lower(t.name), t.id LIMIT $1 OFFSET $2`, [limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM tracks'),
    ])
    return { items: rows.rows.map(toTrack), total }
  }

  async track(id: string): Promise<TrackJson> {
    const { rows } = await this.#db.query<TrackRow>(`SELECT ${TRACK_COLUMNS} FROM ${TRACK_FROM} WHERE t.id = $1`, [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Track', id)
    return toTrack(row)
  }

  async severalTracks(ids: readonly string[]): Promise<(TrackJson | null)[]> {
    const { rows } = await this.#db.query<TrackRow>(`SELECT ${TRACK_COLUMNS} FROM ${TRACK_FROM} WHERE t.id = ANY($1::text[])`, [ids])
    return inOrder(ids, rows.map(toTrack))
  }

  // ── Albums ──────────────────────────────────────────────────────────────────

  async albums(limit: number, offset: number): Promise<Slice<AlbumJson>> {
    const [rows, total] = await Promise.all([
      this.#db.query<AlbumRow>(`SELECT ${ALBUM_COLUMNS} FROM ${ALBUM_FROM} ORDER BY lower(al.name), al.id LIMIT $1 OFFSET $2`, [limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM albums'),
    ])
    return { items: rows.rows.map(toAlbum), total }
  }

  async album(id: string): Promise<AlbumJson> {
    const { rows } = await this.#db.query<AlbumRow>(`SELECT ${ALBUM_COLUMNS} FROM ${ALBUM_FROM} WHERE al.id = $1`, [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Album', id)
    return toAlbum(row)
  }

  async severalAlbums(ids: readonly string[]): Promise<(AlbumJson | null)[]> {
    const { rows } = await this.#db.query<AlbumRow>(`SELECT ${ALBUM_COLUMNS} FROM ${ALBUM_FROM} WHERE al.id = ANY($1::text[])`, [ids])
    return inOrder(ids, rows.map(toAlbum))
  }

  async albumTracks(albumId: string, limit: number, offset: number): Promise<Slice<TrackJson>> {
    await this.#mustExist('albums', 'Album', albumId)
    const [rows, total] = await Promise.all([
      this.#db.query<TrackRow>(`SELECT ${TRACK_COLUMNS} FROM ${TRACK_FROM} WHERE t.album_id = $1 ORDER BY t.disc_number, t.track_number LIMIT $2 OFFSET $3`, [albumId, limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM tracks WHERE album_id = $1', [albumId]),
    ])
    return { items: rows.rows.map(toTrack), total }
  }

  // ── Artists ─────────────────────────────────────────────────────────────────

  async artists(limit: number, offset: number): Promise<Slice<ArtistJson>> {
    const [rows, total] = await Promise.all([
      this.#db.query<ArtistRow>(`SELECT ${ARTIST_COLUMNS} FROM artists ar ORDER BY lower(ar.name), ar.id LIMIT $1 OFFSET $2`, [limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM artists'),
    ])
    return { items: rows.rows.map(toArtist), total }
  }

  async artist(id: string): Promise<ArtistJson> {
    const { rows } = await this.#db.query<ArtistRow>(`SELECT ${ARTIST_COLUMNS} FROM artists ar WHERE ar.id = $1`, [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Artist', id)
    return toArtist(row)
  }

  async severalArtists(ids: readonly string[]): Promise<(ArtistJson | null)[]> {
    const { rows } = await this.#db.query<ArtistRow>(`SELECT ${ARTIST_COLUMNS} FROM artists ar WHERE ar.id = ANY($1::text[])`, [ids])
    return inOrder(ids, rows.map(toArtist))
  }

  /** Newest release first. */
  async artistAlbums(artistId: string, limit: number, offset: number): Promise<Slice<AlbumJson>> {
    await this.#mustExist('artists', 'Artist', artistId)
    const [rows, total] = await Promise.all([
      this.#db.query<AlbumRow>(`SELECT ${ALBUM_COLUMNS} FROM ${ALBUM_FROM} WHERE al.artist_id = $1 ORDER BY al.release_date DESC, al.id LIMIT $2 OFFSET $3`, [artistId, limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM albums WHERE artist_id = $1', [artistId]),
    ])
    return { items: rows.rows.map(toAlbum), total }
  }

  /** The artist's ten most popular tracks, as Spotify's top-tracks endpoint returns. */
  async artistTopTracks(artistId: string): Promise<TrackJson[]> {
    await this.#mustExist('artists', 'Artist', artistId)
    const { rows } = await this.#db.query<TrackRow>(`SELECT ${TRACK_COLUMNS} FROM ${TRACK_FROM} WHERE al.artist_id = $1 ORDER BY t.popularity DESC, t.id LIMIT 10`, [artistId])
    return rows.map(toTrack)
  }

  // ── Search ──────────────────────────────────────────────────────────────────

  /**
   * Every word of `q` must occur (case-insensitive, anywhere) in the item's name or in a
   * related name (a track's artist or album, an album's artist, an artist's genres). Ranking:
   * exact name, then name starting with the phrase, then a word of the name starting with it,
   * then the phrase anywhere in the name, then matches through related names only; ties go
   * to the more popular item.
   */
  async search(q: string, type: SearchType, limit: number, offset: number): Promise<Slice<TrackJson> | Slice<AlbumJson> | Slice<ArtistJson>> {
    const terms = q.toLowerCase().split(/\s+/).filter((term) => term !== '').slice(0, 10)
    const spec = SEARCH[type]
    // The filter's placeholders are numbered from `first`, so the page query (which puts the
    // four ranking parameters first) and the count query (which has none) share one builder.
    const filter = (first: number): string =>
      terms.length === 0
        ? 'true'
        : terms.map((_term, i) => `(${spec.fields.map((field) => `${field} LIKE $${first + i} ESCAPE '\\'`).join(' OR ')})`).join(' AND ')
    const termParams = terms.map((term) => `%${likeEscape(term)}%`)
    const phrase = likeEscape(terms.join(' '))
    const rank = `CASE WHEN lower(${spec.name}) = $1 THEN 0 WHEN lower(${spec.name}) LIKE $2 ESCAPE '\\' THEN 1
      WHEN lower(${spec.name}) LIKE $3 ESCAPE '\\' THEN 2 WHEN lower(${spec.name}) LIKE $4 ESCAPE '\\' THEN 3 ELSE 4 END`
    const params = [terms.join(' '), `${phrase}%`, `% ${phrase}%`, `%${phrase}%`, ...termParams, limit, offset]
    const [rows, total] = await Promise.all([
      this.#db.query(
        `SELECT ${spec.columns} FROM ${spec.from} WHERE ${filter(5)} ORDER BY ${rank}, ${spec.popularity} DESC, ${spec.name}, ${spec.id} LIMIT $${params.length - 1} OFFSET $${params.length}`,
        params,
      ),
      this.#count(`SELECT count(*)::int AS n FROM ${spec.from} WHERE ${filter(1)}`, termParams),
    ])
    switch (type) {
      case 'track':
        return { items: (rows.rows as unknown as TrackRow[]).map(toTrack), total }
      case 'album':
        return { items: (rows.rows as unknown as AlbumRow[]).map(toAlbum), total }
      case 'artist':
        return { items: (rows.rows as unknown as ArtistRow[]).map(toArtist), total }
    }
  }

  // ── Users ───────────────────────────────────────────────────────────────────

  async users(limit: number, offset: number): Promise<Slice<UserJson>> {
    const [rows, total] = await Promise.all([
      this.#db.query<UserRow>('SELECT id, display_name, email, country, created_at FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2', [limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM users'),
    ])
    return { items: rows.rows.map(toUser), total }
  }

  async user(id: string): Promise<UserJson> {
    const { rows } = await this.#db.query<UserRow>('SELECT id, display_name, email, country, created_at FROM users WHERE id = $1', [id])
    const row = rows[0]
    if (row === undefined) throw notFound('User', id)
    return toUser(row)
  }

  /** The private profile (with email), as `GET /v1/me` answers it. */
  async privateUser(id: string): Promise<PrivateUserJson> {
    const { rows } = await this.#db.query<UserRow>('SELECT id, display_name, email, country, created_at FROM users WHERE id = $1', [id])
    const row = rows[0]
    if (row === undefined) throw notFound('User', id)
    return { ...toUser(row), email: row.email }
  }

  /** The owner of a playlist, for ownership checks; 404 when unknown. */
  async playlistOwner(id: string): Promise<string> {
    const { rows } = await this.#db.query<{ owner_id: string }>('SELECT owner_id FROM playlists WHERE id = $1', [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Playlist', id)
    return row.owner_id
  }

  /** 409 when the email address is taken; the unique index decides, so two racing sign-ups cannot both win. */
  async createUser(input: { displayName: string; email: string; country?: string | undefined; passwordHash?: string | undefined }): Promise<PrivateUserJson> {
    try {
      const { rows } = await this.#db.query<UserRow>(
        'INSERT INTO users (id, display_name, email, country, password_hash) VALUES ($1, $2, $3, $4, $5) RETURNING id, display_name, email, country, created_at',
        [newId(), input.displayName, input.email, input.country ?? null, input.passwordHash ?? null],
      )
      const row = rows[0] as UserRow
      return { ...toUser(row), email: row.email }
    } catch (err) {
      if (hasSqlState(err, '23505')) throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: 'A user with this email address already exists.' } })
      throw err
    }
  }

  // ── Playlists ───────────────────────────────────────────────────────────────

  async userPlaylists(userId: string, limit: number, offset: number): Promise<Slice<SimplifiedPlaylistJson>> {
    await this.#mustExist('users', 'User', userId)
    const [rows, total] = await Promise.all([
      this.#db.query<PlaylistRow>(`SELECT ${PLAYLIST_COLUMNS} FROM ${PLAYLIST_FROM} WHERE p.owner_id = $1 ORDER BY p.created_at DESC, p.id LIMIT $2 OFFSET $3`, [userId, limit, offset]),
      this.#count('SELECT count(*)::int AS n FROM playlists WHERE owner_id = $1', [userId]),
    ])
    return { items: rows.rows.map(toPlaylist), total }
  }

  /** The playlist's current snapshot_id (its ETag) without reading its items; 404 when unknown. */
  async snapshotId(id: string): Promise<string> {
    const { rows } = await this.#db.query<{ snapshot_id: string }>('SELECT snapshot_id FROM playlists WHERE id = $1', [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Playlist', id)
    return row.snapshot_id
  }

  async playlist(id: string, executor: SqlExecutor = this.#db): Promise<SimplifiedPlaylistJson> {
    const { rows } = await executor.query<PlaylistRow>(`SELECT ${PLAYLIST_COLUMNS} FROM ${PLAYLIST_FROM} WHERE p.id = $1`, [id])
    const row = rows[0]
    if (row === undefined) throw notFound('Playlist', id)
    return toPlaylist(row)
  }

  async createPlaylist(ownerId: string, input: { name: string; description: string; public: boolean; collaborative: boolean }): Promise<SimplifiedPlaylistJson> {
    assertVisibility(input.public, input.collaborative)
    return this.#db.transaction(async (tx) => {
      const id = newId()
      // INSERT ... SELECT: an unknown owner inserts nothing instead of tripping the foreign key.
      const inserted = await tx.query(
        'INSERT INTO playlists (id, owner_id, name, description, public, collaborative, snapshot_id) SELECT $1, u.id, $3, $4, $5, $6, $7 FROM users u WHERE u.id = $2',
        [id, ownerId, input.name, input.description, input.public, input.collaborative, newId()],
      )
      if (inserted.rowCount === 0) throw notFound('User', ownerId)
      return this.playlist(id, tx)
    })
  }

  async updatePlaylist(id: string, patch: { name?: string | undefined; description?: string | undefined; public?: boolean | undefined; collaborative?: boolean | undefined }, precondition: Precondition): Promise<SimplifiedPlaylistJson> {
    return this.#db.transaction(async (tx) => {
      const current = await this.#lock(tx, id, precondition)
      const next = {
        name: patch.name ?? current.name,
        description: patch.description ?? current.description,
        public: patch.public ?? current.public,
        collaborative: patch.collaborative ?? current.collaborative,
      }
      assertVisibility(next.public, next.collaborative)
      await tx.query('UPDATE playlists SET name = $2, description = $3, public = $4, collaborative = $5, snapshot_id = $6, updated_at = now() WHERE id = $1', [
        id,
        next.name,
        next.description,
        next.public,
        next.collaborative,
        newId(),
      ])
      return this.playlist(id, tx)
    })
  }

  async deletePlaylist(id: string, precondition: Precondition): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await this.#lock(tx, id, precondition)
      await tx.query('DELETE FROM playlists WHERE id = $1', [id])
    })
  }

  /**
   * The playlist and its first `limit` items, read in one REPEATABLE READ transaction so the
   * items always belong to the snapshot_id answered with them.
   */
  async playlistWithTracks(id: string, limit: number): Promise<{ playlist: SimplifiedPlaylistJson } & Slice<PlaylistTrackJson>> {
    return this.#db.transaction(async (tx) => {
      await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
      const playlist = await this.playlist(id, tx)
      const { items, total } = await this.#items(tx, id, limit, 0)
      return { playlist, items, total }
    })
  }

  async playlistItems(id: string, limit: number, offset: number): Promise<Slice<PlaylistTrackJson>> {
    await this.#mustExist('playlists', 'Playlist', id)
    return this.#items(this.#db, id, limit, offset)
  }

  /** Inserts `trackIds` (in order, duplicates allowed) at `position`, or appends. */
  async addTracks(id: string, trackIds: readonly string[], position: number | undefined, precondition: Precondition): Promise<string> {
    return this.#mutate(id, precondition, async (tx, length) => {
      const at = position ?? length
      if (at > length) throw invalidField('body', '/position', `must be at most ${length} (the playlist length)`)
      if (length + trackIds.length > MAX_PLAYLIST_LENGTH) {
        throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: `A playlist holds at most ${MAX_PLAYLIST_LENGTH} items; this one has ${length}.` } })
      }
      const unique = [...new Set(trackIds)]
      const { rows } = await tx.query<{ id: string }>('SELECT id FROM tracks WHERE id = ANY($1::text[])', [unique])
      const known = new Set(rows.map((row) => row.id))
      const missing = unique.find((trackId) => !known.has(trackId))
      if (missing !== undefined) throw notFound('Track', missing)
      await tx.query('UPDATE playlist_tracks SET position = position + $2 WHERE playlist_id = $1 AND position >= $3', [id, trackIds.length, at])
      await tx.query(
        'INSERT INTO playlist_tracks (playlist_id, track_id, position) SELECT $1, item.track_id, $3 + item.ord - 1 FROM unnest($2::text[]) WITH ORDINALITY AS item(track_id, ord)',
        [id, trackIds, at],
      )
      return true
    })
  }

  /**
   * Removes every occurrence of each track, or only the listed positions of it. A listed
   * position that does not hold that track is a 409: the client's view of the playlist is
   * out of date, and guessing which item it meant could delete the wrong one.
   */
  async removeTracks(id: string, items: readonly { trackId: string; uri: string; positions?: readonly number[] | undefined }[], precondition: Precondition): Promise<string> {
    return this.#mutate(id, precondition, async (tx) => {
      const everywhere = items.filter((item) => item.positions === undefined).map((item) => item.trackId)
      const positioned = items.flatMap((item) => (item.positions ?? []).map((position) => ({ position, trackId: item.trackId, uri: item.uri })))
      if (positioned.length > 0) {
        const { rows } = await tx.query<{ position: number; track_id: string }>('SELECT position, track_id FROM playlist_tracks WHERE playlist_id = $1 AND position = ANY($2::int[])', [
          id,
          positioned.map((p) => p.position),
        ])
        const at = new Map(rows.map((row) => [row.position, row.track_id]))
        for (const wanted of positioned) {
          if (at.get(wanted.position) !== wanted.trackId) {
            throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: `Position ${wanted.position} of playlist ${id} does not hold ${wanted.uri}; fetch the playlist again.` } })
          }
        }
      }
      const removed = await tx.query('DELETE FROM playlist_tracks WHERE playlist_id = $1 AND (track_id = ANY($2::text[]) OR position = ANY($3::int[]))', [
        id,
        everywhere,
        positioned.map((p) => p.position),
      ])
      if (removed.rowCount === 0) return false
      await tx.query(
        `UPDATE playlist_tracks p SET position = r.new_position
         FROM (SELECT id, (row_number() OVER (ORDER BY position) - 1)::int AS new_position FROM playlist_tracks WHERE playlist_id = $1) r
         WHERE p.id = r.id AND p.position <> r.new_position`,
        [id],
      )
      return true
    })
  }

  /**
   * Moves `rangeLength` items starting at `rangeStart` to just before the item now at
   * `insertBefore` (Spotify's semantics: indexes refer to the order before the move). Only
   * the rows between the old and new place are touched, in one UPDATE.
   */
  async reorderTracks(id: string, move: { rangeStart: number; insertBefore: number; rangeLength: number }, precondition: Precondition): Promise<string> {
    return this.#mutate(id, precondition, async (tx, length) => {
      const { rangeStart: start, insertBefore: before, rangeLength: count } = move
      if (start >= length) throw invalidField('body', '/range_start', `must be less than ${length} (the playlist length)`)
      if (start + count > length) throw invalidField('body', '/range_length', `must be at most ${length - start} (items from range_start to the end)`)
      if (before > length) throw invalidField('body', '/insert_before', `must be at most ${length} (the playlist length)`)
      if (before >= start && before <= start + count) return false
      const [low, high, blockShift, otherShift] = before < start ? [before, start + count, before - start, count] : [start, before, before - count - start, -count]
      await tx.query(
        `UPDATE playlist_tracks SET position = position + CASE WHEN position >= $2 AND position < $3 THEN $4::int ELSE $5::int END
         WHERE playlist_id = $1 AND position >= $6 AND position < $7`,
        [id, start, start + count, blockShift, otherShift, low, high],
      )
      return true
    })
  }

  // ── Helpers ─────────────────────────────────────────────────────────────────

  /**
   * Runs one playlist change in a transaction holding the playlist's row lock, so concurrent
   * changes apply one after the other and each sees the positions the previous one left.
   * A new `snapshot_id` is issued only when `change` reports that something changed.
   */
  async #mutate(id: string, precondition: Precondition, change: (tx: SqlExecutor, length: number) => Promise<boolean>): Promise<string> {
    return this.#db.transaction(async (tx) => {
      const current = await this.#lock(tx, id, precondition)
      const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM playlist_tracks WHERE playlist_id = $1', [id])
      if (!(await change(tx, rows[0]?.n ?? 0))) return current.snapshot_id
      const snapshot = newId()
      await tx.query('UPDATE playlists SET snapshot_id = $2, updated_at = now() WHERE id = $1', [id, snapshot])
      return snapshot
    })
  }

  async #lock(tx: SqlExecutor, id: string, precondition: Precondition): Promise<{ snapshot_id: string; name: string; description: string; public: boolean; collaborative: boolean }> {
    const { rows } = await tx.query<{ snapshot_id: string; name: string; description: string; public: boolean; collaborative: boolean }>(
      'SELECT snapshot_id, name, description, public, collaborative FROM playlists WHERE id = $1 FOR UPDATE',
      [id],
    )
    const current = rows[0]
    if (current === undefined) throw notFound('Playlist', id)
    if (precondition.ifMatch !== undefined && !ifMatchHolds(precondition.ifMatch, current.snapshot_id)) {
      throw new BackbeatError('ERR_RESOURCE_PRECONDITION_FAILED', { params: { reason: `If-Match does not match the current version of playlist ${id}; fetch it again.` } })
    }
    if (precondition.snapshotId !== undefined && precondition.snapshotId !== current.snapshot_id) {
      throw new BackbeatError('ERR_RESOURCE_CONFLICT', { params: { reason: `Playlist ${id} has changed since snapshot ${precondition.snapshotId}; fetch it again.` } })
    }
    return current
  }

  async #items(executor: SqlExecutor, id: string, limit: number, offset: number): Promise<Slice<PlaylistTrackJson>> {
    const rows = await executor.query<TrackRow & { added_at: Date | string }>(
      `SELECT pt.added_at, ${TRACK_COLUMNS} FROM playlist_tracks pt JOIN ${TRACK_FROM} ON t.id = pt.track_id WHERE pt.playlist_id = $1 ORDER BY pt.position LIMIT $2 OFFSET $3`,
      [id, limit, offset],
    )
    const total = await this.#count('SELECT count(*)::int AS n FROM playlist_tracks WHERE playlist_id = $1', [id], executor)
    return { items: rows.rows.map((row) => ({ added_at: isoTime(row.added_at), track: toTrack(row) })), total }
  }

  async #mustExist(table: 'albums' | 'artists' | 'users' | 'playlists', resource: string, id: string): Promise<void> {
    const { rowCount } = await this.#db.query(`SELECT 1 FROM ${table} WHERE id = $1`, [id])
    if (rowCount === 0) throw notFound(resource, id)
  }

  async #count(sql: string, params: readonly unknown[] = [], executor: SqlExecutor = this.#db): Promise<number> {
    const { rows } = await executor.query<{ n: number }>(sql, params)
    return rows[0]?.n ?? 0
  }
}

const SEARCH = {
  track: { columns: TRACK_COLUMNS, from: TRACK_FROM, name: 't.name', id: 't.id', popularity: 't.popularity', fields: ['lower(t.name)', 'lower(ar.name)', 'lower(al.name)'] },
  album: { columns: ALBUM_COLUMNS, from: ALBUM_FROM, name: 'al.name', id: 'al.id', popularity: 'al.popularity', fields: ['lower(al.name)', 'lower(ar.name)'] },
  artist: { columns: ARTIST_COLUMNS, from: 'artists ar', name: 'ar.name', id: 'ar.id', popularity: 'ar.popularity', fields: ['lower(ar.name)', "lower(array_to_string(ar.genres, ' '))"] },
} as const

/** Spotify's rule, checked before the database CHECK so the client gets a 400, not a 500. */
function assertVisibility(isPublic: boolean, collaborative: boolean): void {
  if (isPublic && collaborative) throw invalidField('body', '/collaborative', 'a collaborative playlist cannot be public; set public to false')
}
