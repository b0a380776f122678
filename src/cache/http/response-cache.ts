import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { parseOptions, systemClock, type Clock } from '../../core/index.ts'
import { tagKey } from '../keys.ts'
import type { TieredCache } from '../tiered-cache.ts'
import { parseCacheControl, parseTargetedCacheControl, type CacheControl } from './cache-control.ts'
import {
  freshnessLifetimeMs,
  headerValue,
  HOP_BY_HOP,
  initialAgeMs,
  notStorable,
  opaqueTag,
  parseHttpDate,
  type HeaderMap,
  type NotStorableReason,
} from './policy.ts'

/** A request as the cache sees it. */
export interface CacheRequest {
  readonly method: string
  /** The authority (Host); part of the cache key unless `keyIncludesHost` is off. */
  readonly host: string
  /** Path and query, as received. */
  readonly url: string
  /** Lower-cased field names. */
  readonly headers: HeaderMap
}

/** A response produced by the origin (the route handler, or an upstream in proxy mode). */
export interface OriginResponse {
  readonly status: number
  /** Lower-cased field names. */
  readonly headers: HeaderMap
  /** Text bodies stay strings: Node then writes headers and body in one system call. */
  readonly body: Uint8Array | string
  /** When the request was sent on / the handler started (epoch ms). */
  readonly requestTime: number
  /** When the response arrived (epoch ms). */
  readonly responseTime: number
  /** Extra surrogate keys (from route config). */
  readonly tags?: readonly string[]
}

/** A response kept by the cache (what the tiers hold, MessagePack-encoded). */
export interface StoredResponse {
  readonly kind: 'response'
  readonly url: string
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[]>>
  readonly body: Uint8Array | string
  readonly requestTime: number
  readonly responseTime: number
  /** Age on arrival (RFC 9111 §4.2.3 corrected initial age), ms. */
  readonly initialAgeMs: number
  readonly lifetimeMs: number
  readonly noCache: boolean
  readonly mustRevalidate: boolean
  readonly staleWhileRevalidateMs: number
  readonly staleIfErrorMs: number
  /** public, s-maxage or must-revalidate: may answer requests with credentials (RFC 9111 §3.5). */
  readonly sharedWithCredentials: boolean
  /** must-revalidate, proxy-revalidate, s-maxage or no-cache: never stands in for a failed origin (without explicit stale-if-error). */
  readonly noStaleOnError: boolean
  /** The secondary key: the request's values of the fields named by `Vary`, in order. */
  readonly varyValues: readonly (string | null)[]
  readonly tags: readonly string[]
}

/** What the primary key holds when responses vary: the field names and a generation for the variant keys. */
interface VaryRecord {
  readonly kind: 'vary'
  readonly fields: readonly string[]
  readonly generation: string
}

/** Result of {@link HttpResponseCache.lookup}. */
export type LookupResult =
  | { readonly found: true; readonly stored: StoredResponse; readonly ageMs: number }
  | { readonly found: false; readonly reason: 'uri-miss' | 'vary-miss' | 'credentials' }

/** Result of {@link HttpResponseCache.store}. */
export type StoreResult = { readonly stored: true; readonly entry: StoredResponse } | { readonly stored: false; readonly reason: NotStorableReason | 'too-large' | 'stream' | 'error' | 'csp-nonce' }

/** Per-request response fields never stored: request ID, timing, rate-limit fields, this cache's own. */
export const DEFAULT_EXCLUDED_HEADERS = ['x-request-id', 'server-timing', 'x-response-time', 'ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after', 'x-cache', 'age'] as const

const headerName = z.string().regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a lower-case header field name')

