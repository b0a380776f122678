/**
 * Security response headers for JSON APIs and HTML pages (strict CSP with per-response
 * nonces), per-route overrides, and a CSP violation report endpoint feeding security events.
 */
export { securityHeadersPlugin } from './plugin.ts'
export type { SecurityHeadersPluginOptions } from './plugin.ts'
export { API_CSP, HTML_CSP, buildHeaderSet } from './header-set.ts'
export type { HeaderSet } from './header-set.ts'
export { parseCspReport } from './csp-report.ts'
export type { CspViolation } from './csp-report.ts'
export { DENIED_FEATURES, routeSecurityHeadersSchema, securityHeadersOptionsSchema } from './options.ts'
export type { HeaderSetOptions, RouteSecurityHeaders, SecurityHeadersOptions, SecurityHeadersOptionsInput } from './options.ts'
