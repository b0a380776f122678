import { before } from 'node:test'
import { describeSqlDatabase } from '../../../src/testing/index.ts'
import { requireDatabaseUrl } from '../services.ts'
import { databaseInFreshSchema } from './fixture.ts'

let url = ''

before(async () => {
  url = await requireDatabaseUrl()
})

describeSqlDatabase('PostgresDatabase', () => databaseInFreshSchema(url))