const optionsSchema = z
  .object({
    /** The engine the responses live in (its tiers, tags, bus and breakers apply). */
    cache: z.custom<TieredCache>((v) => typeof v === 'object' && v !== null && typeof (v as TieredCache).getOrSet === 'function', 'must be a TieredCache'),
    /** Heuristic freshness for responses with `Last-Modified` and no explicit lifetime (RFC 9111 §4.2.2); `false` turns it off. */
    heuristic: z
      .union([z.literal(false), z.object({ fraction: z.number().min(0).max(1).default(0.1), maxS: z.number().int().min(0).max(31_536_000).default(86_400) }).strict()])
      .default({ fraction: 0.1, maxS: 86_400 }),
    /** Store responses carrying `Set-Cookie` (RFC 9111 allows it; off by default because a shared cookie is a leaked session). */
    storeSetCookie: z.boolean().default(false),
    /** Bodies larger than this are not stored. */
    maxBodyBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(1024 * 1024),
    /** How long a response is kept once stale (for revalidation, `max-stale` and `stale-if-error` requests), in seconds. */
    keepStaleS: z.number().int().min(0).max(31_536_000).default(3_600),
    /** No entry outlives this, whatever its headers say, in seconds. */
    maxRetentionS: z.number().int().min(1).max(31_536_000).default(7 * 86_400),
    /** Response fields never stored (per-request fields of the stack: request ID, rate-limit fields, timing). */
    excludeHeaders: z.array(headerName).default([...DEFAULT_EXCLUDED_HEADERS]),
    /** Response fields whose space-separated (`surrogate-key`) or comma-separated (`cache-tag`) values become tags. */
    surrogateKeyHeaders: z.array(headerName).default(['surrogate-key', 'cache-tag']),
    /**
     * Targeted cache-control fields (RFC 9213) this cache obeys instead of `Cache-Control`,
     * first present and valid one wins; `CDN-Cache-Control` by default, as a CDN would.
     */
    targetedFields: z.array(headerName).default(['cdn-cache-control']),
    /**
     * How long past freshness a stored response may stand in when the origin fails (500, 502,
     * 503, 504, or the handler throws) and the response set no `stale-if-error`: RFC 9111
     * §4.2.4 lets a disconnected cache serve stale unless must-revalidate, proxy-revalidate,
     * s-maxage or no-cache forbid it. 0 turns this off.
     */
    staleOnErrorS: z.number().int().min(0).max(31_536_000).default(60),
    /**
     * Request fields that carry credentials: like `Authorization` (RFC 9111 §3.5), a request
     * with any of them is only given responses marked public, s-maxage or must-revalidate.
     */
    credentialHeaders: z.array(headerName).min(1).default(['authorization']),
    /** Cookies that carry credentials (a session cookie): a request with one counts like one with `Authorization`. */
    credentialCookies: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a cookie name')).default([]),
    /** Key responses by Host as well as path and query (RFC 9111 §4: the target URI). */
    keyIncludesHost: z.boolean().default(true),
    /** Add a weak ETag (a body hash) to stored 200 responses without a validator, so clients get 304s from the cache. */
    generateETag: z.boolean().default(false),
    now: z.custom<Clock>((v) => typeof v === 'function', 'must be a function returning epoch ms').default(() => systemClock),
  })
  .strict()

export type HttpResponseCacheOptions = z.input<typeof optionsSchema>

/** Keys longer than this are hashed (the engine caps keys at 1024 characters). */
const MAX_PLAIN_KEY = 512
/** host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 literal. */
const AUTHORITY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/

/**
 * A shared HTTP cache (RFC 9111) over a {@link TieredCache}: the storage, freshness and Vary
 * logic, framework-neutral. The Fastify binding (`responseCachePlugin`) decides when to
 * look up and what to do with the result; this class answers "what is stored for this
 * request, and how old is it", "may this response be stored" and "store/freshen/forget it".
 *
 * Keys: the primary key is the target URI (Host + path + query, GET and HEAD share it).
 * When a response has `Vary`, the primary key holds the field names and a generation, and
 * each variant lives under a secondary key made of the generation and the request's values
 * of those fields: deleting the primary key (invalidation) orphans every variant at once.
 *
 * @example
 * const http = new HttpResponseCache({ cache: new TieredCache({ namespace: 'http' }) })
 * const hit = await http.lookup({ method: 'GET', host: 'api.example', url: '/v1/tracks/1', headers: {} })
 */
export class HttpResponseCache {
  readonly options: Readonly<z.output<typeof optionsSchema>>
  readonly #cache: TieredCache
  readonly #now: Clock
  readonly #exclude: ReadonlySet<string>
  #lastHost = ''

  constructor(options: HttpResponseCacheOptions) {
    this.options = parseOptions('responseCache', optionsSchema, options)
    this.#cache = this.options.cache
    this.#now = this.options.now
    this.#exclude = new Set([...this.options.excludeHeaders, ...HOP_BY_HOP])
  }

