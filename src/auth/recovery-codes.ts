import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { ConfigError } from '../core/index.ts'

/**
 * Crockford's base32 in lower case: no i, l, o or u, so nothing reads as another symbol once
 * {@link normaliseRecoveryCode} maps the look-alikes. 32 symbols, 5 bits each.
 */
export const RECOVERY_CODE_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const GROUP_LENGTH = 5
const MAX_COUNT = 100
const MIN_PEPPER_BYTES = 32
const NORMALISED = /^[0-9a-hjkmnp-tv-z]+$/
const HASH_HEX = /^[0-9a-f]{64}$/

/** Options shared by the recovery-code functions. */
export interface RecoveryCodeOptions {
  /**
   * A server-side secret of at least 32 bytes (kept out of the database): hashes become
   * HMAC-SHA-256 under it, so a leaked table cannot be brute-forced offline. Changing or
   * adding it invalidates codes hashed before.
   */
  pepper?: string | Uint8Array
}

/** Options of {@link generateRecoveryCodes}. */
export interface GenerateRecoveryCodeOptions extends RecoveryCodeOptions {
  /** Groups of five symbols per code: 2 (default, 50 bits), 3 (75 bits) or 4 (100 bits). */
  groups?: 2 | 3 | 4
}

/** A fresh set: show `codes` once, store only `hashes` (same order). */
export interface RecoveryCodes {
  readonly codes: readonly string[]
  readonly hashes: readonly string[]
}

/** What {@link redeemRecoveryCode} found. */
export interface RedeemedRecoveryCode {
  /** Position of the matching hash in the list given. */
  readonly index: number
  /** The matching hash: delete exactly this one, conditionally, to consume the code atomically. */
  readonly hash: string
  /** The list without it, in the same order. */
  readonly remaining: readonly string[]
}

/**
 * `count` (default 10, at most 100) single-use recovery codes such as `7kq2m-x9f4t`, with their
 * hashes. Each symbol is 5 uniformly random bits, so two groups carry 50 bits. Codes are unique
 * within the set.
 *
 * @example
 * const { codes, hashes } = generateRecoveryCodes()
 * await db.query('UPDATE users SET recovery_hashes = $2 WHERE id = $1', [userId, hashes])
 * return { codes } // shown once
 */
export function generateRecoveryCodes(count = 10, options: GenerateRecoveryCodeOptions = {}): RecoveryCodes {
  // Widened: untyped callers may pass anything.
  const groups: number = options.groups ?? 2
  const issues = []
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) issues.push({ path: 'count', message: `must be an integer from 1 to ${String(MAX_COUNT)}` })
  if (!Number.isInteger(groups) || groups < 2 || groups > 4) issues.push({ path: 'groups', message: 'must be 2, 3 or 4' })
  if (issues.length > 0) throw new ConfigError(issues)
  const pepper = pepperBytes(options.pepper)
  const length = groups * GROUP_LENGTH
  const unique = new Set<string>()
  while (unique.size < count) {
    // 32 divides 256, so masking a random byte to 5 bits keeps every symbol equally likely.
    const raw = [...randomBytes(length)].map((b) => RECOVERY_CODE_ALPHABET.charAt(b & 31)).join('')
    unique.add(raw)
  }
  const normalised = [...unique]
  return {
    codes: normalised.map(formatCode),
    hashes: normalised.map((code) => digest(code, pepper).toString('hex')),
  }
}

/**
 * The canonical form of what a user typed: lower case, without dashes or white space, with
 * Crockford's look-alikes mapped (`o` → `0`, `i` and `l` → `1`). It may still be invalid;
 * matching refuses that.
 *
 * @example normaliseRecoveryCode(' 7KQ2M - X9F4T ') // '7kq2mx9f4t'
 */
