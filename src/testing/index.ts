/**
 * Contract test suites for adapter authors (published as `backbeat/testing`): run the same
 * suite Backbeat runs on its own stores against yours.
 *
 * @example
 * import { describeKeyValueStore } from 'backbeat/testing'
 * describeKeyValueStore('MyStore', async ({ prefix }) => ({ store: new MyStore({ prefix }), cleanup: async () => {} }))
 */
export { describeKeyValueStore, describeSqlDatabase } from './store-contracts.ts'
export type { KeyValueStoreContext, KeyValueStoreFixture, SqlDatabaseFixture } from './store-contracts.ts'
export { describeRateLimitStore } from './rate-limit-store-contract.ts'
export type { RateLimitStoreFixture } from './rate-limit-store-contract.ts'
export { describeSessionStore } from './session-store-contract.ts'
export type { SessionStoreFixture } from './session-store-contract.ts'
export { describeApiKeyStore } from './api-key-store-contract.ts'
export type { ApiKeyStoreFixture } from './api-key-store-contract.ts'
export { describeCacheStore } from './cache-store-contract.ts'
export type { CacheStoreContext, CacheStoreFixture } from './cache-store-contract.ts'
