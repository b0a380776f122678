import type { FastifyInstance } from 'fastify'
import { migrate, type SqlDatabase } from 'backbeat/stores'
import { musicMigrations } from './migrations.ts'
import { MusicRepository } from './repository.ts'
import { catalogueRoutes } from './routes/catalogue.ts'
import { playlistRoutes } from './routes/playlists.ts'
import { userRoutes } from './routes/users.ts'
import { sharedSchemas } from './schemas.ts'
import { seedDemoCatalogue } from './seed.ts'

/** Options of {@link registerMusicApi}. */
export interface MusicApiOptions {
  sql: SqlDatabase
  /** Load the demo catalogue into an empty database (default true; loaded once per database). */
  seed?: boolean
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
  const seeded = options.seed === false ? false : await seedDemoCatalogue(options.sql)
  app.log.info({ migrations: applied, seeded }, 'music database ready')
  for (const schema of sharedSchemas) app.addSchema(schema)
  const repository = new MusicRepository(options.sql)
  await app.register(
    async (v1) => {
      await v1.register(catalogueRoutes, { repository })
      await v1.register(userRoutes, { repository })
      await v1.register(playlistRoutes, { repository })
    },
    { prefix: '/v1' },
  )
  return { repository, seeded }
}
