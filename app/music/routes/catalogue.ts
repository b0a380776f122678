import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RouteCache } from 'backbeat/cache'
import { Type, type TSchema } from '@sinclair/typebox'
import { invalidField } from '../errors.ts'
import { parseId } from '../ids.ts'
import { page } from '../paging.ts'
import type { MusicRepository, SearchType } from '../repository.ts'
import {
  Album,
  Artist,
  IdParams,
  ListOrSeveralQuery,
  PageQuery,
  Paging,
  problemResponses,
  refTo,
  SearchQuery,
  Track,
  type ListOrSeveralQueryJson,
  type PageQueryJson,
  type SearchQueryJson,
} from '../schemas.ts'
import { parseIdList } from './edge.ts'

/**
 * The catalogue changes rarely and is the same for everyone: shared caches (ours included)
 * keep it a minute, serve it stale for five more while refreshing, and for ten when the
 * database is down. Tags let an admin purge one entity (`track:<id>`) or all of it.
 */
const CATALOGUE_CACHE_CONTROL = 'public, max-age=60, stale-while-revalidate=300, stale-if-error=600'
function cacheable(kind?: 'track' | 'album' | 'artist'): { cache: RouteCache } {
  return {
    cache: {
      cacheControl: CATALOGUE_CACHE_CONTROL,
      tags: (request: FastifyRequest) => {
        const id = (request.params as { id?: unknown }).id
        return kind !== undefined && typeof id === 'string' && /^[A-Za-z0-9]{1,64}$/.test(id) ? ['catalogue', `${kind}:${id}`] : ['catalogue']
      },
    },
  }
}

const listOrSeveral = (item: TSchema, key: string, noun: string) =>
  Type.Union([Paging(refTo(item), `A page of ${noun}s (without ids).`), Type.Object({ [key]: Type.Array(Type.Union([refTo(item), Type.Null()])) }, { description: `The ${noun}s asked for by ids, null for unknown ones.` })])

/**
 * The read-only catalogue: tracks, albums, artists and search. Every ID from the path or
 * `ids=` is checked before any query, so a malformed one is a 400 and an unknown one a 404.
 */
