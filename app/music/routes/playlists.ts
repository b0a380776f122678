import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { assertOwner, type Rbac } from 'backbeat/auth'
import { Type } from '@sinclair/typebox'
import { etag, ifNoneMatchFails } from '../entity-tags.ts'
import { parseId, parseUri } from '../ids.ts'
import { page } from '../paging.ts'
import type { MusicRepository, Precondition } from '../repository.ts'
import {
  AddTracksBody,
  CreatePlaylistBody,
  IdParams,
  IfMatchHeaders,
  IfNoneMatchHeaders,
  MAX_PLAYLIST_LENGTH,
  PageQuery,
  Paging,
  Playlist,
  PlaylistTrack,
  problemResponses,
  refTo,
  RemoveTracksBody,
  ReorderTracksBody,
  SimplifiedPlaylist,
  Snapshot,
  UpdatePlaylistBody,
  type AddTracksBodyJson,
  type CreatePlaylistBodyJson,
  type PageQueryJson,
  type PlaylistJson,
  type RemoveTracksBodyJson,
  type ReorderTracksBodyJson,
  type UpdatePlaylistBodyJson,
} from '../schemas.ts'

interface PlaylistParams { playlist_id: string }
interface IfMatch { 'if-match'?: string }
interface IfNoneMatch { 'if-none-match'?: string }

const PLAYLIST_PARAMS = IdParams('playlist_id', 'playlist')
const PRECONDITIONS =
  ' Send `snapshot_id` in the body (409 ERR_RESOURCE_CONFLICT when the playlist has changed since) or an `If-Match` header with the ETag (412 ERR_RESOURCE_PRECONDITION_FAILED) to apply the change only to the version you saw.'

function preconditionOf(headers: IfMatch, snapshotId?: string): Precondition {
  return { ifMatch: headers['if-match'], snapshotId }
}

function sendSnapshot(reply: FastifyReply, status: number, snapshotId: string): FastifyReply {
  return reply.code(status).header('etag', etag(snapshotId)).send({ snapshot_id: snapshotId })
}

/**
 * Playlists: create for a user, read, change details, delete, and edit the items (add at a
 * position, remove by URI, reorder a range). Every change issues a new `snapshot_id`, also sent
 * as the ETag; changes can be made conditional on it.
 */
/** Playlist writes need a signed-in caller holding playlist:write; the handlers check ownership. */
const WRITE = { auth: { permissions: ['playlist:write'] } } as const

