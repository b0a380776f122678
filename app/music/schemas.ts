import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'

/**
 * JSON Schemas of the music API, in Spotify Web API shapes. The object schemas carry an
 * `$id`: they are registered once with `app.addSchema`, referenced by every route, and so
 * appear once under `components.schemas` in `/openapi.json` instead of inlined per route.
 */

const Id = (kind: string) =>
  Type.String({ description: `The ${kind}'s Spotify ID: 22 base62 characters.`, examples: ['4uLU6hMCjMI75M1A2tKUQC'] })
const Uri = (kind: string) => Type.String({ description: `spotify:${kind}:<id>`, examples: [`spotify:${kind}:4uLU6hMCjMI75M1A2tKUQC`] })
const Href = Type.String({ description: 'Path of the resource in this API.' })
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/** `{ $ref: '<$id>' }` to a schema registered with `app.addSchema`, keeping its static type. */
export function refTo<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  if (schema.$id === undefined) throw new TypeError('refTo needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: schema.$id })
}

export const ArtistRef = Type.Object(
  { id: Id('artist'), type: Type.Literal('artist'), uri: Uri('artist'), href: Href, name: Type.String() },
  { $id: 'ArtistRef', description: 'Simplified artist, as nested in albums and tracks.' },
)

export const Artist = Type.Object(
  {
    id: Id('artist'),
    type: Type.Literal('artist'),
    uri: Uri('artist'),
    href: Href,
    name: Type.String(),
    genres: Type.Array(Type.String()),
    popularity: Type.Integer({ minimum: 0, maximum: 100 }),
    followers: Type.Object({ total: Type.Integer({ minimum: 0 }) }),
  },
  { $id: 'Artist' },
)

export const AlbumRef = Type.Object(
  {
    id: Id('album'),
    type: Type.Literal('album'),
    uri: Uri('album'),
    href: Href,
    name: Type.String(),
    album_type: Type.Union([Type.Literal('album'), Type.Literal('single'), Type.Literal('compilation')]),
    release_date: Type.String({ format: 'date' }),
    release_date_precision: Type.Literal('day'),
    total_tracks: Type.Integer({ minimum: 0 }),
    artists: Type.Array(refTo(ArtistRef)),
  },
  { $id: 'AlbumRef', description: 'Simplified album, as nested in tracks.' },
)

export const Album = Type.Object(
  {
    id: Id('album'),
    type: Type.Literal('album'),
    uri: Uri('album'),
    href: Href,
    name: Type.String(),
    album_type: Type.Union([Type.Literal('album'), Type.Literal('single'), Type.Literal('compilation')]),
    release_date: Type.String({ format: 'date' }),
    release_date_precision: Type.Literal('day'),
    total_tracks: Type.Integer({ minimum: 0 }),
    artists: Type.Array(refTo(ArtistRef)),
    label: Type.String(),
    popularity: Type.Integer({ minimum: 0, maximum: 100 }),
  },
  { $id: 'Album' },
)

export const Track = Type.Object(
  {
    id: Id('track'),
    type: Type.Literal('track'),
    uri: Uri('track'),
    href: Href,
    name: Type.String(),
    duration_ms: Type.Integer({ minimum: 1 }),
    explicit: Type.Boolean(),
    disc_number: Type.Integer({ minimum: 1 }),
    track_number: Type.Integer({ minimum: 1 }),
    popularity: Type.Integer({ minimum: 0, maximum: 100 }),
    external_ids: Type.Object({ isrc: Nullable(Type.String()) }),
    album: refTo(AlbumRef),
    artists: Type.Array(refTo(ArtistRef)),
  },
  { $id: 'Track' },
)

export const UserRef = Type.Object(
  { id: Id('user'), type: Type.Literal('user'), uri: Uri('user'), href: Href, display_name: Type.String() },
  { $id: 'UserRef', description: 'Simplified user, as the owner of a playlist.' },
)

export const User = Type.Object(
  {
    id: Id('user'),
    type: Type.Literal('user'),
    uri: Uri('user'),
    href: Href,
    display_name: Type.String(),
    country: Nullable(Type.String({ description: 'ISO 3166-1 alpha-2 country code.' })),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'User', description: 'Public profile: no email.' },
)

