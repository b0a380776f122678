import { timingSafeEqual } from 'node:crypto'
import * as oc from 'openid-client'
import { z } from 'zod'
import { BackbeatError, ConfigError, parseOptions, systemClock, type Clock, type ConfigIssue } from '../core/index.ts'

/** Tokens a provider issued, as the vault stores them. */
export interface OAuthTokens {
  readonly accessToken: string
  /** As the provider wrote it (`Bearer`, `bearer`, `DPoP`). */
  readonly tokenType: string
  readonly refreshToken?: string
  /** Epoch milliseconds, from `expires_in`; absent when the provider did not say. */
  readonly expiresAt?: number
  /** Granted scopes: the response's `scope`, or the requested ones when it has none (RFC 6749 section 5.1). */
  readonly scopes: readonly string[]
  /** The OIDC ID token, when `openid` was requested. */
  readonly idToken?: string
}

/** What a refresh returned; absent fields keep their previous value. */
export interface RefreshedTokens {
  readonly accessToken: string
  readonly tokenType: string
  /** Present only when the provider rotated the refresh token: the old one is then spent. */
  readonly refreshToken?: string
  readonly expiresAt?: number
  readonly scopes?: readonly string[]
  readonly idToken?: string
}

/** Verified ID token claims (signature trusted through the TLS channel, OIDC Core 3.1.3.7; `iss`, `aud`, `exp`, `iat`, `nonce` checked). */
export type IdTokenClaims = Readonly<oc.IDToken>

/** The signed-in account at the provider, normalised. */
export interface OAuthProfile {
  /** The provider's stable account id (`sub`, or Spotify's user `id`). */
  readonly subject: string
  readonly email?: string
  /** Only `true` when the provider vouches for the address; never link accounts on an unverified email. */
  readonly emailVerified?: boolean
  readonly name?: string
  /** Everything the provider returned. */
  readonly claims: Readonly<Record<string, unknown>>
}

/** What must be kept between the redirect to the provider and the callback (server-side). */
export interface PendingAuthorization {
  readonly state: string
  readonly codeVerifier: string
  /** Present when `openid` was requested. */
  readonly nonce?: string
  readonly redirectUri: string
  readonly scopes: readonly string[]
}

/** An authorization request: the URL to send the browser to, and what to keep for the callback. */
export interface AuthorizationRequest extends PendingAuthorization {
  readonly url: string
}

/** The outcome of a successful callback. */
export interface ExchangeResult {
  readonly tokens: OAuthTokens
  /** Present when `openid` was requested. */
  readonly claims?: IdTokenClaims
}

/** A provider profile endpoint that is not OIDC UserInfo (Spotify's `GET /v1/me`). */
export interface ProfileEndpoint {
  readonly url: string
  /** Turns the endpoint's JSON into a profile; throw when it lacks a stable id. */
  map(body: Readonly<Record<string, unknown>>): OAuthProfile
}

/** Returns why a value breaks a provider's rules, or undefined when it is fine. */
export type OAuthSettingRule<T> = (value: T) => string | undefined

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
/** A scope token (RFC 6749 section 3.3). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]'])
/** Authorization parameters this client sets itself; callers cannot override them. */
const RESERVED_PARAMS = new Set(['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri', 'response_mode'])
const MAX_PROFILE_BYTES = 1_048_576

const optionsSchema = z.strictObject({
  provider: z.string().regex(PROVIDER_NAME, 'must be a lower-case name like spotify (a-z, 0-9, _ and -, at most 32)'),
  issuer: z.url(),
  authorizationEndpoint: z.url(),
  tokenEndpoint: z.url(),
  userinfoEndpoint: z.url().optional(),
  revocationEndpoint: z.url().optional(),
  /** RFC 9207: the provider puts `iss` in its callbacks, so a missing one is refused (mix-up defence). */
  issParameterSupported: z.boolean().default(false),
  clientId: z.string().min(1).max(512),
  clientSecret: z.string().min(1).max(4096).optional(),
  clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
  /** Every call to the provider is aborted after this long. */
  timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  /** Tolerated clock difference for ID token `exp`/`iat`. */
  clockToleranceS: z.number().int().min(0).max(300).default(30),
  /** The `alg` ID tokens must use. */
  idTokenSigningAlg: z.string().min(1).max(16).default('RS256'),
  /** Plain-HTTP endpoints, accepted only on loopback IP literals (tests against an in-process provider). */
  allowInsecureRequests: z.boolean().default(false),
})

