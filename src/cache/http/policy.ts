/**
 * RFC 9111 policy as pure functions: which responses a shared cache may store (§3), how
 * fresh they are (§4.2), whether a stored one may answer a request (§4, §5.2.1), and how a
 * stored response answers a conditional request itself (RFC 9110 §13, RFC 9111 §4.3.2).
 * Nothing here knows about Fastify, stores or clocks: times are passed in as epoch ms.
 */
import { parseCacheControl, type CacheControl } from './cache-control.ts'

/** Header fields a cache never stores or forwards from storage (RFC 9110 §7.6.1, RFC 9111 §3.1). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authentication-info',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Status codes cacheable by default (RFC 9110 §15.1): heuristic freshness applies to them. */
export const HEURISTICALLY_CACHEABLE = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/** Status codes this cache understands well enough to store (no 206: ranges are not combined). */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501])

/** Header fields by lower-cased name, as Node gives them (request) or Fastify holds them (reply: numbers too). */
export type HeaderMap = Readonly<Record<string, string | number | readonly string[] | undefined>>

/** One header's value as a single string (list-valued fields joined with `, `). */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  if (typeof value === 'string') return value
  return typeof value === 'number' ? String(value) : value.join(', ')
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 }
const IMF = /^(?:mon|tue|wed|thu|fri|sat|sun), (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i
const RFC850 = /^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i
const ASCTIME = /^(?:mon|tue|wed|thu|fri|sat|sun) ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i

/**
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms) as
 * epoch ms; undefined for anything else. Two-digit RFC 850 years more than 50 years ahead
 * are taken as the previous century.
 */
export function parseHttpDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const value = text.trim()
  let m = IMF.exec(value)
  if (m !== null) return utc(Number(m[3]), m[2], Number(m[1]), m[4], m[5], m[6])
  m = RFC850.exec(value)
  if (m !== null) {
    let year = 2000 + Number(m[3])
    if (year > new Date().getUTCFullYear() + 50) year -= 100
    return utc(year, m[2], Number(m[1]), m[4], m[5], m[6])
  }
  m = ASCTIME.exec(value)
  if (m !== null) return utc(Number(m[6]), m[1], Number((m[2] ?? '').trim()), m[3], m[4], m[5])
  return undefined
}

