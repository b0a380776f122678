import type { FastifyInstance } from 'fastify'
import { BackbeatError } from 'backbeat'
import { oauthLoginPlugin, spotifyClient, SqlVaultStore, TokenVault, type Identity, type OAuthProfile, type TokenResponse, type TokenService } from 'backbeat/auth'
import type { SqlDatabase } from 'backbeat/stores'
import { hasSqlState } from '../errors.ts'
import { newId } from '../ids.ts'

/** What the Spotify sign-in needs from the configuration (`auth.spotify`). */
export interface SpotifySettings {
  readonly clientId: string
  readonly clientSecret?: string | undefined
  readonly redirectUri: string
  readonly scopes: readonly string[]
  readonly cookieSecure: boolean
}

/**
 * `GET /v1/auth/spotify/login` and `/callback`: sign in with a Spotify account (authorization
 * code with PKCE). The callback finds the user linked to that Spotify account, or creates one
 * (never linking to an existing user by email: Spotify does not verify addresses), keeps the
 * Spotify tokens in the encrypted vault (refreshed before expiry, one refresh in flight per
 * user) and answers our own tokens.
 */
export async function spotifyRoutes(app: FastifyInstance, options: { settings: SpotifySettings; identity: Identity; tokens: TokenService; sql: SqlDatabase }): Promise<TokenVault> {
  const { settings, identity, tokens, sql } = options
  const client = spotifyClient({ clientId: settings.clientId, ...(settings.clientSecret === undefined ? {} : { clientSecret: settings.clientSecret }) })
  const store = new SqlVaultStore({ db: sql })
  await store.migrate()
  const vault = new TokenVault({ store, box: identity.secretBox, clients: { spotify: client }, lock: identity.kv })

  const linkOrCreate = async (profile: OAuthProfile): Promise<string> => {
    const linked = await sql.query<{ id: string }>('SELECT id FROM users WHERE spotify_id = $1', [profile.subject])
    if (linked.rows[0] !== undefined) return linked.rows[0].id
    const id = newId()
    const name = (profile.name ?? '').slice(0, 100) || 'Spotify listener'
    // The email only when free: an address Spotify did not verify never takes over an account.
    const email = profile.email ?? `${profile.subject}@users.spotify.invalid`
    try {
      await sql.query("INSERT INTO users (id, display_name, email, spotify_id, roles) VALUES ($1, $2, $3, $4, '{listener}')", [id, name, email, profile.subject])
    } catch (err) {
      if (!hasSqlState(err, '23505')) throw err
      const again = await sql.query<{ id: string }>('SELECT id FROM users WHERE spotify_id = $1', [profile.subject])
      if (again.rows[0] !== undefined) return again.rows[0].id
      await sql.query("INSERT INTO users (id, display_name, email, spotify_id, roles) VALUES ($1, $2, $3, $4, '{listener}')", [id, name, `${profile.subject}@users.spotify.invalid`, profile.subject])
    }
    return id
  }

  await app.register(oauthLoginPlugin, {
    prefix: '/auth/spotify',
    provider: 'spotify',
    client,
    redirectUri: settings.redirectUri,
    scopes: settings.scopes,
    stateStore: identity.kv,
    cookieSecure: settings.cookieSecure,
    vault,
    vaultUserId: (_profile, result) => {
      const userId = (result as { user_id?: unknown }).user_id
      if (typeof userId !== 'string') throw new BackbeatError('ERR_INTERNAL')
      return userId
    },
    securityEvents: app.securityEvents.record,
    onLogin: async (profile): Promise<TokenResponse & { user_id: string }> => {
      const userId = await linkOrCreate(profile)
      return { ...(await tokens.signInVerified(userId, ['oauth'])), user_id: userId }
    },
  })
  return vault
}
