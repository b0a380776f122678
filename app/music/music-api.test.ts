import { parseConfig } from 'backbeat'
import { createMusicApp } from '../create-music-app.ts'
import { describeMusicApi } from './music-api.contract.ts'

describeMusicApi('music API on embedded PGlite', {
  sqlKind: 'pglite',
  open: () =>
    createMusicApp(
      parseConfig({
        preset: 'development',
        logging: { enabled: false },
        shutdown: { enabled: false },
        stores: { dataDir: ':memory:' },
        auth: { passwords: { scryptLogN: 10 } },
        // The contract sends thousands of requests from one address; limits have their own tests.
        rateLimit: { policies: { burst: { limit: 1_000_000, windowS: 60 } } },
      }),
    ),
  close: async (music) => {
    await music?.app.close()
  },
})