function utc(year: number, month: string | undefined, day: number, h: string | undefined, mi: string | undefined, s: string | undefined): number | undefined {
  const index = MONTHS[(month ?? '').toLowerCase()]
  if (index === undefined) return undefined
  const hours = Number(h)
  const minutes = Number(mi)
  const seconds = Number(s)
  if (day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return undefined
  const ms = Date.UTC(year, index, day, hours, minutes, Math.min(seconds, 59))
  return Number.isFinite(ms) ? ms : undefined
}

/** Why a response was not stored (the `detail` of `Cache-Status`). */
export type NotStorableReason =
  | 'method'
  | 'status'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'vary-star'
  | 'set-cookie'
  | 'no-freshness'
  | 'must-understand'

export interface StorableInput {
  readonly method: string
  readonly status: number
  readonly requestCacheControl: CacheControl
  readonly responseCacheControl: CacheControl
  readonly responseHeaders: HeaderMap
  readonly hasAuthorization: boolean
  readonly lifetimeMs: number
  readonly storeSetCookie: boolean
}

/**
 * RFC 9111 §3 and §3.5 for a shared cache: null when the response may be stored, else why
 * not. A response that would be stale on arrival is stored only when it has a validator or
 * a stale-while-revalidate/stale-if-error window (otherwise it could never be used).
 */
export function notStorable(input: StorableInput): NotStorableReason | null {
  const { responseCacheControl: cc, status } = input
  if (input.method !== 'GET') return 'method'
  // Final status codes only; 206 and 304 are never stored whole (§3, §3.3: ranges are not combined here).
  if (status < 200 || status === 206 || status === 304 || status > 999) return 'status'
  if (cc.mustUnderstand) {
    // must-understand: store only a status code whose caching rules we implement; it then overrides no-store (§5.2.2.3).
    if (!UNDERSTOOD.has(status)) return 'must-understand'
  } else if (cc.noStore) return 'no-store'
  if (input.requestCacheControl.noStore) return 'no-store'
  if (cc.private === true) return 'private'
  if (input.hasAuthorization && !cc.public && cc.sMaxAge === undefined && !cc.mustRevalidate) return 'authorization'
  const vary = headerValue(input.responseHeaders, 'vary')
  if (vary !== undefined && vary.split(',').some((f) => f.trim() === '*')) return 'vary-star'
  if (!input.storeSetCookie && input.responseHeaders['set-cookie'] !== undefined) return 'set-cookie'
  const explicit = cc.public || cc.maxAge !== undefined || cc.sMaxAge !== undefined || input.responseHeaders['expires'] !== undefined
  if (!explicit && !HEURISTICALLY_CACHEABLE.has(status)) return 'status'
  const usable =
    input.lifetimeMs > 0 ||
    input.responseHeaders['etag'] !== undefined ||
    input.responseHeaders['last-modified'] !== undefined ||
    (cc.staleWhileRevalidate ?? 0) > 0 ||
    (cc.staleIfError ?? 0) > 0
  if (!usable) return 'no-freshness'
  return null
}

export interface HeuristicOptions {
  /** Fraction of (Date - Last-Modified) used as freshness (RFC 9111 §4.2.2 suggests 10 %). */
  readonly fraction: number
  /** Upper bound of a heuristic lifetime, in seconds. */
  readonly maxS: number
}

/**
 * Freshness lifetime in ms for a shared cache (§4.2.1): `s-maxage`, then `max-age`, then
 * `Expires - Date`, then (for a heuristically cacheable status, or `public`) a fraction of
 * the time since `Last-Modified`; 0 when none applies. An invalid `Expires` means already
 * expired; with several `Expires` lines the response is stale (§5.3).
 */
export function freshnessLifetimeMs(cc: CacheControl, headers: HeaderMap, status: number, responseTime: number, heuristic: HeuristicOptions | false): number {
  if (cc.sMaxAge !== undefined) return cc.sMaxAge * 1_000
  if (cc.maxAge !== undefined) return cc.maxAge * 1_000
  const dateValue = parseHttpDate(headerValue(headers, 'date')) ?? responseTime
  const expiresField = headers['expires']
  if (expiresField !== undefined) {
    // Several Expires lines: stale (RFC 9111 §5.3).
    if (typeof expiresField !== 'string') return 0
    const expires = parseHttpDate(expiresField)
    return expires === undefined ? 0 : Math.max(0, expires - dateValue)
  }
  if (heuristic === false) return 0
  if (!HEURISTICALLY_CACHEABLE.has(status) && !cc.public) return 0
  const lastModified = parseHttpDate(headerValue(headers, 'last-modified'))
  if (lastModified === undefined || lastModified > dateValue) return 0
  return Math.min((dateValue - lastModified) * heuristic.fraction, heuristic.maxS * 1_000)
}

/**
 * The age of the response when it arrived, in ms (§4.2.3: the larger of apparent age and
 * corrected `Age`); the current age is this plus the time it has spent in the cache.
 */
export function initialAgeMs(headers: HeaderMap, requestTime: number, responseTime: number): number {
  const dateValue = parseHttpDate(headerValue(headers, 'date'))
  const apparentAge = dateValue === undefined ? 0 : Math.max(0, responseTime - dateValue)
  const ageValue = parseAge(headers['age'])
  const responseDelay = Math.max(0, responseTime - requestTime)
  const correctedAgeValue = ageValue * 1_000 + responseDelay
  return Math.max(apparentAge, correctedAgeValue)
}

/** `Age` as delta-seconds; a non-numeric or list value counts as 0 (ignored), several lines take the first. */
export function parseAge(field: string | number | readonly string[] | undefined): number {
  if (field === undefined) return 0
  const text = typeof field === 'string' ? field : typeof field === 'number' ? String(field) : (field[0] ?? '')
  const first = text.split(',')[0]?.trim() ?? ''
  if (!/^\d+$/.test(first)) return 0
  return Math.min(first.length > 10 ? 2_147_483_648 : Number(first), 2_147_483_648)
}

/** A request's caching wishes (§5.2.1), with `Pragma: no-cache` honoured when `Cache-Control` is absent (§5.4). */
export function requestCacheControl(cacheControl: string | readonly string[] | undefined, pragma: string | readonly string[] | undefined): CacheControl {
  const cc = parseCacheControl(cacheControl)
  if (cc.present || pragma === undefined) return cc
  const text = typeof pragma === 'string' ? pragma : pragma.join(',')
  if (!/(^|,)\s*no-cache\s*(,|$)/i.test(text)) return cc
  return { ...cc, noCache: true, present: true }
}

/** What a stored response may do for a request, given its current age. */
export type Usability =
  /** Fresh (or acceptably stale per `max-stale`): serve it. */
  | { readonly use: 'fresh' }
  /** Stale within `stale-while-revalidate`: serve it and revalidate in the background. */
  | { readonly use: 'stale-while-revalidate' }
  /** Must be validated (or replaced) by the origin first; `staleIfErrorMs` says how long it may stand in on a 5xx. */
  | { readonly use: 'revalidate'; readonly reason: 'stale' | 'no-cache' | 'request-no-cache' | 'request-max-age' | 'request-min-fresh' }

export interface StoredFreshness {
  readonly ageMs: number
  readonly lifetimeMs: number
  readonly noCache: boolean
  /** must-revalidate, proxy-revalidate or s-maxage: never served stale without validation. */
  readonly mustRevalidate: boolean
  readonly staleWhileRevalidateMs: number
}

/** §4 + §5.2.1: whether a stored response satisfies the request without going to the origin. */
export function usability(stored: StoredFreshness, request: CacheControl): Usability {
  if (request.noCache !== false) return { use: 'revalidate', reason: 'request-no-cache' }
  if (stored.noCache) return { use: 'revalidate', reason: 'no-cache' }
  const { ageMs, lifetimeMs } = stored
  if (request.maxAge !== undefined && ageMs > request.maxAge * 1_000) return { use: 'revalidate', reason: 'request-max-age' }
  if (request.minFresh !== undefined && lifetimeMs - ageMs < request.minFresh * 1_000) return { use: 'revalidate', reason: 'request-min-fresh' }
  if (ageMs < lifetimeMs) return { use: 'fresh' }
  const staleness = ageMs - lifetimeMs
  if (!stored.mustRevalidate) {
    if (request.maxStale !== undefined && staleness <= request.maxStale * 1_000) return { use: 'fresh' }
    if (staleness < stored.staleWhileRevalidateMs) return { use: 'stale-while-revalidate' }
  }
  return { use: 'revalidate', reason: 'stale' }
}

/** Entity tags of an `If-None-Match` value, or `*`; members that are not entity tags are skipped. */
export function parseEntityTagList(field: string): '*' | string[] {
  if (field.trim() === '*') return '*'
  const out: string[] = []
  for (const match of field.matchAll(/(?:W\/)?"([^"]*)"/g)) out.push(match[1] ?? '')
  return out
}

/** The opaque part of an entity tag (weak comparison ignores `W/`); undefined if it is not one. */
export function opaqueTag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined
  const m = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(etag)
  return m === null ? undefined : m[1]
}

/**
 * Whether a stored response answers a request's conditional headers with 304 (RFC 9110
 * §13.1.2 and §13.1.3; §13.2.2 precedence: `If-None-Match` decides when present).
 */
export function notModified(requestHeaders: HeaderMap, stored: HeaderMap): boolean {
  const ifNoneMatch = headerValue(requestHeaders, 'if-none-match')
  if (ifNoneMatch !== undefined) {
    const tags = parseEntityTagList(ifNoneMatch)
    if (tags === '*') return true
    const mine = opaqueTag(headerValue(stored, 'etag'))
    return mine !== undefined && tags.includes(mine)
  }
  const ifModifiedSince = parseHttpDate(headerValue(requestHeaders, 'if-modified-since'))
  if (ifModifiedSince === undefined) return false
  const lastModified = parseHttpDate(headerValue(stored, 'last-modified')) ?? parseHttpDate(headerValue(stored, 'date'))
  return lastModified !== undefined && lastModified <= ifModifiedSince
}

/** Field names a 304 from the cache carries (RFC 9110 §15.4.5). */
export const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'] as const
