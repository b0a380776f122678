/**
 * One validated configuration for the whole stack: preset defaults, an optional
 * `backbeat.config.json`, then environment variables, checked by one zod schema composed
 * from each capability's schema.
 */
export { configSchema, PRESETS, SECRET_PATHS } from './schema.ts'
export type { BackbeatConfig, BackbeatConfigInput, PresetName } from './schema.ts'
export { PRESET_DEFAULTS } from './presets.ts'
export { ENV_BINDINGS, LOADER_ENV } from './env.ts'
export type { EnvBinding } from './env.ts'
export { loadConfig, parseConfig } from './load.ts'
export { describeOptions } from './describe.ts'
export type { OptionDoc } from './describe.ts'
export type { LoadConfigOptions } from './load.ts'
export { maskConfig, maskUrlCredentials } from './mask.ts'
