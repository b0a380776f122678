import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { aesGcmCipher, ValueCodec, type DecodeResult, type ValueCipher } from './value-codec.ts'

const KEY_1 = randomBytes(32).toString('base64')
const KEY_2 = randomBytes(32).toString('base64url')

function code(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    return err.code
  }
  assert.fail('expected an error')
}

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof BackbeatError)
    assert.equal(err.code, 'ERR_STORE_VALUE_REJECTED')
    return String(err.params.reason)
  }
  assert.fail('expected an error')
}

function value(result: DecodeResult): unknown {
  assert.ok(result.ok, `expected ok, got ${result.ok ? '' : result.reason}`)
  return result.value
}

function failure(result: DecodeResult): string {
  assert.ok(!result.ok, 'expected the decode to fail')
  return result.reason
}

/** A realistic catalogue page: what the music API caches most. */
function cataloguePage(count: number): unknown {
  return {
    page: 1,
    total: 1840,
    items: Array.from({ length: count }, (_, i) => ({
      id: `trk_${(100000 + i).toString(36)}`,
      title: `Track number ${i} (Remastered ${1990 + (i % 30)})`,
      durationMs: 180000 + i * 1337,
      explicit: i % 7 === 0,
      popularity: (i * 37) % 100,
      isrc: `USRC1${String(7000000 + i)}`,
      artists: [{ id: `art_${i % 13}`, name: ['Miles Davis', 'John Coltrane', 'Bill Evans'][i % 3] }],
      album: { id: `alb_${i % 40}`, title: `Album ${i % 40}`, releaseDate: '1959-08-17', images: [{ url: `https://img.example.com/${i % 40}/640.jpg`, width: 640, height: 640 }] },
      genres: ['jazz', 'modal'],
    })),
  }
}

const SAMPLES: ReadonlyArray<readonly [string, unknown]> = [
  ['a string', 'Blue in Green'],
  ['an empty string', ''],
  ['an integer', 42],
  ['a negative float', -3.25],
  ['zero', 0],
  ['true', true],
  ['false', false],
  ['null', null],
  ['an array', [1, 'two', null, [3]]],
  ['a nested object', { id: 'a1', album: { tracks: [{ n: 1, title: 'So What' }], meta: { year: 1959, tags: ['jazz'] } } }],
  ['unicode text', 'Björk — Jóga 🎵'],
]

for (const format of ['json', 'msgpack'] as const) {
  describe(`ValueCodec (${format})`, () => {
    const codec = new ValueCodec({ format })

    for (const [name, sample] of SAMPLES) {
      it(`round-trips ${name}`, () => {
        assert.deepEqual(value(codec.decode(codec.encode(sample))), sample)
      })
    }

    it('rejects a top-level undefined, function or symbol', () => {
      for (const bad of [undefined, () => 1, Symbol('s'), { toJSON: () => undefined }].slice(0, format === 'json' ? 4 : 3)) {
        assert.match(reason(() => codec.encode(bad)), /cannot be/)
      }
    })

    it('rejects a circular value with a reason that does not quote the value', () => {
      const loop: Record<string, unknown> = { secret: 'hunter2' }
      loop.self = loop
      const why = reason(() => codec.encode(loop))
      assert.match(why, /not serializable/)
      assert.doesNotMatch(why, /hunter2|self/)
    })

    it('round-trips a large catalogue page through compression', () => {
      const page = cataloguePage(200)
      assert.deepEqual(value(codec.decode(codec.encode(page))), page)
    })

    it('returns ok:false for truncated input at every length', () => {
      const bytes = codec.encode({ id: 'a1', title: 'Kind of Blue', tracks: [1, 2, 3] })
      for (let length = 0; length < bytes.byteLength; length++) {
        const result = codec.decode(bytes.subarray(0, length))
        assert.equal(result.ok, false, `length ${length} decoded`)
      }
    })

    it('returns ok:false for truncated compressed input', () => {
      const bytes = codec.encode(cataloguePage(50))
      assert.notEqual((bytes[0] as number) & 0b1100, 0, 'expected a compressed value')
      failure(codec.decode(bytes.subarray(0, Math.floor(bytes.byteLength / 2))))
    })
  })
}

