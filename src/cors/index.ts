/**
 * CORS per the Fetch standard: exact, wildcard-subdomain and regex origins, credentials,
 * preflights answered before routing, exposed headers and `Vary: Origin`.
 */
export { corsPlugin } from './plugin.ts'
export type { CorsPluginOptions } from './plugin.ts'
export { OriginMatcher } from './origin-matcher.ts'
export { corsOptionsSchema } from './options.ts'
export type { CorsOptions, CorsOptionsInput } from './options.ts'
