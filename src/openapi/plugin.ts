import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { OpenapiOptions } from './options.ts'

export interface OpenapiPluginOptions extends OpenapiOptions {
  description?: string
  /** Tags shown in the UI, in this order. */
  tags?: { name: string; description?: string }[]
}

/** The RFC 9457 body every error response carries, referenced as `ProblemDetails#`. */
export const problemDetailsSchema = {
  $id: 'ProblemDetails',
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string', format: 'uri-reference' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    code: { type: 'string', description: 'Stable Backbeat error code, see docs/errors.md' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { in: { type: 'string' }, pointer: { type: 'string' }, detail: { type: 'string' } },
      },
    },
  },
  required: ['type', 'title', 'status', 'code', 'requestId'],
} as const

/**
 * OpenAPI 3.1 generated from the route schemas, served at `/openapi.json`, with the
 * interactive docs UI at `/docs`. Register before your routes so every route is seen.
 *
 * @example await app.register(openapiPlugin, { enabled: true, ui: true, title: 'Music API', version: '1.0.0' })
 */
export const openapiPlugin = fp<OpenapiPluginOptions>(
  async (app, options) => {
    app.addSchema(problemDetailsSchema)
    if (!options.enabled) return
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: options.title, version: options.version, ...(options.description === undefined ? {} : { description: options.description }) },
        ...(options.tags === undefined ? {} : { tags: options.tags }),
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transformObject: (document) => ('openapiObject' in document ? withMediaTypes(document.openapiObject as OpenApiDocument) : document.swaggerObject),
    })
    app.get('/openapi.json', { schema: { hide: true } }, (_request, reply) => reply.send(app.swagger()))
    if (options.ui) await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } })
  },
  { name: 'backbeat-openapi', fastify: '5.x' },
)

type OpenApiDocument = { paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> } | undefined>> }

/**
 * Fastify describes every response as application/json; ours are not all JSON of that
 * type: errors are application/problem+json (RFC 9457) and health reports
 * application/health+json. Rewrites the media types in the generated document.
 */
export function withMediaTypes<T extends OpenApiDocument>(document: T): T {
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    const health = path === '/ready' || path === '/health' || path.startsWith('/health/')
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation?.responses ?? {})) {
        const content = response.content
        if (content?.['application/json'] === undefined) continue
        const error = /^[45]/.test(status) || status === 'default'
        const mediaType = health ? 'application/health+json' : error ? 'application/problem+json' : undefined
        if (mediaType === undefined) continue
        content[mediaType] = content['application/json']
        delete content['application/json']
      }
    }
  }
  return document
}
