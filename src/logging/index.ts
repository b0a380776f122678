/**
 * Structured logging: one shared pino logger (JSON or pretty, stdout or file), request
 * context on every line, secrets redacted at any depth, one completion line per request.
 */
export { contextFields, createLogger } from './logger.ts'
export type { BackbeatLogger, CreateLoggerOptions, RequestLine } from './logger.ts'
export { createRedactor, REDACTED, SECRET_PARAMETER_NAMES } from './redact.ts'
export type { Redactor } from './redact.ts'
export { createRequestLogController, requestLine, requestLoggingPlugin } from './plugin.ts'
export type { RequestLoggingOptions } from './plugin.ts'
export { loggingOptionsSchema, LOG_LEVELS } from './options.ts'
export type { LoggingOptions } from './options.ts'
