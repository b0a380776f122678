import { createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import { ConfigError, type ConfigIssue } from './errors.ts'

const KEY_BYTES = 32
const KEY_TEXT = /^[A-Za-z0-9+/_-]{43}=?$/
const VERSION = /^[1-9][0-9]{0,8}$/

/**
 * Parses a table of versioned 32-byte symmetric keys (`{ 1: '<base64>', 2: ... }`, text in
 * base64 or base64url, or bytes) and the version that seals new values: every key must be
 * canonical, non-zero and unique (a rotation needs a new key), `current` must be one of them.
 * Every problem is reported at once as a ConfigError under `path`. Raw key bytes are wiped
 * once imported as KeyObjects. Shared by the auth SecretBox and the cache's value cipher.
 *
 * @example
 * const { keys, current } = parseVersionedKeys({ 1: process.env.KEY_1!, 2: process.env.KEY_2! }, 2, { path: 'auth.vault', maxVersion: 255 })
 */
export function parseVersionedKeys(given: unknown, current: unknown, options: { path: string; maxVersion?: number }): { keys: ReadonlyMap<number, KeyObject>; current: number } {
  const maxVersion = options.maxVersion ?? 999_999_999
  const issues: ConfigIssue[] = []
  const keys = new Map<number, KeyObject>()
  const raw: Buffer[] = []
  const entries = typeof given === 'object' && given !== null ? Object.entries(given as Record<string, unknown>) : []
  if (entries.length === 0) issues.push({ path: 'keys', message: 'must configure at least one key version' })
  for (const [name, value] of entries) {
    const path = `keys.${name}`
    if (!VERSION.test(name) || Number(name) > maxVersion) {
      issues.push({ path, message: `key versions must be integers from 1 to ${maxVersion}` })
      continue
    }
    const bytes = keyBytes(value)
    if (typeof bytes === 'string') {
      issues.push({ path, message: bytes })
      continue
    }
    if (raw.some((other) => timingSafeEqual(other, bytes))) {
      issues.push({ path, message: 'repeats the key of another version; a rotation needs a new key' })
      continue
    }
    raw.push(bytes)
    keys.set(Number(name), createSecretKey(bytes))
  }
  const isVersion = typeof current === 'number' && Number.isSafeInteger(current) && current >= 1 && current <= maxVersion
  if (!isVersion) issues.push({ path: 'current', message: `must be an integer key version from 1 to ${maxVersion}` })
  else if (!keys.has(current) && !issues.some((i) => i.path === `keys.${current}`)) issues.push({ path: 'current', message: `names version ${current}, which is not among the keys` })
  for (const bytes of raw) bytes.fill(0)
  if (issues.length > 0) throw new ConfigError(issues.map((i) => ({ path: `${options.path}.${i.path}`, message: i.message })))
  return { keys, current: current as number }
}

/** 32 key bytes from canonical base64/base64url text or bytes, or why not. */
function keyBytes(value: unknown): Buffer | string {
  if (value instanceof Uint8Array) {
    if (value.length !== KEY_BYTES) return `must be ${KEY_BYTES} bytes, got ${value.length}`
    const bytes = Buffer.from(value)
    return bytes.every((b) => b === 0) ? 'must not be all zeros' : bytes
  }
  if (typeof value !== 'string') return 'must be a base64/base64url string or bytes'
  if (!KEY_TEXT.test(value)) return `must be ${KEY_BYTES} bytes in base64 or base64url (43 characters, optionally one "=")`
  const normalized = value.replace(/=$/, '').replaceAll('+', '-').replaceAll('/', '_')
  const bytes = Buffer.from(normalized, 'base64url')
  // Node decodes leniently; a value that does not re-encode to itself is not canonical base64.
  if (bytes.length !== KEY_BYTES || bytes.toString('base64url') !== normalized) return 'is not canonical base64/base64url'
  if (bytes.every((b) => b === 0)) return 'must not be all zeros'
  return bytes
}
