import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { ConfigError } from '../core/index.ts'
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  matchRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_ALPHABET,
  redeemRecoveryCode,
} from './recovery-codes.ts'

const PEPPER = 'a-server-side-pepper-of-at-least-32-bytes'

describe('recovery codes', () => {
  it('generates ten distinct codes of two groups of five unambiguous symbols, with their SHA-256 hashes', () => {
    const { codes, hashes } = generateRecoveryCodes()
    assert.equal(codes.length, 10)
    assert.equal(new Set(codes).size, 10)
    for (const [i, code] of codes.entries()) {
      assert.match(code, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/)
      assert.equal(hashes[i], createHash('sha256').update(code.replace('-', '')).digest('hex'))
    }
  })

  it('carries at least 50 bits per code: 32 symbols, each used over many codes', () => {
    assert.equal(new Set(RECOVERY_CODE_ALPHABET).size, 32)
    assert.doesNotMatch(RECOVERY_CODE_ALPHABET, /[ilou]/)
    const seen = new Set(generateRecoveryCodes(100, { groups: 4 }).codes.join('').replaceAll('-', ''))
    assert.equal(seen.size, 32)
    assert.equal(Math.log2(RECOVERY_CODE_ALPHABET.length) * 10, 50)
  })

  it('makes longer codes on request and any count from 1 to 100', () => {
    assert.match(generateRecoveryCodes(1, { groups: 3 }).codes[0] ?? '', /^\w{5}-\w{5}-\w{5}$/)
    assert.match(generateRecoveryCodes(1, { groups: 4 }).codes[0] ?? '', /^\w{5}-\w{5}-\w{5}-\w{5}$/)
    assert.equal(generateRecoveryCodes(100).codes.length, 100)
  })

  it('refuses a bad count or group size, listing both', () => {
    assert.throws(
      () => generateRecoveryCodes(0, { groups: 5 as 2 }),
      (err: unknown) => err instanceof ConfigError && err.issues.map((i) => i.path).join() === 'count,groups',
    )
    for (const count of [101, 1.5, Number.NaN]) assert.throws(() => generateRecoveryCodes(count), ConfigError)
  })

  it('normalises case, dashes, spaces and look-alike letters', () => {
    assert.equal(normaliseRecoveryCode(' 7KQ2M - X9F4T '), '7kq2mx9f4t')
    assert.equal(normaliseRecoveryCode('7kq2m\tx9f4t\n'), '7kq2mx9f4t')
    assert.equal(normaliseRecoveryCode('7kq2m–x9f4t'), '7kq2mx9f4t')
    assert.equal(normaliseRecoveryCode('OoIiLl'), '001111')
  })

  it('matches a code however it is typed, and returns its index', () => {
    const { codes, hashes } = generateRecoveryCodes()
    for (const [i, code] of codes.entries()) {
      assert.equal(matchRecoveryCode(hashes, code), i)
      assert.equal(matchRecoveryCode(hashes, ` ${code.toUpperCase().replace('-', ' ')} `), i)
      assert.equal(matchRecoveryCode(hashes, code.replace('-', '').replaceAll('0', 'O').replaceAll('1', 'l')), i)
    }
  })

  it('answers -1 for a wrong, truncated, extended or malformed code, and for an empty list', () => {
    const { codes, hashes } = generateRecoveryCodes()
    const code = codes[0] ?? ''
    const last = code.at(-1) === 'a' ? 'b' : 'a'
    for (const input of [`${code.slice(0, -1)}${last}`, code.slice(0, -1), `${code}a`, '', 'uuuuu-uuuuu', '!!!!!-!!!!!', code.replace('-', '_')]) {
      assert.equal(matchRecoveryCode(hashes, input), -1, input)
    }
    assert.equal(matchRecoveryCode([], code), -1)
    assert.equal(matchRecoveryCode(hashes, undefined as unknown as string), -1)
  })

  it('throws on a corrupted stored hash instead of silently matching nothing', () => {
    const { codes, hashes } = generateRecoveryCodes(2)
    const corrupted = [hashes[0] ?? '', 'not-a-hash']
    assert.throws(() => matchRecoveryCode(corrupted, codes[0] ?? ''), /#1 is not a hex SHA-256/)
    assert.throws(() => matchRecoveryCode([(hashes[0] ?? '').toUpperCase()], 'x'), TypeError)
  })

  it('hashes with HMAC-SHA-256 under a pepper, which must match on verification', () => {
    const { codes, hashes } = generateRecoveryCodes(3, { pepper: PEPPER })
    const code = codes[1] ?? ''
    assert.equal(hashes[1], createHmac('sha256', PEPPER).update(code.replace('-', '')).digest('hex'))
    assert.equal(hashRecoveryCode(code.toUpperCase(), { pepper: PEPPER }), hashes[1])
    assert.equal(matchRecoveryCode(hashes, code, { pepper: PEPPER }), 1)
    assert.equal(matchRecoveryCode(hashes, code), -1)
    assert.equal(matchRecoveryCode(hashes, code, { pepper: `${PEPPER}!` }), -1)
  })

  it('refuses a pepper shorter than 32 bytes', () => {
    assert.throws(() => generateRecoveryCodes(1, { pepper: 'short' }), ConfigError)
    assert.throws(() => matchRecoveryCode([], 'x', { pepper: new Uint8Array(31) }), ConfigError)
  })

  it('redeems a code into the remaining list, so it cannot match again', () => {
    const { codes, hashes } = generateRecoveryCodes(3)
    const used = redeemRecoveryCode(hashes, codes[1] ?? '')
    assert.deepEqual(used, { index: 1, hash: hashes[1], remaining: [hashes[0], hashes[2]] })
    assert.equal(redeemRecoveryCode(used.remaining, codes[1] ?? ''), undefined)
    assert.equal(matchRecoveryCode(used.remaining, codes[2] ?? ''), 1)
    assert.equal(redeemRecoveryCode(hashes, 'wrong-code'), undefined)
    assert.equal(hashes.length, 3, 'the list given is left as it was')
  })

  it('matches the first of duplicated hashes', () => {
    const { codes, hashes } = generateRecoveryCodes(1)
    const hash = hashes[0] ?? ''
    assert.equal(matchRecoveryCode([hash, hash], codes[0] ?? ''), 0)
  })
})