/** Options of {@link OAuth2Client}. */
export type OAuth2ClientOptions = z.input<typeof optionsSchema> & {
  /** Clock for `expiresAt`; inject a fake one in tests. */
  now?: Clock
  /** A non-OIDC profile endpoint; without it `fetchUserInfo` uses `userinfoEndpoint` or the ID token. */
  profile?: ProfileEndpoint
  /** Extra rules for redirect URIs (the Spotify preset refuses `localhost`). */
  redirectUriRule?: OAuthSettingRule<URL>
  /** Extra rules for requested scopes (the Spotify preset knows its scope names). */
  scopeRule?: OAuthSettingRule<readonly string[]>
}

/** Options of {@link OAuth2Client.discover}: the endpoints come from the issuer's metadata. */
export type OAuth2DiscoveryOptions = Omit<OAuth2ClientOptions, 'authorizationEndpoint' | 'tokenEndpoint' | 'userinfoEndpoint' | 'revocationEndpoint' | 'issParameterSupported'>

type Parsed = z.output<typeof optionsSchema>
type Phase = 'callback' | 'token' | 'refresh' | 'userinfo' | 'profile' | 'revocation' | 'discovery'

const ENDPOINT: Record<Phase, string> = {
  callback: 'authorization response',
  token: 'token endpoint',
  refresh: 'token endpoint (refresh)',
  userinfo: 'userinfo endpoint',
  profile: 'profile endpoint',
  revocation: 'revocation endpoint',
  discovery: 'discovery document',
}

/**
 * A generic OAuth 2.0 / OpenID Connect client for the authorization code flow, over
 * openid-client: PKCE S256 on every request, a `state` checked in constant time, a `nonce`
 * and a verified ID token when `openid` is requested, RFC 9207 `iss` checks when the provider
 * supports them, refresh, UserInfo (or a provider profile endpoint) and revocation. Every call
 * to the provider has a timeout. Failures are `BackbeatError`s:
 * - `ERR_AUTH_OAUTH_STATE_INVALID` (400): the callback's state, issuer or code is missing or
 *   wrong, or the provider refused the code (expired, replayed, PKCE mismatch);
 * - `ERR_AUTH_OAUTH_DENIED` (403): the user declined (`error=access_denied`);
 * - `ERR_AUTH_OAUTH_PROVIDER_FAILED` (502): the provider is unreachable, slow, answered 5xx,
 *   an unexpected error or an invalid response;
 * - `ERR_AUTH_PROVIDER_RELINK_REQUIRED` (401): a refresh token was refused (`invalid_grant`).
 *
 * The constructor does no I/O; {@link OAuth2Client.discover} reads an OIDC issuer's metadata.
 *
 * @example
 * const client = new OAuth2Client({
 *   provider: 'acme', issuer: 'https://id.acme.test', clientId, clientSecret,
 *   authorizationEndpoint: 'https://id.acme.test/authorize', tokenEndpoint: 'https://id.acme.test/token',
 * })
 * const request = await client.authorizationRequest({ scopes: ['openid', 'email'], redirectUri })
 * // ...keep request (without url) server-side, redirect to request.url; on the callback:
 * const { tokens, claims } = await client.exchange(callbackUrl, request)
 */
export class OAuth2Client {
  /** The provider's name (`spotify`), as the vault and error params use it. */
  readonly provider: string
  readonly issuer: string
  /** The timeout of each provider call. */
  readonly timeoutMs: number
  readonly #options: Readonly<Parsed>
  readonly #config: oc.Configuration
  readonly #now: Clock
  readonly #profile: ProfileEndpoint | undefined
  readonly #redirectUriRule: OAuthSettingRule<URL> | undefined
  readonly #scopeRule: OAuthSettingRule<readonly string[]> | undefined

