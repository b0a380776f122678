/**
 * Request limits and DDoS hygiene: URI length (414), header count (431), JSON depth and
 * member count, a per-client concurrency cap, CIDR allow/deny lists and country rules
 * through a pluggable resolver.
 */
export { limitsPlugin } from './plugin.ts'
export type { CountryResolver, LimitsPluginOptions } from './plugin.ts'
export { createDbIpCountryResolver, DBIP_COUNTRY_PACKAGE } from './dbip-country.ts'
export type { DbIpCountryResolver, DbIpCountryResolverOptions } from './dbip-country.ts'
export { checkJsonShape } from './json-shape.ts'
export type { JsonShapeViolation } from './json-shape.ts'
export { limitsOptionsSchema } from './options.ts'
export type { LimitsOptions, LimitsOptionsInput } from './options.ts'
