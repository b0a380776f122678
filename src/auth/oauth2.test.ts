import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider'
import { quietApp } from '../../test/helpers/quiet-app.ts'
import { BackbeatError, ConfigError, type SecurityEvent } from '../core/index.ts'
import { MemoryKeyValueStore } from '../stores/index.ts'
import { OAuth2Client, type OAuthProfile, type OAuthTokens } from './oauth2-client.ts'
import { oauthLoginPlugin } from './oauth2-plugin.ts'
import { SecretBox } from './secret-box.ts'
import { spotifyClient, spotifyRedirectUriProblem } from './spotify.ts'
import { MemoryVaultStore, TokenVault } from './token-vault.ts'

/*
 * Everything here runs against a real OpenID Connect server, oidc-provider, listening on
 * 127.0.0.1 in this process: PKCE required, refresh tokens rotated on every use (a reused
 * one revokes the grant), consent given by a tiny interaction handler, and a Spotify-like
 * `/v1/me` that introspects the access token it is given.
 */

const SPOTIFY_SCOPES = ['user-read-email', 'playlist-read-private']
const APP_REDIRECT = 'http://127.0.0.1:8888/v1/auth/spotify/callback'
const OIDC_REDIRECT = 'http://127.0.0.1:8888/v1/auth/acme/callback'
const SPOTIFY_CLIENT = { clientId: 'spotify-app', clientSecret: randomBytes(24).toString('base64url') }
const OIDC_CLIENT = { clientId: 'oidc-app', clientSecret: randomBytes(24).toString('base64url') }
const COOKIE = 'backbeat-oauth-spotify'

/** oidc-provider's storage, in memory (its own default warns on every start). */
function memoryAdapter(): (name: string) => Adapter {
  const rows = new Map<string, { payload: AdapterPayload; expiresAt: number }>()
  return (name) => {
    const key = (id: string): string => `${name}:${id}`
    const live = (id: string): AdapterPayload | undefined => {
      const row = rows.get(key(id))
      if (row === undefined || row.expiresAt <= Date.now()) return undefined
      return row.payload
    }
    const where = (match: (p: AdapterPayload) => boolean): AdapterPayload | undefined => {
      for (const [k, row] of rows) if (k.startsWith(`${name}:`) && row.expiresAt > Date.now() && match(row.payload)) return row.payload
      return undefined
    }
    return {
      upsert: async (id, payload, expiresIn) => {
        rows.set(key(id), { payload, expiresAt: expiresIn === undefined ? Infinity : Date.now() + expiresIn * 1000 })
      },
      find: async (id) => live(id),
      findByUid: async (uid) => where((p) => p.uid === uid),
      findByUserCode: async (code) => where((p) => p.userCode === code),
      consume: async (id) => {
        const payload = live(id)
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000)
      },
      destroy: async (id) => {
        rows.delete(key(id))
      },
      revokeByGrantId: async (grantId) => {
        for (const [k, row] of rows) if (row.payload.grantId === grantId) rows.delete(k)
      },
    }
  }
}

interface TestProvider {
  issuer: string
  provider: Provider
  /** Token endpoint requests so far. */
  tokenRequests(): number
  /** What the next interaction does. */
  decision: 'consent' | 'deny'
  accountId: string
  close(): Promise<void>
}

