import { parseConfig, type BackbeatConfigInput } from 'backbeat'
import { createMusicApp, type MusicApp } from '../create-music-app.ts'

/** For the app's tests: the music API on in-memory PGlite, with cheap scrypt and a generous rate limit; `overrides` on top. */
export function openMusic(overrides: BackbeatConfigInput = {}): Promise<MusicApp> {
  return createMusicApp(
    parseConfig({
      preset: 'development',
      logging: { enabled: false },
      shutdown: { enabled: false },
      stores: { dataDir: ':memory:' },
      rateLimit: { policies: { burst: { limit: 1_000_000, windowS: 60 } } },
      ...overrides,
      auth: { ...overrides.auth, passwords: { scryptLogN: 10 } },
    }),
  )
}
