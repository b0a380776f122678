/**
 * Backbeat: one typed configuration, one Fastify plugin, everything a serious API needs.
 *
 * @example
 * import { createBackbeatApp, loadConfig } from 'backbeat'
 * const { app, listen } = await createBackbeatApp(loadConfig())
 */
export { backbeat, backbeatServerOptions, createBackbeatApp } from './stack/index.ts'
export { openStores, StoreConnectionError, type BackbeatStores, type OpenStoresOptions } from './stack/index.ts'
export type { BackbeatApp, BackbeatPluginOptions, BackbeatServerOptions, CreateBackbeatAppOptions } from './stack/index.ts'
export { loadConfig, parseConfig, maskConfig } from './config/index.ts'
export type { BackbeatConfig, BackbeatConfigInput, PresetName } from './config/index.ts'
export { BackbeatError, ConfigError, currentContext, runWithContext } from './core/index.ts'
export type { ErrorCode, RequestContext } from './core/index.ts'
