import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto'
import { BackbeatError, parseVersionedKeys } from '../core/index.ts'

/** Options of {@link SecretBox}. */
export interface SecretBoxOptions {
  /**
   * Key versions (positive integers) to 32-byte keys, each given as base64 or base64url text
   * (43 characters, optionally padded) or as bytes. Keep retired versions here until
   * `rotateAll` has re-sealed everything they sealed.
   */
  keys: Readonly<Record<number | string, string | Uint8Array>>
  /** The version that seals new values. */
  current: number
}

const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
/** Larger sealed strings are refused before any decoding (a vault entry is a few KB at most). */
const MAX_SEALED_CHARS = 1_048_576
const SEALED = /^v([1-9][0-9]{0,8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/

/**
 * Authenticated encryption (AES-256-GCM) with versioned keys, for secrets kept at rest such
 * as provider refresh tokens. A sealed value is the compact string
 * `v<version>.<iv>.<ciphertext+tag>` (base64url, fresh random 96-bit IV each time), so the
 * key that opens it is named by the value itself and keys rotate without a migration: add a
 * version, make it `current`, re-seal lazily or in bulk ({@link needsRotation}), then drop the
 * old version. The optional `aad` (associated data) is authenticated but not stored: pass the
 * identity of the row (user and provider) so a ciphertext copied into another row fails to open.
 *
 * `open` fails with `ERR_AUTH_VAULT_KEY_UNKNOWN` when the version is not configured and with
 * `ERR_INTERNAL` when the value is malformed or fails authentication (tampered, wrong `aad`,
 * wrong key); both are server faults, never shown to clients beyond the generic 500.
 *
 * Random IVs keep a key safe for about 2^32 seals (NIST SP 800-38D); rotate well before that.
 *
 * @example
 * const box = new SecretBox({ keys: { 1: process.env.VAULT_KEY_1!, 2: process.env.VAULT_KEY_2! }, current: 2 })
 * const sealed = box.seal(refreshToken, 'user-7/spotify')
 * const again = box.open(sealed, 'user-7/spotify')
 */
export class SecretBox {
  /** The version new values are sealed with. */
  readonly current: number
  /** Every configured version, ascending. */
  readonly versions: readonly number[]
  readonly #keys: ReadonlyMap<number, KeyObject>

  constructor(options: SecretBoxOptions) {
    const { keys, current } = parseVersionedKeys(options.keys, options.current, { path: 'secretBox' })
    this.current = current
    this.versions = Object.freeze([...keys.keys()].sort((a, b) => a - b))
    this.#keys = keys
  }

  /**
   * A fresh random key in base64url, for `VAULT_KEY_<n>` settings.
   *
   * @example
   * node -e "import('backbeat/auth').then(({ SecretBox }) => console.log(SecretBox.generateKey()))"
   */
  static generateKey(): string {
    return randomBytes(KEY_BYTES).toString('base64url')
  }

  /** Encrypts `plaintext` under the current key; `aad` must be given again to open it. */
  seal(plaintext: string | Uint8Array, aad?: string | Uint8Array): string {
    const key = this.#keys.get(this.current) as KeyObject
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(this.current, aad))
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return `v${this.current}.${iv.toString('base64url')}.${body.toString('base64url')}`
  }

  /** Decrypts a value {@link seal} produced with the same `aad`, as UTF-8 text. */
  open(sealed: string, aad?: string | Uint8Array): string {
    return this.openBytes(sealed, aad).toString('utf8')
  }

  /** Like {@link open}, returning the bytes. */
  openBytes(sealed: string, aad?: string | Uint8Array): Buffer {
    const { version, iv, body } = parse(sealed)
    const key = this.#keys.get(version)
    if (key === undefined) throw new BackbeatError('ERR_AUTH_VAULT_KEY_UNKNOWN', { params: { version } })
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(associatedData(version, aad))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()])
    } catch (err) {
      throw invalid('authentication failed (tampered, wrong associated data or wrong key)', err)
    }
  }

  /** The key version a sealed value names (throws `ERR_INTERNAL` when it is malformed). */
  versionOf(sealed: string): number {
    return parse(sealed).version
  }

  /** True when `sealed` was sealed with another version than the current one. */
  needsRotation(sealed: string): boolean {
    return this.versionOf(sealed) !== this.current
  }

  /** Opens a value sealed with any configured version and seals it again with the current one. */
  reseal(sealed: string, aad?: string | Uint8Array): string {
    const plain = this.openBytes(sealed, aad)
    try {
      return this.seal(plain, aad)
    } finally {
      plain.fill(0)
    }
  }
}

/** The header is authenticated too, so the version in front cannot be swapped unnoticed. */
function associatedData(version: number, aad: string | Uint8Array | undefined): Buffer {
  const header = Buffer.from(`backbeat.secret-box.v${version}\0`)
  return aad === undefined ? header : Buffer.concat([header, typeof aad === 'string' ? Buffer.from(aad, 'utf8') : aad])
}

function parse(sealed: string): { version: number; iv: Buffer; body: Buffer } {
  if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_CHARS) throw invalid('not a sealed value')
  const match = SEALED.exec(sealed)
  if (match === null) throw invalid('not a sealed value (expected v<version>.<iv>.<ciphertext>)')
  const iv = Buffer.from(match[2] as string, 'base64url')
  const body = Buffer.from(match[3] as string, 'base64url')
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw invalid('truncated sealed value')
  return { version: Number(match[1]), iv, body }
}

function invalid(reason: string, cause?: unknown): BackbeatError {
  return new BackbeatError('ERR_INTERNAL', { params: { reason: `secret box: ${reason}` }, cause: cause ?? new Error(`secret box: ${reason}`) })
}

