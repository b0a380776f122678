import { z } from 'zod'
import { BackbeatError, parseOptions, systemClock, type Clock, type HealthCheck, type HealthCheckable } from '../core/index.ts'
import { JWS_ALGORITHMS, JwtKeySet, MAX_KID_LENGTH, type JwsAlgorithm } from './jwt-keys.ts'
import type { JwtKeySource } from './jwt-verifier.ts'

/**
 * Algorithms a remote key may be pinned to: the asymmetric ones. A JWKS is a public document,
 * so an HMAC secret published in one is a secret anyone can sign with; `oct` keys are never
 * taken from it, whatever the options say.
 */
const REMOTE_ALGORITHMS = JWS_ALGORITHMS.filter((alg) => !alg.startsWith('HS')) as Exclude<JwsAlgorithm, 'HS256' | 'HS384' | 'HS512'>[]
type RemoteAlgorithm = (typeof REMOTE_ALGORITHMS)[number]

/** The subset of a pino (or Fastify) logger {@link RemoteJwks} writes to. */
export interface RemoteJwksLogger {
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

const isFunction = (value: unknown): boolean => typeof value === 'function'
const LOOPBACK_HOST = /^(?:127(?:\.\d{1,3}){3}|\[::1\])$/

const remoteJwksOptionsSchema = z
  .strictObject({
    url: z.union([z.string(), z.instanceof(URL)]).transform((value, ctx) => {
      let url: URL
      try {
        url = new URL(value)
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not an absolute URL' })
        return z.NEVER
      }
      // Plain http only where nobody can sit in between: loopback IP literals. `localhost` is
      // a name a hosts file or resolver may send elsewhere, so it is refused like any host.
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOST.test(url.hostname))) ctx.addIssue({ code: 'custom', message: 'must be https (plain http only for 127.0.0.1 or [::1])' })
      if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', message: 'must not carry credentials' })
      return url
    }),
    keys: z.instanceof(JwtKeySet).optional(),
    timeoutMs: z.number().int().min(1).max(60_000).default(5_000),
    cooldownMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
    maxAgeMs: z.number().int().min(1_000).max(86_400_000).default(600_000),
    maxBytes: z.number().int().min(1_024).max(16 * 1024 * 1024).default(512 * 1024),
    maxKeys: z.number().int().min(1).max(1_000).default(100),
    allowedAlgorithms: z.array(z.enum(REMOTE_ALGORITHMS)).min(1).default([...REMOTE_ALGORITHMS]),
    defaultAlgorithm: z.enum(REMOTE_ALGORITHMS).optional(),
    name: z.string().regex(/^[\w.:-]{1,64}$/, 'must be 1-64 letters, digits or . _ : -').default('jwks'),
    fetch: z.custom<typeof globalThis.fetch>(isFunction, 'must be a function').default(() => globalThis.fetch),
    now: z.custom<Clock>(isFunction, 'must be a function').optional(),
    logger: z
      .custom<RemoteJwksLogger>((value) => typeof value === 'object' && value !== null && ['info', 'warn', 'error'].every((m) => isFunction((value as Record<string, unknown>)[m])), 'must have info, warn and error methods')
      .optional(),
  })
  .superRefine((o, ctx) => {
    if (o.maxAgeMs < o.cooldownMs) ctx.addIssue({ code: 'custom', path: ['maxAgeMs'], message: 'must be at least cooldownMs' })
    if (o.defaultAlgorithm !== undefined && !o.allowedAlgorithms.includes(o.defaultAlgorithm)) ctx.addIssue({ code: 'custom', path: ['defaultAlgorithm'], message: 'must be one of allowedAlgorithms' })
  })

/** Options of {@link RemoteJwks}; durations in milliseconds. */
export type RemoteJwksOptions = z.input<typeof remoteJwksOptionsSchema>

/** What {@link RemoteJwks.state} reports. */
export interface RemoteJwksState {
  /** Kids of the keys this source put in the set (undefined: a key without kid). */
  readonly kids: readonly (string | undefined)[]
  /** When the last document was applied (epoch ms). */
  readonly fetchedAt: number | undefined
  /** When the last fetch started, successful or not. */
  readonly attemptedAt: number | undefined
  /** Why the last fetch failed; undefined once one succeeds. */
  readonly lastError: string | undefined
  /** Keys of the last document that were not taken, with the reason. */
  readonly skipped: readonly string[]
  readonly refreshing: boolean
  readonly closed: boolean
}

