import { randomBytes } from 'node:crypto'
import { BackbeatError } from 'backbeat'

/** The resource kinds that carry a Spotify-style ID and URI. */
export type ResourceKind = 'track' | 'album' | 'artist' | 'user' | 'playlist'

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const ID = /^[0-9A-Za-z]{22}$/
/** The largest multiple of 62 below 256: bytes above it are dropped so every character is equally likely. */
const UNBIASED_LIMIT = 248

/** Length of every ID: 22 base62 characters hold 130 bits, as Spotify's do. */
export const ID_LENGTH = 22

/** True when `value` has the shape of an ID (it may still be unknown). */
export function isId(value: string): boolean {
  return ID.test(value)
}

/**
 * A new random ID from the system CSPRNG; `nextByte` lets the seed draw from its own
 * deterministic generator instead.
 *
 * @example newId() // '4uLU6hMCjMI75M1A2tKUQC'
 */
export function newId(nextByte: () => number = cryptoBytes()): string {
  let id = ''
  while (id.length < ID_LENGTH) {
    const byte = nextByte()
    if (byte < UNBIASED_LIMIT) id += ALPHABET[byte % 62] ?? ''
  }
  return id
}

function cryptoBytes(): () => number {
  let pool = randomBytes(64)
  let index = 0
  return () => {
    if (index === pool.length) {
      pool = randomBytes(64)
      index = 0
    }
    return pool[index++] ?? 0
  }
}

/**
 * Checks an ID taken from a path or query at the edge, so a typo answers 400 with the
 * offending value rather than a 404 that suggests the resource was deleted.
 *
 * @example const id = parseId('track', request.params.id)
 */
export function parseId(kind: ResourceKind, value: string): string {
  if (!ID.test(value)) throw new BackbeatError('ERR_VALIDATION_ID_INVALID', { params: { value: printable(value), kind } })
  return value
}

/** `spotify:<kind>:<id>`. */
export function toUri(kind: ResourceKind, id: string): string {
  return `spotify:${kind}:${id}`
}

/**
 * The ID inside a `spotify:<kind>:<id>` URI; a URI of another kind is as invalid as a
 * malformed one (adding an album URI to a playlist of tracks is a client bug).
 *
 * @example parseUri('track', 'spotify:track:4uLU6hMCjMI75M1A2tKUQC') // '4uLU6hMCjMI75M1A2tKUQC'
 */
export function parseUri(kind: ResourceKind, value: string): string {
  const prefix = `spotify:${kind}:`
  const id = value.startsWith(prefix) ? value.slice(prefix.length) : ''
  if (!ID.test(id)) throw new BackbeatError('ERR_VALIDATION_URI_INVALID', { params: { value: printable(value), kind } })
  return id
}

/** Keeps an echoed value short and on one line, so an error detail cannot be used to inject log lines. */
function printable(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
}
