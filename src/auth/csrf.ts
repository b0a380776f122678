import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import { ConfigError, type ConfigIssue } from '../core/index.ts'

/** Options of {@link CsrfProtection}. */
export interface CsrfOptions {
  /**
   * Server secret the tokens are derived with, at least 32 bytes (a string is taken as UTF-8).
   * Every instance must share it; it is never sent anywhere.
   */
  secret: string | Uint8Array
  /** Secrets still accepted (not issued) while a rotation rolls out. */
  previousSecrets?: ReadonlyArray<string | Uint8Array>
  /**
   * Origins besides the request's own that may send state-changing requests
   * (`https://console.example.com`): exact `scheme://host[:port]`, no wildcards.
   */
  trustedOrigins?: readonly string[]
  /** Request header carrying the token (default `x-csrf-token`). */
  headerName?: string
  /**
   * Refuse state-changing requests that carry neither `Sec-Fetch-Site`, `Origin` nor
   * `Referer` (default true, as OWASP recommends: every current browser sends `Origin` on them).
   */
  requireOrigin?: boolean
}

/** Why a request failed the CSRF check (for logs and security events, never for clients). */
export type CsrfFailure = 'token-missing' | 'token-invalid' | 'cross-site' | 'origin-untrusted' | 'origin-missing'

/** The request headers the origin check reads, and the origin the request was sent to. */
export interface CsrfOriginInput {
  readonly secFetchSite?: string | undefined
  readonly origin?: string | undefined
  readonly referer?: string | undefined
  /** `scheme://host[:port]` of this server as the client addressed it. */
  readonly targetOrigin?: string | undefined
}

const MIN_SECRET_BYTES = 32
/** An HMAC-SHA-256 in unpadded base64url. */
const TOKEN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/
/** Domain separation: the same secret could be reused for another HMAC without tokens colliding. */
const CONTEXT = 'backbeat-csrf-v1\0'
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * CSRF defence for cookie-authenticated requests, after OWASP's cheat sheet, in two
 * independent layers:
 * 1. a synchronizer token bound to the session: HMAC-SHA-256 of the session ID under a
 *    server secret, sent back in a header and compared in constant time (a cross-site page
 *    can neither read it nor set custom headers without a CORS preflight);
 * 2. origin verification: `Sec-Fetch-Site` when the browser sends it, else `Origin`, else the
 *    origin of `Referer`, must be this server or a trusted origin.
 * Framework-neutral: `sessionPlugin` applies it to POST, PUT, PATCH and DELETE.
 *
 * @example
 * const csrf = new CsrfProtection({ secret: process.env.CSRF_SECRET!, trustedOrigins: ['https://console.example.com'] })
 * const token = csrf.tokenFor(session.id)             // hand to the page
 * csrf.verifyToken(session.id, headers['x-csrf-token']) // true for that session only
 */
export class CsrfProtection {
  readonly headerName: string
  readonly requireOrigin: boolean
  readonly #current: KeyObject
  readonly #accepted: readonly KeyObject[]
  readonly #trusted: ReadonlySet<string>

  constructor(options: CsrfOptions) {
    const issues: ConfigIssue[] = []
    const current = secretKey(options.secret, 'csrf.secret', issues)
    const previous = (options.previousSecrets ?? []).map((s, i) => secretKey(s, `csrf.previousSecrets.${i}`, issues))
    const trusted = new Set<string>()
    for (const [i, entry] of (options.trustedOrigins ?? []).entries()) {
      const origin = exactOrigin(entry)
      if (origin === undefined) {
        issues.push({ path: `csrf.trustedOrigins.${i}`, message: 'must be an exact origin: http(s)://host[:port], without path, wildcard or "null"' })
      } else trusted.add(origin)
    }
    const headerName = options.headerName ?? 'x-csrf-token'
    if (!HEADER_NAME.test(headerName)) issues.push({ path: 'csrf.headerName', message: 'must be a lower-case header field name' })
    if (options.requireOrigin !== undefined && typeof options.requireOrigin !== 'boolean') issues.push({ path: 'csrf.requireOrigin', message: 'must be a boolean' })
    if (issues.length > 0 || current === undefined) throw new ConfigError(issues)
    this.#current = current
    this.#accepted = [current, ...previous.filter((k): k is KeyObject => k !== undefined)]
    this.#trusted = trusted
    this.headerName = headerName
    this.requireOrigin = options.requireOrigin ?? true
  }