/**
 * Thrown by {@link RemoteJwks.start} with `{ required: true }` when the key set cannot be
 * loaded. The message names the URL and the reason (refused connection, timeout, HTTP status,
 * a document that is not a JWKS); `cause` holds the underlying error.
 */
export class RemoteJwksError extends BackbeatError {
  readonly url: string
  constructor(url: string, reason: string, cause?: unknown) {
    super('ERR_DEPENDENCY_UNAVAILABLE', { params: { reason }, cause })
    this.url = url
    // The catalogue text is written for HTTP clients; at start-up the operator needs where and why.
    this.message = `cannot load the JWKS from ${url}: ${reason}`
  }
}

/** Why a document or a download was refused (message only, for logs and health). */
class FetchFailure extends Error {}

const NO = Promise.resolve(false)
const CURVE_ALGORITHMS: Readonly<Record<string, RemoteAlgorithm>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'EdDSA' }

/**
 * Verification keys from a remote JWKS (an identity provider's `jwks_uri`), kept in a
 * {@link JwtKeySet} so each key stays pinned to one algorithm. Hand it to a `JwtVerifier` as
 * `keySource`: keys are refetched in the background once `maxAgeMs` (or the response's
 * `Cache-Control: max-age`, within `cooldownMs`..`maxAgeMs`) has passed, on use rather than
 * on a timer, and a token naming an unknown `kid` triggers at most one fetch per `cooldownMs`,
 * shared by every request that waits for it and bounded by `timeoutMs`; otherwise it fails at
 * once with `ERR_AUTH_KEY_UNKNOWN`.
 *
 * Only a successful fetch changes the set: keys the new document no longer lists are removed
 * (tokens they signed fail), keys it lists unchanged stay the very same objects (so verified
 * tokens stay cached), and a failed fetch (down, slow, oversized, not a JWKS) keeps every
 * cached key working. Keys the set refuses (private, `enc`, symmetric, no usable `alg`, a
 * `kid` a local key already has) are skipped and logged, not fatal.
 *
 * Like jose's `createRemoteJWKSet` (same defaults; redirects refused), with three differences:
 * each key is pinned to one algorithm when it is loaded, where jose picks candidates by the
 * token's `alg`; the cooldown counts from the last attempt, failed or not, so an endpoint that
 * is down is not hit on every unknown `kid`; and a stale set keeps verifying while it refreshes
 * in the background instead of making the request wait.
 *
 * @example
 * const jwks = new RemoteJwks({ url: 'https://accounts.example.com/.well-known/jwks.json', logger })
 * await jwks.start()
 * health.register('jwks', jwks.healthCheck, { critical: false })
 * const verifier = new JwtVerifier({ keys: jwks.keys, keySource: jwks, issuer, audience })
 */
export class RemoteJwks implements JwtKeySource, HealthCheckable {
  readonly name: string
  /** The set the keys are kept in (the one given, or a new one). */
  readonly keys: JwtKeySet
  readonly #url: URL
  /** For logs and messages: no query string, which may carry an API key. */
  readonly #where: string
  readonly #options: Readonly<z.output<typeof remoteJwksOptionsSchema>>
  readonly #allowed: ReadonlySet<string>
  readonly #now: Clock
  readonly #logger: RemoteJwksLogger | undefined
  readonly #closing = new AbortController()
  /** The keys this source added, by kid, with a fingerprint of the JWK they came from. */
  #owned = new Map<string | undefined, string>()
  #fetchedAt: number | undefined
  #attemptedAt: number | undefined
  #lastError: string | undefined
  #skipped: string[] = []
  /** The next time {@link touch} refreshes: a fresh set's expiry, or the end of the cooldown. */
  #refreshAt = 0
  #inflight: Promise<boolean> | undefined

