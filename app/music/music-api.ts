import type { FastifyInstance } from 'fastify'
import { TokenService, type Identity } from 'backbeat/auth'
import { migrate, type SqlDatabase } from 'backbeat/stores'
import { musicMigrations } from './migrations.ts'
import { MusicRepository } from './repository.ts'
import { catalogueRoutes } from './routes/catalogue.ts'
import { playlistRoutes } from './routes/playlists.ts'
import { userRoutes } from './routes/users.ts'
import { sharedSchemas } from './schemas.ts'
import { seedDemoCatalogue } from './seed.ts'
import { MusicAccounts, seedDemoAccounts } from './accounts.ts'
import { authRoutes } from './routes/auth.ts'
import { MusicMfa } from './mfa.ts'
import { mfaRoutes } from './routes/mfa.ts'
import { consoleRoutes } from './routes/console.ts'
import { apiKeyRoutes } from './routes/api-keys.ts'
import { spotifyRoutes, type SpotifySettings } from './routes/spotify.ts'
import { invalidField } from './errors.ts'

/** Options of {@link registerMusicApi}. */
export interface MusicApiOptions {
  sql: SqlDatabase
  /** Load the demo catalogue into an empty database (default true; loaded once per database). */
  seed?: boolean
  /** The stack's identity engines (`app.identity`); without them every route is public. */
  identity?: Identity | null
  /** Sign-in with Spotify, when configured (`auth.spotify.clientId`). */
  spotify?: SpotifySettings | undefined
}

/**
 * Brings the database up to date (migrations, then the demo seed on first start) and adds the
 * `/v1` routes. Call it on the root instance after the Backbeat stack is registered: the
 * shared schemas must live where the OpenAPI generator sees them, and routes registered after
 * the stack get its 404/405 handling.
 *
 * @example
 * const { app, health, config } = await createBackbeatApp(config)
 * const stores = await openStores(config, { health })
 * await registerMusicApi(app, { sql: stores.sql })
 */
export async function registerMusicApi(app: FastifyInstance, options: MusicApiOptions): Promise<{ repository: MusicRepository; seeded: boolean }> {
  const applied = await migrate(options.sql, musicMigrations)
  const identity = options.identity ?? null
  const seeded = options.seed === false ? false : await seedDemoCatalogue(options.sql)
  if (options.seed !== false && identity !== null) await seedDemoAccounts(options.sql, identity.hasher)
  app.log.info({ migrations: applied, seeded }, 'music database ready')
  for (const schema of sharedSchemas) app.addSchema(schema)
  const repository = new MusicRepository(options.sql)
  const accounts = new MusicAccounts(options.sql)
  const hashPassword =
    identity === null
      ? undefined
      : async (password: string): Promise<string> => {
          const violation = identity.hasher.policyViolation(password)
          if (violation !== undefined) throw invalidField('body', '/password', violation)
          return identity.hasher.hash(password)
        }
  await app.register(
    async (v1) => {
      await v1.register(catalogueRoutes, { repository })
      await v1.register(userRoutes, { repository, hashPassword })
      await v1.register(playlistRoutes, { repository, rbac: identity?.rbac })
      if (identity !== null) {
        const mfa = new MusicMfa(options.sql, identity)
        const tokens = new TokenService({ ...identity, accounts, secondFactor: mfa.check, sessions: app.sessions, securityEvents: app.securityEvents.record })
        await v1.register(authRoutes, { tokens, repository })
        await v1.register(mfaRoutes, { mfa, tokens, stepUpMaxAgeS: identity.options.mfa.stepUpMaxAgeS })
        await v1.register(consoleRoutes, { tokens, rbac: identity.rbac })
        const apiKeys = app.apiKeys
        if (apiKeys !== null) await v1.register(apiKeyRoutes, { apiKeys })
        const spotify = options.spotify
        if (spotify !== undefined) {
          await v1.register(async (scope) => {
            await spotifyRoutes(scope, { settings: spotify, identity, tokens, sql: options.sql })
          })
        }
      }
    },
    { prefix: '/v1' },
  )
  return { repository, seeded }
}
