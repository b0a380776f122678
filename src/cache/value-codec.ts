import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto'
import * as zlib from 'node:zlib'
import { Decoder, Encoder } from '@msgpack/msgpack'
import { z } from 'zod'
import { BackbeatError, ConfigError, parseOptions, parseVersionedKeys } from '../core/index.ts'

/**
 * Seals and opens the bytes of a cached value (encryption at rest). `aad` is the cache key the
 * value is stored under: an implementation must authenticate it so a ciphertext copied to
 * another key (another tenant's, say) fails to open. `open` throws on any failure.
 */
export interface ValueCipher {
  seal(bytes: Uint8Array, aad?: Uint8Array): Uint8Array
  open(bytes: Uint8Array, aad?: Uint8Array): Uint8Array
}

/** Serialization formats of {@link ValueCodec}. */
export type ValueFormat = 'json' | 'msgpack'
/** Compression algorithms of {@link ValueCodec} (all from `node:zlib`). */
export type ValueCompression = 'zstd' | 'brotli' | 'gzip'

/** The outcome of {@link ValueCodec.decode}: never a throw, so a corrupt entry is a logged miss. */
export type DecodeResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string }

const isCipher = (v: unknown): v is ValueCipher =>
  typeof v === 'object' && v !== null && typeof (v as Partial<ValueCipher>).seal === 'function' && typeof (v as Partial<ValueCipher>).open === 'function'

const codecSchema = z
  .object({
    format: z.enum(['json', 'msgpack']).default('msgpack'),
    compressAboveBytes: z.number().int().min(0).default(1024),
    compression: z.enum(['zstd', 'brotli', 'gzip']).default('zstd'),
    maxValueBytes: z.number().int().min(1).max(512 * 1024 * 1024).default(1024 * 1024),
    cipher: z.custom<ValueCipher>(isCipher, 'must be an object with seal(bytes) and open(bytes) functions').optional(),
  })
  .strict()

/** Options of {@link ValueCodec}; every field has a default. */
export type ValueCodecOptions = z.input<typeof codecSchema>

// Header byte: vvv e cc ff. Version in the top three bits so a future layout is told apart
// from this one and read as a miss rather than as garbage.
const VERSION = 1
const VERSION_SHIFT = 5
const ENCRYPTED = 0b1_0000
const COMPRESSION_SHIFT = 2
const FORMAT_MASK = 0b11
const FORMAT_CODES: Readonly<Record<ValueFormat, number>> = { json: 0, msgpack: 1 }
const COMPRESSION_CODES: Readonly<Record<ValueCompression | 'none', number>> = { none: 0, zstd: 1, brotli: 2, gzip: 3 }
const COMPRESSION_NAMES = ['none', 'zstd', 'brotli', 'gzip'] as const

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Brotli's default quality (11) costs ~50x zstd's time for a few percent; 4 is the usual online setting. */
const BROTLI_QUALITY = 4

/**
 * Turns cache values into bytes and back for the remote tiers: JSON or MessagePack, then
 * compression above a size threshold (only when it actually shrinks the value), then optional
 * authenticated encryption. The first byte records format, compression, encryption and a layout
 * version, so entries written with other settings (during a rolling deploy) still decode.
 *
 * Format rules. MessagePack (`@msgpack/msgpack`, the format's reference implementation for
 * JavaScript: plain MessagePack any reader decodes) keeps `Date`s (timestamp extension),
 * `Uint8Array`s and `NaN`/`Infinity`; drops `undefined` properties; rejects `BigInt`s and
 * functions; and refuses to decode a `__proto__` key (such a value is a miss, never a
 * polluted prototype). JSON turns `Date`s into ISO strings, drops `undefined` properties, turns
 * `NaN`/`Infinity` into `null`, and rejects functions, symbols and `BigInt`s anywhere.
 * Either format rejects a top-level `undefined` (it means "absent" to a cache).
 *
 * `encode` throws `ERR_STORE_VALUE_REJECTED` for an unserializable value or one over
 * `maxValueBytes` (serialized, before compression). `decode` never throws: corrupt,
 * truncated, tampered, unknown-version or oversized input yields `{ ok: false, reason }`.
 *
 * @example
 * const codec = new ValueCodec({ compression: 'zstd', cipher: aesGcmCipher({ 1: process.env.CACHE_KEY_1! }, 1) })
 * const bytes = codec.encode({ id: 't1', title: 'Blue in Green' }, 'catalog:track:t1')
 * const result = codec.decode(bytes, 'catalog:track:t1') // { ok: true, value: { id: 't1', ... } }
 */
