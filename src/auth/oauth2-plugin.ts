import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import cookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BackbeatError, ConfigError, systemClock, type Clock, type ConfigIssue, type SecurityEventSink } from '../core/index.ts'
import type { RouteRateLimit } from '../ratelimit/index.ts'
import type { KeyValueStore } from '../stores/index.ts'
import type { OAuth2Client, OAuthProfile, OAuthTokens, PendingAuthorization } from './oauth2-client.ts'
import type { TokenVault } from './token-vault.ts'

/** Options of {@link oauthLoginPlugin}. */
export interface OAuthLoginPluginOptions {
  /** The provider's name; must equal `client.provider` (`spotify`). */
  provider: string
  client: OAuth2Client
  /** The callback URL registered at the provider: this plugin's `<prefix>/callback`, absolute. */
  redirectUri: string
  scopes: readonly string[]
  /** Holds pending authorizations (state, PKCE verifier, nonce) until the callback; Redis when several instances run. */
  stateStore: KeyValueStore
  /**
   * Creates or links the user and issues the app's own tokens; what it resolves is the
   * callback's JSON body. Its errors propagate (a `BackbeatError` becomes problem+json).
   */
  onLogin: (profile: OAuthProfile, tokens: OAuthTokens, request: FastifyRequest) => Promise<unknown>
  /** Stores the provider tokens after `onLogin`, under `vaultUserId`. */
  vault?: TokenVault
  /** The vault's user id for this sign-in, given the profile and what `onLogin` resolved (default: the provider subject). */
  vaultUserId?: (profile: OAuthProfile, loginResult: unknown) => string
  /** `Secure` on the browser-binding cookie (default true; false only for local http). */
  cookieSecure?: boolean
  /** How long a started sign-in may take, ms (default 10 minutes). */
  stateTtlMs?: number
  /** Extra authorization parameters, e.g. `{ show_dialog: 'true' }` for Spotify. */
  authorizationParams?: Readonly<Record<string, string>>
  /** `config.rateLimit` of both routes (default: the app's default policies). */
  rateLimit?: false | RouteRateLimit
  /** Prefix of pending-authorization keys in `stateStore` (default `backbeat:oauth-state:`). */
  stateKeyPrefix?: string
  /** Receives `oauth_callback_rejected` events (bad or replayed state, a callback from another browser). */
  securityEvents?: SecurityEventSink
  /** Timestamps of security events. */
  now?: Clock
}

interface PendingRecord extends PendingAuthorization {
  /** SHA-256 of the browser-binding cookie. */
  readonly binding: string
}

const STATE = /^[A-Za-z0-9_-]{16,128}$/
const BINDING = /^[A-Za-z0-9_-]{43}$/

/**
 * Sign-in with an OAuth 2.0 / OIDC provider (the authorization code flow with PKCE), as two
 * routes under the registration prefix:
 * - `GET <prefix>/login` answers 302 to the provider's authorize URL. The state, PKCE verifier
 *   and nonce stay server-side in `stateStore` for `stateTtlMs`, keyed by the random state, and
 *   are bound to this browser by an HttpOnly, SameSite=Lax cookie whose SHA-256 is stored with
 *   them: a callback carried into another browser (login CSRF) fails.
 * - `GET <prefix>/callback` consumes the state once (a replay fails), checks the cookie in
 *   constant time, exchanges the code, reads the profile, calls `onLogin`, stores the provider
 *   tokens in the vault, and answers what `onLogin` resolved as JSON (`Cache-Control: no-store`).
 *
 * Failures are `BackbeatError`s rendered as problem+json by the app's error handler:
 * `ERR_AUTH_OAUTH_STATE_INVALID` (400), `ERR_AUTH_OAUTH_DENIED` (403),
 * `ERR_AUTH_OAUTH_PROVIDER_FAILED` (502). Both routes are `config.auth: false`.
 * Not wrapped in fastify-plugin: register it with a `prefix`.
 *
 * @example
 * await app.register(oauthLoginPlugin, {
 *   prefix: '/v1/auth/spotify', provider: 'spotify', client: spotify, scopes: ['user-read-email'],
 *   redirectUri: 'https://music.example.com/v1/auth/spotify/callback', stateStore: redisKv, vault,
 *   onLogin: async (profile) => issueTokensFor(await users.linkSpotify(profile)),
 *   vaultUserId: (_profile, result) => (result as { userId: string }).userId,
 * })
 */
