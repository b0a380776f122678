import { ERROR_CODES, type ErrorCategory, type ErrorCode } from './error-codes.ts'

export type ErrorParams = Readonly<Record<string, string | number | boolean>>

export interface BackbeatErrorOptions {
  /** Overrides the catalogue status (rarely needed). */
  status?: number
  /** Values for the `{name}` placeholders of the code's message template. */
  params?: ErrorParams
  /** Extra RFC 9457 extension members, e.g. `errors` for validation. Must be safe to show. */
  extensions?: Readonly<Record<string, unknown>>
  /** Extra response headers (e.g. `Allow`, `Retry-After`). */
  headers?: Readonly<Record<string, string>>
  cause?: unknown
}

/**
 * The one error class every capability throws. The HTTP error handler turns it into
 * RFC 9457 problem+json; its `code` is stable public API.
 *
 * @example
 * throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Track', id } })
 */
export class BackbeatError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly category: ErrorCategory
  readonly params: ErrorParams
  readonly extensions: Readonly<Record<string, unknown>> | undefined
  readonly headers: Readonly<Record<string, string>> | undefined

  constructor(code: ErrorCode, options: BackbeatErrorOptions = {}) {
    const entry = ERROR_CODES[code]
    const params = options.params ?? {}
    const template: string = 'log' in entry ? entry.log : entry.detail
    super(formatMessage(template, params), options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.status = options.status ?? entry.status
    this.category = entry.category
    this.params = params
    this.extensions = options.extensions
    this.headers = options.headers
  }
}

/** One problem found while validating configuration or options. */
export interface ConfigIssue {
  /** Dotted path of the offending option, e.g. `server.port` (or the env var that set it). */
  readonly path: string
  readonly message: string
}

/**
 * Thrown by factories and the config loader when options are invalid. Lists every issue,
 * never just the first, and is never caught to fall back to a default.
 *
 * @example
 * throw new ConfigError([{ path: 'server.port', message: 'must be an integer' }])
 */
export class ConfigError extends BackbeatError {
  readonly issues: readonly ConfigIssue[]
  constructor(issues: readonly ConfigIssue[], options: { cause?: unknown } = {}) {
    const text = issues.map((i) => `\n  - ${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('')
    super('ERR_CONFIG_INVALID', { params: { issues: text }, ...options })
    this.issues = issues
  }
}

const PLACEHOLDER = /\{(\w+)\}/g

/**
 * Fills `{name}` placeholders from `params`; unknown placeholders stay as written so a
 * missing value is visible rather than silently blank.
 *
 * @example formatMessage('{resource} {id} was not found.', { resource: 'Track', id: 'x' })
 */
export function formatMessage(template: string, params: ErrorParams): string {
  if (!template.includes('{')) return template
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = params[name]
    return value === undefined ? whole : String(value)
  })
}