async function startProvider(): Promise<TestProvider> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end()
  let tokenRequests = 0
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/api/token') === true) tokenRequests++
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const state: Pick<TestProvider, 'decision' | 'accountId'> = { decision: 'consent', accountId: 'listener-1' }
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    clients: [
      { client_id: SPOTIFY_CLIENT.clientId, client_secret: SPOTIFY_CLIENT.clientSecret, redirect_uris: [APP_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: OIDC_CLIENT.clientId, client_secret: OIDC_CLIENT.clientSecret, redirect_uris: [OIDC_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic' },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    routes: { authorization: '/authorize', token: '/api/token', userinfo: '/userinfo', revocation: '/revoke', jwks: '/jwks' },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId } },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'email', ...SPOTIFY_SCOPES],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86_400, Interaction: 600, Session: 3600, Grant: 86_400 },
  })
  const callback = provider.callback()

  /** Logs the configured account in and consents to everything asked (or denies). */
  const interact = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res)
    if (state.decision === 'deny') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false })
    } else if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: state.accountId } }, { mergeWithLastSubmission: false })
    } else {
      const grant = details.grantId === undefined ? new provider.Grant({ accountId: details.session?.accountId ?? '', clientId: String(details.params.client_id) }) : await provider.Grant.find(details.grantId)
      assert.ok(grant !== undefined)
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] }
      if (missing.missingOIDCScope !== undefined) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
      if (missing.missingOIDCClaims !== undefined) grant.addOIDCClaims(missing.missingOIDCClaims)
      const grantId = await grant.save()
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
    }
  }

  /** Spotify's `GET /v1/me`, answering for the account the access token belongs to. */
  const me = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const token = await provider.AccessToken.find((req.headers.authorization ?? '').replace(/^Bearer /i, ''))
    if (token === undefined || token.isExpired) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { status: 401, message: 'Invalid access token' } }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: token.accountId, display_name: 'Listener One', email: `${token.accountId}@example.test`, country: 'SE', product: 'premium' }))
  }

  handler = (req, res) => {
    const route = req.url ?? ''
    const work = route.startsWith('/interaction/') ? interact(req, res) : route === '/v1/me' ? me(req, res) : Promise.resolve(callback(req, res))
    work.catch((err: unknown) => {
      res.writeHead(500).end(String(err))
    })
  }
  return {
    issuer,
    provider,
    tokenRequests: () => tokenRequests,
    get decision() {
      return state.decision
    },
    set decision(value) {
      state.decision = value
    },
    get accountId() {
      return state.accountId
    },
    set accountId(value) {
      state.accountId = value
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * A browser at the provider: follows redirects from `url` with a cookie jar until the
 * provider sends it to `redirectUri`, and returns that callback URL.
 */
async function browse(url: string, redirectUri: string): Promise<URL> {
  const jar = new Map<string, string>()
  let next = new URL(url)
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(next, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const at = pair.indexOf('=')
      jar.set(pair.slice(0, at), pair.slice(at + 1))
    }
    const location = res.headers.get('location')
    await res.body?.cancel()
    assert.ok(location !== null, `hop ${hop} to ${next.pathname} answered ${res.status} without a redirect`)
    next = new URL(location, next)
    if (next.href.startsWith(redirectUri)) return next
  }
  assert.fail('the provider never redirected back')
}

/** The cookie a response set, as `name=value` for the next request. */
function cookieFrom(setCookie: string | string[] | undefined, name: string): string {
  const lines = Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie]
  const line = lines.find((l) => l.startsWith(`${name}=`))
  assert.ok(line !== undefined, `no ${name} cookie in ${JSON.stringify(lines)}`)
  return line.split(';')[0] as string
}

function problem(body: string): { code: string; status: number } {
  return JSON.parse(body) as { code: string; status: number }
}

function errorCode(err: unknown): string {
  assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
  return err.code
}

