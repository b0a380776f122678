/**
 * The whole stack from one config: the `backbeat` Fastify plugin, the server options it
 * needs, and `createBackbeatApp` which wires both with logging and graceful shutdown.
 */
export { backbeat } from './backbeat-plugin.ts'
export type { BackbeatPluginOptions } from './backbeat-plugin.ts'
export { backbeatServerOptions } from './server-options.ts'
export type { BackbeatServerOptions } from './server-options.ts'
export { createBackbeatApp } from './create-app.ts'
export type { BackbeatApp, CreateBackbeatAppOptions } from './create-app.ts'
export { openStores, StoreConnectionError } from './open-stores.ts'
export type { BackbeatStores, OpenStoresLogger, OpenStoresOptions } from './open-stores.ts'
