import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { ConfigError, type ConfigIssue } from '../core/index.ts'

/** scrypt cost parameters (RFC 7914). */
export interface ScryptParams {
  /** log2 of the CPU/memory cost N (default 17: OWASP's minimum, 128 MiB with r = 8). */
  logN?: number
  /** Block size (default 8). */
  r?: number
  /** Parallelisation (default 1). */
  p?: number
}

/** Options of {@link PasswordHasher}. */
export interface PasswordHasherOptions {
  scrypt?: ScryptParams
  /** Shortest password `hash` accepts (default 8, per NIST SP 800-63B with MFA available). */
  minLength?: number
  /** Longest password read, in UTF-8 bytes (default 1024): longer input is refused unhashed. */
  maxBytes?: number
}

/** What {@link PasswordHasher.verify} found. */
export interface PasswordCheck {
  readonly ok: boolean
  /** The stored hash uses other parameters than the current ones: store `hash(password)` again. */
  readonly needsRehash: boolean
}

const SALT_BYTES = 16
const KEY_BYTES = 32
const DUMMY_SALT = randomBytes(SALT_BYTES)
// $scrypt$ln=17,r=8,p=1$<salt>$<hash>, the PHC string format with base64 without padding.
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,64})\$([A-Za-z0-9+/]{16,128})$/

function scrypt(password: string | Buffer, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keyLength, options, (err, key) => {
      if (err === null) resolve(key)
      else reject(err)
    })
  })
}

const b64 = (bytes: Buffer): string => bytes.toString('base64').replace(/=+$/, '')

/**
 * Password hashing with scrypt from `node:crypto` (no native add-on to build), stored as PHC
 * strings (`$scrypt$ln=17,r=8,p=1$salt$hash`) so the parameters travel with each hash:
 * `verify` reports `needsRehash` when they differ from the configured ones, and the caller
 * stores a fresh hash after a successful sign-in (transparent upgrade). Hashing runs on
 * libuv's thread pool, so it never blocks the event loop. Comparisons are constant-time, and
 * `verifyDummy` spends the same time for an unknown account so a response time does not tell
 * whether the account exists.
 *
 * @example
 * const hasher = new PasswordHasher({ scrypt: { logN: 17 } })
 * const stored = await hasher.hash('correct horse battery staple')
 * const { ok, needsRehash } = await hasher.verify('correct horse battery staple', stored)
 */
export class PasswordHasher {
  readonly #logN: number
  readonly #r: number
  readonly #p: number
  readonly #minLength: number
  readonly #maxBytes: number

  constructor(options: PasswordHasherOptions = {}) {
    const { logN = 17, r = 8, p = 1 } = options.scrypt ?? {}
    const { minLength = 8, maxBytes = 1024 } = options
    const issues: ConfigIssue[] = []
    if (!Number.isInteger(logN) || logN < 10 || logN > 22) issues.push({ path: 'scrypt.logN', message: 'must be an integer from 10 to 22' })
    if (!Number.isInteger(r) || r < 1 || r > 32) issues.push({ path: 'scrypt.r', message: 'must be an integer from 1 to 32' })
    if (!Number.isInteger(p) || p < 1 || p > 16) issues.push({ path: 'scrypt.p', message: 'must be an integer from 1 to 16' })
    if (!Number.isInteger(minLength) || minLength < 1 || minLength > 128) issues.push({ path: 'minLength', message: 'must be an integer from 1 to 128' })
    if (!Number.isInteger(maxBytes) || maxBytes < 64 || maxBytes > 65_536) issues.push({ path: 'maxBytes', message: 'must be an integer from 64 to 65536' })
    if (issues.length > 0) throw new ConfigError(issues)
    this.#logN = logN
    this.#r = r
    this.#p = p
    this.#minLength = minLength
    this.#maxBytes = maxBytes
  }

  #options(logN: number, r: number, p: number): ScryptOptions {
    const N = 2 ** logN
    // Node refuses anything above maxmem (32 MiB by default); scrypt needs 128 * N * r bytes.
    return { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 }
  }

  /** Why `password` cannot be set, or undefined when it can (length rules only). */
  policyViolation(password: string): string | undefined {
    if (Array.from(password).length < this.#minLength) return `must be at least ${this.#minLength} characters`
    if (Buffer.byteLength(password) > this.#maxBytes) return `must be at most ${this.#maxBytes} bytes`
    return undefined
  }

  /** Hashes a new password; throws a RangeError when it breaks the length rules. */
  async hash(password: string): Promise<string> {
    const violation = this.policyViolation(password)
    if (violation !== undefined) throw new RangeError(`password ${violation}`)
    const salt = randomBytes(SALT_BYTES)
    const key = await scrypt(password.normalize('NFKC'), salt, KEY_BYTES, this.#options(this.#logN, this.#r, this.#p))
    return `$scrypt$ln=${this.#logN},r=${this.#r},p=${this.#p}$${b64(salt)}$${b64(key)}`
  }

  /**
   * Checks `password` against a stored hash. A malformed stored hash or an over-long password
   * is a mismatch (never an exception), after the same work as a real check.
   */
  async verify(password: string, stored: string): Promise<PasswordCheck> {
    const match = PHC.exec(stored)
    if (match === null || Buffer.byteLength(password) > this.#maxBytes) {
      await this.verifyDummy()
      return { ok: false, needsRehash: false }
    }
    const [, ln, r, p, salt, hash] = match as unknown as [string, string, string, string, string, string]
    const logN = Number(ln)
    const rr = Number(r)
    const pp = Number(p)
    // Refuse parameters an attacker who can write the column could use to exhaust memory.
    if (logN < 10 || logN > 22 || rr < 1 || rr > 32 || pp < 1 || pp > 16) {
      await this.verifyDummy()
      return { ok: false, needsRehash: false }
    }
    const expected = Buffer.from(hash, 'base64')
    const actual = await scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64'), expected.length, this.#options(logN, rr, pp))
    const ok = actual.length === expected.length && timingSafeEqual(actual, expected)
    return { ok, needsRehash: ok && (logN !== this.#logN || rr !== this.#r || pp !== this.#p || expected.length !== KEY_BYTES) }
  }

  /** Spends the time of one verification, for accounts that do not exist. */
  async verifyDummy(): Promise<void> {
    await scrypt('not the password', DUMMY_SALT, KEY_BYTES, this.#options(this.#logN, this.#r, this.#p))
  }
}
