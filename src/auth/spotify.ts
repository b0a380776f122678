import { ConfigError, type Clock } from '../core/index.ts'
import { OAuth2Client, type OAuthProfile } from './oauth2-client.ts'

/** Spotify's accounts service (authorize and token endpoints). */
export const SPOTIFY_ACCOUNTS_URL = 'https://accounts.spotify.com'
/** Spotify's Web API (the `/v1/me` profile). */
export const SPOTIFY_API_URL = 'https://api.spotify.com'

/** The authorization scopes Spotify documents (developer.spotify.com, "Scopes"). */
export const SPOTIFY_SCOPES = Object.freeze([
  'ugc-image-upload',
  'user-read-playback-state',
  'user-modify-playback-state',
  'user-read-currently-playing',
  'app-remote-control',
  'streaming',
  'playlist-read-private',
  'playlist-read-collaborative',
  'playlist-modify-private',
  'playlist-modify-public',
  'user-follow-modify',
  'user-follow-read',
  'user-read-playback-position',
  'user-top-read',
  'user-read-recently-played',
  'user-library-modify',
  'user-library-read',
  'user-read-email',
  'user-read-private',
] as const)

export type SpotifyScope = (typeof SPOTIFY_SCOPES)[number]

/** Options of {@link spotifyClient}. */
export interface SpotifyClientOptions {
  clientId: string
  /** The app's secret (a confidential server). Without it the client is public and relies on PKCE alone. */
  clientSecret?: string
  /** Base of the authorize and token endpoints (default {@link SPOTIFY_ACCOUNTS_URL}); tests point it at a local provider. */
  accountsBaseUrl?: string
  /** Base of the Web API (default {@link SPOTIFY_API_URL}). */
  apiBaseUrl?: string
  /** Timeout of each call to Spotify (default 10 s). */
  timeoutMs?: number
  /** Plain http on loopback addresses, for tests against a local provider only. */
  allowInsecureRequests?: boolean
  now?: Clock
}

const SPOTIFY_SCOPE_SET: ReadonlySet<string> = new Set(SPOTIFY_SCOPES)
const LOOPBACK_LITERALS = new Set(['127.0.0.1', '[::1]'])

/**
 * Why `uri` breaks Spotify's redirect URI rules, or undefined when it follows them. Since
 * 9 April 2025 (new apps) and 27 November 2025 (all apps) Spotify requires HTTPS, except for
 * loopback IP literals (`http://127.0.0.1:PORT`, `http://[::1]:PORT`), and refuses `localhost`
 * (developer.spotify.com/documentation/web-api/concepts/redirect_uri).
 *
 * @example spotifyRedirectUriProblem('http://localhost:3000/callback') // 'must not use localhost...'
 */
export function spotifyRedirectUriProblem(uri: string | URL): string | undefined {
  const text = typeof uri === 'string' ? uri : uri.href
  if (!URL.canParse(text)) return 'must be an absolute URL'
  const url = new URL(text)
  const host = url.hostname.toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) {
    return 'must not use localhost: Spotify refuses it; use a loopback IP literal such as http://127.0.0.1:PORT or http://[::1]:PORT'
  }
  if (url.protocol === 'http:' && !LOOPBACK_LITERALS.has(host)) return 'must use https: Spotify allows plain http only on the loopback IP literals 127.0.0.1 and [::1]'
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an https URL (or http on 127.0.0.1 / [::1])'
  return undefined
}

/**
 * Throws `ConfigError` when `uri` breaks Spotify's redirect URI rules (see {@link spotifyRedirectUriProblem}).
 *
 * @example assertSpotifyRedirectUri(process.env.SPOTIFY_REDIRECT_URI ?? '', 'SPOTIFY_REDIRECT_URI')
 */
export function assertSpotifyRedirectUri(uri: string, path = 'spotify.redirectUri'): void {
  const problem = spotifyRedirectUriProblem(uri)
  if (problem !== undefined) throw new ConfigError([{ path, message: problem }])
}

/**
 * The Spotify preset of {@link OAuth2Client}: Spotify's authorize and token endpoints,
 * client authentication with HTTP Basic (or none for a public client, with PKCE), Spotify's
 * redirect URI rules, its scope names, and the profile from `GET /v1/me`. Spotify is OAuth 2.0
 * only: `openid` is refused, and the email it returns is unverified (`emailVerified: false`).
 * Spotify has no revocation endpoint; `revoke` resolves false.
 *
 * @example
 * const spotify = spotifyClient({ clientId: env.SPOTIFY_CLIENT_ID, clientSecret: env.SPOTIFY_CLIENT_SECRET })
 * const { url, ...pending } = await spotify.authorizationRequest({ scopes: ['user-read-email'], redirectUri: 'https://music.example.com/v1/auth/spotify/callback' })
 */
export function spotifyClient(options: SpotifyClientOptions): OAuth2Client {
  const accounts = trimSlash(options.accountsBaseUrl ?? SPOTIFY_ACCOUNTS_URL)
  const api = trimSlash(options.apiBaseUrl ?? SPOTIFY_API_URL)
  return new OAuth2Client({
    provider: 'spotify',
    issuer: accounts,
    authorizationEndpoint: `${accounts}/authorize`,
    tokenEndpoint: `${accounts}/api/token`,
    clientId: options.clientId,
    ...(options.clientSecret === undefined ? { clientAuthMethod: 'none' as const } : { clientSecret: options.clientSecret, clientAuthMethod: 'client_secret_basic' as const }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.allowInsecureRequests === undefined ? {} : { allowInsecureRequests: options.allowInsecureRequests }),
    ...(options.now === undefined ? {} : { now: options.now }),
    profile: { url: `${api}/v1/me`, map: spotifyProfile },
    redirectUriRule: (url) => spotifyRedirectUriProblem(url),
    scopeRule: (scopes) => {
      const unknown = scopes.filter((s) => !SPOTIFY_SCOPE_SET.has(s))
      if (unknown.length === 0) return undefined
      const hint = unknown.includes('openid') ? ' (Spotify is not an OpenID Connect provider)' : ''
      return `are not Spotify scopes: ${unknown.join(', ')}${hint}`
    },
  })
}

/**
 * Maps Spotify's current-user profile (`GET /v1/me`) to an {@link OAuthProfile}.
 *
 * @example spotifyProfile({ id: 'wizzler', display_name: 'Wizzler', email: 'w@example.com' }).subject // 'wizzler'
 */
export function spotifyProfile(body: Readonly<Record<string, unknown>>): OAuthProfile {
  const id = body.id
  if (typeof id !== 'string' || id === '') throw new Error('the Spotify profile has no id')
  return {
    subject: id,
    ...(typeof body.email === 'string' ? { email: body.email, emailVerified: false } : {}),
    ...(typeof body.display_name === 'string' ? { name: body.display_name } : {}),
    claims: Object.freeze({ ...body }),
  }
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url
}