export class ValueCodec {
  readonly format: ValueFormat
  readonly compression: ValueCompression
  readonly compressAboveBytes: number
  readonly maxValueBytes: number
  readonly encrypted: boolean
  readonly #cipher: ValueCipher | undefined
  // `encode` of an Encoder instance returns a fresh copy; the instances are reused for speed.
  readonly #encoder = new Encoder({ ignoreUndefined: true })
  readonly #decoder = new Decoder()

  constructor(options: ValueCodecOptions = {}) {
    const parsed = parseOptions('cache.codec', codecSchema, options)
    if (parsed.compression === 'zstd' && typeof zlib.zstdCompressSync !== 'function') {
      throw new ConfigError([{ path: 'cache.codec.compression', message: 'zstd needs node:zlib zstd support (Node 22.15+/23.8+); choose brotli or gzip' }])
    }
    this.format = parsed.format
    this.compression = parsed.compression
    this.compressAboveBytes = parsed.compressAboveBytes
    this.maxValueBytes = parsed.maxValueBytes
    this.#cipher = parsed.cipher
    this.encrypted = parsed.cipher !== undefined
  }

  /**
   * The stored form of `value`. `aad` (usually the full cache key) binds an encrypted value to
   * its key; it is ignored without a cipher.
   *
   * @example const bytes = codec.encode({ id: 'a1', tracks: 12 }, 'catalog:album:a1')
   */
  encode(value: unknown, aad?: string): Uint8Array {
    const payload = this.format === 'json' ? encodeJson(value) : this.#encodeMsgpack(value)
    if (payload.byteLength > this.maxValueBytes) {
      throw rejected(`value is ${payload.byteLength} bytes serialized, over the ${this.maxValueBytes}-byte limit`)
    }
    let body = payload
    let compression: ValueCompression | 'none' = 'none'
    if (this.compressAboveBytes > 0 && payload.byteLength > this.compressAboveBytes) {
      const compressed = compress(this.compression, payload)
      if (compressed.byteLength < payload.byteLength) {
        body = compressed
        compression = this.compression
      }
    }
    const header =
      (VERSION << VERSION_SHIFT) | (this.#cipher === undefined ? 0 : ENCRYPTED) | (COMPRESSION_CODES[compression] << COMPRESSION_SHIFT) | FORMAT_CODES[this.format]
    const plain = new Uint8Array(1 + body.byteLength)
    plain[0] = header
    plain.set(body, 1)
    if (this.#cipher === undefined) return plain
    // The header is sealed with the body and repeated in clear: flipping a clear flag (say,
    // "not compressed") is then caught as a mismatch after authentication.
    const sealed = this.#cipher.seal(plain, aadBytes(aad))
    const out = new Uint8Array(1 + sealed.byteLength)
    out[0] = header
    out.set(sealed, 1)
    return out
  }

  /**
   * Reads a stored value back; never throws. `aad` must be what `encode` got.
   *
   * @example
   * const result = codec.decode(bytes, 'catalog:album:a1')
   * if (!result.ok) log.warn({ reason: result.reason }, 'unreadable cache entry treated as a miss')
   */
  decode(bytes: Uint8Array, aad?: string): DecodeResult {
    try {
      return this.#decode(bytes, aad)
    } catch {
      // Every stage below catches its own failures; this is the last line of "never throws".
      return { ok: false, reason: 'unreadable value' }
    }
  }

  // Reasons name the failing stage but never quote a foreign message: parser errors can
  // include the cached data, and these reasons are logged.
  #decode(bytes: Uint8Array, aad: string | undefined): DecodeResult {
    if (!(bytes instanceof Uint8Array)) return { ok: false, reason: 'not a byte array' }
    if (bytes.byteLength < 2) return { ok: false, reason: 'truncated: shorter than header and payload' }
    const header = bytes[0] as number
    const version = header >>> VERSION_SHIFT
    if (version !== VERSION) return { ok: false, reason: `unknown layout version ${version}` }
    let plain = bytes
    if ((header & ENCRYPTED) !== 0) {
      if (this.#cipher === undefined) return { ok: false, reason: 'value is encrypted but no cipher is configured' }
      try {
        plain = this.#cipher.open(bytes.subarray(1), aadBytes(aad))
      } catch (err) {
        const why = err instanceof BackbeatError && typeof err.params.reason === 'string' ? err.params.reason : 'the cipher refused it'
        return { ok: false, reason: `decryption failed: ${why}` }
      }
      if (plain.byteLength < 1 || plain[0] !== header) return { ok: false, reason: 'sealed header does not match the clear header' }
    } else if (this.#cipher !== undefined) {
      // With a cipher configured, plaintext could only come from someone writing to the store.
      return { ok: false, reason: 'value is not encrypted but a cipher is configured' }
    }
    const compression = COMPRESSION_NAMES[(header >>> COMPRESSION_SHIFT) & 0b11] ?? 'none'
    const formatCode = header & FORMAT_MASK
    let payload = plain.subarray(1)
    if (compression !== 'none') {
      try {
        payload = decompress(compression, payload, this.maxValueBytes)
      } catch (err) {
        const tooLarge = (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE'
        return { ok: false, reason: tooLarge ? `${compression} payload inflates past the ${this.maxValueBytes}-byte limit` : `${compression} decompression failed` }
      }
    } else if (payload.byteLength > this.maxValueBytes) {
      return { ok: false, reason: `payload of ${payload.byteLength} bytes is over the ${this.maxValueBytes}-byte limit` }
    }
    if (formatCode === FORMAT_CODES.json) {
      try {
        return { ok: true, value: JSON.parse(strictUtf8.decode(payload)) as unknown }
      } catch {
        return { ok: false, reason: 'invalid JSON payload' }
      }
    }
    if (formatCode === FORMAT_CODES.msgpack) {
      let value: unknown
      try {
        value = this.#decoder.decode(payload)
      } catch {
        return { ok: false, reason: 'invalid MessagePack payload' }
      }
      // A top-level undefined is never written (encode rejects it), so it marks a forged value.
      return value === undefined ? { ok: false, reason: 'payload decodes to undefined' } : { ok: true, value }
    }
    return { ok: false, reason: `unknown format code ${formatCode}` }
  }

  #encodeMsgpack(value: unknown): Uint8Array {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
      throw rejected(`a ${typeof value} cannot be cached`)
    }
    try {
      return this.#encoder.encode(value)
    } catch (err) {
      throw rejected('value is not serializable as MessagePack (circular, a BigInt, a function or another unsupported object)', err)
    }
  }
}

function encodeJson(value: unknown): Uint8Array {
  let text: string
  try {
    text = JSON.stringify(value, rejectUnrepresentable)
  } catch (err) {
    if (err instanceof BackbeatError) throw err
    // The engine may surface this reason, so the foreign message (which can quote the value) stays in `cause`.
    throw rejected('value is not serializable as JSON (circular, or a toJSON that throws)', err)
  }
  return utf8.encode(text)
}

/**
 * JSON.stringify would silently drop functions and symbols (and return undefined for a
 * top-level one, or a toJSON that yields undefined); a cache must not lose data unnoticed.
 */
function rejectUnrepresentable(this: unknown, key: string, value: unknown): unknown {
  const type = typeof value
  if (type === 'function' || type === 'symbol' || type === 'bigint' || (key === '' && type === 'undefined')) {
    const where = key === '' ? 'at the top level' : `at property ${JSON.stringify(key.slice(0, 64))}`
    throw rejected(`a ${type} ${where} cannot be ${type === 'undefined' ? 'cached' : 'serialized as JSON'}`)
  }
  return value
}

function compress(algorithm: ValueCompression, input: Uint8Array): Uint8Array {
  switch (algorithm) {
    case 'zstd':
      // The pledged size lets zstd size its window to the input and records it in the frame.
      return zlib.zstdCompressSync(input, { pledgedSrcSize: input.byteLength })
    case 'brotli':
      return zlib.brotliCompressSync(input, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: input.byteLength },
      })
    case 'gzip':
      return zlib.gzipSync(input)
  }
}

