import type { SqlDatabase, SqlExecutor } from 'backbeat/stores'
import { newId } from './ids.ts'

/** Name under which the demo data set is recorded in `music_seeds`. */
export const DEMO_SEED_NAME = 'demo-v1'

/** Fixed so every fresh database, test run and screenshot shows the same catalogue. */
const SEED = 0x6b65_6174

export interface SeedArtist { id: string; name: string; genres: string[]; popularity: number; followers: number }
export interface SeedAlbum { id: string; artistId: string; name: string; albumType: 'album' | 'single' | 'compilation'; releaseDate: string; label: string; popularity: number }
export interface SeedTrack { id: string; albumId: string; name: string; discNumber: number; trackNumber: number; durationMs: number; explicit: boolean; popularity: number; isrc: string }
export interface SeedUser { id: string; displayName: string; email: string; country: string; createdAt: string }
export interface SeedPlaylist { id: string; ownerId: string; name: string; description: string; public: boolean; snapshotId: string; createdAt: string; trackIds: string[] }

/** The whole demo data set; tests read it to know what the API should answer. */
export interface DemoCatalogue {
  artists: SeedArtist[]
  albums: SeedAlbum[]
  tracks: SeedTrack[]
  users: SeedUser[]
  playlists: SeedPlaylist[]
}

/**
 * mulberry32: tiny, fast and good enough for demo data; `Math.random` cannot be seeded.
 */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const ADJECTIVES = ['Electric', 'Silent', 'Golden', 'Velvet', 'Crimson', 'Neon', 'Hollow', 'Wild', 'Midnight', 'Lunar', 'Paper', 'Broken', 'Silver', 'Northern', 'Glass', 'Restless', 'Amber', 'Distant', 'Frozen', 'Burning', 'Secret', 'Blue', 'Lost', 'Cosmic']
const NOUNS = ['Rivers', 'Echoes', 'Foxes', 'Machines', 'Horizons', 'Tides', 'Lanterns', 'Satellites', 'Wolves', 'Gardens', 'Mirrors', 'Ghosts', 'Engines', 'Sparrows', 'Canyons', 'Signals', 'Harbors', 'Comets', 'Orchids', 'Stations']
const FIRST_NAMES = ['Ada', 'Miles', 'Nina', 'Otis', 'Billie', 'Ella', 'Louis', 'Aretha', 'Marvin', 'Joni', 'Etta', 'Nick', 'Patti', 'Ray', 'Sade', 'Tom', 'Björk', 'Iggy', 'Fela', 'Kate']
const LAST_NAMES = ['Lovelace', 'Hart', 'Simone', 'Redding', 'Holiday', 'Fitzgerald', 'Armstrong', 'Franklin', 'Gaye', 'Mitchell', 'James', 'Drake', 'Smith', 'Charles', 'Adu', 'Waits', 'Kuti', 'Pop', 'Bush', 'Young']
const TRACK_WORDS = ['Love', 'Night', 'Fire', 'Dream', 'Heart', 'Rain', 'Summer', 'Shadow', 'Light', 'Road', 'Sky', 'Ocean', 'City', 'Stars', 'Home', 'Gold', 'Storm', 'Dance', 'Time', 'Song', 'River', 'Moon', 'Wire', 'Snow']
const TRACK_PATTERNS: ((a: string, b: string) => string)[] = [
  (a, b) => `${a} ${b}`,
  (a) => a,
  (a, b) => `The ${a} of ${b}`,
  (a, b) => `${a} in the ${b}`,
  (a, b) => `${a} and ${b}`,
  (a) => `Another ${a}`,
  (a, b) => `${a} (${b} Mix)`,
]
const GENRES = ['indie rock', 'synthpop', 'jazz', 'soul', 'folk', 'hip hop', 'ambient', 'funk', 'electronic', 'blues', 'dream pop', 'afrobeat', 'post-punk', 'r&b']
const LABELS = ['Backbeat Records', 'Tidal Wave Music', 'Night Owl Recordings', 'Paper Moon', 'Blue Harbor', 'Analog Hearts']
const COUNTRIES = ['SE', 'US', 'GB', 'DE', 'FR', 'BR', 'JP', 'NG', 'IN', 'ES']
const PLAYLIST_NAMES = ['Morning Coffee', 'Focus Flow', 'Road Trip', 'Late Night Drive', 'Rainy Day', 'Workout Mix', 'Sunday Slow', 'Deep Work', 'Party Starters', 'Chill Vibes']

/**
 * Builds the deterministic demo catalogue: 40 artists, 100 albums, about 400 tracks, 20
 * users and 30 playlists. Pure: the same call always returns the same data.
 *
 * @example const { tracks } = demoCatalogue(); tracks.length // ≈ 400
 */
