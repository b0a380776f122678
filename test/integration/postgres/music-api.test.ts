import { randomBytes } from 'node:crypto'
import { parseConfig } from 'backbeat'
import { PostgresDatabase } from 'backbeat/stores'
import { createMusicApp } from '../../../app/create-music-app.ts'
import { describeMusicApi } from '../../../app/music/music-api.contract.ts'
import { requireDatabaseUrl } from '../services.ts'

/**
 * The music API contract on a real PostgreSQL. Each run gets its own database,
 * `bb_music_<random>`, created and dropped through an admin connection to DATABASE_URL, so
 * the run never reads or writes anything else on the server.
 */
let admin: PostgresDatabase | undefined
let database = ''

describeMusicApi('music API on PostgreSQL', {
  sqlKind: 'postgres',
  async open() {
    const adminUrl = await requireDatabaseUrl()
    admin = new PostgresDatabase({ url: adminUrl, name: 'music-test-admin', poolSize: 1 })
    await admin.connect()
    database = `bb_music_${randomBytes(6).toString('hex')}`
    // Identifiers cannot be parameters; the name is generated above from hex digits only.
    await admin.exec(`CREATE DATABASE ${database}`)
    const url = new URL(adminUrl)
    url.pathname = `/${database}`
    return createMusicApp(
      parseConfig({
        preset: 'development',
        logging: { enabled: false },
        shutdown: { enabled: false },
        stores: { databaseUrl: url.toString() },
        auth: { passwords: { scryptLogN: 10 } },
        // The contract sends thousands of requests from one address; limits have their own tests.
        rateLimit: { policies: { burst: { limit: 1_000_000, windowS: 60 } } },
      }),
    )
  },
  async close(music) {
    try {
      await music?.app.close()
    } finally {
      if (admin !== undefined) {
        // FORCE: a connection the test leaked must not leave the database behind.
        await admin.exec(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
        await admin.close()
      }
    }
  },
})