  constructor(options: OAuth2ClientOptions) {
    const { now, profile, redirectUriRule, scopeRule, ...rest } = options
    const parsed = parseOptions('oauth2', optionsSchema, rest)
    const issues: ConfigIssue[] = []
    const endpoints: Array<[string, string | undefined]> = [
      ['authorizationEndpoint', parsed.authorizationEndpoint],
      ['tokenEndpoint', parsed.tokenEndpoint],
      ['userinfoEndpoint', parsed.userinfoEndpoint],
      ['revocationEndpoint', parsed.revocationEndpoint],
      ['profile.url', profile?.url],
    ]
    for (const [name, url] of endpoints) {
      const problem = url === undefined ? undefined : endpointProblem(url, parsed.allowInsecureRequests)
      if (problem !== undefined) issues.push({ path: `oauth2.${name}`, message: problem })
    }
    const method = parsed.clientAuthMethod ?? (parsed.clientSecret === undefined ? 'none' : 'client_secret_basic')
    if (method !== 'none' && parsed.clientSecret === undefined) issues.push({ path: 'oauth2.clientSecret', message: `is required by clientAuthMethod ${method}` })
    if (method === 'none' && parsed.clientSecret !== undefined) issues.push({ path: 'oauth2.clientAuthMethod', message: 'is none although a clientSecret is given; a confidential client must authenticate' })
    if (profile !== undefined && typeof profile.map !== 'function') issues.push({ path: 'oauth2.profile.map', message: 'must be a function' })
    if (issues.length > 0) throw new ConfigError(issues)

    const server: oc.ServerMetadata = {
      issuer: parsed.issuer,
      authorization_endpoint: parsed.authorizationEndpoint,
      token_endpoint: parsed.tokenEndpoint,
      ...(parsed.userinfoEndpoint === undefined ? {} : { userinfo_endpoint: parsed.userinfoEndpoint }),
      ...(parsed.revocationEndpoint === undefined ? {} : { revocation_endpoint: parsed.revocationEndpoint }),
      authorization_response_iss_parameter_supported: parsed.issParameterSupported,
      code_challenge_methods_supported: ['S256'],
    }
    const secret = parsed.clientSecret
    const auth = method === 'none' ? oc.None() : method === 'client_secret_post' ? oc.ClientSecretPost(secret) : oc.ClientSecretBasic(secret)
    const metadata: Partial<oc.ClientMetadata> = { id_token_signed_response_alg: parsed.idTokenSigningAlg, [oc.clockTolerance]: parsed.clockToleranceS }
    this.#config = new oc.Configuration(server, parsed.clientId, metadata, auth)
    this.#config.timeout = parsed.timeoutMs / 1000
    // Validated above to reach loopback addresses only: tests against an in-process provider.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    if (parsed.allowInsecureRequests) oc.allowInsecureRequests(this.#config)

    this.provider = parsed.provider
    this.issuer = parsed.issuer
    this.timeoutMs = parsed.timeoutMs
    this.#options = parsed
    this.#now = now ?? systemClock
    this.#profile = profile
    this.#redirectUriRule = redirectUriRule
    this.#scopeRule = scopeRule
  }

  /**
   * Builds a client from an OIDC issuer's discovery document (one request, with the timeout).
   *
   * @example
   * const client = await OAuth2Client.discover({ provider: 'acme', issuer: 'https://id.acme.test', clientId, clientSecret })
   */
  static async discover(options: OAuth2DiscoveryOptions): Promise<OAuth2Client> {
    const timeoutMs = options.timeoutMs ?? 10_000
    const insecure = options.allowInsecureRequests === true
    const issuerProblem = typeof options.issuer === 'string' && URL.canParse(options.issuer) ? endpointProblem(options.issuer, insecure) : 'must be a URL'
    if (issuerProblem !== undefined) throw new ConfigError([{ path: 'oauth2.issuer', message: issuerProblem }])
    let metadata: Readonly<oc.ServerMetadata>
    try {
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- loopback only, checked above
      const execute = insecure ? { execute: [oc.allowInsecureRequests] } : {}
      const config = await oc.discovery(new URL(options.issuer), options.clientId, undefined, undefined, { timeout: timeoutMs / 1000, ...execute })
      metadata = config.serverMetadata()
    } catch (err) {
      throw providerError(err, options.provider, 'discovery', timeoutMs)
    }
    const methods = metadata.code_challenge_methods_supported
    if (Array.isArray(methods) && !methods.includes('S256')) throw new ConfigError([{ path: 'oauth2.issuer', message: 'the provider does not support PKCE S256' }])
    if (metadata.authorization_endpoint === undefined || metadata.token_endpoint === undefined) {
      throw new ConfigError([{ path: 'oauth2.issuer', message: 'the discovery document lacks an authorization or token endpoint' }])
    }
    return new OAuth2Client({
      ...options,
      authorizationEndpoint: metadata.authorization_endpoint,
      tokenEndpoint: metadata.token_endpoint,
      ...(metadata.userinfo_endpoint === undefined ? {} : { userinfoEndpoint: metadata.userinfo_endpoint }),
      ...(metadata.revocation_endpoint === undefined ? {} : { revocationEndpoint: metadata.revocation_endpoint }),
      issParameterSupported: metadata.authorization_response_iss_parameter_supported === true,
    })
  }