export function normaliseRecoveryCode(input: string): string {
  return input
    .toLowerCase()
    .replace(/[\s\-‐‑‒–—]+/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1')
}

/**
 * The stored form of one code (hex SHA-256 of its normalised form, or HMAC-SHA-256 with a
 * pepper). Deterministic, so a table with one row per code can also look it up by hash.
 *
 * @example hashRecoveryCode('7KQ2M-X9F4T') === hashRecoveryCode('7kq2mx9f4t')
 */
export function hashRecoveryCode(code: string, options: RecoveryCodeOptions = {}): string {
  return digest(normaliseRecoveryCode(code), pepperBytes(options.pepper)).toString('hex')
}

/**
 * The index of the hash `input` matches in `hashes`, or -1. Every hash is compared in constant
 * time with no early exit, so the time taken does not tell how far a guess got. A stored hash
 * that is not 64 hex digits throws a `TypeError`: a corrupted list should be noticed, not
 * silently match nothing.
 *
 * @example
 * const index = matchRecoveryCode(user.recoveryHashes, body.code)
 * if (index === -1) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
 */
export function matchRecoveryCode(hashes: readonly string[], input: string, options: RecoveryCodeOptions = {}): number {
  const stored = hashes.map((hash, i) => {
    if (!HASH_HEX.test(hash)) throw new TypeError(`Stored recovery-code hash #${String(i)} is not a hex SHA-256 digest`)
    return Buffer.from(hash, 'hex')
  })
  const pepper = pepperBytes(options.pepper)
  const code = normaliseRecoveryCode(typeof input === 'string' ? input : '')
  // Only the shape of the attacker's own input decides this early exit; it says nothing of the codes.
  if (!isWellFormed(code)) return -1
  const given = digest(code, pepper)
  let found = -1
  stored.forEach((hash, i) => {
    if (timingSafeEqual(given, hash) && found === -1) found = i
  })
  return found
}

/**
 * Matches `input` and returns the hash list without the used code, or undefined when nothing
 * matches. Consuming is the caller's: write `remaining` conditionally (or delete `hash` where it
 * still exists) so two requests with the same code cannot both succeed.
 *
 * @example
 * const used = redeemRecoveryCode(user.recoveryHashes, body.code)
 * if (used === undefined) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID')
 * const { rowCount } = await db.query(
 *   'UPDATE users SET recovery_hashes = array_remove(recovery_hashes, $2) WHERE id = $1 AND $2 = ANY(recovery_hashes)',
 *   [userId, used.hash])
 * if (rowCount !== 1) throw new BackbeatError('ERR_AUTH_MFA_CODE_INVALID') // spent concurrently
 */
export function redeemRecoveryCode(hashes: readonly string[], input: string, options: RecoveryCodeOptions = {}): RedeemedRecoveryCode | undefined {
  const index = matchRecoveryCode(hashes, input, options)
  const hash = hashes[index]
  if (index === -1 || hash === undefined) return undefined
  return { index, hash, remaining: hashes.filter((_, i) => i !== index) }
}

function isWellFormed(code: string): boolean {
  return code.length >= 2 * GROUP_LENGTH && code.length <= 4 * GROUP_LENGTH && code.length % GROUP_LENGTH === 0 && NORMALISED.test(code)
}

function formatCode(code: string): string {
  const groups: string[] = []
  for (let i = 0; i < code.length; i += GROUP_LENGTH) groups.push(code.slice(i, i + GROUP_LENGTH))
  return groups.join('-')
}

function digest(code: string, pepper: Buffer | undefined): Buffer {
  return pepper === undefined ? createHash('sha256').update(code).digest() : createHmac('sha256', pepper).update(code).digest()
}

function pepperBytes(pepper: string | Uint8Array | undefined): Buffer | undefined {
  if (pepper === undefined) return undefined
  const bytes = typeof pepper === 'string' ? Buffer.from(pepper, 'utf8') : Buffer.from(pepper)
  if (bytes.byteLength < MIN_PEPPER_BYTES) throw new ConfigError([{ path: 'auth.mfa.recoveryCodePepper', message: `must be at least ${String(MIN_PEPPER_BYTES)} bytes` }])
  return bytes
}
