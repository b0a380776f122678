import type { FastifyError } from 'fastify'
import { BackbeatError, ERROR_CODES, formatMessage, type ErrorCode, type ErrorParams } from '../core/index.ts'

/** An RFC 9457 problem details object with Backbeat's `code` and `requestId` members. */
export interface ProblemDetails {
  type: string
  title: string
  status: number
  detail: string
  instance?: string
  code: ErrorCode
  requestId: string
  [extension: string]: unknown
}

/** One invalid field of a request, as listed in `errors` of ERR_VALIDATION_FAILED. */
export interface FieldError {
  /** Which part of the request: `body`, `querystring`, `params` or `headers`. */
  in: string
  /** JSON Pointer (RFC 6901) to the field within that part; `''` for the whole part. */
  pointer: string
  detail: string
}

/**
 * Looks up the human text for a code. The default is the English catalogue; the i18n
 * capability replaces it to translate by code and locale.
 */
export type MessageLookup = (code: ErrorCode, params: ErrorParams) => { title: string; detail: string }

/** English titles and details straight from the catalogue. */
export const englishMessages: MessageLookup = (code, params) => {
  const entry = ERROR_CODES[code]
  return { title: entry.title, detail: formatMessage(entry.detail, params) }
}

/**
 * The `type` URI of a code: a registered type when the catalogue names one (ERR_RATE_LIMITED
 * is IANA's `quota-exceeded`), else `base` + a slug (`ERR_HTTP_BODY_TOO_LARGE` → `http-body-too-large`).
 *
 * @example problemType('https://backbeat.dev/problems/', 'ERR_VALIDATION_FAILED')
 */
export function problemType(base: string, code: ErrorCode): string {
  const registered: string | undefined = (ERROR_CODES[code] as { type?: string }).type
  if (registered !== undefined) return registered
  return base + code.slice(4).toLowerCase().replaceAll('_', '-')
}

interface AjvError {
  instancePath?: string
  keyword?: string
  message?: string
  params?: Record<string, unknown>
}

/** Turns Ajv errors into field errors with JSON Pointers (a missing field points at itself). */
export function fieldErrors(validation: readonly AjvError[], part: string): FieldError[] {
  return validation.map((e) => {
    const base = e.instancePath ?? ''
    if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string') {
      return { in: part, pointer: `${base}/${escapePointer(e.params.missingProperty)}`, detail: 'is required' }
    }
    if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
      return { in: part, pointer: `${base}/${escapePointer(e.params.additionalProperty)}`, detail: 'is not an allowed field' }
    }
    return { in: part, pointer: base, detail: e.message ?? 'is invalid' }
  })
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

/**
 * Maps any error that reaches the error handler to a BackbeatError: our own pass through,
 * Fastify's protocol errors get their specific codes, anything else becomes ERR_INTERNAL
 * (keeping the original as `cause` for the log, never for the client).
 */
export function toBackbeatError(error: unknown, bodyLimit: number, contentType?: string): BackbeatError {
  if (error instanceof BackbeatError) return error
  const e = error as Partial<FastifyError> & { validation?: AjvError[]; validationContext?: string }
  if (Array.isArray(e.validation)) {
    const errors = fieldErrors(e.validation, e.validationContext ?? 'body')
    return new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: errors.length }, extensions: { errors }, cause: error })
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BackbeatError('ERR_HTTP_MEDIA_TYPE_UNSUPPORTED', { params: { contentType: describeMediaType(contentType) }, cause: error })
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BackbeatError('ERR_HTTP_BODY_TOO_LARGE', { params: { limit: bodyLimit }, cause: error })
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BackbeatError('ERR_HTTP_BODY_EMPTY', { cause: error })
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BackbeatError('ERR_HTTP_BODY_MALFORMED', { params: { format: 'JSON' }, cause: error })
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BackbeatError('ERR_HTTP_CONTENT_LENGTH_INVALID', { cause: error })
    case 'FST_ERR_BAD_URL':
      return new BackbeatError('ERR_HTTP_BAD_REQUEST', { cause: error })
    default:
      break
  }
  // secure-json-parse rejects prototype poisoning with a SyntaxError carrying statusCode 400.
  if (error instanceof SyntaxError && e.statusCode === 400) {
    return new BackbeatError('ERR_HTTP_BODY_MALFORMED', { params: { format: 'JSON' }, cause: error })
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status === 408) return new BackbeatError('ERR_HTTP_TIMEOUT', { cause: error })
  if (status === 413) return new BackbeatError('ERR_HTTP_BODY_TOO_LARGE', { params: { limit: bodyLimit }, cause: error })
  if (status === 503) return new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { cause: error })
  if (status >= 400 && status < 500) return new BackbeatError('ERR_HTTP_BAD_REQUEST', { status, cause: error })
  return new BackbeatError('ERR_INTERNAL', { cause: error })
}

/** The request's media type for a message: bounded, printable, without parameters. */
function describeMediaType(contentType: string | undefined): string {
  if (contentType === undefined || contentType === '') return '(none)'
  const type = (contentType.split(';')[0] ?? '').trim().slice(0, 100)
  return /^[\x21-\x7e]+$/.test(type) ? type : '(unreadable)'
}

/**
 * Builds the RFC 9457 body for `error`. 5xx bodies carry only the catalogue text: no
 * message, stack or cause ever leaves the server.
 */
export function buildProblem(
  error: BackbeatError,
  context: { requestId: string; instance?: string; typeBase: string; messages: MessageLookup },
): ProblemDetails {
  const { title, detail } = context.messages(error.code, error.status >= 500 ? {} : error.params)
  const problem: ProblemDetails = {
    type: problemType(context.typeBase, error.code),
    title,
    status: error.status,
    detail,
    code: error.code,
    requestId: context.requestId,
  }
  if (context.instance !== undefined) problem.instance = context.instance
  if (error.extensions !== undefined && error.status < 500) {
    for (const [key, value] of Object.entries(error.extensions)) {
      if (key === 'status' || key === 'code' || key === 'requestId') continue
      problem[key] = value
    }
  }
  return problem
}