describe('ValueCodec format rules', () => {
  const json = new ValueCodec({ format: 'json' })
  const msgpack = new ValueCodec({ format: 'msgpack' })
  const when = new Date('2026-01-02T03:04:05.678Z')

  it('JSON turns a Date into its ISO string, drops undefined properties and turns NaN into null', () => {
    assert.deepEqual(value(json.decode(json.encode({ when, gone: undefined, n: Number.NaN }))), { when: '2026-01-02T03:04:05.678Z', n: null })
  })

  it('MessagePack keeps Dates, NaN and byte arrays, and drops undefined properties', () => {
    const decoded = value(msgpack.decode(msgpack.encode({ when, gone: undefined, n: Number.NaN, bytes: Uint8Array.of(1, 2) }))) as Record<string, unknown>
    assert.ok(decoded.when instanceof Date)
    assert.equal(decoded.when.getTime(), when.getTime())
    assert.ok(!('gone' in decoded))
    assert.ok(Number.isNaN(decoded.n))
    assert.deepEqual([...(decoded.bytes as Uint8Array)], [1, 2])
  })

  it('JSON rejects a BigInt, a function or a symbol anywhere in the value, naming the property', () => {
    assert.match(reason(() => json.encode({ a: { count: 10n } })), /bigint at property "count"/)
    assert.match(reason(() => json.encode({ f: () => 1 })), /function at property "f"/)
    assert.match(reason(() => json.encode([Symbol('x')])), /symbol/)
    assert.match(reason(() => json.encode(5n)), /bigint at the top level/)
  })

  it('MessagePack rejects a BigInt (never wrapped silently to 64 bits)', () => {
    assert.match(reason(() => msgpack.encode(2n ** 60n)), /not serializable as MessagePack/)
    assert.match(reason(() => msgpack.encode({ big: 2n ** 70n })), /not serializable as MessagePack/)
  })

  it('MessagePack never lets a __proto__ key reach a prototype: such a value decodes as a miss', () => {
    const result = msgpack.decode(msgpack.encode(JSON.parse('{"__proto__":{"polluted":true}}')))
    assert.equal(result.ok, false)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  it('a value encoded in one format decodes with a codec configured for the other', () => {
    assert.deepEqual(value(msgpack.decode(json.encode({ a: 1 }))), { a: 1 })
    assert.deepEqual(value(json.decode(msgpack.encode({ a: 1 }))), { a: 1 })
  })

  it('does not let one encode overwrite the bytes of an earlier one', () => {
    const first = msgpack.encode({ id: 'first' })
    msgpack.encode({ id: 'second-and-longer' })
    assert.deepEqual(value(msgpack.decode(first)), { id: 'first' })
  })

  it('MessagePack is smaller than JSON on an uncompressed catalogue page, and compression shrinks it over 3x', (t) => {
    const page = cataloguePage(50)
    const sizes = {
      json: new ValueCodec({ format: 'json', compressAboveBytes: 0 }).encode(page).byteLength,
      msgpack: new ValueCodec({ format: 'msgpack', compressAboveBytes: 0 }).encode(page).byteLength,
      jsonZstd: json.encode(page).byteLength,
      msgpackZstd: msgpack.encode(page).byteLength,
      msgpackBrotli: new ValueCodec({ compression: 'brotli' }).encode(page).byteLength,
      msgpackGzip: new ValueCodec({ compression: 'gzip' }).encode(page).byteLength,
    }
    t.diagnostic(`catalogue page of 50 tracks, bytes: ${JSON.stringify(sizes)}`)
    assert.ok(sizes.msgpack < sizes.json)
    assert.ok(sizes.msgpackZstd < sizes.msgpack / 3)
  })
})

describe('ValueCodec compression', () => {
  const big = { text: 'la '.repeat(1000) }

  for (const compression of ['zstd', 'brotli', 'gzip'] as const) {
    it(`${compression}: compresses above the threshold, flags it in the header and round-trips`, () => {
      const codec = new ValueCodec({ compression, compressAboveBytes: 1024 })
      const plain = new ValueCodec({ compressAboveBytes: 0 }).encode(big)
      const bytes = codec.encode(big)
      assert.ok(bytes.byteLength < plain.byteLength / 10, `${compression} did not shrink the value`)
      assert.equal(((bytes[0] as number) >> 2) & 0b11, { zstd: 1, brotli: 2, gzip: 3 }[compression])
      assert.deepEqual(value(codec.decode(bytes)), big)
    })
  }

  it('does not compress at or below the threshold', () => {
    const codec = new ValueCodec({ compressAboveBytes: 1024 })
    const small = { text: 'la '.repeat(100) }
    assert.equal(((codec.encode(small)[0] as number) >> 2) & 0b11, 0)
  })

  it('never compresses with compressAboveBytes 0', () => {
    const codec = new ValueCodec({ compressAboveBytes: 0 })
    assert.equal(((codec.encode(big)[0] as number) >> 2) & 0b11, 0)
  })

  it('stores incompressible data uncompressed rather than larger', () => {
    const codec = new ValueCodec({ compressAboveBytes: 16 })
    const noise = randomBytes(4096).toString('base64')
    const bytes = codec.encode(noise)
    // base64 text still compresses a bit (6 bits per byte); raw random bytes do not.
    const raw = codec.encode(randomBytes(4096))
    assert.equal(((raw[0] as number) >> 2) & 0b11, 0)
    assert.deepEqual(value(codec.decode(bytes)), noise)
  })

  it('decodes values compressed with another algorithm than the one configured', () => {
    const bytes = new ValueCodec({ compression: 'gzip' }).encode(big)
    assert.deepEqual(value(new ValueCodec({ compression: 'zstd' }).decode(bytes)), big)
  })
})

describe('ValueCodec size limit', () => {
  it('rejects a value over maxValueBytes before compression, even if it would compress well', () => {
    const codec = new ValueCodec({ maxValueBytes: 2048 })
    assert.match(reason(() => codec.encode('a'.repeat(4096))), /over the 2048-byte limit/)
  })

  it('accepts a value right at the limit', () => {
    const codec = new ValueCodec({ format: 'json', maxValueBytes: 12 })
    assert.deepEqual(value(codec.decode(codec.encode('a'.repeat(10)))), 'a'.repeat(10))
    assert.equal(code(() => codec.encode('a'.repeat(11))), 'ERR_STORE_VALUE_REJECTED')
  })

  it('refuses to inflate a stored value past maxValueBytes (a decompression bomb is a miss)', () => {
    const bomb = new ValueCodec({ maxValueBytes: 10_000_000 }).encode('0'.repeat(5_000_000))
    assert.ok(bomb.byteLength < 10_000)
    assert.match(failure(new ValueCodec({ maxValueBytes: 65536 }).decode(bomb)), /zstd payload inflates past the 65536-byte limit/)
  })

  it('refuses an uncompressed stored value over maxValueBytes', () => {
    const bytes = new ValueCodec({ compressAboveBytes: 0 }).encode('a'.repeat(5000))
    assert.match(failure(new ValueCodec({ maxValueBytes: 1000 }).decode(bytes)), /over the 1000-byte limit/)
  })
})

describe('ValueCodec corrupt input', () => {
  const codec = new ValueCodec()

  it('returns ok:false, never throws, for garbage, unknown versions and bad format codes', () => {
    const good = codec.encode({ a: 1 })
    const unknownVersion = Uint8Array.from(good)
    unknownVersion[0] = ((unknownVersion[0] as number) & 0b0001_1111) | (2 << 5)
    assert.match(failure(codec.decode(unknownVersion)), /unknown layout version 2/)
    const badFormat = Uint8Array.from(good)
    badFormat[0] = ((badFormat[0] as number) & ~0b11) | 0b11
    assert.match(failure(codec.decode(badFormat)), /unknown format code 3/)
    assert.match(failure(codec.decode(Uint8Array.of((1 << 5) | 0, 0xff, 0xfe))), /invalid JSON payload/)
    assert.match(failure(codec.decode(Uint8Array.of((1 << 5) | 0b0100, 1, 2, 3, 4))), /zstd decompression failed/)
    assert.match(failure(codec.decode('not bytes' as unknown as Uint8Array)), /not a byte array/)
    assert.match(failure(codec.decode(new Uint8Array(0))), /truncated/)
  })

  it('returns ok:false for JSON that is not valid UTF-8 or has trailing garbage', () => {
    const json = new ValueCodec({ format: 'json' })
    assert.equal(json.decode(Uint8Array.of(1 << 5, 0x22, 0xc3, 0x22)).ok, false)
    assert.equal(json.decode(Uint8Array.of(1 << 5, 0x31, 0x7d)).ok, false)
  })

  it('returns ok:false for MessagePack with trailing bytes, without quoting the data in the reason', () => {
    const bytes = codec.encode({ secret: 'hunter2' })
    const padded = Uint8Array.of(...bytes, 0x01, 0x02)
    const why = failure(codec.decode(padded))
    assert.equal(why, 'invalid MessagePack payload')
  })

  it('returns ok:false for a random byte flip of a MessagePack value in most positions', () => {
    const bytes = codec.encode({ id: 'a1', n: 1 })
    for (let i = 0; i < bytes.byteLength; i++) {
      const copy = Uint8Array.from(bytes)
      copy[i] = (copy[i] as number) ^ 0xff
      // Without a cipher a flip may still decode to some other value: only integrity from the
      // cipher prevents that. What matters here is that decode never throws.
      assert.doesNotThrow(() => codec.decode(copy))
    }
  })
})

describe('ValueCodec encryption', () => {
  const cipher = aesGcmCipher({ 1: KEY_1, 2: KEY_2 }, 2)
  const codec = new ValueCodec({ cipher })
  const secret = { email: 'listener@example.com', plan: 'premium' }

  it('round-trips an encrypted value and hides the plaintext', () => {
    const bytes = codec.encode(secret, 'users:u1')
    assert.equal(Buffer.from(bytes).includes('listener@example.com'), false)
    assert.equal((bytes[0] as number) & 0b1_0000, 0b1_0000)
    assert.deepEqual(value(codec.decode(bytes, 'users:u1')), secret)
  })

  it('round-trips a compressed encrypted value', () => {
    const page = cataloguePage(100)
    const bytes = codec.encode(page, 'k')
    assert.notEqual((bytes[0] as number) & 0b1100, 0)
    assert.deepEqual(value(codec.decode(bytes, 'k')), page)
  })

  it('seals the same value differently each time (random IV)', () => {
    assert.notDeepEqual(codec.encode(secret, 'k'), codec.encode(secret, 'k'))
  })

  it('returns ok:false under a different cache key (a ciphertext copied to another key)', () => {
    const bytes = codec.encode(secret, 'tenant-a:u1')
    assert.match(failure(codec.decode(bytes, 'tenant-b:u1')), /failed authentication/)
    assert.match(failure(codec.decode(bytes)), /failed authentication/)
  })

  it('returns ok:false with the wrong key', () => {
    const bytes = codec.encode(secret, 'k')
    const other = new ValueCodec({ cipher: aesGcmCipher({ 2: randomBytes(32).toString('base64') }, 2) })
    assert.match(failure(other.decode(bytes, 'k')), /failed authentication/)
  })

  it('returns ok:false when the key version is not configured', () => {
    const bytes = codec.encode(secret, 'k')
    const onlyOld = new ValueCodec({ cipher: aesGcmCipher({ 1: KEY_1 }, 1) })
    assert.match(failure(onlyOld.decode(bytes, 'k')), /key version 2, which is not configured/)
  })

  it('still opens values sealed with an older key version after a rotation', () => {
    const old = new ValueCodec({ cipher: aesGcmCipher({ 1: KEY_1 }, 1) }).encode(secret, 'k')
    assert.deepEqual(value(codec.decode(old, 'k')), secret)
  })

  it('returns ok:false for any single tampered byte, including the clear header', () => {
    const bytes = codec.encode(secret, 'k')
    for (let i = 0; i < bytes.byteLength; i++) {
      const copy = Uint8Array.from(bytes)
      copy[i] = (copy[i] as number) ^ 0x01
      assert.equal(codec.decode(copy, 'k').ok, false, `flip at byte ${i} went unnoticed`)
    }
  })

  it('returns ok:false for a truncated encrypted value at every length', () => {
    const bytes = codec.encode(secret, 'k')
    for (let length = 0; length < bytes.byteLength; length++) assert.equal(codec.decode(bytes.subarray(0, length), 'k').ok, false)
  })

  it('refuses plaintext when a cipher is configured, and ciphertext when none is', () => {
    assert.match(failure(codec.decode(new ValueCodec().encode(secret))), /not encrypted but a cipher is configured/)
    assert.match(failure(new ValueCodec().decode(codec.encode(secret))), /no cipher is configured/)
  })

  it('treats a throwing custom cipher as a miss', () => {
    const broken: ValueCipher = { seal: (b) => b, open: () => { throw new Error('hsm offline') } }
    const custom = new ValueCodec({ cipher: broken })
    assert.equal(failure(custom.decode(custom.encode(1))), 'decryption failed: the cipher refused it')
  })
})

describe('aesGcmCipher configuration', () => {
  function issues(fn: () => unknown): string[] {
    try {
      fn()
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      return err.issues.map((i) => `${i.path}: ${i.message}`)
    }
    assert.fail('expected a ConfigError')
  }

  it('accepts base64, base64url and byte keys and lists the versions', () => {
    const cipher = aesGcmCipher({ 3: KEY_1, 1: KEY_2, 2: randomBytes(32) }, 3)
    assert.deepEqual(cipher.versions, [1, 2, 3])
    assert.equal(cipher.current, 3)
  })

  it('lists every problem at once', () => {
    const found = issues(() => aesGcmCipher({ 0: KEY_1, 256: KEY_2, 1: 'short', 2: randomBytes(16), 3: KEY_1, 4: KEY_1 }, 9))
    assert.deepEqual(found.sort(), [
      'cache.encryption.current: names version 9, which is not among the keys',
      'cache.encryption.keys.0: key versions must be integers from 1 to 255',
      'cache.encryption.keys.1: must be 32 bytes in base64 or base64url (43 characters, optionally one "=")',
      'cache.encryption.keys.2: must be 32 bytes, got 16',
      'cache.encryption.keys.256: key versions must be integers from 1 to 255',
      'cache.encryption.keys.4: repeats the key of another version; a rotation needs a new key',
    ].sort())
  })

  it('rejects an empty key set and a current version out of range', () => {
    assert.deepEqual(issues(() => aesGcmCipher({}, 0)), ['cache.encryption.keys: must configure at least one key version', 'cache.encryption.current: must be an integer key version from 1 to 255'])
  })
})

describe('ValueCodec options', () => {
  it('lists every invalid option by path', () => {
    try {
      new ValueCodec({ format: 'xml', compressAboveBytes: -1, compression: 'lz4', maxValueBytes: 0, cipher: {} } as never)
      assert.fail('expected a ConfigError')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.issues.map((i) => i.path).sort(), ['cache.codec.cipher', 'cache.codec.compressAboveBytes', 'cache.codec.compression', 'cache.codec.format', 'cache.codec.maxValueBytes'])
    }
  })

  it('rejects unknown options instead of ignoring them', () => {
    assert.equal(code(() => new ValueCodec({ compresion: 'gzip' } as never)), 'ERR_CONFIG_INVALID')
  })

  it('defaults to MessagePack, zstd above 1 KiB, 1 MiB values, no encryption', () => {
    const codec = new ValueCodec()
    assert.deepEqual(
      { format: codec.format, compression: codec.compression, compressAboveBytes: codec.compressAboveBytes, maxValueBytes: codec.maxValueBytes, encrypted: codec.encrypted },
      { format: 'msgpack', compression: 'zstd', compressAboveBytes: 1024, maxValueBytes: 1048576, encrypted: false },
    )
  })
})