/** `maxOutputLength` bounds the work a decompression bomb planted in the store can cause. */
function decompress(algorithm: ValueCompression, input: Uint8Array, maxOutputLength: number): Uint8Array {
  switch (algorithm) {
    case 'zstd':
      return zlib.zstdDecompressSync(input, { maxOutputLength })
    case 'brotli':
      return zlib.brotliDecompressSync(input, { maxOutputLength })
    case 'gzip':
      return zlib.gunzipSync(input, { maxOutputLength })
  }
}

function aadBytes(aad: string | undefined): Uint8Array | undefined {
  return aad === undefined ? undefined : utf8.encode(aad)
}

function rejected(reason: string, cause?: unknown): BackbeatError {
  return new BackbeatError('ERR_STORE_VALUE_REJECTED', cause === undefined ? { params: { reason } } : { params: { reason }, cause })
}

const IV_BYTES = 12
const TAG_BYTES = 16

/** A {@link ValueCipher} that also says which key versions it holds. */
export interface AesGcmCipher extends ValueCipher {
  /** The key version new values are sealed with. */
  readonly current: number
  /** Every configured version, ascending. */
  readonly versions: readonly number[]
}

/**
 * AES-256-GCM for cached values: `[key version][96-bit random IV][ciphertext][16-byte tag]`.
 * The version byte (1..255) names the key that opens a value, so keys rotate by adding a
 * version and making it `current`; entries sealed with a dropped version become misses.
 * Keys are 32 bytes, as base64/base64url text or bytes. Random IVs keep one key safe for
 * about 2^32 seals (NIST SP 800-38D): rotate well before that on a busy cache.
 *
 * @example
 * const cipher = aesGcmCipher({ 1: process.env.CACHE_KEY_1!, 2: process.env.CACHE_KEY_2! }, 2)
 * const codec = new ValueCodec({ cipher })
 */
