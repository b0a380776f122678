import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { create as createQr } from 'qrcode'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { MemoryKeyValueStore, type KeyValueStore } from '../stores/index.ts'
import { base32Decode, base32Encode, Totp, type TotpAlgorithm, type TotpOptions } from './totp.ts'

const PERIOD_MS = 30_000
/** A moment in the middle of a step, so ±1 step stays inside the same test. */
const T0 = 1_800_000_015_000
const SECRET = base32Encode(Buffer.from('12345678901234567890'))

type Op = 'get' | 'set' | 'delete' | 'increment'

/**
 * Wraps a store so every call yields to the event loop a varying number of times before
 * reaching it: concurrent verifications then interleave their store calls the way requests
 * on several instances do, instead of running one after the other.
 */
class InterleavingStore implements KeyValueStore {
  readonly calls: { op: Op; key: string }[] = []
  fail: ((op: Op, key: string) => Error | undefined) | undefined
  readonly #inner: KeyValueStore

  constructor(inner: KeyValueStore) {
    this.#inner = inner
  }

  async get(key: string): Promise<string | undefined> {
    await this.#before('get', key)
    return this.#inner.get(key)
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#before('set', key)
    return this.#inner.set(key, value, ttlMs)
  }

  async delete(key: string): Promise<boolean> {
    await this.#before('delete', key)
    return this.#inner.delete(key)
  }

  async increment(key: string, by: number, ttlMs?: number): Promise<number> {
    await this.#before('increment', key)
    return this.#inner.increment(key, by, ttlMs)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  async #before(op: Op, key: string): Promise<void> {
    this.calls.push({ op, key })
    for (let i = 0; i < (this.calls.length * 7) % 5; i++) await new Promise((resolve) => setImmediate(resolve))
    const error = this.fail?.(op, key)
    if (error !== undefined) throw error
  }
}

function setup(options: Partial<TotpOptions> = {}): { totp: Totp; store: InterleavingStore; clock: { now: number } } {
  const clock = { now: T0 }
  const store = new InterleavingStore(new MemoryKeyValueStore({ now: () => clock.now }))
  const totp = new Totp({ store, now: () => clock.now, issuer: 'Backbeat', ...options })
  return { totp, store, clock }
}

async function rejectsWith(promise: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_AUTH_MFA_CODE_INVALID')
    assert.equal(err.status, 401)
    assert.equal(err.params.reason, reason)
    return true
  })
}

describe('base32 (RFC 4648)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ]

  it('encodes and decodes the RFC 4648 §10 vectors without padding', () => {
    for (const [plain, encoded] of vectors) {
      assert.equal(base32Encode(Buffer.from(plain)), encoded)
      assert.equal(Buffer.from(base32Decode(encoded)).toString(), plain)
    }
  })

  it('round-trips random bytes of every length up to 64', () => {
    for (let n = 0; n <= 64; n++) {
      const bytes = new Uint8Array(Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff)))
      assert.deepEqual(base32Decode(base32Encode(bytes)), bytes)
    }
  })

  it('rejects lower case, padding, white space, foreign characters, impossible lengths and non-canonical endings', () => {
    for (const bad of ['my', 'MY======', 'MY ', 'M Y', 'MZXW1', 'MZXW8', 'MZXW6Ä', 'M', 'MZX', 'MZXW6Y', 'MZ', 'MZXR']) {
      assert.throws(() => base32Decode(bad), TypeError, bad)
    }
  })
})