  /**
   * Whether a target may be cached at all: an authority that is `host[:port]` (a name, an
   * IPv4 address or a bracketed IPv6 one) and a path that starts with `/`. Anything else (a
   * Host with a slash, spaces or an `@`) could make two different targets share a key.
   */
  cacheableTarget(host: string, url: string): boolean {
    if (url.charCodeAt(0) !== 0x2f) return false
    if (!this.options.keyIncludesHost || host === this.#lastHost) return true
    if (!AUTHORITY.test(host)) return false
    // Nearly every request names the same host: remember the last one that passed.
    this.#lastHost = host
    return true
  }

  /** The primary key of a request (GET and HEAD share one); call {@link cacheableTarget} first. */
  primaryKey(request: Pick<CacheRequest, 'host' | 'url'>): string {
    const uri = this.options.keyIncludesHost ? `${request.host.toLowerCase()}${request.url}` : request.url
    const key = `u:${uri}`
    return key.length <= MAX_PLAIN_KEY && isPrintableAscii(key) ? key : `h:${createHash('sha256').update(uri).digest('base64url')}`
  }

  /** The stored response matching `request` (its Vary fields included), with its current age. */
  async lookup(request: CacheRequest, primary: string = this.primaryKey(request)): Promise<LookupResult> {
    // Entries are checked, not trusted: another version (or a corrupted tier) may have written the key.
    const record = await this.#cache.get<unknown>(primary)
    let stored: StoredResponse | undefined
    if (isVaryRecord(record)) {
      const values = varyValues(record.fields, request.headers)
      const candidate = await this.#cache.get<unknown>(variantKey(record.generation, values))
      if (!isStoredResponse(candidate) || !sameValues(candidate.varyValues, values)) return { found: false, reason: 'vary-miss' }
      stored = candidate
    } else if (isStoredResponse(record) && record.varyValues.length === 0) stored = record
    if (stored === undefined) return { found: false, reason: 'uri-miss' }
    // RFC 9111 §3.5: a request with credentials is only served a response that allows it.
    if (!stored.sharedWithCredentials && this.#hasCredentials(request)) return { found: false, reason: 'credentials' }
    return { found: true, stored, ageMs: this.ageMs(stored) }
  }

  /** The directives this cache obeys for a response: a valid targeted field (RFC 9213), else `Cache-Control`. */
  responseCacheControl(headers: HeaderMap): CacheControl {
    for (const name of this.options.targetedFields) {
      const targeted = parseTargetedCacheControl(headers[name])
      if (targeted !== undefined) return targeted
    }
    return parseCacheControl(headers['cache-control'])
  }

  /**
   * {@link lookup} from L1 alone, synchronously: a found response, or undefined when L1 does
   * not hold a fresh, known-valid copy of everything needed (then call `lookup`). The hit path
   * of the plugin: no promise, no microtask.
   */
  peek(request: CacheRequest, primary: string = this.primaryKey(request)): LookupResult | undefined {
    const record = this.#cache.peek<unknown>(primary)
    let stored: StoredResponse | undefined
    if (isVaryRecord(record)) {
      const values = varyValues(record.fields, request.headers)
      const candidate = this.#cache.peek<unknown>(variantKey(record.generation, values))
      if (isStoredResponse(candidate) && sameValues(candidate.varyValues, values)) stored = candidate
    } else if (isStoredResponse(record) && record.varyValues.length === 0) stored = record
    if (stored === undefined) return undefined
    if (!stored.sharedWithCredentials && this.#hasCredentials(request)) return { found: false, reason: 'credentials' }
    return { found: true, stored, ageMs: this.ageMs(stored) }
  }

  /** Current age of a stored response in ms (§4.2.3). */
  ageMs(stored: StoredResponse, now = this.#now()): number {
    return stored.initialAgeMs + Math.max(0, now - stored.responseTime)
  }

  /**
   * Stores `response` for `request` when RFC 9111 allows it; otherwise says why not.
   * Resolves even when a tier fails (the engine reports it): the response is still served.
   */
  async store(request: CacheRequest, response: OriginResponse, requestCc: CacheControl = parseCacheControl(request.headers['cache-control'])): Promise<StoreResult> {
    const cc = this.responseCacheControl(response.headers)
    const lifetimeMs = freshnessLifetimeMs(cc, response.headers, response.status, response.responseTime, this.options.heuristic)
    const reason = notStorable({
      method: request.method === 'HEAD' ? 'HEAD' : request.method,
      status: response.status,
      requestCacheControl: requestCc,
      responseCacheControl: cc,
      responseHeaders: response.headers,
      hasAuthorization: this.#hasCredentials(request),
      lifetimeMs,
      storeSetCookie: this.options.storeSetCookie,
    })
    if (reason !== null) return { stored: false, reason }
    // A per-response CSP nonce must never be handed to someone else (it would be predictable).
    if (/'nonce-/.test(headerValue(response.headers, 'content-security-policy') ?? '')) return { stored: false, reason: 'csp-nonce' }
    if (bodyBytes(response.body) > this.options.maxBodyBytes) return { stored: false, reason: 'too-large' }
    const entry = this.#entry(request, response, cc, lifetimeMs)
    try {
      await this.#write(request, entry)
    } catch {
      return { stored: false, reason: 'error' }
    }
    return { stored: true, entry }
  }

  /**
   * Freshens a stored response with a 304 from the origin (§4.3.4): the 304's fields replace
   * the stored ones (Content-Length excepted), and freshness restarts from the 304's timing.
   * Returns the updated entry (also written back).
   */
  async freshen(request: CacheRequest, stored: StoredResponse, notModified: Pick<OriginResponse, 'headers' | 'requestTime' | 'responseTime'>): Promise<StoredResponse> {
    const headers: Record<string, string | string[]> = { ...stored.headers }
    for (const [name, value] of Object.entries(notModified.headers)) {
      if (name === 'content-length' || this.#exclude.has(name) || value === undefined) continue
      // A cookie set for the revalidating client is that client's, never the shared entry's.
      if (name === 'set-cookie' && !this.options.storeSetCookie) continue
      headers[name] = storedValue(value)
    }
    // The 304 is the newest word from the origin: without its own Date, it is dated on receipt.
    if (notModified.headers['date'] === undefined) headers['date'] = new Date(notModified.responseTime).toUTCString()
    const response: OriginResponse = { status: stored.status, headers, body: stored.body, requestTime: notModified.requestTime, responseTime: notModified.responseTime, tags: stored.tags }
    const cc = this.responseCacheControl(headers)
    const lifetimeMs = freshnessLifetimeMs(cc, headers, stored.status, notModified.responseTime, this.options.heuristic)
    const entry = this.#entry(request, response, cc, lifetimeMs)
    // The merged headers are judged like a new response: a 304 may make it private or no-store.
    const reason = notStorable({
      method: 'GET',
      status: stored.status,
      requestCacheControl: parseCacheControl(request.headers['cache-control']),
      responseCacheControl: cc,
      responseHeaders: headers,
      hasAuthorization: this.#hasCredentials(request),
      lifetimeMs,
      storeSetCookie: this.options.storeSetCookie,
    })
    if (reason !== null) {
      // The request with credentials may use the confirmed response; the shared entry stays as it was.
      if (reason !== 'authorization') await this.invalidate(request)
      return entry
    }
    try {
      await this.#write(request, entry)
    } catch {
      // Served all the same; the next request revalidates again.
    }
    return entry
  }

  /** Forgets every stored response (all variants) for a target URI (§4.4). */
  async invalidate(request: Pick<CacheRequest, 'host' | 'url'>): Promise<void> {
    await this.#cache.delete(this.primaryKey(request))
  }

  /** Voids every stored response carrying any of `tags` (surrogate keys), on every tier and instance. */
  async purgeTags(tags: readonly string[]): Promise<void> {
    await this.#cache.invalidateTags(tags)
  }

  /** Whether a request carries credentials (RFC 9111 §3.5, the configured headers and cookies). */
  hasCredentials(request: CacheRequest): boolean {
    return this.#hasCredentials(request)
  }

  #hasCredentials(request: CacheRequest): boolean {
    if (this.options.credentialHeaders.some((name) => request.headers[name] !== undefined)) return true
    const cookies = this.options.credentialCookies
    if (cookies.length === 0) return false
    const header = headerValue(request.headers, 'cookie')
    return header !== undefined && cookies.some((name) => hasCookie(header, name))
  }

  #entry(request: CacheRequest, response: OriginResponse, cc: CacheControl, lifetimeMs: number): StoredResponse {
    const headers: Record<string, string | string[]> = {}
    const connectionListed = new Set(
      (headerValue(response.headers, 'connection') ?? '')
        .split(',')
        .map((f) => f.trim().toLowerCase())
        .filter((f) => f.length > 0),
    )
    const privateFields = new Set([...fieldList(cc.private), ...fieldList(cc.noCache)])
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined || this.#exclude.has(name) || connectionListed.has(name) || privateFields.has(name) || name === 'content-length') continue
      headers[name] = storedValue(value)
    }
    // RFC 9110 §6.6.1: a response without Date gets the time it was received.
    if (headers['date'] === undefined) headers['date'] = new Date(response.responseTime).toUTCString()
    if (this.options.generateETag && response.status === 200 && headers['etag'] === undefined && headers['last-modified'] === undefined) {
      headers['etag'] = `W/"${createHash('sha1').update(response.body).digest('base64url')}"`
    }
    const fields = varyFields(response.headers)
    return {
      kind: 'response',
      url: request.url,
      status: response.status,
      headers,
      body: response.body,
      requestTime: response.requestTime,
      responseTime: response.responseTime,
      initialAgeMs: initialAgeMs(response.headers, response.requestTime, response.responseTime),
      lifetimeMs,
      // Qualified no-cache fields were dropped above, so only the unqualified form forces validation.
      noCache: cc.noCache === true,
      mustRevalidate: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge !== undefined,
      staleWhileRevalidateMs: (cc.staleWhileRevalidate ?? 0) * 1_000,
      staleIfErrorMs: (cc.staleIfError ?? 0) * 1_000,
      sharedWithCredentials: cc.public || cc.sMaxAge !== undefined || cc.mustRevalidate,
      noStaleOnError: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge !== undefined || cc.noCache !== false,
      varyValues: varyValues(fields, request.headers),
      tags: [...new Set([...surrogateKeys(response.headers, this.options.surrogateKeyHeaders), ...(response.tags ?? [])])],
    }
  }

  async #write(request: CacheRequest, entry: StoredResponse): Promise<void> {
    const ttlS = this.#retentionS(entry)
    const primary = this.primaryKey(request)
    const fields = varyFields(entry.headers)
    if (fields.length === 0) {
      await this.#cache.set(primary, entry, { ttlS, tags: entry.tags })
      return
    }
    const existing = await this.#cache.get<StoredResponse | VaryRecord>(primary)
    let record: VaryRecord
    if (existing?.kind === 'vary' && sameFields(existing.fields, fields)) record = existing
    else {
      record = { kind: 'vary', fields, generation: randomBytes(9).toString('base64url') }
      await this.#cache.set(primary, record, { ttlS: this.options.maxRetentionS })
    }
    await this.#cache.set(variantKey(record.generation, entry.varyValues), entry, { ttlS, tags: entry.tags })
  }

  /** How long the tiers keep an entry: its remaining freshness plus what staleness can still be used for. */
  #retentionS(entry: StoredResponse): number {
    const remaining = Math.max(0, entry.lifetimeMs - entry.initialAgeMs)
    const extra = Math.max(entry.staleWhileRevalidateMs, entry.staleIfErrorMs, this.options.keepStaleS * 1_000)
    return Math.max(1, Math.min(this.options.maxRetentionS, Math.ceil((remaining + extra) / 1_000)))
  }
}