export async function oauthLoginPlugin(app: FastifyInstance, options: OAuthLoginPluginOptions): Promise<void> {
  const settings = validate(options)
  const { client, provider, stateStore, onLogin, vault, securityEvents } = options
  const now = options.now ?? systemClock
  const cookieName = settings.cookieSecure ? `__Host-backbeat-oauth-${provider}` : `backbeat-oauth-${provider}`
  const cookieOptions = { httpOnly: true, secure: settings.cookieSecure, sameSite: 'lax' as const, path: '/', maxAge: Math.ceil(settings.stateTtlMs / 1000) }
  const stateKey = (state: string): string => settings.stateKeyPrefix + provider + ':' + hash('sha256', state, 'base64url')
  const routeConfig = { auth: false as const, ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }) }

  if (!app.hasRequestDecorator('cookies')) await app.register(cookie)

  const reject = (request: FastifyRequest, reason: string, severity: 'low' | 'medium'): BackbeatError => {
    securityEvents?.({ type: 'oauth_callback_rejected', severity, at: now(), requestId: request.id, clientIp: request.ip, details: { provider, reason } })
    return new BackbeatError('ERR_AUTH_OAUTH_STATE_INVALID', { params: { reason } })
  }

  // No automatic HEAD twins: a HEAD from a link prefetcher would spend the state and the code.
  app.get('/login', { config: routeConfig, exposeHeadRoute: false }, async (request: FastifyRequest, reply: FastifyReply) => {
    // One binding per browser, reused across tabs, so two sign-ins started in parallel both finish.
    const existing = request.cookies[cookieName]
    const binding = existing !== undefined && BINDING.test(existing) ? existing : randomBytes(32).toString('base64url')
    const { url, ...pending } = await client.authorizationRequest({ scopes: settings.scopes, redirectUri: settings.redirectUri, params: settings.authorizationParams })
    const record: PendingRecord = { ...pending, binding: digest(binding) }
    await stateStore.set(stateKey(pending.state), JSON.stringify(record), settings.stateTtlMs)
    reply.setCookie(cookieName, binding, cookieOptions)
    reply.header('cache-control', 'no-store')
    return reply.redirect(url, 302)
  })

  app.get('/callback', { config: routeConfig, exposeHeadRoute: false }, async (request: FastifyRequest, reply: FastifyReply) => {
    const rawUrl = request.raw.url ?? ''
    const question = rawUrl.indexOf('?')
    const params = new URLSearchParams(question === -1 ? '' : rawUrl.slice(question + 1))
    const states = params.getAll('state')
    const state = states[0]
    if (states.length !== 1 || state === undefined || !STATE.test(state)) throw reject(request, 'the callback has no well-formed state', 'low')

    // Single use: whoever deletes the key owns the sign-in; a replay or a race finds it gone.
    const key = stateKey(state)
    const stored = await stateStore.get(key)
    if (stored === undefined || !(await stateStore.delete(key))) throw reject(request, 'the state is unknown, expired or already used', 'low')
    const pending = parseRecord(stored)
    if (pending === undefined) throw reject(request, 'the pending authorization is unreadable', 'low')

    const presented = request.cookies[cookieName]
    if (presented === undefined || !BINDING.test(presented) || !sameDigest(digest(presented), pending.binding)) {
      throw reject(request, 'the callback did not come from the browser that started the sign-in', 'medium')
    }

    const { tokens, claims } = await client.exchange(params, pending)
    const profile = await client.fetchUserInfo(tokens.accessToken, claims)
    const result = await onLogin(profile, tokens, request)
    if (vault !== undefined) {
      const userId = options.vaultUserId === undefined ? profile.subject : options.vaultUserId(profile, result)
      await vault.save(userId, provider, tokens)
    }
    reply.header('cache-control', 'no-store')
    // The callback URL carries the code: never let it leak to another origin in a Referer.
    reply.header('referrer-policy', 'no-referrer')
    if (result === undefined) return reply.code(204).send()
    return result
  })
}

interface Settings {
  redirectUri: string
  scopes: readonly string[]
  cookieSecure: boolean
  stateTtlMs: number
  stateKeyPrefix: string
  authorizationParams: Readonly<Record<string, string>>
}

function validate(options: OAuthLoginPluginOptions): Settings {
  const issues: ConfigIssue[] = []
  const path = `oauth.${options.provider}`
  if (typeof options.provider !== 'string' || options.provider !== (options.client as OAuth2Client | undefined)?.provider) {
    issues.push({ path: `${path}.provider`, message: 'must equal the client\'s provider name' })
  }
  if (typeof (options.stateStore as KeyValueStore | undefined)?.delete !== 'function') issues.push({ path: `${path}.stateStore`, message: 'must be a KeyValueStore' })
  if (typeof (options.onLogin as unknown) !== 'function') issues.push({ path: `${path}.onLogin`, message: 'must be a function' })
  const stateTtlMs = options.stateTtlMs ?? 600_000
  if (!Number.isSafeInteger(stateTtlMs) || stateTtlMs < 60_000 || stateTtlMs > 3_600_000) issues.push({ path: `${path}.stateTtlMs`, message: 'must be an integer from 60000 (1 minute) to 3600000 (1 hour)' })
  const stateKeyPrefix = options.stateKeyPrefix ?? 'backbeat:oauth-state:'
  if (stateKeyPrefix.length > 64) issues.push({ path: `${path}.stateKeyPrefix`, message: 'must be at most 64 characters' })
  const cookieSecure = options.cookieSecure ?? true
  if (!cookieSecure && URL.canParse(options.redirectUri) && new URL(options.redirectUri).protocol === 'https:') {
    issues.push({ path: `${path}.cookieSecure`, message: 'must be true when the redirect URI uses https' })
  }
  if (issues.length > 0) throw new ConfigError(issues)
  options.client.assertAuthorizationSettings({ redirectUri: options.redirectUri, scopes: options.scopes }, path)
  return { redirectUri: options.redirectUri, scopes: [...options.scopes], cookieSecure, stateTtlMs, stateKeyPrefix, authorizationParams: { ...options.authorizationParams } }
}

function parseRecord(text: string): PendingRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<PendingRecord>
    const { state, codeVerifier, redirectUri, scopes, binding, nonce } = value
    if (typeof state !== 'string' || typeof codeVerifier !== 'string' || typeof redirectUri !== 'string' || typeof binding !== 'string' || !Array.isArray(scopes)) return undefined
    const base = { state, codeVerifier, redirectUri, binding, scopes: scopes.filter((s): s is string => typeof s === 'string') }
    return typeof nonce === 'string' ? { ...base, nonce } : base
  } catch {
    return undefined
  }
}

function sameDigest(actual: string, expected: string): boolean {
  const a = Buffer.from(actual)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

function digest(value: string): string {
  return hash('sha256', value, 'base64url')
}