  /**
   * Throws `ConfigError` when `redirectUri` or `scopes` break the generic or the provider's
   * rules; plugins call it at registration so a bad deployment fails at start-up.
   */
  assertAuthorizationSettings(settings: { redirectUri: string; scopes: readonly string[] }, path = 'oauth2'): void {
    const issues: ConfigIssue[] = []
    const redirect = this.#redirectUriProblem(settings.redirectUri)
    if (redirect !== undefined) issues.push({ path: `${path}.redirectUri`, message: redirect })
    const scopes = this.#scopesProblem(settings.scopes)
    if (scopes !== undefined) issues.push({ path: `${path}.scopes`, message: scopes })
    if (issues.length > 0) throw new ConfigError(issues)
  }

  /**
   * A new authorization request: fresh `state`, PKCE verifier (sent as its S256 challenge)
   * and, with `openid`, a `nonce`. Keep everything but `url` server-side until the callback.
   *
   * @example
   * const { url, ...pending } = await client.authorizationRequest({ scopes: ['user-read-email'], redirectUri })
   */
  async authorizationRequest(request: { scopes: readonly string[]; redirectUri: string; params?: Readonly<Record<string, string>> }): Promise<AuthorizationRequest> {
    this.assertAuthorizationSettings(request)
    const extra = request.params ?? {}
    const reserved = Object.keys(extra).filter((k) => RESERVED_PARAMS.has(k))
    if (reserved.length > 0) throw new ConfigError([{ path: 'oauth2.params', message: `may not set ${reserved.join(', ')}; the client sets them` }])
    const scopes = [...new Set(request.scopes)]
    const state = oc.randomState()
    const codeVerifier = oc.randomPKCECodeVerifier()
    const nonce = scopes.includes('openid') ? oc.randomNonce() : undefined
    const parameters: Record<string, string> = {
      ...extra,
      response_type: 'code',
      redirect_uri: request.redirectUri,
      state,
      code_challenge: await oc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    }
    if (scopes.length > 0) parameters.scope = scopes.join(' ')
    if (nonce !== undefined) parameters.nonce = nonce
    const url = oc.buildAuthorizationUrl(this.#config, parameters).href
    return nonce === undefined ? { url, state, codeVerifier, redirectUri: request.redirectUri, scopes } : { url, state, codeVerifier, nonce, redirectUri: request.redirectUri, scopes }
  }

  /**
   * Completes the flow from the callback's query (a URL, its search string or its params):
   * checks `state` against `pending` in constant time, turns `error=access_denied` into
   * `ERR_AUTH_OAUTH_DENIED`, checks `iss`, redeems the code with the PKCE verifier and, for
   * OIDC, validates the ID token (nonce included). The redirect URI sent to the token endpoint
   * is `pending.redirectUri`, never one derived from the incoming request.
   */
  async exchange(callback: URL | URLSearchParams | string, pending: PendingAuthorization): Promise<ExchangeResult> {
    const params = callback instanceof URL ? callback.searchParams : callback instanceof URLSearchParams ? callback : new URLSearchParams(callback)
    for (const name of ['state', 'code', 'error', 'iss']) {
      if (params.getAll(name).length > 1) throw stateInvalid(`the callback repeats ${name}`)
    }
    const state = params.get('state')
    if (state === null || !constantTimeEqual(state, pending.state)) throw stateInvalid(state === null ? 'the callback has no state' : 'the state does not match the pending authorization')
    const error = params.get('error')
    if (error !== null) {
      if (error === 'access_denied') throw new BackbeatError('ERR_AUTH_OAUTH_DENIED', { params: { provider: this.provider } })
      throw new BackbeatError('ERR_AUTH_OAUTH_PROVIDER_FAILED', { params: { provider: this.provider, reason: `${this.provider} authorization response: error=${printable(error)}` } })
    }
    const iss = params.get('iss')
    if (iss !== null ? iss !== this.issuer : this.#options.issParameterSupported) throw stateInvalid(iss === null ? 'the callback has no iss although the provider sends it (RFC 9207)' : 'the callback comes from another issuer (RFC 9207)')
    const code = params.get('code')
    if (code === null || code === '') throw stateInvalid('the callback has no code')

    const currentUrl = new URL(pending.redirectUri)
    currentUrl.search = params.toString()
    const oidc = pending.nonce !== undefined
    const checks: oc.AuthorizationCodeGrantChecks = { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, idTokenExpected: oidc }
    if (pending.nonce !== undefined) checks.expectedNonce = pending.nonce
    let response: Awaited<ReturnType<typeof oc.authorizationCodeGrant>>
    try {
      response = await oc.authorizationCodeGrant(this.#config, currentUrl, checks)
    } catch (err) {
      throw providerError(err, this.provider, 'token', this.timeoutMs)
    }
    const tokens = this.#tokens(response)
    const claims = oidc ? response.claims() : undefined
    return {
      tokens: { ...tokens, scopes: tokens.scopes ?? pending.scopes },
      ...(claims === undefined ? {} : { claims }),
    }
  }

  /**
   * Redeems a refresh token. `invalid_grant` (revoked, expired, or a rotated token used
   * twice) is `ERR_AUTH_PROVIDER_RELINK_REQUIRED`: the user must sign in with the provider again.
   */
  async refresh(refreshToken: string): Promise<RefreshedTokens> {
    if (typeof refreshToken !== 'string' || refreshToken === '') throw new TypeError('refreshToken must be a non-empty string')
    let response: Awaited<ReturnType<typeof oc.refreshTokenGrant>>
    try {
      response = await oc.refreshTokenGrant(this.#config, refreshToken)
    } catch (err) {
      throw providerError(err, this.provider, 'refresh', this.timeoutMs)
    }
    return this.#tokens(response)
  }

  /**
   * The signed-in account's profile: from the provider's profile endpoint when one is
   * configured (Spotify's `/v1/me`), else from OIDC UserInfo (whose `sub` must equal the ID
   * token's), else from the ID token claims alone.
   */
  async fetchUserInfo(accessToken: string, idTokenClaims?: IdTokenClaims): Promise<OAuthProfile> {
    if (this.#profile !== undefined) return this.#fetchProfile(this.#profile, accessToken)
    if (this.#options.userinfoEndpoint !== undefined) {
      let info: oc.UserInfoResponse
      try {
        // Without an ID token there is no subject to compare with: plain OAuth providers
        // identify the account through UserInfo alone, as their profile endpoint does.
        // eslint-disable-next-line @typescript-eslint/no-deprecated
        info = await oc.fetchUserInfo(this.#config, accessToken, idTokenClaims?.sub ?? oc.skipSubjectCheck)
      } catch (err) {
        throw providerError(err, this.provider, 'userinfo', this.timeoutMs)
      }
      return standardProfile(info, this.provider)
    }
    if (idTokenClaims !== undefined) return standardProfile(idTokenClaims, this.provider)
    throw new BackbeatError('ERR_AUTH_OAUTH_PROVIDER_FAILED', { params: { provider: this.provider, reason: `${this.provider} has no profile endpoint, no userinfo endpoint and no ID token` } })
  }

  /**
   * Revokes a token at the provider (RFC 7009) and resolves true, or resolves false when the
   * provider has no revocation endpoint (Spotify has none: users revoke apps in their account).
   */
  async revoke(token: string, hint?: 'access_token' | 'refresh_token'): Promise<boolean> {
    if (this.#options.revocationEndpoint === undefined) return false
    try {
      await oc.tokenRevocation(this.#config, token, hint === undefined ? undefined : { token_type_hint: hint })
    } catch (err) {
      throw providerError(err, this.provider, 'revocation', this.timeoutMs)
    }
    return true
  }

  #tokens(response: oc.TokenEndpointResponse): Omit<RefreshedTokens, 'scopes'> & { scopes?: readonly string[] } {
    const scope = typeof response.scope === 'string' ? response.scope.split(' ').filter((s) => s !== '') : undefined
    const expiresIn = response.expires_in
    return {
      accessToken: response.access_token,
      tokenType: response.token_type,
      ...(typeof response.refresh_token === 'string' && response.refresh_token !== '' ? { refreshToken: response.refresh_token } : {}),
      ...(typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn >= 0 ? { expiresAt: this.#now() + expiresIn * 1000 } : {}),
      ...(scope === undefined ? {} : { scopes: scope }),
      ...(typeof response.id_token === 'string' ? { idToken: response.id_token } : {}),
    }
  }

  async #fetchProfile(endpoint: ProfileEndpoint, accessToken: string): Promise<OAuthProfile> {
    let body: unknown
    try {
      const response = await oc.fetchProtectedResource(this.#config, accessToken, new URL(endpoint.url), 'GET', undefined, new Headers({ accept: 'application/json' }))
      if (!response.ok) {
        await response.body?.cancel()
        throw failed(this.provider, `${ENDPOINT.profile} answered ${response.status}`)
      }
      body = await readJson(response, MAX_PROFILE_BYTES)
    } catch (err) {
      throw providerError(err, this.provider, 'profile', this.timeoutMs)
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw failed(this.provider, `${ENDPOINT.profile} did not answer a JSON object`)
    try {
      return endpoint.map(body as Record<string, unknown>)
    } catch (err) {
      throw failed(this.provider, `${ENDPOINT.profile} answered an unusable profile: ${err instanceof Error ? err.message : String(err)}`, err)
    }
  }

  #redirectUriProblem(uri: string): string | undefined {
    if (typeof uri !== 'string' || !URL.canParse(uri)) return 'must be an absolute URL'
    const url = new URL(uri)
    if (url.hash !== '' || uri.includes('#')) return 'must not have a fragment (RFC 6749 section 3.1.2)'
    if (url.username !== '' || url.password !== '') return 'must not carry credentials'
    // The code exchange sends back the redirect URI rebuilt from the callback: a query of its
    // own could not be told apart from the provider's parameters.
    if (url.search !== '') return 'must not have a query string'
    if (url.protocol === 'http:') {
      if (!LOOPBACK_HOSTS.has(url.hostname) && url.hostname !== 'localhost') return 'must use https (plain http only on a loopback address, RFC 8252 section 7.3)'
    } else if (url.protocol !== 'https:') return 'must use https'
    return this.#redirectUriRule?.(url)
  }

  #scopesProblem(scopes: readonly string[]): string | undefined {
    if (!Array.isArray(scopes)) return 'must be a list of scope names'
    const bad = scopes.filter((s) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))
    if (bad.length > 0) return `are not scope tokens (RFC 6749 section 3.3): ${bad.map((s) => JSON.stringify(s)).join(', ')}`
    return this.#scopeRule?.(scopes)
  }
}

/** Why an endpoint URL is not acceptable, or undefined. */
function endpointProblem(url: string, allowInsecure: boolean): string | undefined {
  if (!URL.canParse(url)) return 'must be an absolute URL'
  const parsed = new URL(url)
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials'
  if (parsed.protocol === 'https:') return undefined
  if (parsed.protocol !== 'http:') return 'must use https'
  if (!allowInsecure) return 'must use https (allowInsecureRequests permits http on loopback addresses, for tests)'
  if (!LOOPBACK_HOSTS.has(parsed.hostname)) return 'may use plain http only on 127.0.0.1 or [::1] (allowInsecureRequests is for tests against a local provider)'
  return undefined
}

function standardProfile(claims: Readonly<Record<string, unknown>>, provider: string): OAuthProfile {
  const sub = claims.sub
  if (typeof sub !== 'string' || sub === '') throw failed(provider, 'profile has no sub')
  const name = typeof claims.name === 'string' ? claims.name : typeof claims.preferred_username === 'string' ? claims.preferred_username : undefined
  return {
    subject: sub,
    ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
    ...(typeof claims.email_verified === 'boolean' ? { emailVerified: claims.email_verified } : {}),
    ...(name === undefined ? {} : { name }),
    claims: Object.freeze({ ...claims }),
  }
}

/** Reads a JSON body of at most `limit` bytes (a hostile endpoint cannot exhaust memory). */
async function readJson(response: Response, limit: number): Promise<unknown> {
  const type = response.headers.get('content-type') ?? ''
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type)) {
    await response.body?.cancel()
    throw new Error(`expected JSON, got ${type === '' ? 'no content type' : printable(type)}`)
  }
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel()
    throw new Error(`the body exceeds ${limit} bytes`)
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = response.body?.getReader()
  if (reader === undefined) throw new Error('empty body')
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new Error(`the body exceeds ${limit} bytes`)
    }
    chunks.push(value)
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
}

function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}

/** Provider-supplied text for logs: printable ASCII, bounded. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)
}

function stateInvalid(reason: string): BackbeatError {
  return new BackbeatError('ERR_AUTH_OAUTH_STATE_INVALID', { params: { reason } })
}

function failed(provider: string, reason: string, cause?: unknown): BackbeatError {
  return new BackbeatError('ERR_AUTH_OAUTH_PROVIDER_FAILED', { params: { provider, reason: `${provider} ${reason}` }, cause })
}

/** Maps what openid-client and fetch throw to the catalogue's codes (see {@link OAuth2Client}). */
function providerError(err: unknown, provider: string, phase: Phase, timeoutMs: number): Error {
  if (err instanceof BackbeatError) return err
  const endpoint = ENDPOINT[phase]
  if (err instanceof oc.ResponseBodyError) {
    if (err.error === 'invalid_grant' && phase === 'refresh') return new BackbeatError('ERR_AUTH_PROVIDER_RELINK_REQUIRED', { params: { provider }, cause: err })
    if (err.error === 'invalid_grant' && phase === 'token') return new BackbeatError('ERR_AUTH_OAUTH_STATE_INVALID', { params: { reason: 'the provider refused the code (invalid, expired, already used, or PKCE mismatch)' }, cause: err })
    return failed(provider, `${endpoint} answered ${err.status} error=${printable(err.error)}`, err)
  }
  if (err instanceof oc.AuthorizationResponseError) {
    if (err.error === 'access_denied') return new BackbeatError('ERR_AUTH_OAUTH_DENIED', { params: { provider }, cause: err })
    return failed(provider, `${endpoint}: error=${printable(err.error)}`, err)
  }
  if (err instanceof oc.WWWAuthenticateChallengeError) return failed(provider, `${endpoint} answered ${err.status} with a ${err.cause[0]?.scheme ?? 'WWW-Authenticate'} challenge`, err)
  if (err instanceof oc.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return failed(provider, `${endpoint} did not answer within ${timeoutMs} ms`, err)
    const cause: unknown = err.cause
    if (cause instanceof Response) return failed(provider, `${endpoint} answered ${cause.status} (${err.message})`, err)
    // An ID token minted for another authorization request (a replayed or injected code).
    const claim = (cause as { cause?: { claim?: unknown } } | undefined)?.cause?.claim
    if (phase === 'token' && claim === 'nonce') return new BackbeatError('ERR_AUTH_OAUTH_STATE_INVALID', { params: { reason: 'the ID token nonce does not match the pending authorization' }, cause: err })
    return failed(provider, `${endpoint}: ${err.message}`, err)
  }
  if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) return failed(provider, `${endpoint} did not answer within ${timeoutMs} ms`, err)
  if (err instanceof TypeError) {
    const code = (err as { code?: unknown }).code
    // openid-client's argument checks: a bug in the caller, not an outage.
    if (code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_ARG_VALUE') return err
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined
    const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : err.message
    return failed(provider, `${endpoint} is unreachable (${printable(detail)})`, err)
  }
  return failed(provider, `${endpoint}: ${err instanceof Error ? printable(err.message) : 'unexpected failure'}`, err)
}
