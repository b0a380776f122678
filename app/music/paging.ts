import type { PagingJson } from './schemas.ts'

/**
 * Builds Spotify's paging object. Links are paths in this API (the public origin is only
 * known to the proxy in front of it) and keep the request's other query parameters, so a
 * client can follow `next` without rebuilding the search.
 *
 * @example page(items, 120, { path: '/v1/tracks', limit: 20, offset: 40 })
 */
export function page<T>(items: T[], total: number, at: { path: string; limit: number; offset: number; query?: Record<string, string> }): PagingJson<T> {
  const link = (offset: number): string => {
    const params = new URLSearchParams(at.query)
    params.set('offset', String(offset))
    params.set('limit', String(at.limit))
    return `${at.path}?${params.toString()}`
  }
  return {
    href: link(at.offset),
    items,
    limit: at.limit,
    next: at.offset + at.limit < total ? link(at.offset + at.limit) : null,
    offset: at.offset,
    previous: at.offset > 0 ? link(Math.max(0, at.offset - at.limit)) : null,
    total,
  }
}