/** The size of a body in bytes. */
export function bodyBytes(body: Uint8Array | string): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
}

/** Whether a Cookie header carries a cookie of that name (RFC 6265 §4.2.1: `name=value` pairs separated by `; `). */
function hasCookie(header: string, name: string): boolean {
  let at = header.indexOf(`${name}=`)
  while (at !== -1) {
    const before = at === 0 ? '' : header.slice(Math.max(0, at - 2), at)
    if (at === 0 || before.endsWith(';') || before === '; ' || before.endsWith(' ')) return true
    at = header.indexOf(`${name}=`, at + 1)
  }
  return false
}

function storedValue(value: string | number | readonly string[]): string | string[] {
  if (typeof value === 'string') return value
  return typeof value === 'number' ? String(value) : [...value]
}

function fieldList(directive: boolean | readonly string[]): readonly string[] {
  return typeof directive === 'boolean' ? [] : directive
}

function isVaryRecord(value: unknown): value is VaryRecord {
  if (typeof value !== 'object' || value === null) return false
  const record = value as Partial<VaryRecord>
  return record.kind === 'vary' && Array.isArray(record.fields) && record.fields.every((f) => typeof f === 'string') && typeof record.generation === 'string'
}

function isStoredResponse(value: unknown): value is StoredResponse {
  if (typeof value !== 'object' || value === null) return false
  const entry = value as Partial<StoredResponse>
  return (
    entry.kind === 'response' &&
    typeof entry.status === 'number' &&
    typeof entry.headers === 'object' &&
    (entry.headers as unknown) !== null &&
    (entry.body instanceof Uint8Array || typeof entry.body === 'string') &&
    typeof entry.responseTime === 'number' &&
    typeof entry.initialAgeMs === 'number' &&
    typeof entry.lifetimeMs === 'number' &&
    typeof entry.sharedWithCredentials === 'boolean' &&
    Array.isArray(entry.varyValues) &&
    Array.isArray(entry.tags)
  )
}