describe('TOTP codes (RFC 6238 Appendix B)', () => {
  const seeds: Record<TotpAlgorithm, string> = {
    SHA1: '12345678901234567890',
    SHA256: '12345678901234567890123456789012',
    SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
  }
  const vectors: [number, Record<TotpAlgorithm, string>][] = [
    [59, { SHA1: '94287082', SHA256: '46119246', SHA512: '90693936' }],
    [1111111109, { SHA1: '07081804', SHA256: '68084774', SHA512: '25091201' }],
    [1111111111, { SHA1: '14050471', SHA256: '67062674', SHA512: '99943326' }],
    [1234567890, { SHA1: '89005924', SHA256: '91819424', SHA512: '93441116' }],
    [2000000000, { SHA1: '69279037', SHA256: '90698825', SHA512: '38618901' }],
    [20000000000, { SHA1: '65353130', SHA256: '77737706', SHA512: '47863826' }],
  ]

  for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
    it(`generates every ${algorithm} vector with 8 digits, from base32 and from raw key bytes`, () => {
      const totp = new Totp({ store: new MemoryKeyValueStore(), algorithm, digits: 8 })
      const raw = new Uint8Array(Buffer.from(seeds[algorithm]))
      for (const [timeS, expected] of vectors) {
        assert.equal(totp.generate(raw, timeS * 1000), expected[algorithm], `T=${String(timeS)}`)
        assert.equal(totp.generate(base32Encode(raw), timeS * 1000), expected[algorithm], `T=${String(timeS)} (base32)`)
      }
    })
  }

  it('gives the last six digits of the 8-digit code by default', () => {
    const totp = new Totp({ store: new MemoryKeyValueStore() })
    assert.equal(totp.generate(SECRET, 59_000), '287082')
    assert.equal(totp.generate(SECRET, 1_111_111_109_000), '081804')
  })

  it('refuses secrets shorter than 128 bits, negative times and non-numbers', () => {
    const totp = new Totp({ store: new MemoryKeyValueStore() })
    assert.throws(() => totp.generate(base32Encode(new Uint8Array(15)), T0), TypeError)
    assert.throws(() => totp.generate('not base32!', T0), TypeError)
    assert.throws(() => totp.generate(SECRET, -1), RangeError)
    assert.throws(() => totp.generate(SECRET, Number.NaN), RangeError)
  })
})

describe('TOTP enrolment', () => {
  it('generates 160-bit base32 secrets by default, longer on request, never the same twice', () => {
    const { totp } = setup()
    const secret = totp.generateSecret()
    assert.match(secret, /^[A-Z2-7]{32}$/)
    assert.equal(base32Decode(secret).byteLength, 20)
    assert.notEqual(totp.generateSecret(), secret)
    const long = setup({ secretBytes: 32 }).totp.generateSecret()
    assert.equal(base32Decode(long).byteLength, 32)
    assert.equal(long.length, 52)
  })

  it('writes the Key URI format with every parameter and a percent-encoded label', () => {
    const { totp } = setup()
    assert.equal(
      totp.uri({ secret: SECRET, account: 'ada lovelace+mfa@example.com', issuer: 'Backbeat Music & Co' }),
      'otpauth://totp/Backbeat%20Music%20%26%20Co:ada%20lovelace%2Bmfa%40example.com' +
        `?secret=${SECRET}&issuer=Backbeat%20Music%20%26%20Co&algorithm=SHA1&digits=6&period=30`,
    )
    const sha512 = setup({ algorithm: 'SHA512', digits: 8, periodS: 60 }).totp
    const url = new URL(sha512.uri({ secret: SECRET, account: 'zoë' }))
    assert.equal(url.protocol, 'otpauth:')
    assert.equal(decodeURIComponent(url.pathname), '/Backbeat:zoë')
    assert.deepEqual(Object.fromEntries(url.searchParams), { secret: SECRET, issuer: 'Backbeat', algorithm: 'SHA512', digits: '8', period: '60' })
  })

  it('refuses a colon in the issuer or account, a missing issuer, control characters and a bad secret', () => {
    const { totp } = setup()
    assert.throws(() => totp.uri({ secret: SECRET, account: 'ada', issuer: 'Back:beat' }), /colon/)
    assert.throws(() => totp.uri({ secret: SECRET, account: 'ada:admin' }), /colon/)
    assert.throws(() => totp.uri({ secret: SECRET, account: 'ada\nx' }), /control/)
    assert.throws(() => totp.uri({ secret: SECRET, account: '' }), TypeError)
    assert.throws(() => totp.uri({ secret: 'JBSWY3DP', account: 'ada' }), /16 to 128 bytes/)
    const noIssuer = new Totp({ store: new MemoryKeyValueStore() })
    assert.throws(() => noIssuer.uri({ secret: SECRET, account: 'ada' }), /issuer is required/)
  })

  it('draws the URI as an SVG QR code at error-correction level M', async () => {
    const { totp } = setup()
    const uri = totp.uri({ secret: SECRET, account: 'ada@example.com' })
    const svg = await totp.qrSvg(uri)
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    assert.match(svg, /<\/svg>\s*$/)
    const size = createQr(uri, { errorCorrectionLevel: 'M' }).modules.size + 8
    assert.match(svg, new RegExp(`viewBox="0 0 ${String(size)} ${String(size)}"`))
    await assert.rejects(totp.qrSvg('x'.repeat(5000)), /too big/)
  })

  it('enrols with a fresh secret whose URI and QR code match it', async () => {
    const { totp } = setup()
    const enrolment = await totp.enrol('ada@example.com')
    assert.equal(enrolment.uri, totp.uri({ secret: enrolment.secret, account: 'ada@example.com' }))
    assert.equal(enrolment.qrSvg, await totp.qrSvg(enrolment.uri))
    assert.notEqual((await totp.enrol('ada@example.com')).secret, enrolment.secret)
  })
})

