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
      }),
    ),
  close: async (music) => {
    await music?.app.close()
  },
})
