import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { toString as qrToString } from 'qrcode'
import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { KeyValueStore } from '../stores/index.ts'

/** HMAC hashes RFC 6238 allows; authenticator apps support SHA1 everywhere, the others not always. */
export const TOTP_ALGORITHMS = ['SHA1', 'SHA256', 'SHA512'] as const
export type TotpAlgorithm = (typeof TOTP_ALGORITHMS)[number]

const HMAC_NAME: Readonly<Record<TotpAlgorithm, string>> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' }

/** Shortest key `generate` and `verify` take: RFC 4226 §4 R6 requires 128 bits (and recommends 160). */
const MIN_KEY_BYTES = 16
/** Longest key taken: anything longer is not a secret we generated. */
const MAX_KEY_BYTES = 128
/**
 * How long the last accepted step is remembered. The per-step keys only live while their step
 * can still be matched by this instance's clock; the mark also stops a replay on an instance
 * whose clock is minutes behind, and a day is far beyond any clock error worth tolerating.
 */
const LAST_STEP_TTL_MS = 24 * 60 * 60 * 1000
const MAX_USER_ID_LENGTH = 256
/** Longest user ID put into a store key as it is; longer ones are hashed (memcached keys stop at 250 bytes). */
const MAX_KEY_USER_LENGTH = 64

const optionsSchema = z.object({
  algorithm: z.enum(TOTP_ALGORITHMS).default('SHA1'),
  digits: z.union([z.literal(6), z.literal(8)]).default(6),
  periodS: z.number().int().min(10).max(300).default(30),
  window: z.number().int().min(0).max(2).default(1),
  secretBytes: z.number().int().min(20).max(64).default(20),
  issuer: z.string().min(1).max(100).refine((s) => !s.includes(':'), 'must not contain a colon (the otpauth label separator)').optional(),
  keyPrefix: z.string().default('totp:'),
  instanceClockSkewS: z.number().int().min(0).max(300).default(30),
})

/** Options of {@link Totp}. */
export type TotpOptions = z.input<typeof optionsSchema> & {
  /**
   * Where accepted steps are recorded for replay protection: memory for one instance, Redis
   * when several instances verify codes for the same users.
   */
  store: KeyValueStore
  /** Time source; pass a fake clock in tests. */
  now?: Clock
}

/** A code that {@link Totp.verify} accepted: what a caller records as "MFA verified at t". */
export interface TotpVerification {
  /** The time step the code belongs to (`floor(unixSeconds / periodS)`). */
  readonly step: number
  /** Matched step minus the verifier's current step (-window..window): a sign of clock drift. */
  readonly drift: number
  /** When it was verified, epoch ms from the engine's clock: store it for step-up checks. */
  readonly verifiedAtMs: number
}

/** What a user needs to enrol an authenticator; show it once, store `secret` encrypted. */
export interface TotpEnrolment {
  readonly secret: string
  readonly uri: string
  readonly qrSvg: string
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const BASE32_VALUE: Readonly<Record<string, number>> = Object.fromEntries(Array.from(BASE32_ALPHABET, (c, i) => [c, i]))
const BASE32 = /^[A-Z2-7]*$/
/** Base32 lengths mod 8 that no byte count produces. */
const BASE32_BAD_REMAINDERS = new Set([1, 3, 6])
const CODE_PATTERN: Readonly<Record<6 | 8, RegExp>> = { 6: /^[0-9]{6}$/, 8: /^[0-9]{8}$/ }

/**
 * RFC 4648 base32 without padding, the encoding `otpauth://` secrets use.
 *
 * @example base32Encode(Buffer.from('foobar')) // 'MZXW6YTBOI'
 */
export function base32Encode(bytes: Uint8Array): string {
  let out = ''
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += BASE32_ALPHABET.charAt((buffer >>> bits) & 31)
    }
    buffer &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32_ALPHABET.charAt((buffer << (5 - bits)) & 31)
  return out
}

/**
 * Decodes RFC 4648 base32 as {@link base32Encode} writes it: upper case, unpadded, and
 * canonical (the unused bits of the last character are zero). Anything else throws a
 * `TypeError` rather than being guessed at, so a corrupted stored secret is noticed.
 *
 * @example base32Decode('MZXW6YTBOI') // Uint8Array of 'foobar'
 */