export function playlistRoutes(app: FastifyInstance, { repository, rbac }: { repository: MusicRepository; rbac?: Rbac | undefined }): Promise<void> {
  /** A listener changes only their own playlists; `playlist:admin` (admins) may change any. */
  const owns = async (request: FastifyRequest, playlistId: string): Promise<void> => {
    if (rbac === undefined) return
    assertOwner(request, await repository.playlistOwner(playlistId), { resource: 'playlist', rbac, overridePermission: 'playlist:admin' })
  }

  const full = async (id: string): Promise<PlaylistJson> => {
    const { playlist, items, total } = await repository.playlistWithTracks(id, 100)
    return { ...playlist, tracks: page(items, total, { path: `/v1/playlists/${id}/tracks`, limit: 100, offset: 0 }) }
  }

  app.get<{ Params: { user_id: string }; Querystring: PageQueryJson }>(
    '/users/:user_id/playlists',
    {
      schema: {
        tags: ['playlists'],
        summary: "List a user's playlists",
        description: 'A page of the playlists the user owns, newest first.',
        params: IdParams('user_id', 'user'),
        querystring: PageQuery,
        response: { 200: Paging(refTo(SimplifiedPlaylist), 'A page of playlists.'), ...problemResponses },
      },
    },
    async (request) => {
      const userId = parseId('user', request.params.user_id)
      const { limit, offset } = request.query
      const { items, total } = await repository.userPlaylists(userId, limit, offset)
      return page(items, total, { path: `/v1/users/${userId}/playlists`, limit, offset })
    },
  )

  app.post<{ Params: { user_id: string }; Body: CreatePlaylistBodyJson }>(
    '/users/:user_id/playlists',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: 'Create a playlist',
        description: 'Creates an empty playlist owned by the user; answers 201 with the playlist, a Location header and the ETag. A collaborative playlist must not be public.',
        params: IdParams('user_id', 'user'),
        body: CreatePlaylistBody,
        response: { 201: refTo(Playlist), ...problemResponses },
      },
    },
    async (request, reply) => {
      const userId = parseId('user', request.params.user_id)
      if (rbac !== undefined) assertOwner(request, userId, { resource: 'account', rbac, overridePermission: 'playlist:admin' })
      const body = request.body
      const created = await repository.createPlaylist(userId, {
        name: body.name,
        description: body.description ?? '',
        public: body.public ?? true,
        collaborative: body.collaborative ?? false,
      })
      const playlist: PlaylistJson = { ...created, tracks: page([], 0, { path: `/v1/playlists/${created.id}/tracks`, limit: 100, offset: 0 }) }
      return reply.code(201).header('location', playlist.href).header('etag', etag(playlist.snapshot_id)).send(playlist)
    },
  )

  app.get<{ Params: PlaylistParams; Headers: IfNoneMatch }>(
    '/playlists/:playlist_id',
    {
      schema: {
        tags: ['playlists'],
        summary: 'Get a playlist',
        description:
          'The playlist with its first 100 items; the ETag is its snapshot_id. With `If-None-Match` listing the current ETag (weak comparison) or `*`, answers 304 Not Modified without a body.',
        params: PLAYLIST_PARAMS,
        headers: IfNoneMatchHeaders,
        response: { 200: refTo(Playlist), 304: Type.Null({ description: 'Not Modified: the playlist is still at the version you hold.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      const held = request.headers['if-none-match']
      if (held !== undefined) {
        // Only the snapshot_id is read to decide; the items are read only for a 200.
        const current = await repository.snapshotId(id)
        if (ifNoneMatchFails(held, current)) return reply.code(304).header('etag', etag(current)).send()
      }
      const playlist = await full(id)
      return reply.header('etag', etag(playlist.snapshot_id)).send(playlist)
    },
  )

  app.put<{ Params: PlaylistParams; Body: UpdatePlaylistBodyJson; Headers: IfMatch }>(
    '/playlists/:playlist_id',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: "Change a playlist's details",
        description: 'Changes any of name, description, public and collaborative; answers the updated playlist with a new snapshot_id. Honours `If-Match` (412 when stale).',
        params: PLAYLIST_PARAMS,
        headers: IfMatchHeaders,
        body: UpdatePlaylistBody,
        response: { 200: refTo(Playlist), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      await owns(request, id)
      await repository.updatePlaylist(id, request.body, preconditionOf(request.headers))
      const playlist = await full(id)
      return reply.header('etag', etag(playlist.snapshot_id)).send(playlist)
    },
  )

  app.delete<{ Params: PlaylistParams; Headers: IfMatch }>(
    '/playlists/:playlist_id',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: 'Delete a playlist',
        description: 'Deletes the playlist and its items; answers 204. Honours `If-Match` (412 when stale).',
        params: PLAYLIST_PARAMS,
        headers: IfMatchHeaders,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      await owns(request, id)
      await repository.deletePlaylist(id, preconditionOf(request.headers))
      return reply.code(204).send()
    },
  )

  app.get<{ Params: PlaylistParams; Querystring: PageQueryJson }>(
    '/playlists/:playlist_id/tracks',
    {
      schema: {
        tags: ['playlists'],
        summary: "Get a playlist's items",
        description: 'A page of the playlist\'s items in playlist order.',
        params: PLAYLIST_PARAMS,
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 100, description: 'Items per page, 1 to 100.' }),
            offset: Type.Integer({ minimum: 0, maximum: MAX_PLAYLIST_LENGTH, default: 0, description: `Index of the first item to return, at most ${MAX_PLAYLIST_LENGTH} (the longest playlist).` }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Paging(refTo(PlaylistTrack), 'A page of playlist items.'), ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('playlist', request.params.playlist_id)
      const { limit, offset } = request.query
      const { items, total } = await repository.playlistItems(id, limit, offset)
      return page(items, total, { path: `/v1/playlists/${id}/tracks`, limit, offset })
    },
  )

  app.post<{ Params: PlaylistParams; Body: AddTracksBodyJson; Headers: IfMatch }>(
    '/playlists/:playlist_id/tracks',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: 'Add items to a playlist',
        description: 'Inserts the tracks, in the order given, at `position` (zero-based; appends when omitted). Answers 201 with the new snapshot_id. 404 for an unknown track.' + PRECONDITIONS,
        params: PLAYLIST_PARAMS,
        headers: IfMatchHeaders,
        body: AddTracksBody,
        response: { 201: refTo(Snapshot), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      await owns(request, id)
      const { uris, position, snapshot_id: snapshotId } = request.body
      const trackIds = uris.map((uri) => parseUri('track', uri))
      const snapshot = await repository.addTracks(id, trackIds, position, preconditionOf(request.headers, snapshotId))
      return sendSnapshot(reply, 201, snapshot)
    },
  )

  app.delete<{ Params: PlaylistParams; Body: RemoveTracksBodyJson; Headers: IfMatch }>(
    '/playlists/:playlist_id/tracks',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: 'Remove items from a playlist',
        description:
          'Removes every occurrence of each track URI, or only the listed `positions` of it (409 when a listed position holds another track). Later items move up. Answers the snapshot_id (unchanged when nothing matched).' + PRECONDITIONS,
        params: PLAYLIST_PARAMS,
        headers: IfMatchHeaders,
        body: RemoveTracksBody,
        response: { 200: refTo(Snapshot), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      await owns(request, id)
      const { tracks, snapshot_id: snapshotId } = request.body
      const items = tracks.map((item) => ({ uri: item.uri, trackId: parseUri('track', item.uri), positions: item.positions }))
      const snapshot = await repository.removeTracks(id, items, preconditionOf(request.headers, snapshotId))
      return sendSnapshot(reply, 200, snapshot)
    },
  )

  app.put<{ Params: PlaylistParams; Body: ReorderTracksBodyJson; Headers: IfMatch }>(
    '/playlists/:playlist_id/tracks',
    {
      config: WRITE,
      schema: {
        tags: ['playlists'],
        summary: 'Reorder a playlist',
        description:
          'Moves `range_length` items starting at `range_start` to just before the item at `insert_before` (indexes in the order before the move; the playlist length moves them to the end). Answers the snapshot_id (unchanged when the move changes nothing).' +
          PRECONDITIONS,
        params: PLAYLIST_PARAMS,
        headers: IfMatchHeaders,
        body: ReorderTracksBody,
        response: { 200: refTo(Snapshot), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('playlist', request.params.playlist_id)
      await owns(request, id)
      const { range_start: rangeStart, insert_before: insertBefore, range_length: rangeLength, snapshot_id: snapshotId } = request.body
      const snapshot = await repository.reorderTracks(id, { rangeStart, insertBefore, rangeLength: rangeLength ?? 1 }, preconditionOf(request.headers, snapshotId))
      return sendSnapshot(reply, 200, snapshot)
    },
  )

  return Promise.resolve()
}
