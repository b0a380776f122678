import { createBackbeatApp, openStores, type BackbeatApp, type BackbeatConfig, type BackbeatStores } from 'backbeat'
import { createLogger, type BackbeatLogger } from 'backbeat/logging'
import { registerMusicApi } from './music/music-api.ts'

/** Reported by `/health` and in the OpenAPI document. */
export const MUSIC_API_VERSION = '1.0.0'

/** The Backbeat app of the music API, with the stores it runs on. */
export interface MusicApp extends BackbeatApp {
  stores: BackbeatStores
}

/** Options of {@link createMusicApp}. */
export interface CreateMusicAppOptions {
  /** Load the demo catalogue into an empty database (default true). */
  seed?: boolean
  /** Replaces the configured logger (tests pass a silent one). */
  logger?: BackbeatLogger
}

/**
 * The whole reference music API from one config: the Backbeat stack, the stores (closed when
 * the app closes), the schema and demo data, and the `/v1` routes. Does not listen, so tests
 * drive it with `app.inject()`.
 *
 * @example
 * const { app, listen } = await createMusicApp(loadConfig())
 * console.log(await listen())
 */
export async function createMusicApp(config: BackbeatConfig, options: CreateMusicAppOptions = {}): Promise<MusicApp> {
  const service = { name: 'music-api', version: MUSIC_API_VERSION, description: 'Reference music-streaming API on Backbeat: catalogue, search, users and playlists in Spotify Web API shapes.' }
  const logger = options.logger ?? createLogger(config.logging, { base: { environment: config.environment, service: service.name } })
  // Stores first: the stack's rate limiter keeps its counters in the same Redis, so every
  // instance behind a load balancer shares the limits.
  const stores = await openStores(config, { logger: logger.logger })
  let backbeatApp: BackbeatApp
  try {
    backbeatApp = await createBackbeatApp(config, { service, logger, stores })
  } catch (err) {
    await stores.close()
    throw err
  }
  const { app } = backbeatApp
  app.addHook('onClose', async () => {
    await stores.close()
  })
  try {
    const { spotify } = config.auth
    await registerMusicApi(app, {
      sql: stores.sql,
      identity: app.identity,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(spotify.clientId === undefined
        ? {}
        : { spotify: { clientId: spotify.clientId, clientSecret: spotify.clientSecret, redirectUri: spotify.redirectUri, scopes: spotify.scopes, cookieSecure: config.auth.sessions.cookieSecure } }),
    })
    await app.ready()
  } catch (err) {
    await app.close()
    throw err
  }
  return { ...backbeatApp, stores }
}