export function aesGcmCipher(keys: Readonly<Record<number, string | Uint8Array>>, current: number): AesGcmCipher {
  // One version byte on every value: versions 1..255.
  const { keys: table } = parseVersionedKeys(keys, current, { path: 'cache.encryption', maxVersion: 255 })
  const currentKey = table.get(current) as KeyObject
  return {
    current,
    versions: Object.freeze([...table.keys()].sort((a, b) => a - b)),
    seal(bytes, aad) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', currentKey, iv, { authTagLength: TAG_BYTES })
      if (aad !== undefined) cipher.setAAD(aad)
      const head = cipher.update(bytes)
      const tail = cipher.final()
      return Buffer.concat([Uint8Array.of(current), iv, head, tail, cipher.getAuthTag()])
    },
    open(bytes, aad) {
      if (bytes.byteLength < 1 + IV_BYTES + TAG_BYTES) throw rejected('sealed value is truncated')
      const version = bytes[0] as number
      const key = table.get(version)
      if (key === undefined) throw rejected(`sealed with key version ${version}, which is not configured`)
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES })
      if (aad !== undefined) decipher.setAAD(aad)
      decipher.setAuthTag(bytes.subarray(bytes.byteLength - TAG_BYTES))
      try {
        const head = decipher.update(bytes.subarray(1 + IV_BYTES, bytes.byteLength - TAG_BYTES))
        return Buffer.concat([head, decipher.final()])
      } catch (err) {
        throw rejected('sealed value failed authentication (tampered, wrong key or wrong cache key)', err)
      }
    },
  }
}

