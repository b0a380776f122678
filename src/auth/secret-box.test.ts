import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { SecretBox } from './secret-box.ts'

const KEY_1 = randomBytes(32).toString('base64url')
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

/** Flips one base64url character of segment `index` of a sealed value. */
function flip(sealed: string, index: number): string {
  const parts = sealed.split('.')
  const segment = parts[index] as string
  const position = Math.floor(segment.length / 2)
  const replacement = segment[position] === 'A' ? 'B' : 'A'
  parts[index] = segment.slice(0, position) + replacement + segment.slice(position + 1)
  return parts.join('.')
}

describe('SecretBox', () => {
  const box = new SecretBox({ keys: { 1: KEY_1, 2: KEY_2 }, current: 2 })

  it('seals to v<current>.<iv>.<ciphertext> and opens it again', () => {
    const sealed = box.seal('refresh-token-value', 'user-7/spotify')
    assert.match(sealed, /^v2\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
    assert.ok(!sealed.includes('refresh-token-value'))
    assert.equal(box.open(sealed, 'user-7/spotify'), 'refresh-token-value')
    assert.deepEqual(box.versions, [1, 2])
  })

  it('uses a fresh IV for every seal, so equal plaintexts never give equal ciphertexts', () => {
    const seen = new Set(Array.from({ length: 50 }, () => box.seal('same', 'aad')))
    assert.equal(seen.size, 50)
    assert.equal(new Set([...seen].map((s) => s.split('.')[1])).size, 50)
  })

  it('refuses to open with other associated data: a ciphertext moved to another row fails', () => {
    const sealed = box.seal('token', 'user-7/spotify')
    assert.equal(code(() => box.open(sealed, 'user-8/spotify')), 'ERR_INTERNAL')
    assert.equal(code(() => box.open(sealed)), 'ERR_INTERNAL')
    assert.equal(code(() => box.open(box.seal('token'), 'user-7/spotify')), 'ERR_INTERNAL')
  })

  it('detects tampering with the IV, the ciphertext, the tag or the version', () => {
    const sealed = box.seal('a longer plaintext so the ciphertext has a middle', 'aad')
    assert.equal(code(() => box.open(flip(sealed, 1), 'aad')), 'ERR_INTERNAL')
    assert.equal(code(() => box.open(flip(sealed, 2), 'aad')), 'ERR_INTERNAL')
    const tagFlipped = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.slice(-1)
    assert.equal(code(() => box.open(tagFlipped, 'aad')), 'ERR_INTERNAL')
    // Same body presented as sealed by the other configured key: authentication fails.
    assert.equal(code(() => box.open(sealed.replace(/^v2\./, 'v1.'), 'aad')), 'ERR_INTERNAL')
  })

  it('fails with ERR_AUTH_VAULT_KEY_UNKNOWN, naming the version, when the key version is not configured', () => {
    const newer = new SecretBox({ keys: { 7: randomBytes(32) }, current: 7 })
    try {
      box.open(newer.seal('x'))
      assert.fail('expected an error')
    } catch (err) {
      assert.ok(err instanceof BackbeatError)
      assert.equal(err.code, 'ERR_AUTH_VAULT_KEY_UNKNOWN')
      assert.equal(err.params.version, 7)
    }
  })

  it('refuses malformed sealed values without decrypting', () => {
    for (const bad of ['', 'v2', 'v2..', 'v2.AAAA.BBBB', 'v0.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'x2.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', `v2.AAAAAAAAAAAAAAAA.${'A'.repeat(2_000_000)}`, 'v2.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA\n']) {
      assert.equal(code(() => box.open(bad)), 'ERR_INTERNAL', JSON.stringify(bad.slice(0, 40)))
    }
  })

  it('tells which values need rotation and re-seals them with the current key', () => {
    const old = new SecretBox({ keys: { 1: KEY_1 }, current: 1 })
    const sealed = old.seal('token', 'aad')
    assert.equal(box.versionOf(sealed), 1)
    assert.equal(box.needsRotation(sealed), true)
    const resealed = box.reseal(sealed, 'aad')
    assert.equal(box.versionOf(resealed), 2)
    assert.equal(box.needsRotation(resealed), false)
    assert.equal(box.open(resealed, 'aad'), 'token')
    // The old key alone can no longer open the rotated value.
    assert.equal(code(() => old.open(resealed, 'aad')), 'ERR_AUTH_VAULT_KEY_UNKNOWN')
  })

  it('accepts the same key in base64, padded base64 and base64url, and as bytes', () => {
    const bytes = randomBytes(32)
    const forms = [bytes.toString('base64'), bytes.toString('base64').replace(/=$/, ''), bytes.toString('base64url'), bytes]
    const sealed = new SecretBox({ keys: { 1: bytes }, current: 1 }).seal('x')
    for (const key of forms) assert.equal(new SecretBox({ keys: { 1: key }, current: 1 }).open(sealed), 'x')
  })

  it('seals binary plaintexts and opens them as bytes', () => {
    const data = randomBytes(100)
    assert.deepEqual(box.openBytes(box.seal(data, new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 3])), data)
  })

  it('validates every key at construction and lists every problem by path', () => {
    const zeros = Buffer.alloc(32).toString('base64url')
    try {
      new SecretBox({ keys: { 0: KEY_1, 1: 'too-short', 2: randomBytes(16), 3: zeros, 4: KEY_2, 5: KEY_2, x: KEY_1 }, current: 9 })
      assert.fail('expected a ConfigError')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      const byPath = new Map(err.issues.map((i) => [i.path, i.message]))
      assert.match(byPath.get('secretBox.keys.0') ?? '', /key versions must be integers from 1/)
      assert.match(byPath.get('secretBox.keys.1') ?? '', /32 bytes/)
      assert.match(byPath.get('secretBox.keys.2') ?? '', /32 bytes, got 16/)
      assert.match(byPath.get('secretBox.keys.3') ?? '', /all zeros/)
      assert.match(byPath.get('secretBox.keys.5') ?? '', /repeats the key/)
      assert.match(byPath.get('secretBox.keys.x') ?? '', /key versions must be integers from 1/)
      assert.match(byPath.get('secretBox.current') ?? '', /not among the keys/)
      assert.equal(byPath.has('secretBox.keys.4'), false)
    }
    assert.throws(() => new SecretBox({ keys: {}, current: 1 }), ConfigError)
    // The last character of 43 base64url characters carries 2 unused bits: they must be zero.
    const nonCanonical = `${KEY_1.slice(0, 42)}${KEY_1.endsWith('B') ? 'C' : 'B'}`
    assert.throws(() => new SecretBox({ keys: { 1: nonCanonical }, current: 1 }), ConfigError)
  })

  it('generates keys it accepts', () => {
    const key = SecretBox.generateKey()
    assert.match(key, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(new SecretBox({ keys: { 1: key }, current: 1 }).open(new SecretBox({ keys: { 1: key }, current: 1 }).seal('ok')), 'ok')
  })
})
