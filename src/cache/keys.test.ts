import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { BackbeatError } from '../core/index.ts'
import { cacheKey, isHashedCacheKey, MAX_LITERAL_KEY_BYTES, normalizeCacheKey, tagKey } from './keys.ts'

/** The reason of the ERR_STORE_VALUE_REJECTED that `fn` throws. */
function rejection(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_STORE_VALUE_REJECTED')
    return String(err.params.reason)
  }
  assert.fail('expected an error')
}

describe('cacheKey', () => {
  it('joins namespace and key with a colon', () => {
    assert.equal(cacheKey('catalog', 'track:42'), 'catalog:track:42')
    assert.equal(cacheKey('0', 'x'), '0:x')
  })

  it('accepts spaces and non-ASCII text', () => {
    assert.equal(cacheKey('search', 'q=Björk live'), 'search:q=Björk live')
  })

  it('normalises to NFC so composed and decomposed accents name one entry', () => {
    assert.equal(cacheKey('search', 'Beyonce\u0301'), cacheKey('search', 'Beyonc\u00e9'))
  })

  it('is deterministic, including for hashed keys', () => {
    const long = 'a'.repeat(500)
    assert.equal(cacheKey('ns', long), cacheKey('ns', long))
    assert.equal(cacheKey('ns', 'k'), cacheKey('ns', 'k'))
  })

  for (const namespace of ['', 'Catalog', '-x', '_x', 'a:b', 'a b', 'a'.repeat(65), 'é']) {
    it(`rejects the namespace ${JSON.stringify(namespace)}`, () => {
      assert.match(rejection(() => cacheKey(namespace, 'k')), /^namespace /)
    })
  }

  it('accepts a 64-character namespace', () => {
    assert.equal(cacheKey('a'.repeat(64), 'k'), `${'a'.repeat(64)}:k`)
  })

  it('rejects an empty key', () => {
    assert.match(rejection(() => cacheKey('ns', '')), /^key must not be empty/)
  })

  it('rejects a key over 1024 characters and accepts one of exactly 1024', () => {
    assert.match(rejection(() => cacheKey('ns', 'k'.repeat(1025))), /^key must be at most 1024/)
    assert.ok(cacheKey('ns', 'k'.repeat(1024)).startsWith('ns:'))
  })

  for (const [name, char] of [['NUL', '\u0000'], ['newline', '\n'], ['carriage return', '\r'], ['tab', '\t'], ['DEL', '\u007f'], ['C1 NEL', '\u0085'], ['line separator', '\u2028']] as const) {
    it(`rejects a key containing ${name}`, () => {
      assert.match(rejection(() => cacheKey('ns', `a${char}b`)), /^key must not contain control characters/)
    })
  }

  it('rejects a key with a lone surrogate', () => {
    assert.match(rejection(() => cacheKey('ns', 'a\ud800b')), /^key must be well-formed/)
  })

  it('rejects a key that is not a string', () => {
    assert.match(rejection(() => cacheKey('ns', 42 as unknown as string)), /^key must be a string/)
  })

  it(`keeps keys of up to ${MAX_LITERAL_KEY_BYTES} UTF-8 bytes literal`, () => {
    const key = 'k'.repeat(MAX_LITERAL_KEY_BYTES)
    assert.equal(cacheKey('ns', key), `ns:${key}`)
  })

  it('hashes longer keys to a readable prefix, a tilde and the SHA-256 of the whole key', () => {
    const key = `search:${'x'.repeat(300)}`
    const full = cacheKey('ns', key)
    const digest = createHash('sha256').update(key).digest('base64url')
    assert.equal(full, `ns:${key.slice(0, 160)}~${digest}`)
    assert.ok(Buffer.byteLength(full) - 'ns:'.length > MAX_LITERAL_KEY_BYTES, 'a hashed key can never equal a literal one')
  })

  it('hashes two long keys that share their prefix to different keys', () => {
    const base = 'p'.repeat(250)
    assert.notEqual(cacheKey('ns', `${base}1`), cacheKey('ns', `${base}2`))
  })

  it('counts bytes, not characters, and never splits a multi-byte character in the prefix', () => {
    const key = '🎵'.repeat(60) // 60 characters, 240 bytes
    const full = cacheKey('ns', key)
    const prefix = full.slice('ns:'.length, full.indexOf('~'))
    assert.equal(prefix, '🎵'.repeat(40))
    assert.doesNotMatch(prefix, /[\uD800-\uDFFF]/u)
  })

  it('keeps namespaces apart even when a key contains a colon', () => {
    assert.notEqual(cacheKey('a', 'b:c'), cacheKey('ab', 'c'))
  })
})

describe('tagKey', () => {
  it('returns a valid tag unchanged, case preserved', () => {
    assert.equal(tagKey('album:a1'), 'album:a1')
    assert.equal(tagKey('Artist.Miles_Davis-1'), 'Artist.Miles_Davis-1')
    assert.equal(tagKey('t'.repeat(128)), 't'.repeat(128))
  })

  for (const tag of ['', 't'.repeat(129), 'a b', 'a/b', 'a\nb', 'é', 'a*']) {
    it(`rejects the tag ${JSON.stringify(tag.length > 20 ? `${tag.slice(0, 8)}…(${tag.length})` : tag)}`, () => {
      assert.match(rejection(() => tagKey(tag)), /^tag must be/)
    })
  }

  it('rejects a tag that is not a string', () => {
    assert.match(rejection(() => tagKey(undefined as unknown as string)), /^tag must be/)
  })
})

describe('normalizeCacheKey and isHashedCacheKey', () => {
  it('returns printable ASCII keys unchanged and is the key part of cacheKey', () => {
    for (const key of ['track:42', 'q=a b&c', '~'.repeat(200), ' ']) {
      assert.equal(normalizeCacheKey(key), key)
      assert.equal(cacheKey('ns', key), `ns:${key}`)
      assert.equal(isHashedCacheKey(normalizeCacheKey(key)), false)
    }
  })

  it('takes the full path for anything else: NFC, controls, surrogates, length, hashing', () => {
    assert.equal(normalizeCacheKey('Beyonce\u0301'), 'Beyonc\u00e9')
    assert.throws(() => normalizeCacheKey('a\u007fb'), BackbeatError, 'DEL is a control character, just past printable ASCII')
    assert.throws(() => normalizeCacheKey('a\nb'), BackbeatError)
    assert.throws(() => normalizeCacheKey('\uD800'), BackbeatError)
    assert.throws(() => normalizeCacheKey(''), BackbeatError)
    const ascii201 = 'a'.repeat(201)
    const hashed = normalizeCacheKey(ascii201)
    assert.notEqual(hashed, ascii201)
    assert.ok(isHashedCacheKey(hashed))
    assert.equal(cacheKey('ns', ascii201), `ns:${hashed}`)
    assert.ok(isHashedCacheKey(normalizeCacheKey('é'.repeat(101))), '202 bytes')
    assert.equal(isHashedCacheKey(normalizeCacheKey('é'.repeat(100))), false, '200 bytes')
  })

  it('agrees with the full validation on every printable ASCII character', () => {
    for (let c = 0x20; c <= 0x7e; c++) {
      const key = `k${String.fromCharCode(c)}`
      assert.equal(normalizeCacheKey(key), key.normalize('NFC'))
    }
  })
})