  constructor(options: RemoteJwksOptions) {
    this.#options = parseOptions('auth.jwt.jwks', remoteJwksOptionsSchema, options)
    this.name = this.#options.name
    this.keys = this.#options.keys ?? new JwtKeySet()
    this.#url = this.#options.url
    this.#where = `${this.#url.origin}${this.#url.pathname}`
    this.#allowed = new Set(this.#options.allowedAlgorithms)
    this.#now = this.#options.now ?? systemClock
    this.#logger = this.#options.logger
  }

  /**
   * Loads the keys once, for start-up. Resolves true when they loaded. A failure is logged as
   * an error naming the URL and the reason, and by default does not throw: a partner's identity
   * provider being down must not stop the service (public routes, local keys) from booting, and
   * the set is fetched again on use and from the health check. Pass `required: true` where
   * nothing works without these keys: the failure is then a {@link RemoteJwksError}.
   */
  async start(options: { required?: boolean } = {}): Promise<boolean> {
    const loaded = await this.refresh()
    if (!loaded && options.required === true) throw new RemoteJwksError(this.#where, this.#lastError ?? 'closed')
    return loaded
  }

  /**
   * Fetches the document now, whatever the cooldown (for start-up or an operator's reload); a
   * fetch already under way is shared. Resolves true when a document was applied; never rejects.
   */
  refresh(): Promise<boolean> {
    if (this.#closing.signal.aborted) return NO
    this.#inflight ??= this.#load().finally(() => {
      this.#inflight = undefined
    })
    return this.#inflight
  }

