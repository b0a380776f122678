/**
 * The HTTP foundation: request IDs, the request context, timing, RFC 9457 problem+json
 * errors and 404/405 handling, plus the Fastify server options they need.
 */
export { httpPlugin, createClientErrorHandler, createFrameworkErrorHandler } from './plugin.ts'
export type { HttpPluginOptions } from './plugin.ts'
export { buildProblem, englishMessages, fieldErrors, problemType, toBackbeatError } from './problem-details.ts'
export type { FieldError, MessageLookup, ProblemDetails } from './problem-details.ts'
export { createRequestIdGenerator, generateRequestId, hasInvalidRequestId, isValidRequestId } from './request-id.ts'
export { httpOptionsSchema, REQUEST_ID_PATTERN } from './options.ts'
export type { HttpOptions } from './options.ts'
