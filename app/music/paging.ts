import type { PagingJson } from './schemas.ts'

/**
 * Builds Spotify's paging object. Links are paths in this API (the public origin is only
 * known to the proxy in front of it) and keep the request's other query parameters, so a
 * client can follow `next` without rebuilding the search.
 *
 * `next` is null on the last page. `previous` is null on the first page and when there is
 * nothing at all; from an offset at or past the end it points at the last page that has
 * items, on the same `limit` grid (offset 100, limit 20, total 45 → offset 40), so stepping
 * back never lands on another empty page.
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
  const previous = previousOffset(total, at.limit, at.offset)
  return {
    href: link(at.offset),
    items,
    limit: at.limit,
    next: at.offset + at.limit < total ? link(at.offset + at.limit) : null,
    offset: at.offset,
    previous: previous === null ? null : link(previous),
    total,
  }
}

/** Offset of the page before `offset`, or null when there is none (see {@link page}). */
export function previousOffset(total: number, limit: number, offset: number): number | null {
  if (offset <= 0 || total <= 0) return null
  // Within the items, one page back; past the end, as many pages back as it takes to reach
  // the last item.
  const steps = offset < total ? 1 : Math.floor((offset - total) / limit) + 1
  return Math.max(0, offset - steps * limit)
}
