import { z } from 'zod'

/** Characters allowed in an incoming X-Request-ID: enough for UUIDs, ULIDs, AWS/GCP trace IDs. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9\-_.:/+=@]+$/

export const httpOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Request IDs, request context, timing header, RFC 9457 errors, 404/405 handling.'),
  requestId: z
    .strictObject({
      header: z.string().regex(/^[a-z0-9-]+$/, 'must be a lower-case header name').default('x-request-id').describe('Header read and echoed.'),
      maxLength: z.number().int().min(16).max(1024).default(128).describe('Longest accepted incoming ID.'),
      onInvalid: z.enum(['reject', 'replace']).default('reject').describe('`reject` answers 400 ERR_HTTP_REQUEST_ID_INVALID; `replace` generates a new ID.'),
    })
    .prefault({}),
  responseTimeHeader: z.boolean().default(true).describe('Adds `X-Response-Time: 12.3ms` to every response.'),
  problemTypeBaseUri: z.string().min(1).default('https://backbeat.dev/problems/').describe('Base of the RFC 9457 `type` URI; the code slug is appended.'),
})
export type HttpOptions = z.infer<typeof httpOptionsSchema>
