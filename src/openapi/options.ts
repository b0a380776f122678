import { z } from 'zod'

export const openapiOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Generate the OpenAPI document from route schemas and serve it at /openapi.json.'),
  ui: z.boolean().default(true).describe('Serve the interactive docs UI at /docs.'),
  title: z.string().min(1).default('Backbeat API').describe('OpenAPI `info.title`.'),
  version: z.string().min(1).default('1.0.0').describe('OpenAPI `info.version`.'),
})
export type OpenapiOptions = z.infer<typeof openapiOptionsSchema>