export function base32Decode(text: string): Uint8Array {
  if (!BASE32.test(text)) throw new TypeError('Not base32: only the characters A-Z and 2-7 are allowed, without padding')
  if (BASE32_BAD_REMAINDERS.has(text.length % 8)) throw new TypeError(`Not base32: no byte string encodes to ${String(text.length)} characters`)
  const out = new Uint8Array(Math.floor((text.length * 5) / 8))
  let buffer = 0
  let bits = 0
  let index = 0
  for (const char of text) {
    buffer = (buffer << 5) | (BASE32_VALUE[char] ?? 0)
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[index++] = (buffer >>> bits) & 0xff
      buffer &= (1 << bits) - 1
    }
  }
  if (buffer !== 0) throw new TypeError('Not canonical base32: the unused bits of the last character must be zero')
  return out
}

function codeInvalid(reason: 'malformed' | 'mismatch' | 'replayed'): BackbeatError {
  // `reason` is for logs and security events only: the client sees one message for all three.
  return new BackbeatError('ERR_AUTH_MFA_CODE_INVALID', { params: { reason } })
}

/**
 * Time-based one-time passwords (RFC 6238) on `node:crypto` HMAC, with enrolment data (a
 * secret, the `otpauth://` URI of Google's Key URI format, its QR code as SVG) and
 * verification with a ±`window` step tolerance and replay protection.
 *
 * Replay protection (RFC 6238 §5.2) uses only the {@link KeyValueStore} interface, so it holds
 * across instances sharing Redis. Accepting step S means: `increment` the user's key for S and
 * win only on 1 (exactly one concurrent request gets it), then `increment` the keys of every
 * earlier step still within reach, so once `verify` has resolved no request can win a step at
 * or before S; a last-accepted-step mark kept for a day also refuses steps at or before it on an
 * instance whose clock lags further than `instanceClockSkewS`. A store error propagates and
 * the code is never accepted (fail closed). `verify` does not count failed attempts: put the
 * caller's brute-force limiter in front of it (a 6-digit code with a ±1 window is guessed with
 * probability 3 in a million per try).
 *
 * @example
 * const totp = new Totp({ store: new MemoryKeyValueStore(), issuer: 'Backbeat' })
 * const { secret, uri, qrSvg } = await totp.enrol('ada@example.com')
 * const { verifiedAtMs } = await totp.verify(user.id, secret, '123456')
 */
export class Totp {
  readonly algorithm: TotpAlgorithm
  readonly digits: 6 | 8
  readonly periodS: number
  readonly window: number
  readonly #secretBytes: number
  readonly #issuer: string | undefined
  readonly #prefix: string
  readonly #skewSteps: number
  readonly #store: KeyValueStore
  readonly #now: Clock
  readonly #hmac: string
  readonly #modulus: number
  readonly #codePattern: RegExp

  constructor(options: TotpOptions) {
    const { store, now, ...rest } = options
    const parsed = parseOptions('auth.totp', optionsSchema, rest)
    this.algorithm = parsed.algorithm
    this.digits = parsed.digits
    this.periodS = parsed.periodS
    this.window = parsed.window
    this.#secretBytes = parsed.secretBytes
    this.#issuer = parsed.issuer
    this.#prefix = parsed.keyPrefix
    this.#skewSteps = Math.ceil(parsed.instanceClockSkewS / parsed.periodS)
    this.#store = store
    this.#now = now ?? systemClock
    this.#hmac = HMAC_NAME[parsed.algorithm]
    this.#modulus = 10 ** parsed.digits
    this.#codePattern = CODE_PATTERN[parsed.digits]
  }

