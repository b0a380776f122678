import { z } from 'zod'
import { OriginMatcher } from './origin-matcher.ts'

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const headerName = z.string().regex(TOKEN, 'must be a header name')

export const corsOptionsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Answer CORS (Fetch standard) for the allowed origins; with no origins, cross-origin reads stay blocked.'),
    origins: z
      .array(z.string().min(1))
      .default([])
      .describe('Allowed origins: exact (`https://app.example.com`), wildcard subdomains (`https://*.example.com`), `/regex/`, or `*` (any, only without credentials).'),
    credentials: z.boolean().default(false).describe('Allow cookies and HTTP authentication on cross-origin requests (Access-Control-Allow-Credentials).'),
    methods: z.array(z.string().regex(TOKEN)).min(1).default(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).describe('Methods a preflight may approve.'),
    allowedHeaders: z
      .array(headerName)
      .default(['accept', 'accept-language', 'authorization', 'content-type', 'if-match', 'if-none-match', 'x-request-id', 'idempotency-key', 'traceparent', 'tracestate'])
      .describe('Request headers a preflight may approve (case-insensitive).'),
    exposedHeaders: z
      .array(headerName)
      .default(['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after', 'etag', 'location'])
      .describe('Response headers scripts on allowed origins may read.'),
    maxAgeS: z.number().int().min(0).max(86_400).default(600).describe('How long browsers may cache a preflight answer (Access-Control-Max-Age).'),
    allowPrivateNetwork: z.boolean().default(false).describe('Approve Private Network Access preflights from public pages.'),
    rejectDisallowedOrigins: z.boolean().default(false).describe('Refuse non-preflight requests from disallowed origins with 403 (otherwise they are served without CORS headers and the browser hides the response).'),
  })
  .superRefine((o, ctx) => {
    let matcher: OriginMatcher | undefined
    try {
      matcher = new OriginMatcher(o.origins)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, path: ['origins'] })
    }
    if (o.credentials && matcher?.any === true) ctx.addIssue({ code: 'custom', message: '`*` cannot be combined with credentials: list the origins allowed to send credentials', path: ['origins'] })
    if (o.credentials && matcher?.allowsNull === true) ctx.addIssue({ code: 'custom', message: 'the `null` origin (sandboxed frames, local files) cannot be trusted with credentials', path: ['origins'] })
  })

export type CorsOptions = z.infer<typeof corsOptionsSchema>
export type CorsOptionsInput = z.input<typeof corsOptionsSchema>
