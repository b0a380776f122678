import { createHash } from 'node:crypto'
import { BackbeatError } from '../core/index.ts'

const NAMESPACE = /^[a-z0-9][a-z0-9_-]{0,63}$/
const TAG = /^[A-Za-z0-9:_.-]{1,128}$/
// C0/C1 controls plus the line and paragraph separators: each can split or forge a log line
// or a text protocol command (memcached) built from the key.
const FORBIDDEN = /[\p{Cc}\u2028\u2029]/u
// With the u flag a valid pair is one code point, so this matches only a lone surrogate.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u
/** The most characters (UTF-16 code units, after NFC) a key may have. */
export const MAX_KEY_CHARS = 1024
/** Keys longer than this many UTF-8 bytes are stored as a readable prefix plus a hash. */
export const MAX_LITERAL_KEY_BYTES = 200
/** Bytes of the original key kept in front of the hash, so stores and logs stay readable. */
const HASHED_PREFIX_BYTES = 160

// Printable ASCII (0x20-0x7e): already NFC, no controls, no surrogates, one UTF-8 byte per char.
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/

/**
 * The full key of `key` in `namespace`: `<namespace>:<key>`. The key is NFC-normalised (so
 * composed and decomposed accents name one entry), must be 1..1024 characters of well-formed
 * Unicode without control characters, and is replaced, when over 200 UTF-8 bytes, by its first
 * 160 bytes, `~`, and the SHA-256 of the whole key (base64url). A hashed key is always longer
 * than 200 bytes, so it can never equal a literal key. Namespaces cannot contain `:`, so every
 * key of a namespace starts with `<namespace>:` (what `deletePrefix` removes).
 *
 * Throws `ERR_STORE_VALUE_REJECTED` with a reason starting `namespace` or `key`.
 *
 * @example
 * cacheKey('catalog', 'track:42') // 'catalog:track:42'
 */
export function cacheKey(namespace: string, key: string): string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw rejected('namespace must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit')
  }
  return `${namespace}:${normalizeCacheKey(key)}`
}

/**
 * The key part of {@link cacheKey} (what follows `<namespace>:`): validated, NFC-normalised,
 * and hashed when over 200 UTF-8 bytes. Throws `ERR_STORE_VALUE_REJECTED` with a reason
 * starting `key`. Keys of printable ASCII up to 200 characters (the common case) skip
 * normalisation and the byte count: they are returned unchanged.
 *
 * @example
 * normalizeCacheKey('Beyonce\u0301') // 'Beyonc\u00e9'
 */
export function normalizeCacheKey(key: string): string {
  if (typeof key !== 'string') throw rejected('key must be a string')
  if (key.length <= MAX_LITERAL_KEY_BYTES && PRINTABLE_ASCII.test(key)) return key
  if (LONE_SURROGATE.test(key)) throw rejected('key must be well-formed Unicode (no lone surrogates)')
  const normalised = key.normalize('NFC')
  if (normalised.length === 0) throw rejected('key must not be empty')
  if (normalised.length > MAX_KEY_CHARS) throw rejected(`key must be at most ${MAX_KEY_CHARS} characters, got ${normalised.length}`)
  if (FORBIDDEN.test(normalised)) throw rejected('key must not contain control characters')
  const bytes = Buffer.byteLength(normalised, 'utf8')
  if (bytes <= MAX_LITERAL_KEY_BYTES) return normalised
  const digest = createHash('sha256').update(normalised, 'utf8').digest('base64url')
  return `${utf8Prefix(normalised, HASHED_PREFIX_BYTES)}~${digest}`
}

/**
 * Whether `normalized` (a {@link normalizeCacheKey} result) is the hashed form of a long key
 * rather than the key itself: hashed forms are always over 200 UTF-8 bytes, literal keys never.
 *
 * @example
 * isHashedCacheKey(normalizeCacheKey('a'.repeat(500))) // true
 */
export function isHashedCacheKey(normalized: string): boolean {
  // 66 UTF-16 code units are at most 198 UTF-8 bytes: no need to count.
  return normalized.length > 66 && Buffer.byteLength(normalized, 'utf8') > MAX_LITERAL_KEY_BYTES
}

/**
 * Validates a tag (`[A-Za-z0-9:_.-]`, 1..128 characters) and returns it unchanged: tags are
 * case-sensitive and never hashed, so an admin purge names exactly what was stored.
 * Throws `ERR_STORE_VALUE_REJECTED` with a reason starting `tag`.
 *
 * @example
 * tagKey('album:a1') // 'album:a1'
 */
export function tagKey(tag: string): string {
  if (typeof tag !== 'string' || !TAG.test(tag)) throw rejected('tag must be 1-128 characters of A-Z, a-z, 0-9, :, _, . and -')
  return tag
}

/** The longest prefix of `text` that fits `maxBytes` of UTF-8 without splitting a character. */
function utf8Prefix(text: string, maxBytes: number): string {
  let bytes = 0
  let end = 0
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8')
    if (bytes + size > maxBytes) break
    bytes += size
    end += char.length
  }
  return text.slice(0, end)
}

function rejected(reason: string): BackbeatError {
  return new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { reason } })
}