describe('OAuth2 with PKCE against a real OIDC server', () => {
  let idp: TestProvider
  let clock = Date.now()
  const now = (): number => clock
  const box = new SecretBox({ keys: { 1: randomBytes(32) }, current: 1 })

  before(async () => {
    idp = await startProvider()
  })
  after(async () => {
    await idp.close()
  })

  const spotify = (options: { timeoutMs?: number; accountsBaseUrl?: string } = {}): OAuth2Client =>
    spotifyClient({ ...SPOTIFY_CLIENT, accountsBaseUrl: options.accountsBaseUrl ?? idp.issuer, apiBaseUrl: idp.issuer, allowInsecureRequests: true, now, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) })

  describe('the Spotify sign-in routes', () => {
    let app: FastifyInstance
    let vault: TokenVault
    const store = new MemoryVaultStore()
    const events: SecurityEvent[] = []
    const logins: Array<{ profile: OAuthProfile; tokens: OAuthTokens }> = []

    before(async () => {
      const client = spotify()
      vault = new TokenVault({ store, box, clients: { spotify: client }, now })
      app = await quietApp()
      await app.register(oauthLoginPlugin, {
        prefix: '/v1/auth/spotify',
        provider: 'spotify',
        client,
        redirectUri: APP_REDIRECT,
        scopes: SPOTIFY_SCOPES,
        stateStore: new MemoryKeyValueStore(),
        cookieSecure: false,
        vault,
        vaultUserId: (_profile, result) => (result as { user: string }).user,
        securityEvents: (e) => events.push(e),
        onLogin: async (profile, tokens) => {
          logins.push({ profile, tokens })
          return { user: `user-of-${profile.subject}`, accessToken: 'our-own-jwt' }
        },
      })
      await app.ready()
    })
    after(async () => {
      await app.close()
    })

    /** Starts a sign-in; returns the callback URL the provider sent the browser to, and the binding cookie. */
    async function signIn(): Promise<{ callback: URL; cookie: string }> {
      const res = await app.inject({ url: '/v1/auth/spotify/login' })
      assert.equal(res.statusCode, 302, res.body)
      return { callback: await browse(String(res.headers.location), APP_REDIRECT), cookie: cookieFrom(res.headers['set-cookie'], COOKIE) }
    }

    const callbackPath = (callback: URL): string => `/v1/auth/spotify/callback${callback.search}`

    it('redirects to the authorize endpoint with S256 PKCE, a state, the scopes, and a browser-binding cookie', async () => {
      const res = await app.inject({ url: '/v1/auth/spotify/login' })
      assert.equal(res.statusCode, 302)
      assert.equal(res.headers['cache-control'], 'no-store')
      const location = new URL(String(res.headers.location))
      assert.equal(location.origin + location.pathname, `${idp.issuer}/authorize`)
      const q = location.searchParams
      assert.equal(q.get('response_type'), 'code')
      assert.equal(q.get('client_id'), SPOTIFY_CLIENT.clientId)
      assert.equal(q.get('redirect_uri'), APP_REDIRECT)
      assert.equal(q.get('scope'), SPOTIFY_SCOPES.join(' '))
      assert.equal(q.get('code_challenge_method'), 'S256')
      assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
      assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/)
      assert.equal(q.has('nonce'), false, 'Spotify is OAuth 2.0 only: no nonce')
      const setCookie = String(res.headers['set-cookie'])
      assert.match(setCookie, /^backbeat-oauth-spotify=[A-Za-z0-9_-]{43};/)
      assert.match(setCookie, /HttpOnly/)
      assert.match(setCookie, /SameSite=Lax/)
      assert.match(setCookie, /Path=\//)
      assert.match(setCookie, /Max-Age=600/)
    })

    it('completes the round trip: login, authorize, consent, callback, tokens in the vault, our JSON back', async () => {
      const hits = idp.tokenRequests()
      const { callback, cookie } = await signIn()
      assert.ok(callback.searchParams.has('code'))
      const res = await app.inject({ url: callbackPath(callback), headers: { cookie } })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json(), { user: 'user-of-listener-1', accessToken: 'our-own-jwt' })
      assert.equal(res.headers['cache-control'], 'no-store')
      assert.equal(res.headers['referrer-policy'], 'no-referrer')
      assert.equal(idp.tokenRequests(), hits + 1)

      const login = logins.at(-1)
      assert.ok(login !== undefined)
      assert.equal(login.profile.subject, 'listener-1')
      assert.equal(login.profile.name, 'Listener One')
      assert.equal(login.profile.emailVerified, false, 'Spotify emails are unverified')
      assert.deepEqual([...login.tokens.scopes].sort(), [...SPOTIFY_SCOPES].sort())
      assert.ok(login.tokens.refreshToken !== undefined)
      const stored = await vault.get('user-of-listener-1', 'spotify')
      assert.ok(stored !== undefined)
      assert.equal(stored.accessToken, login.tokens.accessToken)
      assert.equal(stored.refreshToken, login.tokens.refreshToken)
    })

    it('refuses a replayed callback: the state is single use', async () => {
      const { callback, cookie } = await signIn()
      assert.equal((await app.inject({ url: callbackPath(callback), headers: { cookie } })).statusCode, 200)
      const hits = idp.tokenRequests()
      const replay = await app.inject({ url: callbackPath(callback), headers: { cookie } })
      assert.equal(replay.statusCode, 400)
      assert.equal(problem(replay.body).code, 'ERR_AUTH_OAUTH_STATE_INVALID')
      assert.match(String(replay.headers['content-type']), /^application\/problem\+json/)
      assert.equal(idp.tokenRequests(), hits, 'a replay never reaches the provider')
    })

    it('has no HEAD twin of the callback, so a link prefetcher cannot spend the state', async () => {
      const { callback, cookie } = await signIn()
      const head = await app.inject({ method: 'HEAD', url: callbackPath(callback), headers: { cookie } })
      assert.notEqual(head.statusCode, 200)
      assert.equal((await app.inject({ url: callbackPath(callback), headers: { cookie } })).statusCode, 200)
    })

    it('lets exactly one of two simultaneous callbacks with the same state through', async () => {
      const { callback, cookie } = await signIn()
      const results = await Promise.all([app.inject({ url: callbackPath(callback), headers: { cookie } }), app.inject({ url: callbackPath(callback), headers: { cookie } })])
      assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 400])
    })

    it('refuses a tampered, missing or repeated state without spending the real one', async () => {
      const { callback, cookie } = await signIn()
      const state = callback.searchParams.get('state') ?? ''
      const variants = [
        callback.search.replace(`state=${state}`, `state=${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`),
        callback.search.replace(`state=${state}`, 'state=%3Cscript%3E'),
        callback.search.replace(`&state=${state}`, '').replace(`state=${state}&`, ''),
        `${callback.search}&state=${state}`,
      ]
      for (const search of variants) {
        const res = await app.inject({ url: `/v1/auth/spotify/callback${search}`, headers: { cookie } })
        assert.equal(res.statusCode, 400, search)
        assert.equal(problem(res.body).code, 'ERR_AUTH_OAUTH_STATE_INVALID')
      }
      assert.equal((await app.inject({ url: callbackPath(callback), headers: { cookie } })).statusCode, 200)
    })

    it('refuses a callback without the binding cookie, or from another browser (login CSRF), and burns the state', async () => {
      const { callback, cookie } = await signIn()
      const missing = await app.inject({ url: callbackPath(callback) })
      assert.equal(missing.statusCode, 400)
      assert.equal(problem(missing.body).code, 'ERR_AUTH_OAUTH_STATE_INVALID')
      assert.equal(events.at(-1)?.severity, 'medium')
      assert.equal(events.at(-1)?.type, 'oauth_callback_rejected')
      // The attacker's link is now useless to the victim as well: start again.
      assert.equal((await app.inject({ url: callbackPath(callback), headers: { cookie } })).statusCode, 400)

      const attacker = await signIn()
      const victimCookie = cookieFrom((await app.inject({ url: '/v1/auth/spotify/login' })).headers['set-cookie'], COOKIE)
      assert.notEqual(victimCookie, attacker.cookie)
      const csrf = await app.inject({ url: callbackPath(attacker.callback), headers: { cookie: victimCookie } })
      assert.equal(csrf.statusCode, 400)
      assert.equal(problem(csrf.body).code, 'ERR_AUTH_OAUTH_STATE_INVALID')
    })

    it('reuses the browser binding, so two sign-ins started in two tabs both complete', async () => {
      const first = await app.inject({ url: '/v1/auth/spotify/login' })
      const cookie = cookieFrom(first.headers['set-cookie'], COOKIE)
      const second = await app.inject({ url: '/v1/auth/spotify/login', headers: { cookie } })
      assert.equal(cookieFrom(second.headers['set-cookie'], COOKIE), cookie)
      for (const res of [first, second]) {
        const callback = await browse(String(res.headers.location), APP_REDIRECT)
        assert.equal((await app.inject({ url: callbackPath(callback), headers: { cookie } })).statusCode, 200)
      }
    })

    it('answers 403 ERR_AUTH_OAUTH_DENIED when the user declines at the provider', async () => {
      idp.decision = 'deny'
      try {
        const { callback, cookie } = await signIn()
        assert.equal(callback.searchParams.get('error'), 'access_denied')
        const res = await app.inject({ url: callbackPath(callback), headers: { cookie } })
        assert.equal(res.statusCode, 403)
        assert.equal(problem(res.body).code, 'ERR_AUTH_OAUTH_DENIED')
      } finally {
        idp.decision = 'consent'
      }
    })

    it('answers 502 ERR_AUTH_OAUTH_PROVIDER_FAILED for other provider errors in the callback', async () => {
      const login = await app.inject({ url: '/v1/auth/spotify/login' })
      const state = new URL(String(login.headers.location)).searchParams.get('state') ?? ''
      const res = await app.inject({ url: `/v1/auth/spotify/callback?error=server_error&state=${state}`, headers: { cookie: cookieFrom(login.headers['set-cookie'], COOKIE) } })
      assert.equal(res.statusCode, 502)
      assert.equal(problem(res.body).code, 'ERR_AUTH_OAUTH_PROVIDER_FAILED')
    })

    it('refuses a redirect URI Spotify would refuse, at registration', async () => {
      const other = await quietApp()
      try {
        await assert.rejects(
          async () => {
            await other.register(oauthLoginPlugin, { provider: 'spotify', client: spotify(), redirectUri: 'http://localhost:8888/callback', scopes: SPOTIFY_SCOPES, stateStore: new MemoryKeyValueStore(), cookieSecure: false, onLogin: async () => ({}) })
            await other.ready()
          },
          (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'oauth.spotify.redirectUri' && /localhost/.test(i.message)),
        )
      } finally {
        await other.close()
      }
    })

    it('sets a __Host- cookie with Secure when the redirect URI is https', async () => {
      const other = await quietApp()
      try {
        await other.register(oauthLoginPlugin, { prefix: '/v1/auth/spotify', provider: 'spotify', client: spotify(), redirectUri: 'https://music.example.com/v1/auth/spotify/callback', scopes: SPOTIFY_SCOPES, stateStore: new MemoryKeyValueStore(), onLogin: async () => ({}) })
        const res = await other.inject({ url: '/v1/auth/spotify/login' })
        assert.equal(res.statusCode, 302)
        const setCookie = String(res.headers['set-cookie'])
        assert.match(setCookie, /^__Host-backbeat-oauth-spotify=/)
        assert.match(setCookie, /; Secure/)
        assert.doesNotMatch(setCookie, /Domain=/)
      } finally {
        await other.close()
      }
    })
  })

  describe('the generic OIDC client', () => {
    let client: OAuth2Client
    before(async () => {
      client = await OAuth2Client.discover({ provider: 'acme', issuer: idp.issuer, ...OIDC_CLIENT, allowInsecureRequests: true, now })
    })

    async function authorize(scopes = ['openid', 'email']): Promise<{ callback: URL; pending: Awaited<ReturnType<OAuth2Client['authorizationRequest']>> }> {
      const pending = await client.authorizationRequest({ scopes, redirectUri: OIDC_REDIRECT })
      return { callback: await browse(pending.url, OIDC_REDIRECT), pending }
    }

    it('sends a nonce with openid and verifies the ID token, then reads UserInfo for the same subject', async () => {
      const { callback, pending } = await authorize()
      assert.ok(pending.nonce !== undefined)
      assert.equal(new URL(pending.url).searchParams.get('nonce'), pending.nonce)
      assert.equal(callback.searchParams.get('iss'), idp.issuer, 'RFC 9207 iss in the response')
      const { tokens, claims } = await client.exchange(callback, pending)
      assert.ok(claims !== undefined)
      assert.equal(claims.sub, 'listener-1')
      assert.equal(claims.nonce, pending.nonce)
      assert.equal(claims.aud, OIDC_CLIENT.clientId)
      assert.ok(tokens.idToken !== undefined)
      const profile = await client.fetchUserInfo(tokens.accessToken, claims)
      assert.deepEqual({ subject: profile.subject, email: profile.email, emailVerified: profile.emailVerified }, { subject: 'listener-1', email: 'listener-1@example.test', emailVerified: true })
    })

    it('refuses an ID token whose nonce is not the one sent', async () => {
      const { callback, pending } = await authorize()
      await assert.rejects(client.exchange(callback, { ...pending, nonce: 'another-nonce-another-nonce-another-nonc' }), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
    })

    it('refuses a code redeemed with the wrong PKCE verifier, and a code redeemed twice', async () => {
      const first = await authorize()
      await assert.rejects(client.exchange(first.callback, { ...first.pending, codeVerifier: 'x'.repeat(43) }), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
      const second = await authorize()
      await client.exchange(second.callback, second.pending)
      await assert.rejects(client.exchange(second.callback, second.pending), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
    })

    it('refuses a callback from another issuer (mix-up) or with another state, before calling the provider', async () => {
      const { callback, pending } = await authorize()
      const hits = idp.tokenRequests()
      const mixedUp = new URL(callback)
      mixedUp.searchParams.set('iss', 'https://evil.example')
      await assert.rejects(client.exchange(mixedUp, pending), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
      const noIss = new URL(callback)
      noIss.searchParams.delete('iss')
      await assert.rejects(client.exchange(noIss, pending), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
      await assert.rejects(client.exchange(callback, { ...pending, state: 'other-state-value' }), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_STATE_INVALID')
      assert.equal(idp.tokenRequests(), hits)
      await client.exchange(callback, pending)
    })

    it('revokes a refresh token, after which the vault asks for a relink and forgets the entry', async () => {
      const { callback, pending } = await authorize(['openid', 'email'])
      const { tokens } = await client.exchange(callback, pending)
      assert.ok(tokens.refreshToken !== undefined)
      const store = new MemoryVaultStore()
      const vault = new TokenVault({ store, box, clients: { acme: client }, now })
      await vault.save('user-9', 'acme', { ...tokens, expiresAt: clock - 1 })
      assert.equal(await client.revoke(tokens.refreshToken, 'refresh_token'), true)
      await assert.rejects(vault.accessToken('user-9', 'acme'), (err) => errorCode(err) === 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
      assert.equal(await store.get('user-9', 'acme'), undefined)
      assert.equal(await spotify().revoke('anything'), false, 'Spotify has no revocation endpoint')
    })
  })

  describe('the vault against the provider', () => {
    /** A fresh Spotify sign-in at the provider, its tokens saved in `vault` for user-1. */
    async function linked(vault: TokenVault, client: OAuth2Client): Promise<OAuthTokens> {
      const pending = await client.authorizationRequest({ scopes: SPOTIFY_SCOPES, redirectUri: APP_REDIRECT })
      const { tokens } = await client.exchange(await browse(pending.url, APP_REDIRECT), pending)
      await vault.save('user-1', 'spotify', tokens)
      return tokens
    }

    it('refreshes near expiry, persisting the rotated refresh token', async () => {
      const client = spotify()
      const vault = new TokenVault({ store: new MemoryVaultStore(), box, clients: { spotify: client }, now })
      const tokens = await linked(vault, client)
      assert.equal(await vault.accessToken('user-1', 'spotify'), tokens.accessToken)
      const hits = idp.tokenRequests()
      clock += 3_600_000 - 30_000
      const fresh = await vault.accessToken('user-1', 'spotify')
      assert.notEqual(fresh, tokens.accessToken)
      assert.equal(idp.tokenRequests(), hits + 1)
      const stored = await vault.get('user-1', 'spotify')
      assert.ok(stored?.refreshToken !== undefined && stored.refreshToken !== tokens.refreshToken, 'the rotated refresh token is stored')
      assert.equal(stored.expiresAt, clock + 3_600_000)
      // The new access token works at the API.
      const me = await fetch(`${idp.issuer}/v1/me`, { headers: { authorization: `Bearer ${fresh}` } })
      assert.equal(me.status, 200)
      await me.body?.cancel()
    })

    it('sends ONE refresh for concurrent callers, across two instances sharing the store and the lock', async () => {
      const client = spotify()
      const store = new MemoryVaultStore()
      const lock = new MemoryKeyValueStore()
      const [a, b] = [new TokenVault({ store, box, clients: { spotify: client }, now, lock, lockPollMs: 10 }), new TokenVault({ store, box, clients: { spotify: client }, now, lock, lockPollMs: 10 })]
      await linked(a, client)
      clock += 3_600_000
      const hits = idp.tokenRequests()
      const tokens = await Promise.all([a.accessToken('user-1', 'spotify'), a.accessToken('user-1', 'spotify'), b.accessToken('user-1', 'spotify'), b.accessToken('user-1', 'spotify')])
      assert.equal(new Set(tokens).size, 1)
      assert.equal(idp.tokenRequests(), hits + 1, 'exactly one token endpoint request')
      // The refresh token was never presented twice: the grant is alive and refreshes again.
      clock += 3_600_000
      assert.notEqual(await b.accessToken('user-1', 'spotify'), tokens[0])
      assert.equal(idp.tokenRequests(), hits + 2)
    })

    it('without the shared lock two instances spend the rotating token twice and the provider revokes the grant', async () => {
      const client = spotify()
      const store = new MemoryVaultStore()
      const [a, b] = [new TokenVault({ store, box, clients: { spotify: client }, now }), new TokenVault({ store, box, clients: { spotify: client }, now })]
      await linked(a, client)
      clock += 3_600_000
      const results = await Promise.allSettled([a.accessToken('user-1', 'spotify'), b.accessToken('user-1', 'spotify')])
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      assert.equal(failures.length, 1)
      assert.equal(errorCode(failures[0]?.reason), 'ERR_AUTH_PROVIDER_RELINK_REQUIRED')
    })

    it('re-encrypts entries sealed with a retired key version when it reads them, so the version can go', async () => {
      const client = spotify()
      const store = new MemoryVaultStore()
      const [k1, k2] = [randomBytes(32), randomBytes(32)]
      const tokens = await linked(new TokenVault({ store, box: new SecretBox({ keys: { 1: k1 }, current: 1 }), clients: { spotify: client }, now }), client)
      assert.match((await store.get('user-1', 'spotify')) ?? '', /^v1\./)
      const vault = new TokenVault({ store, box: new SecretBox({ keys: { 1: k1, 2: k2 }, current: 2 }), clients: { spotify: client }, now })
      assert.equal(await vault.accessToken('user-1', 'spotify'), tokens.accessToken)
      assert.match((await store.get('user-1', 'spotify')) ?? '', /^v2\./)
      assert.deepEqual(await vault.rotateAll(), { scanned: 1, rotated: 0, failed: [] })
      const retired = new TokenVault({ store, box: new SecretBox({ keys: { 2: k2 }, current: 2 }), clients: { spotify: client }, now })
      assert.equal(await retired.accessToken('user-1', 'spotify'), tokens.accessToken)
    })

    it('fails fast with ERR_AUTH_OAUTH_PROVIDER_FAILED when the provider is down or does not answer', async () => {
      const closed = createServer()
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
      const deadPort = (closed.address() as AddressInfo).port
      await new Promise<void>((resolve) => closed.close(() => resolve()))
      const down = spotify({ accountsBaseUrl: `http://127.0.0.1:${deadPort}`, timeoutMs: 5_000 })
      let started = Date.now()
      await assert.rejects(down.refresh('rt'), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_PROVIDER_FAILED' && /unreachable/.test((err as BackbeatError).message))
      assert.ok(Date.now() - started < 1_000, 'a closed port fails at once')

      const silent: Server = createServer(() => undefined)
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      try {
        const slow = spotify({ accountsBaseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 300 })
        started = Date.now()
        await assert.rejects(slow.refresh('rt'), (err) => errorCode(err) === 'ERR_AUTH_OAUTH_PROVIDER_FAILED' && /within 300 ms/.test((err as BackbeatError).message))
        const elapsed = Date.now() - started
        assert.ok(elapsed >= 250 && elapsed < 2_000, `timed out after ${elapsed} ms`)
      } finally {
        silent.closeAllConnections()
        await new Promise<void>((resolve) => silent.close(() => resolve()))
      }
    })
  })

  describe('the Spotify preset', () => {
    it('follows Spotify redirect URI rules: loopback IP literals over http, https elsewhere, never localhost', () => {
      for (const ok of ['https://music.example.com/callback', 'http://127.0.0.1:8888/callback', 'http://[::1]:8888/callback', 'http://127.0.0.1/callback']) assert.equal(spotifyRedirectUriProblem(ok), undefined, ok)
      for (const bad of ['http://localhost:8888/callback', 'https://localhost/callback', 'http://LOCALHOST:3000/cb', 'http://app.localhost/cb', 'http://music.example.com/callback', 'http://10.0.0.5:8888/callback', 'ftp://example.com/cb', 'not a url']) {
        assert.ok(spotifyRedirectUriProblem(bad) !== undefined, bad)
      }
      const client = spotifyClient({ clientId: 'id', clientSecret: 'secret' })
      assert.throws(() => client.assertAuthorizationSettings({ redirectUri: 'http://localhost:8888/callback', scopes: [] }), ConfigError)
      assert.throws(() => client.assertAuthorizationSettings({ redirectUri: 'https://music.example.com/cb#x', scopes: [] }), ConfigError)
      client.assertAuthorizationSettings({ redirectUri: 'https://music.example.com/cb', scopes: ['user-read-email'] })
    })

    it('knows its scope names and refuses openid', () => {
      const client = spotifyClient({ clientId: 'id' })
      assert.throws(
        () => client.assertAuthorizationSettings({ redirectUri: 'https://music.example.com/cb', scopes: ['openid', 'user-read-emial'] }),
        (err: unknown) => err instanceof ConfigError && /user-read-emial/.test(err.message) && /not an OpenID Connect provider/.test(err.message),
      )
    })

    it('points at accounts.spotify.com and api.spotify.com by default, over https only', async () => {
      const client = spotifyClient({ clientId: 'id', clientSecret: 'secret' })
      const request = await client.authorizationRequest({ scopes: ['user-read-email'], redirectUri: 'https://music.example.com/cb', params: { show_dialog: 'true' } })
      const url = new URL(request.url)
      assert.equal(url.origin + url.pathname, 'https://accounts.spotify.com/authorize')
      assert.equal(url.searchParams.get('show_dialog'), 'true')
      assert.throws(() => spotifyClient({ clientId: 'id', accountsBaseUrl: 'http://accounts.example.com' }), ConfigError)
      assert.throws(() => spotifyClient({ clientId: 'id', accountsBaseUrl: 'http://10.0.0.1', allowInsecureRequests: true }), ConfigError)
      await assert.rejects(client.authorizationRequest({ scopes: [], redirectUri: 'https://music.example.com/cb', params: { state: 'mine' } }), ConfigError)
    })
  })
})
