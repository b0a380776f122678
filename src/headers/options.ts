import { z } from 'zod'

/** Powerful features denied by default: an API never needs them, and a page should opt in. */
/**
 * Features denied by default: the powerful ones (those a browser asks the user for, or that
 * reach devices, sensors, payment or credentials). Features browsers do not recognise
 * (ambient-light-sensor, battery, document-domain) are left out because listing them only
 * fills consoles with warnings, and harmless presentation features (autoplay, fullscreen,
 * picture-in-picture) because denying them protects nothing. The header is sent on every
 * response, so its length is a per-request cost too.
 */
export const DENIED_FEATURES = [
  'accelerometer', 'bluetooth', 'camera', 'display-capture', 'geolocation', 'gyroscope', 'hid', 'idle-detection', 'local-fonts',
  'magnetometer', 'microphone', 'midi', 'payment', 'publickey-credentials-get', 'screen-wake-lock', 'serial', 'usb', 'xr-spatial-tracking',
] as const

const directiveName = z.string().regex(/^[a-z][a-z-]*$/, 'CSP directive names are lower-case words such as script-src')
// A source list may not smuggle another directive (;) or a header line break.
const directiveValue = z.string().regex(/^[^;\r\n,]*$/, 'must not contain ; , or line breaks')

const headerSetSchema = z.strictObject({
  preset: z.enum(['api', 'html']).describe('`api`: JSON responses (CSP `default-src \'none\'`); `html`: pages, with a strict nonce-based CSP.'),
  contentSecurityPolicy: z
    .union([z.literal(false), z.record(directiveName, z.array(directiveValue))])
    .optional()
    .describe('CSP directives replacing the preset\'s (`{nonce}` in a source list becomes this response\'s nonce); false to omit.'),
  cspReportOnly: z.boolean().optional().describe('Send Content-Security-Policy-Report-Only instead (to trial a policy).'),
  crossOriginResourcePolicy: z.enum(['same-origin', 'same-site', 'cross-origin']).optional().describe('Cross-Origin-Resource-Policy.'),
  crossOriginOpenerPolicy: z.enum(['same-origin', 'same-origin-allow-popups', 'unsafe-none']).optional().describe('Cross-Origin-Opener-Policy.'),
  referrerPolicy: z
    .enum(['no-referrer', 'no-referrer-when-downgrade', 'origin', 'origin-when-cross-origin', 'same-origin', 'strict-origin', 'strict-origin-when-cross-origin'])
    .optional()
    .describe('Referrer-Policy.'),
  frameOptions: z.enum(['DENY', 'SAMEORIGIN']).or(z.literal(false)).optional().describe('X-Frame-Options (false omits it).'),
  permissionsPolicy: z.record(z.string().regex(/^[a-z][a-z-]*$/), z.array(z.string().regex(/^(self|\*|"https?:\/\/[^"\s]+")$/))).optional().describe('Permissions-Policy allow lists by feature, added to the default deny list (`[]` denies).'),
})

export type HeaderSetOptions = z.infer<typeof headerSetSchema>

export const securityHeadersOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Security headers on every response.'),
  ...headerSetSchema.shape,
  preset: headerSetSchema.shape.preset.default('api'),
  hsts: z
    .union([
      z.literal(false),
      z.strictObject({
        maxAgeS: z.number().int().min(0).max(2 * 365 * 86_400).default(31_536_000).describe('max-age in seconds (one year by default; preload needs at least one year).'),
        includeSubDomains: z.boolean().default(true).describe('Cover every subdomain.'),
        preload: z.boolean().default(false).describe('Ask to be put on browsers\' preload lists (opt-in: hard to undo).'),
      }),
    ])
    .prefault({})
    .describe('Strict-Transport-Security (false omits it, e.g. behind a proxy that sets it).'),
  cspReports: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Accept CSP violation reports and record them as security events.'),
      path: z.string().regex(/^\/[\w\-/.]*$/, 'must be an absolute path').default('/security/csp-reports').describe('Endpoint receiving reports (report-uri and Reporting API).'),
      advertiseOn: z
        .enum(['html', 'all'])
        .default('html')
        .describe('Responses whose CSP names the endpoint (report-uri, report-to and Reporting-Endpoints): `html` pages only (JSON is never rendered, so it never violates), or `all`.'),
      maxBodyBytes: z.number().int().min(512).max(1024 * 1024).default(16 * 1024).describe('Largest accepted report.'),
      perClientPerMinute: z.number().int().min(1).max(100_000).default(30).describe('Reports accepted per client address per minute; more get 429.'),
    })
    .prefault({}),
})

export type SecurityHeadersOptions = z.infer<typeof securityHeadersOptionsSchema>
export type SecurityHeadersOptionsInput = z.input<typeof securityHeadersOptionsSchema>
export const routeSecurityHeadersSchema = headerSetSchema.partial()
export type RouteSecurityHeaders = z.input<typeof routeSecurityHeadersSchema>
