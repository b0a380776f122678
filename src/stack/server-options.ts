import type { Server } from 'node:http'
import { AjvCompiler } from '@fastify/ajv-compiler'
import { LogController, type FastifyHttpOptions } from 'fastify'
import type { Logger } from 'pino'
import type { BackbeatConfig } from '../config/index.ts'
import { createRequestLogController, type BackbeatLogger } from '../logging/index.ts'
import { createClientErrorHandler, createFrameworkErrorHandler, createRequestIdGenerator } from '../http/index.ts'

/**
 * The Fastify server options the configuration implies: body limit, timeouts, proxy trust,
 * request IDs, the problem+json client-error handler, strict validation (unknown fields are
 * rejected, not silently removed) and the shared logger. Given a `BackbeatLogger` (from
 * `createLogger`), the per-request completion line is written by Fastify's log controller.
 *
 * @example const app = Fastify(backbeatServerOptions(config, createLogger(config.logging)))
 */
export type BackbeatServerOptions = FastifyHttpOptions<Server>

// Fastify's defaults strip unknown properties silently and coerce types everywhere; we
// reject unknown properties, and coerce only where everything arrives as text (query
// string, path parameters, headers). A JSON body that says `"age": "12"` is wrong, not 12.
const ajvOptions = { removeAdditional: false, useDefaults: true, allErrors: true } as const
const coercing = AjvCompiler()
const strict = AjvCompiler()

type BuildValidator = typeof coercing
type Compile = ReturnType<BuildValidator>

/** Fastify validator factory: strict Ajv for bodies, type-coercing Ajv for the rest. */
const strictBodyValidators: BuildValidator = (externalSchemas, options) => {
  const plugins = options?.plugins ?? []
  const forText: Compile = coercing(externalSchemas, { customOptions: { ...ajvOptions, coerceTypes: 'array' }, plugins })
  const forBody: Compile = strict(externalSchemas, { customOptions: { ...ajvOptions, coerceTypes: false }, plugins })
  // Fastify calls the compiler with { schema, method, url, httpPart } (the package's
  // types describe a bare schema).
  return ((route: { httpPart?: string }) => (route.httpPart === 'body' ? forBody : forText)(route)) as Compile
}

export function backbeatServerOptions(config: BackbeatConfig, logger?: Logger | BackbeatLogger): BackbeatServerOptions {
  const options: BackbeatServerOptions = {
    bodyLimit: config.server.bodyLimitBytes,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    // Fastify accepts a hop count at run time; its types omit it.
    trustProxy: config.server.trustProxy as boolean | string,
    // The http plugin answers requests that arrive while closing with problem+json 503.
    return503OnClosing: !config.http.enabled,
    // Our request-logging plugin writes the one completion line per request.
    logController: new LogController({ disableRequestLogging: true }),
    schemaController: { compilersFactory: { buildValidator: strictBodyValidators } },
    http: {
      // Node checks request timeouts every 30 s by default, so a 30 s timeout fired after up
      // to 60 s; checking every second keeps requestTimeoutMs what clients experience.
      connectionsCheckingInterval: 1000,
      // Slow clients: complete headers within headersTimeoutMs (Node requires it to be no
      // longer than requestTimeout), and a bound on request line plus headers.
      headersTimeout: config.server.requestTimeoutMs > 0 ? Math.min(config.server.headersTimeoutMs, config.server.requestTimeoutMs) : config.server.headersTimeoutMs,
      maxHeaderSize: config.server.maxHeaderSizeBytes,
      // Node answers a missing Host with a bare 400; the http plugin answers problem+json.
      requireHostHeader: !config.http.enabled,
    },
  }
  if (logger !== undefined && config.logging.enabled) {
    const backbeatLogger = 'writeRequestLine' in logger ? logger : undefined
    options.loggerInstance = backbeatLogger?.logger ?? (logger as Logger)
    // Context fields reach every line through the logger's mixin, so no per-request child.
    options.childLoggerFactory = (parent) => parent
    if (backbeatLogger !== undefined && config.logging.requestCompletion) {
      options.logController = createRequestLogController({ slowRequestMs: config.logging.slowRequestMs, write: backbeatLogger.writeRequestLine })
    }
  } else {
    options.logger = false
  }
  if (config.http.enabled) {
    options.genReqId = createRequestIdGenerator(config.http.requestId)
    options.requestIdHeader = false
    options.clientErrorHandler = createClientErrorHandler(config.http)
    options.frameworkErrors = createFrameworkErrorHandler(config.http)
  }
  return options
}