/** The field names of a response's `Vary`, lower-cased, in order, without duplicates. */
export function varyFields(headers: HeaderMap): string[] {
  const vary = headerValue(headers, 'vary')
  if (vary === undefined) return []
  const out: string[] = []
  for (const part of vary.split(',')) {
    const name = part.trim().toLowerCase()
    if (name.length > 0 && !out.includes(name)) out.push(name)
  }
  return out
}

/** Negotiation fields whose members are case-insensitive tokens in no significant order. */
const UNORDERED_TOKEN_LISTS = new Set(['accept-language', 'accept-encoding'])

/**
 * A request's values of the `Vary` fields, normalised (RFC 9111 §4.1): several lines joined,
 * whitespace around list commas dropped; `Accept-Language` and `Accept-Encoding` also
 * lower-cased and sorted, so `en, fr` and `FR, EN` share one variant.
 */
export function varyValues(fields: readonly string[], headers: HeaderMap): (string | null)[] {
  return fields.map((name) => {
    const value = headerValue(headers, name)
    if (value === undefined) return null
    if (UNORDERED_TOKEN_LISTS.has(name)) {
      return value
        .toLowerCase()
        .split(',')
        .map((member) => member.replace(/\s+/g, ''))
        .filter((member) => member.length > 0)
        .sort()
        .join(',')
    }
    return value.replace(/\s*,\s*/g, ',').trim()
  })
}