  /**
   * A new random secret of `secretBytes` bytes (default 20, 160 bits), base32 without padding.
   *
   * @example const secret = totp.generateSecret() // 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
   */
  generateSecret(): string {
    return base32Encode(randomBytes(this.#secretBytes))
  }

  /**
   * The `otpauth://totp/...` URI authenticator apps import (Google Authenticator Key URI
   * format), with every parameter spelled out. Neither issuer nor account may contain a colon:
   * apps split the label on it, even when percent-encoded.
   *
   * @example
   * totp.uri({ secret, account: 'ada@example.com', issuer: 'Backbeat' })
   * // 'otpauth://totp/Backbeat:ada%40example.com?secret=...&issuer=Backbeat&algorithm=SHA1&digits=6&period=30'
   */
  uri(input: { secret: string; account: string; issuer?: string }): string {
    const issuer = input.issuer ?? this.#issuer
    if (issuer === undefined) throw new TypeError('An issuer is required: pass one or set the issuer option')
    checkLabelPart('issuer', issuer)
    checkLabelPart('account', input.account)
    toKey(input.secret)
    const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(input.account)}`
    const params: [string, string][] = [
      ['secret', input.secret],
      ['issuer', issuer],
      ['algorithm', this.algorithm],
      ['digits', String(this.digits)],
      ['period', String(this.periodS)],
    ]
    // encodeURIComponent, not URLSearchParams: apps expect %20 for a space, not '+'.
    return `otpauth://totp/${label}?${params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`
  }

  /**
   * The QR code of `uri` as an SVG document, error-correction level M (15 % of the code may be
   * damaged or glared and it still scans).
   *
   * @example reply.type('image/svg+xml').send(await totp.qrSvg(uri))
   */
  qrSvg(uri: string): Promise<string> {
    return qrToString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 })
  }

  /**
   * Everything an enrolment screen shows: a fresh secret, its URI and QR code. Keep the secret
   * pending until the user proves it with a first code through {@link verify}.
   *
   * @example const { secret, uri, qrSvg } = await totp.enrol('ada@example.com')
   */
  async enrol(account: string, issuer?: string): Promise<TotpEnrolment> {
    const secret = this.generateSecret()
    const uri = this.uri(issuer === undefined ? { secret, account } : { secret, account, issuer })
    return { secret, uri, qrSvg: await this.qrSvg(uri) }
  }

  /**
   * The time step at `atMs` (epoch ms): what {@link verify} resolves as `step`.
   *
   * @example totp.stepAt(59_000) // 1
   */
  stepAt(atMs: number): number {
    if (!Number.isFinite(atMs) || atMs < 0) throw new RangeError(`A time must be a non-negative number of epoch ms, got ${String(atMs)}`)
    return Math.floor(atMs / (this.periodS * 1000))
  }

  /**
   * The code for `secret` (base32, or raw key bytes) at `atMs`, for tests and tools; the server
   * never needs to show a code.
   *
   * @example const code = totp.generate(secret, Date.parse('2030-01-01T00:00:00Z')) // six digits
   */
  generate(secret: string | Uint8Array, atMs: number = this.#now()): string {
    return this.#codeAt(toKey(secret), this.stepAt(atMs))
  }

  /**
   * Accepts `code` for `userId` (the stable account ID, not something the user can rename)
   * at most once, and never after a later step was accepted for that user. Resolves the
   * accepted step and time; throws `ERR_AUTH_MFA_CODE_INVALID` for a malformed, wrong or
   * replayed code, and whatever the store throws when it fails.
   *
   * @example
   * const { verifiedAtMs } = await totp.verify(user.id, user.totpSecret, body.code)
   * session.mfaVerifiedAtMs = verifiedAtMs
   */
  async verify(userId: string, secret: string | Uint8Array, code: string): Promise<TotpVerification> {
    checkUserId(userId)
    const key = toKey(secret)
    // Checked before any HMAC or store call, so junk costs nothing and cannot touch the store.
    if (typeof code !== 'string' || !this.#codePattern.test(code)) throw codeInvalid('malformed')
    const nowMs = this.#now()
    const current = this.stepAt(nowMs)
    const given = Buffer.from(code, 'latin1')
    let matched: number | undefined
    // Every step of the window is compared, in constant time, with no early exit.
    for (const offset of windowOffsets(this.window)) {
      const step = current + offset
      if (step < 0) continue
      const equal = timingSafeEqual(given, Buffer.from(this.#codeAt(key, step), 'latin1'))
      if (equal && matched === undefined) matched = step
    }
    if (matched === undefined) throw codeInvalid('mismatch')
    await this.#claim(userId, matched, nowMs)
    return { step: matched, drift: matched - current, verifiedAtMs: nowMs }
  }

  /** HOTP (RFC 4226 §5.3) with the step as the counter. */
  #codeAt(key: Uint8Array, step: number): string {
    const counter = Buffer.alloc(8)
    counter.writeBigUInt64BE(BigInt(step))
    const mac = createHmac(this.#hmac, key).update(counter).digest()
    const offset = (mac[mac.length - 1] ?? 0) & 0x0f
    const binary = mac.readUInt32BE(offset) & 0x7fffffff
    return String(binary % this.#modulus).padStart(this.digits, '0')
  }

  async #claim(userId: string, step: number, nowMs: number): Promise<void> {
    const user = userKeyPart(userId)
    const stepKey = (s: number): string => `${this.#prefix}used:${user}:${String(s)}`
    const markKey = `${this.#prefix}last:${user}`
    const periodMs = this.periodS * 1000
    // A step's key must outlive every clock (this one, or another instance's up to the skew)
    // that could still match it: until step + window, plus the skew both ways.
    const ttlFor = (s: number): number => (s + this.window + 1 + 2 * this.#skewSteps) * periodMs - nowMs

    // Reading the mark while claiming costs one round trip instead of two; a claim wasted on a
    // step the mark refuses anyway blocks nothing that was still acceptable.
    const [mark, claims] = await Promise.all([this.#store.get(markKey), this.#store.increment(stepKey(step), 1, ttlFor(step))])
    const last = parseMark(mark)
    if (step <= last || claims !== 1) throw codeInvalid('replayed')

    // Any later request can only match steps from step - 2 * window (minus the skew) upwards;
    // marking those below S as used before resolving makes "S accepted" final for them.
    const writes: Promise<unknown>[] = []
    for (let s = step - 1; s >= Math.max(0, step - 2 * this.window - this.#skewSteps); s--) {
      const ttl = ttlFor(s)
      if (ttl > 0) writes.push(this.#store.increment(stepKey(s), 1, ttl))
    }
    // Not atomic with other writers, so a concurrent acceptance may leave the lower of two
    // steps here; the step keys above are what make acceptance atomic, the mark is the backstop.
    writes.push(this.#store.set(markKey, String(step), LAST_STEP_TTL_MS))
    await Promise.all(writes)
  }
}

/** 0, -1, +1, -2, +2: the current step is preferred when a code happens to match two. */
function windowOffsets(window: number): number[] {
  const offsets = [0]
  for (let i = 1; i <= window; i++) offsets.push(-i, i)
  return offsets
}

/**
 * The user ID as a key segment: percent-encoded (no spaces, control characters or colons reach
 * the store), or, when long, a SHA-256 marked with `#`, which encodeURIComponent never emits,
 * so the two forms cannot collide.
 */
function userKeyPart(userId: string): string {
  const encoded = encodeURIComponent(userId)
  return encoded.length <= MAX_KEY_USER_LENGTH ? encoded : `#${hash('sha256', userId, 'base64url')}`
}

function parseMark(value: string | undefined): number {
  if (value === undefined) return -1
  if (!/^[0-9]{1,15}$/.test(value)) {
    // Fail closed: a corrupted mark must not silently disable replay protection.
    throw new BackbeatError('ERR_STORE_COMMAND_FAILED', { params: { store: 'totp', reason: 'the last accepted TOTP step is not an integer' } })
  }
  return Number(value)
}

function toKey(secret: string | Uint8Array): Uint8Array {
  const key = typeof secret === 'string' ? base32Decode(secret) : secret
  if (key.byteLength < MIN_KEY_BYTES || key.byteLength > MAX_KEY_BYTES) {
    throw new TypeError(`A TOTP secret must be ${String(MIN_KEY_BYTES)} to ${String(MAX_KEY_BYTES)} bytes, got ${String(key.byteLength)}`)
  }
  return key
}

function checkLabelPart(name: string, value: string): void {
  if (value.length === 0 || value.length > 256) throw new TypeError(`The ${name} must be 1 to 256 characters`)
  if (value.includes(':')) throw new TypeError(`The ${name} must not contain a colon (the otpauth label separator)`)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new TypeError(`The ${name} must not contain control characters`)
}

function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) {
    throw new TypeError(`userId must be a string of 1 to ${String(MAX_USER_ID_LENGTH)} characters`)
  }
}