  /** Refreshes in the background once the set is stale (and the cooldown is over). */
  touch(): void {
    if (this.#now() < this.#refreshAt || this.#inflight !== undefined || this.#closing.signal.aborted) return
    void this.refresh()
  }

  /**
   * One more chance for a `kid` the set lacks: joins the fetch under way, or starts one unless
   * the last began less than `cooldownMs` ago. A `kid` no key could have (not a string, too
   * long) or an algorithm this source never pins costs nothing.
   */
  onUnknownKey(kid: unknown, alg: string): Promise<boolean> {
    if (this.#inflight !== undefined) return this.#inflight
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) return NO
    if (!this.#allowed.has(alg) || this.#closing.signal.aborted) return NO
    if (this.#attemptedAt !== undefined && this.#now() < this.#attemptedAt + this.#options.cooldownMs) return NO
    return this.refresh()
  }

  /**
   * `pass` with the number of keys and the age of the last successful fetch; `warn` when the
   * last fetch failed (cached keys still in use), the set is overdue or empty; `fail` when no
   * document was ever loaded. Also refreshes a stale set, so a service held unready by this
   * check recovers without traffic.
   */
  readonly healthCheck: HealthCheck = async () => {
    this.touch()
    const now = this.#now()
    if (this.#closing.signal.aborted) return { status: 'warn', message: 'closed' }
    if (this.#fetchedAt === undefined) return { status: 'fail', message: `no key set loaded yet from ${this.#where}${this.#lastError === undefined ? '' : `: ${this.#lastError}`}` }
    const age = `${this.#owned.size} key${this.#owned.size === 1 ? '' : 's'}, fetched ${seconds(now - this.#fetchedAt)} ago`
    if (this.#lastError !== undefined) return { status: 'warn', message: `${age}; the last refresh failed (${this.#lastError})` }
    if (this.#owned.size === 0) return { status: 'warn', message: `${age}: the document has no usable key` }
    if (now - this.#fetchedAt > this.#options.maxAgeMs * 2) return { status: 'warn', message: `${age}, overdue for a refresh` }
    return { status: 'pass', message: age }
  }

  get state(): RemoteJwksState {
    return {
      kids: [...this.#owned.keys()],
      fetchedAt: this.#fetchedAt,
      attemptedAt: this.#attemptedAt,
      lastError: this.#lastError,
      skipped: [...this.#skipped],
      refreshing: this.#inflight !== undefined,
      closed: this.#closing.signal.aborted,
    }
  }

  /**
   * Stops fetching and aborts a fetch under way. The keys stay in the set: requests still
   * draining keep verifying.
   */
  async close(): Promise<void> {
    this.#closing.abort(new FetchFailure('closed'))
    await this.#inflight
  }

  async #load(): Promise<boolean> {
    const startedAt = this.#now()
    this.#attemptedAt = startedAt
    this.#refreshAt = startedAt + this.#options.cooldownMs
    const signal = AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#closing.signal])
    try {
      // Raced as well as signalled: a fetch implementation that ignores its signal cannot hang us.
      const { document, freshForMs } = await untilAborted(this.#download(signal), signal)
      if (this.#closing.signal.aborted) return false
      await this.#apply(document)
      const fetchedAt = this.#now()
      this.#fetchedAt = fetchedAt
      this.#lastError = undefined
      this.#refreshAt = Math.max(fetchedAt + freshForMs, startedAt + this.#options.cooldownMs)
      return true
    } catch (err) {
      const reason = this.#reasonOf(err, signal)
      this.#lastError = reason
      const fields = { jwks: this.name, url: this.#where, reason }
      if (reason === 'closed') return false
      if (this.#fetchedAt === undefined) this.#logger?.error(fields, 'cannot load the JWKS: tokens from this issuer fail until it loads')
      else this.#logger?.warn(fields, 'cannot refresh the JWKS: the cached keys stay in use')
      return false
    }
  }

  async #download(signal: AbortSignal): Promise<{ document: unknown; freshForMs: number }> {
    const response = await this.#options.fetch(this.#url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      // A redirect could lead to plain http or another host; the configured URL is the trust anchor.
      redirect: 'manual',
      signal,
    })
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined)
      throw new FetchFailure(`HTTP ${response.status}${response.status >= 300 && response.status < 400 ? ' (redirects are not followed; configure the final URL)' : ''}`)
    }
    const text = await readLimited(response, this.#options.maxBytes)
    let document: unknown
    try {
      document = JSON.parse(text)
    } catch {
      throw new FetchFailure('the response is not JSON')
    }
    return { document, freshForMs: this.#freshFor(response.headers) }
  }

  /** How long the document stays fresh: its Cache-Control max-age (less its Age), within cooldownMs..maxAgeMs. */
  #freshFor(headers: Headers): number {
    const { cooldownMs, maxAgeMs } = this.#options
    const cacheControl = headers.get('cache-control')
    if (cacheControl === null) return maxAgeMs
    if (/(?:^|,)\s*no-(?:cache|store)\b/i.test(cacheControl)) return cooldownMs
    const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?/i.exec(cacheControl)?.[1]
    if (maxAge === undefined) return maxAgeMs
    const age = Number(/^\d{1,10}$/.exec(headers.get('age') ?? '')?.[0] ?? 0)
    return Math.min(maxAgeMs, Math.max(cooldownMs, (Number(maxAge) - age) * 1000))
  }

  /**
   * Puts the document's usable keys in the set and removes the ones it no longer lists. Keys
   * whose JWK did not change are not imported again: the verifier's cache counts a hit only
   * while the set holds the very key object that verified the token.
   */
  async #apply(document: unknown): Promise<void> {
    const entries = jwksEntries(document)
    if (entries.length > this.#options.maxKeys) throw new FetchFailure(`the document has ${entries.length} keys, more than maxKeys (${this.#options.maxKeys})`)
    const next = new Map<string | undefined, string>()
    const skipped: string[] = []
    const added: (string | undefined)[] = []
    for (const [index, entry] of entries.entries()) {
      const label = typeof entry.kid === 'string' ? JSON.stringify(entry.kid.slice(0, 64)) : `#${index}`
      const refusal = this.#refusalOf(entry, entries.length, next)
      if (typeof refusal === 'string') {
        skipped.push(`${label}: ${refusal}`)
        continue
      }
      const { kid, alg } = refusal
      const fingerprint = fingerprintOf(entry, alg)
      if (this.#owned.get(kid) !== fingerprint) {
        if (!this.#owned.has(kid) && this.keys.has(kid)) {
          skipped.push(`${label}: the set already has this kid from elsewhere (a local key or another source)`)
          continue
        }
        // A set holds one key without kid; its new material replaces it (a kid is simply overwritten).
        if (kid === undefined) this.keys.remove(undefined)
        try {
          await this.keys.addJwk(entry, alg)
        } catch (err) {
          skipped.push(`${label}: ${issueOf(err)}`)
          continue
        }
        added.push(kid)
      }
      next.set(kid, fingerprint)
    }
    const removed = [...this.#owned.keys()].filter((kid) => !next.has(kid))
    for (const kid of removed) this.keys.remove(kid)
    this.#owned = next
    const fields = { jwks: this.name, url: this.#where }
    if (added.length > 0 || removed.length > 0) this.#logger?.info({ ...fields, added, removed, keys: next.size }, 'JWKS keys changed')
    // Logged when the list changes, not on every refresh of the same document.
    if (skipped.length > 0 && skipped.join('\n') !== this.#skipped.join('\n')) this.#logger?.warn({ ...fields, skipped }, 'JWKS keys skipped')
    if (next.size === 0) this.#logger?.error(fields, 'the JWKS has no usable key: every token from this issuer fails')
    this.#skipped = skipped
  }

  /** The kid and pinned algorithm for `entry`, or why it is not taken. */
  #refusalOf(entry: Record<string, unknown>, count: number, taken: ReadonlyMap<string | undefined, string>): string | { kid: string | undefined; alg: RemoteAlgorithm } {
    const { kid, kty } = entry
    if (typeof kty !== 'string') return 'not a JWK (no kty)'
    if (kty === 'oct') return 'a symmetric key in a public document'
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) return `kid must be a string of 1-${MAX_KID_LENGTH} characters`
    // A token names its key by kid; among several keys, one without kid could never be chosen.
    if (kid === undefined && count > 1) return 'no kid, and the document holds several keys'
    if (taken.has(kid)) return 'duplicate kid (the first one is used)'
    const alg = entry.alg ?? (typeof entry.crv === 'string' ? CURVE_ALGORITHMS[entry.crv] : undefined) ?? this.#options.defaultAlgorithm
    if (alg === undefined) return 'no alg, and no defaultAlgorithm is configured'
    if (typeof alg !== 'string' || !this.#allowed.has(alg)) return `alg ${typeof alg === 'string' ? alg.slice(0, 20) : typeof alg} is not allowed (allowedAlgorithms)`
    return { kid, alg: alg as RemoteAlgorithm }
  }

  #reasonOf(err: unknown, signal: AbortSignal): string {
    if (this.#closing.signal.aborted) return 'closed'
    if (signal.aborted) return `timed out after ${this.#options.timeoutMs} ms`
    if (err instanceof FetchFailure) return err.message
    if (err instanceof Error) {
      const cause = err.cause as { code?: unknown; message?: unknown } | undefined
      const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : ''
      return `${err.message}${detail === '' ? '' : ` (${detail})`}`.slice(0, 300)
    }
    return String(err).slice(0, 300)
  }
}

/** The `keys` of a JWK Set (RFC 7517 section 5); each member must be an object. */
function jwksEntries(document: unknown): Record<string, unknown>[] {
  const keys = isObject(document) ? document.keys : undefined
  if (!Array.isArray(keys)) throw new FetchFailure('not a JWK Set (expected an object with a keys array)')
  return keys.map((entry: unknown) => (isObject(entry) ? entry : {}))
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The JWK's members in a stable order, with the pinned algorithm: equal means the same key. */
function fingerprintOf(entry: Record<string, unknown>, alg: string): string {
  return `${alg}:${Object.keys(entry)
    .sort()
    .map((name) => JSON.stringify([name, entry[name]]))
    .join(',')}`
}

function issueOf(err: unknown): string {
  const issue = (err as { issues?: { message: string }[] }).issues?.[0]?.message
  return (issue ?? (err instanceof Error ? err.message : String(err))).slice(0, 200)
}

/** The body as UTF-8, refused as soon as it passes `maxBytes` (declared or streamed). */
async function readLimited(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined)
    throw new FetchFailure(`the document is larger than maxBytes (${maxBytes})`)
  }
  if (response.body === null) return ''
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw new FetchFailure(`the document is larger than maxBytes (${maxBytes})`)
    }
    chunks.push(value)
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new FetchFailure('the response is not UTF-8')
  }
}

/** `work`, or the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason as Error)
    }
    // Whatever happens first, `work` keeps a handler: its late rejection is never unhandled.
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    void work.then(resolve, reject).finally(() => {
      signal.removeEventListener('abort', onAbort)
    })
  })
}

function seconds(ms: number): string {
  return `${String(Math.max(0, Math.round(ms / 1000)))} s`
}
