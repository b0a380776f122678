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

const MAX_DEPTH = 8
const CACHE_LIMIT = 4096

// A JWS compact serialisation, or an RFC 6750 bearer credential, inside free text.
const TOKEN_IN_TEXT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g

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
    if (!text.includes('eyJ') && !text.includes('Bearer') && !text.includes('Basic')) return text
    return text.replace(TOKEN_IN_TEXT, REDACTED)
  }

  function walk(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return scrubText(value)
    if (typeof value !== 'object' || value === null) return value
    if (depth >= MAX_DEPTH) return value
    if (value instanceof Error) return walkError(value, depth)
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
    if (!isPlain(value)) return value
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
    return { ...(extra as object), type: error.name, message, stack }
  }

  const redactor = ((value: unknown) => walk(value, 0)) as Redactor
  redactor.isSecretKey = isSecretKey
  redactor.scrubText = scrubText
  return redactor
}

function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '')
}

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
