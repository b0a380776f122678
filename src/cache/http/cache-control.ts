/**
 * `Cache-Control` parsing (RFC 9111 §5.2), shared by the request and the response side.
 *
 * The grammar is a comma-separated list of `token [ "=" ( token / quoted-string ) ]`,
 * possibly split over several field lines. Directive names are case-insensitive. Commas
 * inside a quoted string do not split (`private="a, b"` is one directive). Conflicts get a
 * defined, conservative outcome, because a cache that guesses generously serves what it
 * must not:
 * - a delta-seconds value that is not 1*DIGIT (quoted digits are accepted, as §5.2 asks of
 *   recipients) makes the directive invalid: an invalid `max-age`/`s-maxage` counts as 0
 *   (the response is stale), an invalid `max-stale`/`min-fresh`/`max-age` on a request is
 *   ignored;
 * - a directive repeated with different values: the first occurrence wins (§4.2.1 allows
 *   first-wins or stale; first-wins is what the majority of shared caches do);
 * - values above 2^31 are capped at 2147483648 (§1.2.2);
 * - `no-store` beats everything, `private` beats `public`, `no-cache` beats freshness.
 */

/** The delta-seconds cap of RFC 9111 §1.2.2. */
export const DELTA_SECONDS_MAX = 2_147_483_648

/** Directives of a `Cache-Control` field, parsed once per message. */
export interface CacheControl {
  /** `max-age`; `0` when present but invalid. */
  readonly maxAge?: number
  /** `s-maxage` (responses); `0` when present but invalid. */
  readonly sMaxAge?: number
  readonly noStore: boolean
  /** `no-cache`: `true` unqualified, or the field names it lists. */
  readonly noCache: boolean | readonly string[]
  /** `private`: `true` unqualified, or the field names it lists. */
  readonly private: boolean | readonly string[]
  readonly public: boolean
  readonly mustRevalidate: boolean
  readonly proxyRevalidate: boolean
  readonly mustUnderstand: boolean
  readonly noTransform: boolean
  readonly immutable: boolean
  /** `stale-while-revalidate` seconds (RFC 5861). */
  readonly staleWhileRevalidate?: number
  /** `stale-if-error` seconds (RFC 5861). */
  readonly staleIfError?: number
  /** `max-stale` (requests): seconds, `Infinity` without a value. */
  readonly maxStale?: number
  /** `min-fresh` (requests). */
  readonly minFresh?: number
  readonly onlyIfCached: boolean
  /** True when at least one directive was present at all. */
  readonly present: boolean
}

const EMPTY: CacheControl = {
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  mustUnderstand: false,
  noTransform: false,
  immutable: false,
  onlyIfCached: false,
  present: false,
}

/** One raw directive: lower-cased name, unquoted value (undefined without `=`), and whether it was quoted. */
interface RawDirective {
  readonly name: string
  readonly value: string | undefined
  readonly quoted: boolean
}

/**
 * Parses one or more `Cache-Control` field lines. Never throws: garbage directives are
 * dropped, and an unparseable field is treated like an absent one except where that would
 * be generous (invalid freshness counts as stale).
 *
 * @example parseCacheControl('public, max-age=60, stale-while-revalidate=300')
 */
export function parseCacheControl(field: string | number | readonly string[] | undefined): CacheControl {
  if (field === undefined) return EMPTY
  const text = typeof field === 'string' ? field : typeof field === 'number' ? String(field) : field.join(', ')
  if (text.length === 0) return EMPTY
  return fromDirectives(splitDirectives(text).directives)
}

const NUMERIC = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error'])

/**
 * A targeted cache-control field (RFC 9213, e.g. `CDN-Cache-Control`): a Structured Field
 * dictionary, so parsing is strict. Undefined when the field is absent or invalid anywhere
 * (a member that is not a token key, whitespace around `=`, a string where an integer is
 * due): the cache then falls back to `Cache-Control`, as §2.1 requires.
 *
 * @example parseTargetedCacheControl('max-age=3600') // { maxAge: 3600, ... }
 */
export function parseTargetedCacheControl(field: string | number | readonly string[] | undefined): CacheControl | undefined {
  if (field === undefined) return undefined
  const text = typeof field === 'string' ? field : typeof field === 'number' ? String(field) : field.join(', ')
  const { directives, invalid } = splitDirectives(text)
  if (invalid || directives.length === 0) return undefined
  for (const directive of directives) {
    // An sf-dictionary key: lcalpha or "*", then lcalpha, DIGIT, "_", "-", ".", "*" (compared lower-cased).
    if (!/^[a-z*][a-z0-9_.*-]*$/.test(directive.name)) return undefined
    if (NUMERIC.has(directive.name) && (directive.quoted || directive.value === undefined || !/^\d{1,15}$/.test(directive.value))) return undefined
  }
  return fromDirectives(directives)
}

