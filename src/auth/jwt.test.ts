import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { readFileSync } from 'node:fs'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import { conformancePath } from '../../test/helpers/conformance.ts'
import { BackbeatError } from '../core/index.ts'
import { JwtKeySet, JwtVerifier, type JwsAlgorithm } from './index.ts'
import type { JwtKeySource } from './jwt-verifier.ts'

const ISSUER = 'https://api.backbeat.test'
const AUDIENCE = 'music-api'
const SECRET = 'a-test-secret-of-at-least-32-bytes-long!'
const NOW_S = 1_800_000_000

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

function codeOf(err: unknown): string {
  assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
  assert.equal(err.status, 401)
  return err.code
}

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(codeOf(err), code)
    return true
  })
}

describe('JWT verification', () => {
  let keys: JwtKeySet
  let verifier: JwtVerifier
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey }
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey }
  let ed: { privateKey: CryptoKey; publicKey: CryptoKey }
  let now = NOW_S * 1000

  const sign = (key: CryptoKey | Uint8Array, alg: string, kid: string | undefined, claims: JWTPayload = {}): Promise<string> => {
    const jwt = new SignJWT({ sub: 'user-1', ...claims }).setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
    if (!('iat' in claims)) jwt.setIssuedAt(NOW_S - 10)
    if (!('exp' in claims)) jwt.setExpirationTime(NOW_S + 600)
    if (!('iss' in claims)) jwt.setIssuer(ISSUER)
    if (!('aud' in claims)) jwt.setAudience(AUDIENCE)
    return jwt.sign(key)
  }
  const secretBytes = new TextEncoder().encode(SECRET)

  before(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true })
    ec = await generateKeyPair('ES256', { extractable: true })
    ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
    keys = new JwtKeySet()
    await keys.addSecret('hs-1', 'HS256', SECRET)
    await keys.addPem('rsa-1', 'RS256', await exportSPKI(rsa.publicKey))
    await keys.addJwk({ ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' })
    await keys.addJwk({ ...(await exportJWK(ed.publicKey)), kid: 'ed-1' }, 'EdDSA')
    verifier = new JwtVerifier({ keys, issuer: ISSUER, audience: AUDIENCE, now: () => now })
  })

  it('verifies HS256, RS256, ES256 and EdDSA tokens with the key their kid names', async () => {
    for (const [key, alg, kid] of [
      [secretBytes, 'HS256', 'hs-1'],
      [rsa.privateKey, 'RS256', 'rsa-1'],
      [ec.privateKey, 'ES256', 'ec-1'],
      [ed.privateKey, 'EdDSA', 'ed-1'],
    ] as const) {
      const result = await verifier.verify(await sign(key, alg, kid))
      assert.equal(result.payload.sub, 'user-1')
      assert.deepEqual([result.kid, result.alg, result.cached], [kid, alg, false])
    }
  })

  it('answers a repeated token from the cache, until it expires', async () => {
    const token = await sign(rsa.privateKey, 'RS256', 'rsa-1', { exp: NOW_S + 60 })
    assert.equal((await verifier.verify(token)).cached, false)
    assert.equal((await verifier.verify(token)).cached, true)
    now = (NOW_S + 100) * 1000
    try {
      await rejects(verifier.verify(token), 'ERR_AUTH_TOKEN_EXPIRED')
    } finally {
      now = NOW_S * 1000
    }
  })

  it('forgets cached tokens on demand (revocation) and drops tokens of a removed key', async () => {
    const token = await sign(ec.privateKey, 'ES256', 'ec-1', { jti: 'revoke-me' })
    await verifier.verify(token)
    assert.equal((await verifier.verify(token)).cached, true)
    assert.equal(verifier.forget((p) => p.jti === 'revoke-me'), 1)
    assert.equal((await verifier.verify(token)).cached, false)

    const rotating = new JwtKeySet()
    await rotating.addSecret('old', 'HS256', SECRET)
    await rotating.addSecret('new', 'HS256', `${SECRET}-next`)
    const v = new JwtVerifier({ keys: rotating, issuer: ISSUER, audience: AUDIENCE, now: () => now })
    const old = await sign(secretBytes, 'HS256', 'old')
    assert.equal((await v.verify(old)).kid, 'old')
    assert.equal((await v.verify(old)).cached, true)
    rotating.remove('old')
    await rejects(v.verify(old), 'ERR_AUTH_KEY_UNKNOWN')
    // A kid given new key material: tokens of the old material fail, even while cached.
    await rotating.addSecret('old', 'HS256', SECRET)
    assert.equal((await v.verify(old)).cached, false)
    assert.equal((await v.verify(old)).cached, true)
    await rotating.addSecret('old', 'HS256', `${SECRET}-rotated`)
    await rejects(v.verify(old), 'ERR_AUTH_TOKEN_INVALID')
    assert.equal((await v.verify(await sign(new TextEncoder().encode(`${SECRET}-next`), 'HS256', 'new'))).kid, 'new')
  })

  describe('attacks, each refused with 401 and a stable code', () => {
    it('alg none, with or without a signature', async () => {
      const header = b64({ alg: 'none', kid: 'hs-1' })
      const body = b64({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, iat: NOW_S, exp: NOW_S + 600 })
      await rejects(verifier.verify(`${header}.${body}.`), 'ERR_AUTH_TOKEN_INVALID')
      await rejects(verifier.verify(`${header}.${body}.${b64('x')}`), 'ERR_AUTH_TOKEN_INVALID')
      await rejects(verifier.verify(`${b64({ alg: 'NONE', kid: 'hs-1' })}.${body}.`), 'ERR_AUTH_TOKEN_INVALID')
    })

    it('HS256 signed with the RSA public key (key confusion)', async () => {
      const publicPem = new TextEncoder().encode(await exportSPKI(rsa.publicKey))
      await rejects(verifier.verify(await sign(publicPem, 'HS256', 'rsa-1')), 'ERR_AUTH_TOKEN_INVALID')
      const publicJwk = new TextEncoder().encode(JSON.stringify(await exportJWK(rsa.publicKey)))
      await rejects(verifier.verify(await sign(publicJwk, 'HS256', 'rsa-1')), 'ERR_AUTH_TOKEN_INVALID')
    })

    it('a kid with path traversal, SQL, or absurd length', async () => {
      for (const kid of ['../../../../etc/passwd', "hs-1' OR '1'='1", '/dev/null', 'hs-1\u0000', 'x'.repeat(5000)]) {
        await rejects(verifier.verify(await sign(secretBytes, 'HS256', kid)), 'ERR_AUTH_KEY_UNKNOWN')
      }
      // Without kid, a set of several keys has no key to pick.
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', undefined)), 'ERR_AUTH_KEY_UNKNOWN')
    })

    it('a tampered payload or signature', async () => {
      const [header, , signature] = (await sign(rsa.privateKey, 'RS256', 'rsa-1')).split('.')
      const forged = b64({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, iat: NOW_S, exp: NOW_S + 600 })
      await rejects(verifier.verify(`${header ?? ''}.${forged}.${signature ?? ''}`), 'ERR_AUTH_TOKEN_INVALID')
      const good = await sign(ec.privateKey, 'ES256', 'ec-1')
      // One character inside the signature (not the last, whose low bits must stay zero to be canonical base64url).
      const at = good.length - 10
      const flipped = `${good.slice(0, at)}${good[at] === 'A' ? 'B' : 'A'}${good.slice(at + 1)}`
      await rejects(verifier.verify(flipped), 'ERR_AUTH_TOKEN_INVALID')
    })

    it('expired, not yet valid, issued in the future, wrong audience or issuer, missing exp', async () => {
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { exp: NOW_S - 31 })), 'ERR_AUTH_TOKEN_EXPIRED')
      assert.equal((await verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { exp: NOW_S - 5 }))).payload.sub, 'user-1', 'within the 30 s skew')
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { nbf: NOW_S + 120 })), 'ERR_AUTH_TOKEN_NOT_YET_VALID')
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { iat: NOW_S + 3600 })), 'ERR_AUTH_TOKEN_NOT_YET_VALID')
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { aud: 'another-api' })), 'ERR_AUTH_TOKEN_CLAIM_INVALID')
      await rejects(verifier.verify(await sign(secretBytes, 'HS256', 'hs-1', { iss: 'https://evil.example' })), 'ERR_AUTH_TOKEN_CLAIM_INVALID')
      const noExp = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'HS256', kid: 'hs-1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(NOW_S).sign(secretBytes)
      await rejects(verifier.verify(noExp), 'ERR_AUTH_TOKEN_CLAIM_INVALID')
    })

    it('garbage, oversized tokens and JSON serialisation', async () => {
      for (const garbage of ['', 'abc', 'a.b.c', '....', `${b64('{')}.${b64('{}')}.x`, `${b64({ kid: 'hs-1' })}.${b64({})}.x`, '{"payload":"e30","signatures":[]}']) {
        await rejects(verifier.verify(garbage), garbage.startsWith(b64({ kid: 'hs-1' })) ? 'ERR_AUTH_TOKEN_MALFORMED' : 'ERR_AUTH_TOKEN_MALFORMED')
      }
      await rejects(verifier.verify(`${b64({ alg: 'HS256', kid: 'hs-1' })}.${'A'.repeat(10_000)}.x`), 'ERR_AUTH_TOKEN_MALFORMED')
    })
  })

  it('refuses at start-up keys that cannot be pinned safely', async () => {
    await assert.rejects(new JwtKeySet().addSecret('short', 'HS256', 'too-short'), { code: 'ERR_CONFIG_INVALID' })
    const set = new JwtKeySet()
    await assert.rejects(set.addJwk({ ...(await exportJWK(rsa.publicKey)), kid: 'no-alg' }), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(set.addJwk({ ...(await exportJWK(rsa.publicKey)), kid: 'clash', alg: 'RS256' }, 'PS256'), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(set.addJwk({ ...(await exportJWK(rsa.privateKey)), kid: 'private', alg: 'RS256' }), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(set.addJwk({ ...(await exportJWK(rsa.publicKey)), kid: 'enc', alg: 'RS256', use: 'enc' }), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(set.addJwk({ ...(await exportJWK(ec.publicKey)), kid: 'wrong-curve' }, 'RS256'), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('JWT verification with a key source', () => {
  const secret = new TextEncoder().encode(SECRET)
  const token = (kid: string, alg = 'HS256'): Promise<string> =>
    new SignJWT({ sub: 'user-1' }).setProtectedHeader({ alg, kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(NOW_S - 10).setExpirationTime(NOW_S + 600).sign(secret)

  /** A source that records what the verifier tells it and adds `kid` when asked, if `fill` says so. */
  function source(keys: JwtKeySet, fill: (kid: unknown) => Promise<boolean>): JwtKeySource & { touches: number; asked: unknown[][] } {
    return {
      keys,
      touches: 0,
      asked: [],
      touch() {
        this.touches++
      },
      onUnknownKey(kid, alg) {
        this.asked.push([kid, alg])
        return fill(kid)
      },
    }
  }

  it('asks the source once for an unknown kid and looks again when it says so; a known kid never asks', async () => {
    const keys = new JwtKeySet()
    await keys.addSecret('known', 'HS256', SECRET)
    const src = source(keys, async (kid) => {
      if (kid !== 'fetched') return false
      await keys.addSecret('fetched', 'HS256', SECRET)
      return true
    })
    const verifier = new JwtVerifier({ keys, keySource: src, issuer: ISSUER, audience: AUDIENCE, now: () => NOW_S * 1000 })
    const known = await token('known')
    assert.equal((await verifier.verify(known)).kid, 'known')
    assert.equal((await verifier.verify(known)).cached, true)
    assert.equal(verifier.cached(known)?.cached, true)
    assert.deepEqual(src.asked, [])
    assert.equal(src.touches, 3, 'told of every verification, cached or not')

    assert.equal((await verifier.verify(await token('fetched'))).kid, 'fetched')
    await rejects(verifier.verify(await token('ghost')), 'ERR_AUTH_KEY_UNKNOWN')
    await rejects(verifier.verifySignature(await token('ghost-2')), 'ERR_AUTH_KEY_UNKNOWN')
    assert.deepEqual(src.asked, [['fetched', 'HS256'], ['ghost', 'HS256'], ['ghost-2', 'HS256']])
  })

  it('answers ERR_AUTH_KEY_UNKNOWN, not a 500, when the source fails, and refuses a source over another set', async () => {
    const keys = new JwtKeySet()
    const failing = source(keys, () => Promise.reject(new Error('boom')))
    const verifier = new JwtVerifier({ keys, keySource: failing, issuer: ISSUER, audience: AUDIENCE, now: () => NOW_S * 1000 })
    await rejects(verifier.verify(await token('ghost')), 'ERR_AUTH_KEY_UNKNOWN')
    assert.throws(() => new JwtVerifier({ keys: new JwtKeySet(), keySource: failing, issuer: ISSUER, audience: AUDIENCE }), { code: 'ERR_CONFIG_INVALID' })
  })
})

interface WycheproofTest {
  tcId: number
  comment: string
  jws: string
  result: 'valid' | 'invalid' | 'acceptable'
  flags: string[]
}
interface WycheproofGroup {
  comment: string
  public?: JWK
  private?: JWK
  tests: WycheproofTest[]
}

/**
 * Project Wycheproof's JWS vectors, read in place from the shared conformance data. Each
 * group's key goes into a key set (the public half; a symmetric key as is); a key that cannot
 * be pinned (no usable algorithm) is refused at start-up, which makes every token of its
 * group fail, as it should. The `base64` and `rfc7520` groups are informational (lenient or
 * strict base64, an `ES521` JWK): they run, and their disagreements are reported, not failed.
 */
describe('Wycheproof JWS test vectors', () => {
  it('matches every expected result', async (t) => {
    const file = conformancePath('wycheproof', 'json_web_signature_test.json')
    const data = JSON.parse(readFileSync(file, 'utf8')) as { numberOfTests: number; testGroups: WycheproofGroup[] }
    let checked = 0
    const failures: string[] = []
    const notes: string[] = []
    for (const group of data.testGroups) {
      const informational = group.comment.startsWith('base64') || group.comment.startsWith('rfc7520')
      const jwk = group.public ?? group.private
      assert.ok(jwk !== undefined)
      const keys = new JwtKeySet()
      let usable = true
      try {
        await keys.addJwk(jwk, jwk.alg as JwsAlgorithm | undefined)
      } catch {
        usable = false
      }
      const verifier = new JwtVerifier({ keys, issuer: 'unused', audience: 'unused', cacheSize: 0 })
      for (const test of group.tests) {
        let accepted: boolean
        try {
          if (!usable) throw new Error('key refused')
          await verifier.verifySignature(test.jws)
          accepted = true
        } catch (err) {
          if (usable) assert.match((err as BackbeatError).code, /^ERR_AUTH_/, `tc ${String(test.tcId)}: ${String(err)}`)
          accepted = false
        }
        const mismatch =
          test.result === 'valid' && !accepted ? `tc ${String(test.tcId)} (${group.comment}: ${test.comment}) should verify` : test.result === 'invalid' && accepted ? `tc ${String(test.tcId)} (${group.comment}: ${test.comment}) should be refused` : undefined
        if (mismatch !== undefined) (informational ? notes : failures).push(mismatch)
        checked++
      }
    }
    assert.deepEqual(failures, [])
    assert.equal(checked, data.numberOfTests)
    // Informational cases (lenient or strict base64, RFC 7520 figures whose JWK we cannot
    // pin): reported, not failed, as the data's README says.
    t.diagnostic(`informational cases where we differ: ${notes.join('; ')}`)
  })
})
