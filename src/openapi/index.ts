/** OpenAPI 3.1 from route schemas at `/openapi.json` and a docs UI at `/docs`. */
export { openapiPlugin, problemDetailsSchema, withMediaTypes } from './plugin.ts'
export type { OpenapiPluginOptions } from './plugin.ts'
export { openapiOptionsSchema } from './options.ts'
export type { OpenapiOptions } from './options.ts'