function fromDirectives(raw: readonly RawDirective[]): CacheControl {
  if (raw.length === 0) return EMPTY
  const seen = new Set<string>()
  const out: {
    -readonly [K in keyof CacheControl]: CacheControl[K]
  } = { ...EMPTY, present: true }
  for (const directive of raw) {
    const first = !seen.has(directive.name)
    seen.add(directive.name)
    switch (directive.name) {
      case 'max-age':
        if (first) out.maxAge = delta(directive) ?? 0
        break
      case 's-maxage':
        if (first) out.sMaxAge = delta(directive) ?? 0
        break
      case 'stale-while-revalidate': {
        const value = delta(directive)
        if (first && value !== undefined) out.staleWhileRevalidate = value
        break
      }
      case 'stale-if-error': {
        const value = delta(directive)
        if (first && value !== undefined) out.staleIfError = value
        break
      }
      case 'max-stale': {
        if (!first) break
        if (directive.value === undefined) out.maxStale = Infinity
        else {
          const value = delta(directive)
          if (value !== undefined) out.maxStale = value
        }
        break
      }
      case 'min-fresh': {
        const value = delta(directive)
        if (first && value !== undefined) out.minFresh = value
        break
      }
      case 'no-store':
        out.noStore = true
        break
      case 'no-cache':
        out.noCache = merge(out.noCache, directive)
        break
      case 'private':
        out.private = merge(out.private, directive)
        break
      case 'public':
        out.public = true
        break
      case 'must-revalidate':
        out.mustRevalidate = true
        break
      case 'proxy-revalidate':
        out.proxyRevalidate = true
        break
      case 'must-understand':
        out.mustUnderstand = true
        break
      case 'no-transform':
        out.noTransform = true
        break
      case 'immutable':
        out.immutable = true
        break
      case 'only-if-cached':
        out.onlyIfCached = true
        break
      default:
        // Unknown extensions are ignored (§5.2.3).
        break
    }
  }
  return out
}

/**
 * Splits on commas outside quoted strings. A directive whose name is not a token, or with
 * whitespace around `=` (`max-age =60`), is dropped: the grammar has no such form, and
 * guessing at it is how two caches come to disagree.
 */
function splitDirectives(text: string): { directives: RawDirective[]; invalid: boolean } {
  const out: RawDirective[] = []
  let invalid = false
  let i = 0
  const n = text.length
  while (i < n) {
    // Skip separators and optional whitespace.
    while (i < n && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++
    if (i >= n) break
    const start = i
    while (i < n && isTokenChar(text.charCodeAt(i))) i++
    const name = text.slice(start, i).toLowerCase()
    let value: string | undefined
    let quoted = false
    let valid = name.length > 0
    if (i < n && text[i] === '=') {
      i++
      if (i < n && text[i] === '"') {
        quoted = true
        i++
        let buffer = ''
        let closed = false
        while (i < n) {
          const c = text[i]
          if (c === '\\' && i + 1 < n) {
            buffer += text.charAt(i + 1)
            i += 2
            continue
          }
          if (c === '"') {
            closed = true
            i++
            break
          }
          buffer += text.charAt(i)
          i++
        }
        value = buffer
        if (!closed) valid = false
      } else {
        const valueStart = i
        while (i < n && isTokenChar(text.charCodeAt(i))) i++
        value = text.slice(valueStart, i)
        if (value.length === 0) valid = false
      }
    }
    // Anything else before the next comma (a space before `=`, a stray quote) spoils the directive.
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++
    if (i < n && text[i] !== ',') {
      valid = false
      i = skipToComma(text, i)
    }
    if (valid) out.push({ name, value, quoted })
    else invalid = true
  }
  return { directives: out, invalid }
}

function skipToComma(text: string, from: number): number {
  let i = from
  let inQuotes = false
  while (i < text.length) {
    const c = text[i]
    if (inQuotes && c === '\\') {
      i += 2
      continue
    }
    if (c === '"') inQuotes = !inQuotes
    else if (c === ',' && !inQuotes) break
    i++
  }
  return i
}

/** tchar of RFC 9110 §5.6.2. */
function isTokenChar(code: number): boolean {
  if (code >= 0x30 && code <= 0x39) return true // 0-9
  if (code >= 0x41 && code <= 0x5a) return true // A-Z
  if (code >= 0x61 && code <= 0x7a) return true // a-z
  // ! # $ % & ' * + - . ^ _ ` | ~
  return code === 0x21 || (code >= 0x23 && code <= 0x27) || code === 0x2a || code === 0x2b || code === 0x2d || code === 0x2e || code === 0x5e || code === 0x5f || code === 0x60 || code === 0x7c || code === 0x7e
}

/** delta-seconds: 1*DIGIT, capped at 2^31; undefined when absent or not digits. */
function delta(directive: RawDirective): number | undefined {
  const value = directive.value
  if (value === undefined || value.length === 0 || !/^\d+$/.test(value)) return undefined
  // Leading zeros are digits like any other ("003600" is 3600).
  const parsed = value.length > 10 ? DELTA_SECONDS_MAX : Number(value)
  return Math.min(parsed, DELTA_SECONDS_MAX)
}

function merge(previous: boolean | readonly string[], directive: RawDirective): boolean | readonly string[] {
  if (previous === true) return true
  if (directive.value === undefined) return true
  const fields = directive.value
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f.length > 0)
  if (fields.length === 0) return true
  return previous === false ? fields : [...previous, ...fields]
}
