import { BackbeatError } from '../core/index.ts'
import type { CacheEntry } from './store.ts'

/**
 * The binary envelope of a {@link CacheEntry} in a remote tier, version 1 (big-endian):
 *
 * | bytes | field                                        |
 * |-------|----------------------------------------------|
 * | 2     | magic 0xBB 0xCE                              |
 * | 1     | format version (1)                           |
 * | 8     | createdAt (float64 epoch ms)                 |
 * | 8     | freshUntil (float64 epoch ms)                |
 * | 8     | staleUntil (float64 epoch ms)                |
 * | 2     | tag count                                    |
 * | 2 + n | per tag: byte length, then UTF-8 bytes       |
 * | 4     | value byte length                            |
 * | n     | value bytes                                  |
 *
 * Timestamps are float64 rather than int64 so every JS number round-trips exactly (a fake
 * clock may yield fractions) without BigInt conversions on the hot path. The value length is
 * explicit so a truncated write is detected instead of served as a shorter value.
 */
const MAGIC_0 = 0xbb
const MAGIC_1 = 0xce
/** The format written by {@link encodeCacheEntry}; bump it when the layout changes. */
export const CACHE_ENTRY_FORMAT = 1
const HEADER_BYTES = 2 + 1 + 8 * 3 + 2
const MAX_U16 = 0xffff
const MAX_U32 = 0xffff_ffff

const utf8 = new TextEncoder()
// fatal: a tag that is not valid UTF-8 means the bytes are not ours; treat the entry as corrupt.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Serializes `entry` into one Buffer for a remote tier. Throws `ERR_STORE_VALUE_REJECTED`
 * for an entry the format cannot hold (non-finite times, more than 65,535 tags, a tag over
 * 65,535 bytes, a value of 4 GiB or more).
 *
 * @example
 * const bytes = encodeCacheEntry({ value: new Uint8Array([1, 2]), createdAt: 0, freshUntil: 1_000, staleUntil: 2_000, tags: ['album:1'] })
 */
export function encodeCacheEntry(entry: CacheEntry): Buffer {
  for (const field of ['createdAt', 'freshUntil', 'staleUntil'] as const) {
    if (!Number.isFinite(entry[field])) throw rejected(`${field} must be a finite number`)
  }
  if (entry.tags.length > MAX_U16) throw rejected(`at most ${MAX_U16} tags`)
  const tags = entry.tags.map((tag) => utf8.encode(tag))
  let size = HEADER_BYTES + 4 + entry.value.byteLength
  for (const tag of tags) {
    if (tag.byteLength > MAX_U16) throw rejected(`a tag is longer than ${MAX_U16} bytes`)
    size += 2 + tag.byteLength
  }
  if (entry.value.byteLength > MAX_U32) throw rejected('value of 4 GiB or more')

  const out = Buffer.allocUnsafe(size)
  out[0] = MAGIC_0
  out[1] = MAGIC_1
  out[2] = CACHE_ENTRY_FORMAT
  out.writeDoubleBE(entry.createdAt, 3)
  out.writeDoubleBE(entry.freshUntil, 11)
  out.writeDoubleBE(entry.staleUntil, 19)
  out.writeUInt16BE(tags.length, 27)
  let offset = HEADER_BYTES
  for (const tag of tags) {
    out.writeUInt16BE(tag.byteLength, offset)
    out.set(tag, offset + 2)
    offset += 2 + tag.byteLength
  }
  out.writeUInt32BE(entry.value.byteLength, offset)
  out.set(entry.value, offset + 4)
  return out
}

/**
 * Parses what {@link encodeCacheEntry} wrote. Anything else (truncated, padded, another
 * format version, foreign bytes) yields `undefined`: a corrupt remote value is a cache miss,
 * never an exception. The returned `value` is a view into `bytes`, not a copy.
 *
 * @example
 * const entry = decodeCacheEntry(await redis.getBuffer(key)) // undefined when unreadable
 */
export function decodeCacheEntry(bytes: Uint8Array | null | undefined): CacheEntry | undefined {
  if (bytes === null || bytes === undefined || bytes.byteLength < HEADER_BYTES + 4) return undefined
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1 || bytes[2] !== CACHE_ENTRY_FORMAT) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const createdAt = view.getFloat64(3)
  const freshUntil = view.getFloat64(11)
  const staleUntil = view.getFloat64(19)
  if (!Number.isFinite(createdAt) || !Number.isFinite(freshUntil) || !Number.isFinite(staleUntil)) return undefined
  const tagCount = view.getUint16(27)
  const tags: string[] = []
  let offset = HEADER_BYTES
  for (let i = 0; i < tagCount; i++) {
    if (offset + 2 > bytes.byteLength) return undefined
    const length = view.getUint16(offset)
    offset += 2
    if (offset + length > bytes.byteLength) return undefined
    try {
      tags.push(strictUtf8.decode(bytes.subarray(offset, offset + length)))
    } catch {
      return undefined
    }
    offset += length
  }
  if (offset + 4 > bytes.byteLength) return undefined
  const valueLength = view.getUint32(offset)
  offset += 4
  if (offset + valueLength !== bytes.byteLength) return undefined
  // A plain Uint8Array view (not a Buffer) so callers see the type the interface promises.
  const value = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, valueLength)
  return { value, createdAt, freshUntil, staleUntil, tags }
}

function rejected(reason: string): BackbeatError {
  return new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { reason: `cache entry: ${reason}` } })
}