function variantKey(generation: string, values: readonly (string | null)[]): string {
  return `v:${generation}:${createHash('sha256').update(JSON.stringify(values)).digest('base64url')}`
}

function sameValues(a: readonly (string | null)[], b: readonly (string | null)[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i])
}

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i])
}

/** Valid tags from the surrogate-key fields; invalid ones are skipped (they could never be purged). */
function surrogateKeys(headers: HeaderMap, fields: readonly string[]): string[] {
  const out: string[] = []
  for (const field of fields) {
    const value = headerValue(headers, field)
    if (value === undefined) continue
    for (const tag of value.split(field === 'surrogate-key' ? /\s+/ : /\s*,\s*/)) {
      if (tag.length === 0) continue
      try {
        out.push(tagKey(tag))
      } catch {
        // A tag we cannot store is a tag nobody can purge by: dropped.
      }
    }
  }
  return out
}

function isPrintableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x21 || code > 0x7e) return false
  }
  return true
}

/** Whether a response's entity tag weakly matches a stored one (for freshening on a client's 304). */
export function sameValidator(stored: HeaderMap, response: HeaderMap): boolean {
  const a = opaqueTag(headerValue(stored, 'etag'))
  const b = opaqueTag(headerValue(response, 'etag'))
  if (a !== undefined || b !== undefined) return a === b
  const lmA = parseHttpDate(headerValue(stored, 'last-modified'))
  const lmB = parseHttpDate(headerValue(response, 'last-modified'))
  return lmA !== undefined && lmA === lmB
}