export function demoCatalogue(): DemoCatalogue {
  const random = mulberry32(SEED)
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1))
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const id = (): string => newId(() => Math.floor(random() * 256))

  const artists: SeedArtist[] = []
  const artistNames = new Set<string>()
  while (artists.length < 40) {
    const name = random() < 0.5 ? `${pick(ADJECTIVES)} ${pick(NOUNS)}` : `${pick(FIRST_NAMES)} ${pick(LAST_NAMES)}`
    if (artistNames.has(name)) continue
    artistNames.add(name)
    const genres = [...new Set([pick(GENRES), pick(GENRES)])].slice(0, int(1, 2))
    artists.push({ id: id(), name, genres, popularity: int(15, 95), followers: int(100, 2_000_000) })
  }

  const albums: SeedAlbum[] = []
  artists.forEach((artist, index) => {
    // 2 or 3 albums each, 100 in total.
    const count = index % 2 === 0 ? 3 : 2
    for (let i = 0; i < count; i++) {
      const roll = random()
      const albumType = roll < 0.6 ? 'album' : roll < 0.9 ? 'single' : 'compilation'
      const year = int(1968, 2024)
      const releaseDate = `${year}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`
      albums.push({ id: id(), artistId: artist.id, name: `${pick(ADJECTIVES)} ${pick(TRACK_WORDS)}`, albumType, releaseDate, label: pick(LABELS), popularity: int(5, 90) })
    }
  })

  const tracks: SeedTrack[] = []
  for (const album of albums) {
    const count = album.albumType === 'single' ? int(1, 2) : int(4, 6)
    for (let n = 1; n <= count; n++) {
      const name = pick(TRACK_PATTERNS)(pick(TRACK_WORDS), pick(TRACK_WORDS))
      tracks.push({
        id: id(),
        albumId: album.id,
        name,
        discNumber: 1,
        trackNumber: n,
        durationMs: int(95_000, 420_000),
        explicit: random() < 0.15,
        popularity: int(0, 100),
        isrc: `QZBBK${album.releaseDate.slice(2, 4)}${String(tracks.length + 1).padStart(5, '0')}`,
      })
    }
  }

  const users: SeedUser[] = []
  for (let i = 0; i < 20; i++) {
    const first = FIRST_NAMES[i] ?? 'Listener'
    const last = pick(LAST_NAMES)
    users.push({
      id: id(),
      displayName: `${first} ${last}`,
      email: `${first.normalize('NFD').replace(/[^A-Za-z]/g, '').toLowerCase()}.${last.toLowerCase()}${i}@example.com`,
      country: pick(COUNTRIES),
      createdAt: new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString(),
    })
  }

  const playlists: SeedPlaylist[] = []
  for (let i = 0; i < 30; i++) {
    const owner = pick(users)
    const size = int(5, 25)
    const trackIds = new Set<string>()
    while (trackIds.size < size) trackIds.add(pick(tracks).id)
    playlists.push({
      id: id(),
      ownerId: owner.id,
      name: `${pick(PLAYLIST_NAMES)} ${i + 1}`,
      description: `Demo playlist ${i + 1} by ${owner.displayName}`,
      public: random() < 0.8,
      snapshotId: id(),
      createdAt: new Date(Date.UTC(2024, 1, 1, 0, i)).toISOString(),
      trackIds: [...trackIds],
    })
  }

  return { artists, albums, tracks, users, playlists }
}

/**
 * Loads the demo catalogue once per database: the first instance to start takes an advisory
 * lock, loads everything in one transaction and records it in `music_seeds`; later starts
 * (and instances racing it) find the record and do nothing. Resolves whether it loaded.
 *
 * @example await seedDemoCatalogue(stores.sql)
 */
export async function seedDemoCatalogue(db: SqlDatabase): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('music.seed:' || current_schema(), 0))")
    const done = await tx.query('SELECT 1 FROM music_seeds WHERE name = $1', [DEMO_SEED_NAME])
    if (done.rowCount > 0) return false
    const data = demoCatalogue()
    await insertRows(tx, 'artists', ['id', 'name', 'genres', 'popularity', 'followers'], data.artists.map((a) => [a.id, a.name, a.genres, a.popularity, a.followers]))
    await insertRows(tx, 'albums', ['id', 'artist_id', 'name', 'album_type', 'release_date', 'label', 'popularity'], data.albums.map((a) => [a.id, a.artistId, a.name, a.albumType, a.releaseDate, a.label, a.popularity]))
    await insertRows(
      tx,
      'tracks',
      ['id', 'album_id', 'name', 'disc_number', 'track_number', 'duration_ms', 'explicit', 'popularity', 'isrc'],
      data.tracks.map((t) => [t.id, t.albumId, t.name, t.discNumber, t.trackNumber, t.durationMs, t.explicit, t.popularity, t.isrc]),
    )
    await insertRows(tx, 'users', ['id', 'display_name', 'email', 'country', 'created_at'], data.users.map((u) => [u.id, u.displayName, u.email, u.country, u.createdAt]))
    await insertRows(
      tx,
      'playlists',
      ['id', 'owner_id', 'name', 'description', 'public', 'snapshot_id', 'created_at', 'updated_at'],
      data.playlists.map((p) => [p.id, p.ownerId, p.name, p.description, p.public, p.snapshotId, p.createdAt, p.createdAt]),
    )
    await insertRows(
      tx,
      'playlist_tracks',
      ['playlist_id', 'track_id', 'position', 'added_at'],
      data.playlists.flatMap((p) => p.trackIds.map((trackId, position) => [p.id, trackId, position, p.createdAt])),
    )
    await tx.query('INSERT INTO music_seeds (name) VALUES ($1)', [DEMO_SEED_NAME])
    return true
  })
}

/** Multi-row INSERTs in chunks that stay well below Postgres's 65,535 parameters. */
async function insertRows(tx: SqlExecutor, table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
  const perChunk = Math.floor(10_000 / columns.length)
  for (let start = 0; start < rows.length; start += perChunk) {
    const chunk = rows.slice(start, start + perChunk)
    const params: unknown[] = []
    const tuples = chunk.map((row) => `(${row.map((value) => `$${params.push(value)}`).join(', ')})`)
    await tx.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`, params)
  }
}