describe('TOTP verification', () => {
  it('accepts the current code and reports its step, drift and time', async () => {
    const { totp, clock } = setup()
    const result = await totp.verify('user-1', SECRET, totp.generate(SECRET, clock.now))
    assert.deepEqual(result, { step: Math.floor(T0 / PERIOD_MS), drift: 0, verifiedAtMs: T0 })
  })

  it('accepts a code only once', async () => {
    const { totp, clock } = setup()
    const code = totp.generate(SECRET, clock.now)
    await totp.verify('user-1', SECRET, code)
    await rejectsWith(totp.verify('user-1', SECRET, code), 'replayed')
    clock.now += 20_000 // still inside the ±1 window of the same step
    await rejectsWith(totp.verify('user-1', SECRET, code), 'replayed')
  })

  it('lets exactly one of many concurrent verifications of the same code win', async () => {
    const { totp, clock } = setup()
    const code = totp.generate(SECRET, clock.now)
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => totp.verify('user-1', SECRET, code)))
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as BackbeatError).code, 'ERR_AUTH_MFA_CODE_INVALID')
    }
  })

  it('lets exactly one win across two instances sharing a store', async () => {
    const clock = { now: T0 }
    const store = new InterleavingStore(new MemoryKeyValueStore({ now: () => clock.now }))
    const a = new Totp({ store, now: () => clock.now })
    const b = new Totp({ store, now: () => clock.now + 2_000 })
    const code = a.generate(SECRET, clock.now)
    const results = await Promise.allSettled([a, b, a, b, a, b].map((t) => t.verify('user-1', SECRET, code)))
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  })

  it('refuses an earlier step once a later one was accepted (RFC 6238 §5.2)', async () => {
    const { totp, clock } = setup()
    const next = totp.generate(SECRET, clock.now + PERIOD_MS)
    const current = totp.generate(SECRET, clock.now)
    const previous = totp.generate(SECRET, clock.now - PERIOD_MS)
    assert.equal((await totp.verify('user-1', SECRET, next)).drift, 1)
    await rejectsWith(totp.verify('user-1', SECRET, current), 'replayed')
    await rejectsWith(totp.verify('user-1', SECRET, previous), 'replayed')
  })

  it('blocks the earlier steps for every later request once two concurrent acceptances resolve', async () => {
    const { totp, clock } = setup()
    const previous = totp.generate(SECRET, clock.now - PERIOD_MS)
    const current = totp.generate(SECRET, clock.now)
    const results = await Promise.allSettled([totp.verify('user-1', SECRET, current), totp.verify('user-1', SECRET, previous)])
    assert.equal(results[0].status, 'fulfilled')
    for (const code of [previous, current]) await rejectsWith(totp.verify('user-1', SECRET, code), 'replayed')
  })

  it('refuses every step up to the highest accepted one, even when a concurrent lower acceptance wrote the mark last', async () => {
    const { totp, clock } = setup()
    const next = totp.generate(SECRET, clock.now + PERIOD_MS)
    const current = totp.generate(SECRET, clock.now)
    const previous = totp.generate(SECRET, clock.now - PERIOD_MS)
    // Different users give different interleavings of the two acceptances' store calls.
    for (let i = 0; i < 12; i++) {
      const user = `user-${String(i)}`
      const results = await Promise.allSettled([totp.verify(user, SECRET, next), totp.verify(user, SECRET, previous)])
      assert.equal(results[0].status, 'fulfilled')
      for (const code of [previous, current, next]) await rejectsWith(totp.verify(user, SECRET, code), 'replayed')
    }
  })

  it('accepts the next code after the step has moved on', async () => {
    const { totp, clock } = setup()
    await totp.verify('user-1', SECRET, totp.generate(SECRET, clock.now))
    clock.now += PERIOD_MS
    const result = await totp.verify('user-1', SECRET, totp.generate(SECRET, clock.now))
    assert.equal(result.step, Math.floor(T0 / PERIOD_MS) + 1)
  })

  it('keeps each user apart: the same code is accepted once per user', async () => {
    const { totp, clock } = setup()
    const code = totp.generate(SECRET, clock.now)
    await totp.verify('user-1', SECRET, code)
    await totp.verify('user:1', SECRET, code)
    await totp.verify('user 1/ü', SECRET, code)
    await totp.verify('u'.repeat(256), SECRET, code)
    await totp.verify(`${'u'.repeat(255)}v`, SECRET, code)
    await rejectsWith(totp.verify('u'.repeat(256), SECRET, code), 'replayed')
    await rejectsWith(totp.verify('user:1', SECRET, code), 'replayed')
  })

  it('keeps store keys short and free of spaces and colons whatever the user ID', async () => {
    const { totp, store, clock } = setup()
    const code = totp.generate(SECRET, clock.now)
    for (const user of ['ada lovelace:admin\n', 'ü'.repeat(200)]) await totp.verify(user, SECRET, code)
    for (const { key } of store.calls) {
      assert.ok(key.length <= 100, key)
      assert.match(key, /^totp:(used|last):[^\s:]+(:\d+)?$/)
    }
  })

  it('refuses a replay on an instance whose clock lags minutes behind, after the step keys expired', async () => {
    const clock = { now: T0 }
    const store = new MemoryKeyValueStore({ now: () => clock.now })
    const fast = new Totp({ store, now: () => clock.now })
    const lagging = new Totp({ store, now: () => clock.now - 5 * 60_000 })
    const code = fast.generate(SECRET, clock.now)
    await fast.verify('user-1', SECRET, code)
    clock.now += 5 * 60_000 // the lagging instance now sees the step the code belongs to
    await rejectsWith(lagging.verify('user-1', SECRET, code), 'replayed')
  })

  describe('window', () => {
    for (const window of [0, 1, 2]) {
      it(`with window ${String(window)} accepts steps -${String(window)}..+${String(window)} and refuses the next ones out`, async () => {
        const { totp, clock } = setup({ window })
        for (let offset = -window - 1; offset <= window + 1; offset++) {
          const code = totp.generate(SECRET, clock.now + offset * PERIOD_MS)
          const user = `user${String(offset)}`
          if (Math.abs(offset) <= window) assert.equal((await totp.verify(user, SECRET, code)).drift, offset)
          else await rejectsWith(totp.verify(user, SECRET, code), 'mismatch')
        }
      })
    }

    it('moves with the step boundary, to the millisecond', async () => {
      const { totp, clock } = setup({ window: 0 })
      const stepStart = Math.floor(T0 / PERIOD_MS) * PERIOD_MS
      const code = totp.generate(SECRET, stepStart)
      clock.now = stepStart - 1
      await rejectsWith(totp.verify('user-1', SECRET, code), 'mismatch')
      clock.now = stepStart + PERIOD_MS
      await rejectsWith(totp.verify('user-1', SECRET, code), 'mismatch')
      clock.now = stepStart + PERIOD_MS - 1
      await totp.verify('user-1', SECRET, code)
    })

    it('verifies 8-digit SHA256 codes with a 60 s period', async () => {
      const { totp, clock } = setup({ algorithm: 'SHA256', digits: 8, periodS: 60 })
      const code = totp.generate(SECRET, clock.now - 60_000)
      assert.match(code, /^[0-9]{8}$/)
      assert.equal((await totp.verify('user-1', SECRET, code)).drift, -1)
    })
  })

  it('refuses malformed codes before touching the store', async () => {
    const { totp, store, clock } = setup()
    const good = totp.generate(SECRET, clock.now)
    const malformed = ['', '12345', '1234567', `${good} `, ` ${good}`, `${good.slice(0, 3)} ${good.slice(3)}`, '12345a', '+12345', '-12345', '1e5000', '１２３４５６', '١٢٣٤٥٦', '123456\n']
    for (const code of malformed) await rejectsWith(totp.verify('user-1', SECRET, code), 'malformed')
    await rejectsWith(totp.verify('user-1', SECRET, 123456 as unknown as string), 'malformed')
    await rejectsWith(totp.verify('user-1', SECRET, undefined as unknown as string), 'malformed')
    assert.equal(store.calls.length, 0)
  })

  it('refuses a wrong code without touching the store', async () => {
    const { totp, store, clock } = setup()
    const good = totp.generate(SECRET, clock.now)
    const wrong = String((Number(good) + 1) % 1_000_000).padStart(6, '0')
    await rejectsWith(totp.verify('user-1', SECRET, wrong), 'mismatch')
    assert.equal(store.calls.length, 0)
  })

  it('refuses a bad user ID or secret as a programming error', async () => {
    const { totp, clock } = setup()
    const code = totp.generate(SECRET, clock.now)
    await assert.rejects(totp.verify('', SECRET, code), TypeError)
    await assert.rejects(totp.verify('u'.repeat(257), SECRET, code), TypeError)
    await assert.rejects(totp.verify('user-1', 'jbswy3dp', code), TypeError)
  })

  describe('when the store fails', () => {
    const outage = (): Error => new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE')

    for (const op of ['get', 'increment', 'set'] as const) {
      it(`propagates a failing ${op} and does not accept the code`, async () => {
        const { totp, store, clock } = setup()
        const error = outage()
        store.fail = (o) => (o === op ? error : undefined)
        const code = totp.generate(SECRET, clock.now)
        await assert.rejects(totp.verify('user-1', SECRET, code), (err) => err === error)
      })
    }

    it('propagates a failure while blocking the earlier steps, and the code stays spent', async () => {
      const { totp, store, clock } = setup()
      const error = outage()
      const current = Math.floor(T0 / PERIOD_MS)
      store.fail = (op, key) => (op === 'increment' && key.endsWith(`:${String(current - 1)}`) ? error : undefined)
      const code = totp.generate(SECRET, clock.now)
      await assert.rejects(totp.verify('user-1', SECRET, code), (err) => err === error)
      store.fail = undefined
      await rejectsWith(totp.verify('user-1', SECRET, code), 'replayed')
    })

    it('fails closed on a corrupted last-step mark', async () => {
      const { totp, store, clock } = setup()
      await store.set('totp:last:user-1', 'garbage')
      await assert.rejects(totp.verify('user-1', SECRET, totp.generate(SECRET, clock.now)), (err: unknown) => {
        assert.ok(err instanceof BackbeatError)
        assert.equal(err.code, 'ERR_STORE_COMMAND_FAILED')
        return true
      })
    })
  })

  it('keeps its keys under the configured prefix with bounded TTLs', async () => {
    const ttls: [string, number | undefined][] = []
    const inner = new MemoryKeyValueStore()
    const store: KeyValueStore = {
      get: (k) => inner.get(k),
      delete: (k) => inner.delete(k),
      close: () => inner.close(),
      set: (k, v, ttl) => (ttls.push([k, ttl]), inner.set(k, v, ttl)),
      increment: (k, by, ttl) => (ttls.push([k, ttl]), inner.increment(k, by, ttl)),
    }
    const totp = new Totp({ store, now: () => T0, keyPrefix: 'mfa:' })
    await totp.verify('user-1', SECRET, totp.generate(SECRET, T0))
    assert.ok(ttls.length >= 2)
    for (const [key, ttl] of ttls) {
      assert.match(key, /^mfa:(used|last):user-1(:\d+)?$/)
      assert.ok(ttl !== undefined && ttl > 0 && ttl <= 24 * 3_600_000, `${key} ttl ${String(ttl)}`)
    }
  })
})

describe('TOTP options', () => {
  it('lists every invalid option by path', () => {
    assert.throws(
      () => new Totp({ store: new MemoryKeyValueStore(), window: 3, digits: 7 as 6, periodS: 0, secretBytes: 16, issuer: 'a:b', algorithm: 'MD5' as 'SHA1' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        const paths = err.issues.map((i) => i.path).sort()
        assert.deepEqual(paths, ['auth.totp.algorithm', 'auth.totp.digits', 'auth.totp.issuer', 'auth.totp.periodS', 'auth.totp.secretBytes', 'auth.totp.window'])
        return true
      },
    )
  })

  it('exposes the defaults it verifies with', () => {
    const totp = new Totp({ store: new MemoryKeyValueStore() })
    assert.deepEqual([totp.algorithm, totp.digits, totp.periodS, totp.window], ['SHA1', 6, 30, 1])
  })
})