export const PrivateUser = Type.Object(
  {
    id: Id('user'),
    type: Type.Literal('user'),
    uri: Uri('user'),
    href: Href,
    display_name: Type.String(),
    country: Nullable(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    email: Type.String(),
  },
  { $id: 'PrivateUser', description: 'The profile as its creator sees it, with the email address.' },
)

export const PlaylistTrack = Type.Object(
  { added_at: Type.String({ format: 'date-time' }), track: refTo(Track) },
  { $id: 'PlaylistTrack', description: 'One item of a playlist.' },
)

/** Spotify's paging object; `next`/`previous` are paths in this API, or null at the ends. */
export function Paging<T extends TSchema>(item: T, description: string) {
  return Type.Object(
    {
      href: Href,
      items: Type.Array(item),
      limit: Type.Integer(),
      next: Nullable(Type.String()),
      offset: Type.Integer(),
      previous: Nullable(Type.String()),
      total: Type.Integer(),
    },
    { description },
  )
}

const playlistFields = {
  id: Id('playlist'),
  type: Type.Literal('playlist'),
  uri: Uri('playlist'),
  href: Href,
  name: Type.String(),
  description: Type.String(),
  public: Type.Boolean(),
  collaborative: Type.Boolean(),
  snapshot_id: Type.String({ description: 'Version of the playlist; changes on every modification. Also sent as the ETag.' }),
  owner: refTo(UserRef),
}

export const SimplifiedPlaylist = Type.Object(
  { ...playlistFields, tracks: Type.Object({ href: Href, total: Type.Integer() }) },
  { $id: 'SimplifiedPlaylist' },
)

export const Playlist = Type.Object(
  { ...playlistFields, tracks: Paging(refTo(PlaylistTrack), 'The first 100 items.') },
  { $id: 'Playlist' },
)

export const Snapshot = Type.Object({ snapshot_id: Type.String() }, { $id: 'Snapshot', description: 'The playlist version after the change.' })

/** Every schema with an `$id`, in dependency order, for `app.addSchema`. */
export const sharedSchemas: readonly TSchema[] = [ArtistRef, Artist, AlbumRef, Album, Track, UserRef, User, PrivateUser, PlaylistTrack, SimplifiedPlaylist, Playlist, Snapshot]

export type ArtistRefJson = Static<typeof ArtistRef>
export type ArtistJson = Static<typeof Artist>
export type AlbumRefJson = Static<typeof AlbumRef>
export type AlbumJson = Static<typeof Album>
export type TrackJson = Static<typeof Track>
export type UserRefJson = Static<typeof UserRef>
export type UserJson = Static<typeof User>
export type PrivateUserJson = Static<typeof PrivateUser>
export type PlaylistTrackJson = Static<typeof PlaylistTrack>
export type SimplifiedPlaylistJson = Static<typeof SimplifiedPlaylist>
export type PlaylistJson = Static<typeof Playlist>

/** Spotify's paging object for items of type `T`. */
export interface PagingJson<T> {
  href: string
  items: T[]
  limit: number
  next: string | null
  offset: number
  previous: string | null
  total: number
}

// ── Request parts ────────────────────────────────────────────────────────────
//
// Every string a client sends has a maxLength, and every free-text one excludes NUL (which
// PostgreSQL text cannot hold); every integer has a minimum and a maximum that fit the
// columns they reach. A value outside them is a 400 here, never a data exception in the
// database answered as a 500.

/** Spotify's limit on a playlist's length; bounds every position and index in a request. */
export const MAX_PLAYLIST_LENGTH = 10_000

/** Any character but NUL (U+0000): PostgreSQL text cannot store it. */
const NO_NUL = '^[^\\u0000]*$'

/** A free-text string from a client: bounded, and without NUL. */
const Text = (options: { minLength?: number; maxLength: number; description?: string }) => Type.String({ ...options, pattern: NO_NUL })

/** An ID in a path: checked by `parseId` (400 ERR_VALIDATION_ID_INVALID naming it), so only bounded here. */
const IdParam = (kind: string) => Type.String({ maxLength: 100, description: `The ${kind}'s Spotify ID: 22 base62 characters.`, examples: ['4uLU6hMCjMI75M1A2tKUQC'] })

/** A zero-based index into a playlist; `end` allows the length itself (insert at the end). */
const PlaylistIndex = (description: string, end = false) => Type.Integer({ minimum: 0, maximum: end ? MAX_PLAYLIST_LENGTH : MAX_PLAYLIST_LENGTH - 1, description })

export const Limit = (max: number, fallback: number) => Type.Integer({ minimum: 1, maximum: max, default: fallback, description: `Items per page, 1 to ${max}.` })
export const Offset = Type.Integer({ minimum: 0, maximum: 100_000, default: 0, description: 'Index of the first item to return, at most 100000.' })

export const PageQuery = Type.Object({ limit: Limit(50, 20), offset: Offset }, { additionalProperties: false })
export type PageQueryJson = Static<typeof PageQuery>

/** `ids` switches a list route to "get several" (Spotify's `GET /tracks?ids=`). */
export const ListOrSeveralQuery = Type.Object(
  {
    ids: Type.Optional(Type.String({ minLength: 1, maxLength: 50 * 23, description: 'Comma-separated IDs (at most 50): answers the objects in that order, null for unknown ones, instead of a page.' })),
    limit: Limit(50, 20),
    offset: Offset,
  },
  { additionalProperties: false },
)
export type ListOrSeveralQueryJson = Static<typeof ListOrSeveralQuery>

export const IdParams = (name: string, kind: string) => Type.Object({ [name]: IdParam(kind) }, { additionalProperties: false })

export const SearchQuery = Type.Object(
  {
    q: Text({ minLength: 1, maxLength: 200, description: 'Words to find, case-insensitive; every word must match the name, the artist or the album.' }),
    type: Type.String({ maxLength: 100, pattern: '^(track|album|artist)(,(track|album|artist))*$', description: 'Comma-separated: track, album, artist.', examples: ['track,artist'] }),
    limit: Limit(50, 20),
    offset: Type.Integer({ minimum: 0, maximum: 1000, default: 0, description: 'Index of the first result of each type.' }),
  },
  { additionalProperties: false },
)
export type SearchQueryJson = Static<typeof SearchQuery>

export const CreateUserBody = Type.Object(
  {
    display_name: Text({ minLength: 1, maxLength: 100 }),
    email: Type.String({ minLength: 3, maxLength: 254, pattern: '^[^@\\s\\u0000]+@[^@\\s\\u0000]+$' }),
    country: Type.Optional(Type.String({ minLength: 2, maxLength: 2, pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2 country code.' })),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024, description: 'Lets the user sign in with `POST /v1/auth/token`; stored as an scrypt hash only.' })),
  },
  { additionalProperties: false },
)
export type CreateUserBodyJson = Static<typeof CreateUserBody>

export const CreatePlaylistBody = Type.Object(
  {
    name: Text({ minLength: 1, maxLength: 100 }),
    description: Type.Optional(Text({ maxLength: 300 })),
    public: Type.Optional(Type.Boolean({ default: true })),
    collaborative: Type.Optional(Type.Boolean({ default: false, description: 'Only allowed with public: false.' })),
  },
  { additionalProperties: false },
)
export type CreatePlaylistBodyJson = Static<typeof CreatePlaylistBody>

export const UpdatePlaylistBody = Type.Object(
  {
    name: Type.Optional(Text({ minLength: 1, maxLength: 100 })),
    description: Type.Optional(Text({ maxLength: 300 })),
    public: Type.Optional(Type.Boolean()),
    collaborative: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type UpdatePlaylistBodyJson = Static<typeof UpdatePlaylistBody>

const SnapshotField = Text({ minLength: 1, maxLength: 64, description: 'Apply only if the playlist is still at this version; 409 otherwise.' })

export const AddTracksBody = Type.Object(
  {
    uris: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 100, description: 'Track URIs, at most 100.' }),
    position: Type.Optional(PlaylistIndex('Zero-based index to insert at, at most the playlist length; appends when omitted.', true)),
    snapshot_id: Type.Optional(SnapshotField),
  },
  { additionalProperties: false },
)
export type AddTracksBodyJson = Static<typeof AddTracksBody>

export const RemoveTracksBody = Type.Object(
  {
    tracks: Type.Array(
      Type.Object(
        {
          uri: Type.String({ maxLength: 64 }),
          positions: Type.Optional(Type.Array(PlaylistIndex('Zero-based index of an occurrence.'), { minItems: 1, maxItems: 100, description: 'Remove only these occurrences; every occurrence when omitted.' })),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
    snapshot_id: Type.Optional(SnapshotField),
  },
  { additionalProperties: false },
)
export type RemoveTracksBodyJson = Static<typeof RemoveTracksBody>

export const ReorderTracksBody = Type.Object(
  {
    range_start: PlaylistIndex('Index of the first item to move.'),
    insert_before: PlaylistIndex('Index, in the current order, before which the items are placed; the length appends.', true),
    range_length: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PLAYLIST_LENGTH, default: 1, description: 'How many consecutive items to move.' })),
    snapshot_id: Type.Optional(SnapshotField),
  },
  { additionalProperties: false },
)
export type ReorderTracksBodyJson = Static<typeof ReorderTracksBody>

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 1024, description: 'A snapshot_id (ETag); 412 when the playlist has changed since.' })),
})

export const IfNoneMatchHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.String({ maxLength: 1024, description: 'ETags the client holds, or `*`; 304 Not Modified when one is the current snapshot_id.' })),
})

/** `4xx`/`5xx` answers: RFC 9457 problem details, written by the Backbeat error handler. */
export const problemResponses = {
  '4xx': { $ref: 'ProblemDetails#' },
  '5xx': { $ref: 'ProblemDetails#' },
} as const