export function catalogueRoutes(app: FastifyInstance, { repository }: { repository: MusicRepository }): Promise<void> {
  // ── Tracks ─────────────────────────────────────────────────────────────────
  app.get<{ Querystring: ListOrSeveralQueryJson }>(
    '/tracks',
    {
      config: cacheable('track'),
      schema: {
        tags: ['tracks'],
        summary: 'List tracks, or get several by ID',
        description: 'Without `ids`: a page of all tracks by name. With `ids`: those tracks in the order asked (Spotify\'s "Get Several Tracks"); `limit`/`offset` are then ignored.',
        querystring: ListOrSeveralQuery,
        response: { 200: listOrSeveral(Track, 'tracks', 'track'), ...problemResponses },
      },
    },
    async (request) => {
      const { ids, limit, offset } = request.query
      if (ids !== undefined) return { tracks: await repository.severalTracks(parseIdList('track', ids)) }
      const { items, total } = await repository.tracks(limit, offset)
      return page(items, total, { path: '/v1/tracks', limit, offset })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/tracks/:id',
    {
      config: cacheable('track'),
      schema: {
        tags: ['tracks'],
        summary: 'Get a track',
        description: 'One track with its album and artists.',
        params: IdParams('id', 'track'),
        response: { 200: refTo(Track), ...problemResponses },
      },
    },
    async (request) => repository.track(parseId('track', request.params.id)),
  )

  // ── Albums ─────────────────────────────────────────────────────────────────
  app.get<{ Querystring: ListOrSeveralQueryJson }>(
    '/albums',
    {
      config: cacheable('album'),
      schema: {
        tags: ['albums'],
        summary: 'List albums, or get several by ID',
        description: 'Without `ids`: a page of all albums by name. With `ids`: those albums in the order asked; `limit`/`offset` are then ignored.',
        querystring: ListOrSeveralQuery,
        response: { 200: listOrSeveral(Album, 'albums', 'album'), ...problemResponses },
      },
    },
    async (request) => {
      const { ids, limit, offset } = request.query
      if (ids !== undefined) return { albums: await repository.severalAlbums(parseIdList('album', ids)) }
      const { items, total } = await repository.albums(limit, offset)
      return page(items, total, { path: '/v1/albums', limit, offset })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/albums/:id',
    {
      config: cacheable('album'),
      schema: {
        tags: ['albums'],
        summary: 'Get an album',
        description: 'One album with its artists and track count.',
        params: IdParams('id', 'album'),
        response: { 200: refTo(Album), ...problemResponses },
      },
    },
    async (request) => repository.album(parseId('album', request.params.id)),
  )

  app.get<{ Params: { id: string }; Querystring: PageQueryJson }>(
    '/albums/:id/tracks',
    {
      config: cacheable('album'),
      schema: {
        tags: ['albums'],
        summary: "Get an album's tracks",
        description: 'A page of the album\'s tracks in disc and track order.',
        params: IdParams('id', 'album'),
        querystring: PageQuery,
        response: { 200: Paging(refTo(Track), 'A page of tracks.'), ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('album', request.params.id)
      const { limit, offset } = request.query
      const { items, total } = await repository.albumTracks(id, limit, offset)
      return page(items, total, { path: `/v1/albums/${id}/tracks`, limit, offset })
    },
  )

  // ── Artists ────────────────────────────────────────────────────────────────
  app.get<{ Querystring: ListOrSeveralQueryJson }>(
    '/artists',
    {
      config: cacheable('artist'),
      schema: {
        tags: ['artists'],
        summary: 'List artists, or get several by ID',
        description: 'Without `ids`: a page of all artists by name. With `ids`: those artists in the order asked; `limit`/`offset` are then ignored.',
        querystring: ListOrSeveralQuery,
        response: { 200: listOrSeveral(Artist, 'artists', 'artist'), ...problemResponses },
      },
    },
    async (request) => {
      const { ids, limit, offset } = request.query
      if (ids !== undefined) return { artists: await repository.severalArtists(parseIdList('artist', ids)) }
      const { items, total } = await repository.artists(limit, offset)
      return page(items, total, { path: '/v1/artists', limit, offset })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/artists/:id',
    {
      config: cacheable('artist'),
      schema: {
        tags: ['artists'],
        summary: 'Get an artist',
        description: 'One artist with genres, popularity and followers.',
        params: IdParams('id', 'artist'),
        response: { 200: refTo(Artist), ...problemResponses },
      },
    },
    async (request) => repository.artist(parseId('artist', request.params.id)),
  )

  app.get<{ Params: { id: string }; Querystring: PageQueryJson }>(
    '/artists/:id/albums',
    {
      config: cacheable('artist'),
      schema: {
        tags: ['artists'],
        summary: "Get an artist's albums",
        description: 'A page of the artist\'s albums, newest release first.',
        params: IdParams('id', 'artist'),
        querystring: PageQuery,
        response: { 200: Paging(refTo(Album), 'A page of albums.'), ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('artist', request.params.id)
      const { limit, offset } = request.query
      const { items, total } = await repository.artistAlbums(id, limit, offset)
      return page(items, total, { path: `/v1/artists/${id}/albums`, limit, offset })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/artists/:id/top-tracks',
    {
      config: cacheable('artist'),
      schema: {
        tags: ['artists'],
        summary: "Get an artist's top tracks",
        description: 'The artist\'s ten most popular tracks, most popular first.',
        params: IdParams('id', 'artist'),
        response: { 200: Type.Object({ tracks: Type.Array(refTo(Track), { maxItems: 10 }) }), ...problemResponses },
      },
    },
    async (request) => ({ tracks: await repository.artistTopTracks(parseId('artist', request.params.id)) }),
  )

  // ── Search ─────────────────────────────────────────────────────────────────
  app.get<{ Querystring: SearchQueryJson }>(
    '/search',
    {
      config: cacheable(),
      schema: {
        tags: ['search'],
        summary: 'Search the catalogue',
        description:
          'Case-insensitive search over tracks, albums and artists. Every word of `q` must occur in the item\'s name or a related name (a track\'s artist or album, an album\'s artist, an artist\'s genres). ' +
          'Results rank exact names first, then names starting with `q`, then names with a word starting with `q`, then names containing it, then matches through related names only; ties go to the more popular item. One page per requested type.',
        querystring: SearchQuery,
        response: {
          200: Type.Object({
            tracks: Type.Optional(Paging(refTo(Track), 'Matching tracks.')),
            albums: Type.Optional(Paging(refTo(Album), 'Matching albums.')),
            artists: Type.Optional(Paging(refTo(Artist), 'Matching artists.')),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const { q, type, limit, offset } = request.query
      if (q.trim() === '') throw invalidField('querystring', '/q', 'must contain at least one word')
      const types = [...new Set(type.split(','))] as SearchType[]
      const query = { q, type }
      const result: Record<string, unknown> = {}
      // One type after the other: PGlite runs one statement at a time anyway, and a pool
      // should not be drained by a single request.
      for (const kind of types) {
        const { items, total } = await repository.search(q, kind, limit, offset)
        result[`${kind}s`] = page<unknown>(items, total, { path: '/v1/search', limit, offset, query })
      }
      return result
    },
  )
  return Promise.resolve()
}