  /** True for GET, HEAD and OPTIONS, the methods that must not change state and are never checked. */
  static isSafeMethod(method: string): boolean {
    return SAFE_METHODS.has(method)
  }

  /** The token for a session: the same for the whole life of the session ID, new after rotation. */
  tokenFor(sessionId: string): string {
    return mac(this.#current, sessionId).toString('base64url')
  }

  /** True when `token` is the token of `sessionId` under the current or a previous secret. */
  verifyToken(sessionId: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length !== 43 || !TOKEN.test(token)) return false
    const given = Buffer.from(token, 'base64url')
    let ok = false
    // Every secret is tried, so the time taken does not reveal which one matched.
    for (const key of this.#accepted) ok = timingSafeEqual(mac(key, sessionId), given) || ok
    return ok
  }

  /**
   * Undefined when the request comes from this server's own pages or a trusted origin; else
   * why not. Fetch metadata first (`same-origin` and user-initiated `none` pass; `same-site`
   * and `cross-site` pass only from a trusted origin), then `Origin`, then `Referer`.
   */
  checkOrigin(input: CsrfOriginInput): CsrfFailure | undefined {
    const site = input.secFetchSite?.toLowerCase()
    const origin = input.origin === undefined ? undefined : normalizeOrigin(input.origin)
    if (site === 'same-origin' || site === 'none') return undefined
    if (site === 'same-site' || site === 'cross-site') return origin !== undefined && this.#trusted.has(origin) ? undefined : 'cross-site'
    if (input.origin !== undefined) return this.#isAllowed(origin, input.targetOrigin) ? undefined : 'origin-untrusted'
    if (input.referer !== undefined) return this.#isAllowed(normalizeOrigin(input.referer), input.targetOrigin) ? undefined : 'origin-untrusted'
    return this.requireOrigin ? 'origin-missing' : undefined
  }

  /**
   * The whole check for a state-changing request authenticated by the session `sessionId`:
   * origin first (no secret work for an obvious cross-site request), then the token.
   */
  check(input: CsrfOriginInput & { readonly sessionId: string; readonly token: unknown }): CsrfFailure | undefined {
    const failure = this.checkOrigin(input)
    if (failure !== undefined) return failure
    if (input.token === undefined) return 'token-missing'
    return this.verifyToken(input.sessionId, input.token) ? undefined : 'token-invalid'
  }

  #isAllowed(origin: string | undefined, target: string | undefined): boolean {
    if (origin === undefined) return false
    return (target !== undefined && origin === normalizeOrigin(target)) || this.#trusted.has(origin)
  }
}

/** The origin of a configured entry that is exactly `scheme://host[:port]` (a trailing `/` allowed). */
function exactOrigin(entry: unknown): string | undefined {
  if (typeof entry !== 'string' || !/^https?:\/\/[^/?#@*\s]+\/?$/i.test(entry)) return undefined
  return normalizeOrigin(entry)
}

function mac(key: KeyObject, sessionId: string): Buffer {
  return createHmac('sha256', key).update(CONTEXT).update(sessionId).digest()
}

function secretKey(secret: unknown, path: string, issues: ConfigIssue[]): KeyObject | undefined {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret instanceof Uint8Array ? Buffer.from(secret) : undefined
  if (bytes === undefined || bytes.length < MIN_SECRET_BYTES) {
    issues.push({ path, message: `must be a string or bytes of at least ${MIN_SECRET_BYTES} bytes (e.g. 32 random bytes, base64)` })
    return undefined
  }
  return createSecretKey(bytes)
}

/**
 * `scheme://host[:port]` of an http(s) URL or origin, lower case and without a default port;
 * undefined for `null`, other schemes and anything unparsable.
 *
 * @example normalizeOrigin('HTTPS://Console.Example.com:443/path') // 'https://console.example.com'
 */
export function normalizeOrigin(value: string): string | undefined {
  if (value.length > 2048) return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  return url.origin
}
