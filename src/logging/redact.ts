import { EventEmitter } from 'node:events'

/**
 * Deep, key-based redaction for log records. pino's built-in `redact` needs exact paths
 * (fast-redact), but secrets turn up at any depth and under many spellings
 * (`Authorization`, `refresh_token`, `spotifyAccessToken`, `x-api-key`), so keys are
 * normalised and matched by name and suffix instead. See docs/decisions.md.
 */

export const REDACTED = '[REDACTED]'

/** Normalised (lower-case, no `-`/`_`) names that always hold secrets. */
const BUILT_IN_KEYS = [
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'credential',
  'credentials',
  'xauth',
  'secret',
  'clientsecret',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'apikey',
  'xapikey',
  'privatekey',
  'sessionid',
  'codeverifier',
  'otp',
  'totp',
  'jwt',
  'spotifyaccesstoken',
  'spotifyrefreshtoken',
  'creditcard',
  'cardnumber',
]
/** Any key ending in one of these is a secret too (`stripeApiKey`, `dbPassword`). */
const SUFFIXES = ['token', 'secret', 'password', 'apikey', 'privatekey']

// Deeper than this, a value is replaced rather than logged unchecked (fail closed).
const MAX_DEPTH = 16
export const TOO_DEEP = '[REDACTED: nested too deep]'
const CACHE_LIMIT = 4096
// Objects and arrays visited per record at most; past it values are replaced (fail closed).
const MAX_NODES = 2000
export const TOO_LARGE = '[REDACTED: too large to check]'

// A JWS compact serialisation, or an RFC 6750 bearer credential, inside free text.
const TOKEN_IN_TEXT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g
// The password in a URL's userinfo: scheme://user:password@host
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi
/** Query or form parameters whose values are secrets (`?access_token=…`, `&password=…`). */
export const SECRET_PARAMETER_NAMES: readonly string[] = [
  'access_token',
  'refresh_token',
  'id_token',
  'token',
  'api_key',
  'apikey',
  'key',
  'password',
  'passwd',
  'pwd',
  'secret',
  'client_secret',
  'code',
  'code_verifier',
  'signature',
  'sig',
  'sslpassword',
]
const SECRET_PARAMETER = new RegExp(`([?&;](?:${SECRET_PARAMETER_NAMES.join('|')})=)[^&#\\s"']+`, 'gi')

export interface Redactor {
  /** Returns `value` unchanged when it holds nothing secret, else a redacted copy. */
  (value: unknown): unknown
  /** True when `key` names a secret. */
  isSecretKey(key: string): boolean
  /** Removes bearer tokens and JWTs from free text. */
  scrubText(text: string): string
}

/**
 * Builds a redactor for the built-in secret names plus `extraKeys`.
 *
 * @example
 * const redact = createRedactor(['pin'])
 * redact({ headers: { authorization: 'Bearer abc' } }) // { headers: { authorization: '[REDACTED]' } }
 */
export function createRedactor(extraKeys: readonly string[] = []): Redactor {
  const exact = new Set([...BUILT_IN_KEYS, ...extraKeys.map(normalise)])
  const verdicts = new Map<string, boolean>()

  function isSecretKey(key: string): boolean {
    let verdict = verdicts.get(key)
    if (verdict === undefined) {
      const n = normalise(key)
      verdict = exact.has(n) || SUFFIXES.some((s) => n.endsWith(s))
      if (verdicts.size >= CACHE_LIMIT) verdicts.clear()
      verdicts.set(key, verdict)
    }
    return verdict
  }

  function scrubText(text: string): string {
    let out = text
    if (out.includes('eyJ') || out.includes('Bearer') || out.includes('Basic')) out = out.replace(TOKEN_IN_TEXT, REDACTED)
    if (out.includes('://') && out.includes('@')) out = out.replace(URL_PASSWORD, `$1${REDACTED}@`)
    if (out.includes('=')) out = out.replace(SECRET_PARAMETER, `$1${REDACTED}`)
    return out
  }

  let budget = MAX_NODES

  function walk(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return scrubText(value)
    if (typeof value !== 'object' || value === null) return value
    if (depth >= MAX_DEPTH) return TOO_DEEP
    if (--budget < 0) return TOO_LARGE
    if (value instanceof Error) return walkError(value, depth)
    // What gets logged is what toJSON returns (a URL's href, a Date's ISO string, ...).
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === 'function') {
      const json: unknown = (toJSON as () => unknown).call(value)
      const next = walk(json, depth)
      return next === json ? value : next
    }
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        const next = walk(item, depth + 1)
        if (next !== item) {
          copy ??= value.slice()
          copy[i] = next
        }
      }
      return copy ?? value
    }
    // Class instances are walked too (their own enumerable fields are what JSON shows); a
    // copy, when one is needed, is a plain object with the same fields.
    // Streams, sockets and servers are not log data; pino prints what JSON makes of them.
    if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value) || value instanceof EventEmitter) return value
    let copy: Record<string, unknown> | undefined
    for (const key in value) {
      const item = (value as Record<string, unknown>)[key]
      const next = isSecretKey(key) && item !== undefined && item !== null && item !== '' ? REDACTED : walk(item, depth + 1)
      if (next !== item) {
        copy ??= { ...(value as Record<string, unknown>) }
        copy[key] = next
      }
    }
    return copy ?? value
  }

  function walkError(error: Error, depth: number): unknown {
    const message = scrubText(error.message)
    const stack = error.stack === undefined ? undefined : scrubText(error.stack)
    // Own enumerable properties (e.g. `code`, `response`) can carry secrets too.
    const own: Record<string, unknown> = Object.fromEntries(Object.entries(error))
    const extra = walk(own, depth + 1)
    if (message === error.message && stack === error.stack && extra === own) return error
    // Same class, so the log still says which error it was.
    const copy = Object.create(Object.getPrototypeOf(error) as object) as Error
    Object.assign(copy, extra)
    Object.defineProperty(copy, 'message', { value: message, enumerable: false, writable: true })
    Object.defineProperty(copy, 'stack', { value: stack, enumerable: false, writable: true })
    return copy
  }

  const redactor = ((value: unknown) => {
    budget = MAX_NODES
    return walk(value, 0)
  }) as Redactor
  redactor.isSecretKey = isSecretKey
  redactor.scrubText = scrubText
  return redactor
}

function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '')
}

