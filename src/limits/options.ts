import { z } from 'zod'
import { isIpRange } from '../core/index.ts'

const cidrList = z.array(z.string().refine(isIpRange, 'must be an IP address or CIDR range'))
const countryList = z.array(z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as DE'))

export const limitsOptionsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Request-shape limits, per-client concurrency and address/country rules.'),
    maxUrlLength: z.number().int().min(64).max(65_536).default(8_192).describe('Longest request target in bytes; longer gets 414 ERR_EDGE_URI_TOO_LONG.'),
    maxHeaderCount: z.number().int().min(8).max(1_000).default(100).describe('Most request header fields; more gets 431 ERR_EDGE_TOO_MANY_HEADERS.'),
    json: z
      .strictObject({
        maxDepth: z.number().int().min(1).max(1_000).default(32).describe('Deepest nesting of objects and arrays in a JSON body.'),
        maxKeys: z.number().int().min(1).max(10_000_000).default(10_000).describe('Most object members in a JSON body, counted over all objects.'),
      })
      .prefault({}),
    concurrency: z
      .strictObject({
        perClient: z.number().int().min(0).max(100_000).default(64).describe('Requests one client address may have in progress on this instance (0 = no cap); more get 429 with Retry-After.'),
      })
      .prefault({}),
    ip: z
      .strictObject({
        allow: cidrList.default([]).describe('When non-empty, only these addresses/ranges are served.'),
        deny: cidrList.default([]).describe('Addresses/ranges refused with 403 ERR_EDGE_IP_DENIED.'),
      })
      .prefault({}),
    countries: z
      .strictObject({
        allow: countryList.default([]).describe('When non-empty, only clients located in these countries are served.'),
        deny: countryList.default([]).describe('Countries refused with 403 ERR_EDGE_COUNTRY_DENIED.'),
        unknown: z.enum(['allow', 'deny']).default('allow').describe('Clients whose country cannot be resolved (private ranges, gaps in the database).'),
      })
      .prefault({}),
  })
  .superRefine((o, ctx) => {
    if (o.countries.allow.length > 0 && o.countries.deny.length > 0) ctx.addIssue({ code: 'custom', message: 'use either an allow list or a deny list of countries, not both', path: ['countries'] })
  })

export type LimitsOptions = z.infer<typeof limitsOptionsSchema>
export type LimitsOptionsInput = z.input<typeof limitsOptionsSchema>
