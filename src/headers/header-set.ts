import { DENIED_FEATURES, type RouteSecurityHeaders, type SecurityHeadersOptions } from './options.ts'

type Directives = Readonly<Record<string, readonly string[]>>

/** JSON APIs: nothing may load, nothing may frame the response. */
export const API_CSP: Directives = { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] }

/**
 * HTML pages: scripts and styles only with this response's nonce (`'strict-dynamic'` lets
 * those scripts load what they need), no plugins, no <base> hijacking, no framing.
 */
export const HTML_CSP: Directives = {
  'default-src': ["'self'"],
  'script-src': ["'nonce-{nonce}'", "'strict-dynamic'"],
  'style-src': ["'self'", "'nonce-{nonce}'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
}

/** The headers of one configuration, with the CSP split around its nonce placeholders. */
export interface HeaderSet {
  /** Headers identical on every response. */
  readonly fixed: ReadonlyArray<readonly [string, string]>
  /** CSP header name and its value split at `{nonce}`; undefined when CSP is off. */
  readonly csp: { readonly name: string; readonly parts: readonly string[] } | undefined
  /** True when the CSP needs a fresh nonce per response. */
  readonly needsNonce: boolean
}

/**
 * Builds the header set for `options` (global settings plus a route's overrides).
 * `reportPath` adds report-uri / report-to pointing at the CSP report endpoint, on HTML
 * responses only unless `reportOnApi`.
 */
export function buildHeaderSet(global: SecurityHeadersOptions, route: RouteSecurityHeaders, reportPath: string | undefined, reportOnApi = false): HeaderSet {
  // Route values win where set; an explicit undefined keeps the global value.
  const o = { ...global }
  for (const [name, value] of Object.entries(route)) if (value !== undefined) (o as Record<string, unknown>)[name] = value
  const html = o.preset === 'html'
  const fixed: Array<[string, string]> = []
  fixed.push(['x-content-type-options', 'nosniff'])
  const frame = o.frameOptions ?? 'DENY'
  if (frame !== false) fixed.push(['x-frame-options', frame])
  fixed.push(['referrer-policy', o.referrerPolicy ?? (html ? 'strict-origin-when-cross-origin' : 'no-referrer')])
  fixed.push(['cross-origin-opener-policy', o.crossOriginOpenerPolicy ?? 'same-origin'])
  fixed.push(['cross-origin-resource-policy', o.crossOriginResourcePolicy ?? 'same-origin'])
  fixed.push(['permissions-policy', permissionsPolicy(o.permissionsPolicy ?? {})])
  // The XSS auditor is gone from browsers and could be abused for leaks; 0 switches it off.
  fixed.push(['x-xss-protection', '0'])
  if (global.hsts !== false) {
    let value = `max-age=${String(global.hsts.maxAgeS)}`
    if (global.hsts.includeSubDomains) value += '; includeSubDomains'
    if (global.hsts.preload) value += '; preload'
    fixed.push(['strict-transport-security', value])
  }
  let csp: HeaderSet['csp']
  if (o.contentSecurityPolicy !== false) {
    const directives: Record<string, readonly string[]> = { ...(o.contentSecurityPolicy ?? (html ? HTML_CSP : API_CSP)) }
    if (reportPath !== undefined && (html || reportOnApi)) {
      directives['report-uri'] = [reportPath]
      directives['report-to'] = ['csp-endpoint']
      fixed.push(['reporting-endpoints', `csp-endpoint="${reportPath}"`])
    }
    const value = Object.entries(directives)
      .map(([name, sources]) => (sources.length === 0 ? name : `${name} ${sources.join(' ')}`))
      .join('; ')
    csp = { name: o.cspReportOnly === true ? 'content-security-policy-report-only' : 'content-security-policy', parts: value.split('{nonce}') }
  }
  return { fixed, csp, needsNonce: csp !== undefined && csp.parts.length > 1 }
}

function permissionsPolicy(allowed: Readonly<Record<string, readonly string[]>>): string {
  const features = new Map<string, readonly string[]>(DENIED_FEATURES.map((f) => [f, []]))
  for (const [feature, list] of Object.entries(allowed)) features.set(feature, list)
  return [...features].map(([feature, list]) => `${feature}=(${list.join(' ')})`).join(', ')
}
